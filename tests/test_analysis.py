"""What a cell reads, binds and deletes, from its (IPython-transformed) source alone."""

from __future__ import annotations

import textwrap

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from colab_elastic.analysis import analyze_cell, reachable_names, replayable_code
from colab_elastic.namespace import notebook_predicate

_transformer = TransformerManager()


def analyze(raw_cell: str):
    """Analyse a cell the way the recorder does: after IPython's input transformation."""
    return analyze_cell(_transformer.transform_cell(raw_cell))


# Magics and shell escapes ---------------------------------------------------------------------
def test_time_line_magic_is_analysed_as_the_code_it_times():
    cell = analyze("%time x = f(y)\n")
    assert cell.parsed
    assert {"f", "y"} <= cell.loads
    assert cell.stores == {"x"}


def test_time_cell_magic_is_analysed_as_its_body():
    cell = analyze("%%time\nmodel = fit(data)\nscore = model.score(test)\n")
    assert {"fit", "data", "test"} <= cell.loads
    assert cell.stores == {"model", "score"}


def test_shell_escape_may_read_every_identifier_it_interpolates():
    cell = analyze("!echo $greeting {target}\n")
    assert {"greeting", "target"} <= cell.loads
    assert cell.stores == set()


def test_unknown_magic_arguments_count_as_reads():
    cell = analyze("%matplotlib inline\n%cd $workdir\n")
    assert "workdir" in cell.loads
    assert cell.stores == set()


def test_syntax_error_is_not_parsed_and_claims_nothing():
    cell = analyze("def broken(:\n    return x\n")
    assert not cell.parsed
    assert (cell.loads, cell.stores, cell.deletes) == (set(), set(), set())


# Plain Python ---------------------------------------------------------------------------------
def test_assignment_reads_the_right_side_and_binds_the_left():
    cell = analyze("total = price * count\n")
    assert cell.loads == {"price", "count"}
    assert cell.stores == {"total"}


def test_augmented_assignment_reads_before_it_writes():
    cell = analyze("total += step\n")
    assert cell.loads == {"total", "step"}
    assert cell.stores == {"total"}


def test_del_deletes_and_needs_the_name():
    cell = analyze("del scratch\n")
    assert cell.deletes == {"scratch"}
    assert "scratch" in cell.loads
    assert cell.stores == set()


def test_imports_bind_their_top_level_name_or_alias():
    cell = analyze("import numpy as np\nimport os.path\nfrom math import pi as PI, sqrt\nfrom json import *\n")
    assert cell.stores == {"np", "os", "PI", "sqrt"}
    assert cell.loads == set()


def test_attribute_and_subscript_assignment_read_the_base_name():
    cell = analyze("model.rate = 0.1\ntable[key] = value\n")
    assert cell.loads == {"model", "table", "key", "value"}
    assert cell.stores == set()


def test_local_variables_of_a_function_are_not_stored():
    cell = analyze("def area(r):\n    squared = r * r\n    return PI * squared\n")
    assert cell.stores == {"area"}
    assert "PI" in cell.loads
    assert "squared" not in cell.stores


def test_global_statement_makes_a_function_body_store_a_global():
    cell = analyze("def bump():\n    global counter\n    counter += 1\n    local = 3\n")
    assert cell.stores == {"bump", "counter"}
    assert "local" not in cell.stores


def test_decorators_and_defaults_are_read_when_the_function_is_defined():
    cell = analyze("@register\ndef handler(limit=DEFAULT_LIMIT):\n    pass\n")
    assert {"register", "DEFAULT_LIMIT"} <= cell.loads
    assert cell.stores == {"handler"}


def test_lambda_body_may_read_globals_but_binds_nothing():
    cell = analyze("scale = lambda v: v * factor\n")
    assert "factor" in cell.loads
    assert cell.stores == {"scale"}


def test_class_body_reads_globals_and_binds_only_the_class():
    cell = analyze(
        "class Model(Base):\n"
        "    rate = default_rate\n"
        "    def fit(self):\n"
        "        return training_data\n"
    )
    assert {"Base", "default_rate", "training_data"} <= cell.loads
    assert cell.stores == {"Model"}


def test_comprehension_variables_stay_inside_the_comprehension():
    cell = analyze(
        "squares = [n * n for n in numbers if n > threshold]\n"
        "lookup = {k: v for k, v in pairs}\n"
        "total = sum(w for w in weights)\n"
    )
    assert {"numbers", "threshold", "pairs", "weights"} <= cell.loads
    assert cell.stores == {"squares", "lookup", "total"}


def test_walrus_in_a_comprehension_binds_at_top_level():
    cell = analyze("kept = [y for v in values if (y := clean(v))]\nprint(last := kept[-1])\n")
    assert cell.stores == {"kept", "y", "last"}
    assert {"values", "clean"} <= cell.loads


def test_a_user_variable_named_like_a_builtin_is_still_read():
    # `input`, `id`, `sum`, `filter` are ordinary variable names in notebooks; missing the
    # read would lose the dependency of this cell on the cell that assigned them.
    cell = analyze("result = process(input, id)\n")
    assert {"process", "input", "id"} <= cell.loads


# Replay ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "own_line",
    ["%elastic checkpoint", "%elastic restore gs://bucket/run", "%load_ext colab_elastic", "  %reload_ext colab_elastic"],
)
def test_replayable_code_turns_our_own_magics_into_no_ops(own_line):
    raw = f"x = 1\n{own_line}\ny = x + 1\n"
    replay = replayable_code(raw)
    assert own_line.strip() not in replay
    assert replay.startswith("x = 1\n") and replay.endswith("y = x + 1\n")
    namespace: dict = {}
    exec(_transformer.transform_cell(replay), namespace)  # nothing left that needs IPython
    assert namespace["y"] == 2


def test_replayable_code_keeps_other_magics_and_names_that_merely_start_alike():
    raw = "%load_ext autoreload\n%elasticity 3\nelastic = 1\n"
    assert replayable_code(raw) == raw


# Reachability through notebook functions ------------------------------------------------------
def _notebook(source: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace


def test_reachable_names_follow_notebook_functions_transitively():
    ns = _notebook(
        "RATE = 2\nOFFSET = 1\nunrelated = 0\n"
        "def helper(v):\n    return v * RATE\n"
        "def outer(v):\n    return helper(v) + OFFSET\n"
    )
    reached = reachable_names({"outer"}, ns, notebook_predicate(ns))
    assert reached == {"outer", "helper", "RATE", "OFFSET"}


def test_reachable_names_do_not_enter_functions_defined_elsewhere():
    ns = _notebook("import json\ndumps = json.dumps\nindent = 2\n")
    assert reachable_names({"dumps"}, ns, notebook_predicate(ns)) == {"dumps"}


def test_reachable_names_include_methods_of_notebook_classes_and_instances():
    ns = _notebook(
        "SCALE = 3\nBIAS = 1\nMODE = 'fast'\n"
        "class Scaler:\n"
        "    def apply(self, v):\n        return v * SCALE\n"
        "    @staticmethod\n    def offset():\n        return BIAS\n"
        "    @classmethod\n    def mode(cls):\n        return MODE\n"
        "scaler = Scaler()\n"
    )
    predicate = notebook_predicate(ns)
    # An instance reads its class too: its methods may change the class's attributes.
    assert reachable_names({"scaler"}, ns, predicate) == {"scaler", "Scaler", "SCALE", "BIAS", "MODE"}
    assert reachable_names({"Scaler"}, ns, predicate) == {"Scaler", "SCALE", "BIAS", "MODE"}


def test_reachable_names_include_globals_read_by_properties():
    ns = _notebook(
        "UNIT = 'cm'\n"
        "class Length:\n"
        "    @property\n    def label(self):\n        return UNIT\n"
        "length = Length()\n"
    )
    assert reachable_names({"length"}, ns, notebook_predicate(ns)) == {"length", "Length", "UNIT"}


def test_reachable_names_drop_seeds_that_are_not_in_the_namespace():
    ns = _notebook("x = 1\n")
    assert reachable_names({"x", "print", "missing"}, ns, notebook_predicate(ns)) == {"x"}


# Effects the names alone do not show ----------------------------------------------------------
@pytest.mark.parametrize("cell", [
    "exec('log.append(1)')", "eval('x')", "globals()['log'].append(1)", "vars()['x'] = 1",
    "import __main__", "get_ipython().user_ns['x'] = 1", "%run script.py",
])
def test_dynamic_cells_may_touch_every_variable(cell):
    assert analyze(cell).dynamic


@pytest.mark.parametrize("cell", ["model.eval()", "vars(args)", "df.query('a > 1')"])
def test_methods_named_like_dynamic_builtins_are_not_dynamic(cell):
    assert not analyze(cell).dynamic


@pytest.mark.parametrize("cell", [
    "rng = np.random.default_rng()", "rng = np.random.default_rng(None)", "key = os.urandom(16)",
    "ident = uuid.uuid4().hex", "token = secrets.token_hex()", "sysrand = random.SystemRandom()",
    "started = time.time()", "stamp = datetime.datetime.now()", "# elastic: never-rerun\nx = 1",
])
def test_cells_a_rerun_cannot_reproduce(cell):
    assert analyze(cell).unrepeatable


@pytest.mark.parametrize("cell", [
    "rng = np.random.default_rng(0)", "print(time.time() - started)", "x = df.time()", "# elastic: rerun\nx = 1",
])
def test_seeded_draws_and_clock_reads_not_kept_are_repeatable(cell):
    assert not analyze(cell).unrepeatable


def test_attribute_stores_name_the_objects_changed():
    assert analyze("json.flag = 5\nsetattr(os, 'x', 1)\ndel np.thing\nprint(a.b)").attribute_stores == {"json", "os", "np"}


def test_reachable_names_follow_functions_held_in_values():
    ns: dict = {"__name__": "__main__"}
    exec(textwrap.dedent("""
        import functools
        log, seen, rate, limit = [], [], 0.1, 3
        hooks = {'add': lambda v: log.append(v)}
        class Model:
            def step(self):
                return rate
        class Box:
            pass
        box = Box()
        box.callbacks = [lambda: seen]
        models = [Model()]
        bound = functools.partial(lambda n: n < limit, 1)
    """), ns)
    pred = notebook_predicate(ns)
    assert reachable_names(["hooks"], ns, pred) == {"hooks", "log"}
    assert reachable_names(["box"], ns, pred) == {"box", "Box", "seen"}
    assert reachable_names(["models"], ns, pred) == {"models", "rate"}
    assert reachable_names(["bound"], ns, pred) == {"bound", "limit"}


def test_a_notebook_function_calling_exec_makes_every_name_reachable():
    ns: dict = {"__name__": "__main__"}
    exec("log = []\nother = 1\ndef run(code):\n    exec(code)\ndef evaluate(model):\n    return model.eval()", ns)
    pred = notebook_predicate(ns)
    assert reachable_names(["run"], ns, pred) >= {"run", "log", "other", "evaluate"}
    assert reachable_names(["evaluate"], ns, pred) == {"evaluate"}  # a method named eval is not exec


def test_effects_inside_a_timed_line_count():
    assert analyze("%time started = time.time()").unrepeatable
    assert analyze("%time exec('x = 1')").dynamic


@pytest.mark.parametrize("code", [
    "from google.colab import drive\ndrive.mount('/content/drive')",
    "from google.colab import auth\nauth.authenticate_user()",
    "import requests\nr = requests.post('https://example.invalid/api', json={'a': 1})",
    "df.to_sql('table', engine)",
    "blob.upload_from_filename('model.pt')",
    "server.sendmail('a@b', 'c@d', 'hi')",
])
def test_cells_with_side_effects_are_never_rerun(code):
    reason = analyze_cell(code).unrepeatable
    assert reason and "side effect" in reason


def test_reading_the_web_is_not_a_side_effect():
    assert not analyze_cell("import requests\nr = requests.get('https://example.invalid/data.csv')").unrepeatable
