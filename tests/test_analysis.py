"""What a cell reads, binds and deletes, from its (IPython-transformed) source alone."""

from __future__ import annotations

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
    assert reachable_names({"scaler"}, ns, predicate) == {"scaler", "SCALE", "BIAS", "MODE"}
    assert reachable_names({"Scaler"}, ns, predicate) == {"Scaler", "SCALE", "BIAS", "MODE"}


def test_reachable_names_include_globals_read_by_properties():
    ns = _notebook(
        "UNIT = 'cm'\n"
        "class Length:\n"
        "    @property\n    def label(self):\n        return UNIT\n"
        "length = Length()\n"
    )
    assert reachable_names({"length"}, ns, notebook_predicate(ns)) == {"length", "UNIT"}


def test_reachable_names_drop_seeds_that_are_not_in_the_namespace():
    ns = _notebook("x = 1\n")
    assert reachable_names({"x", "print", "missing"}, ns, notebook_predicate(ns)) == {"x"}
