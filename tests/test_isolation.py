"""Isolation per value: one odd value never stops a checkpoint nor breaks a restore.

Hostile objects (whose dunder methods or properties raise), very deep nesting, numpy array
subclasses (masked, record, matrix) and matplotlib figures sit next to ordinary values. Each
odd one is fingerprinted without raising; if it cannot be stored it is named in the plan
with its reason and recomputed; if it cannot be loaded its cells are rerun instead.
"""

from __future__ import annotations

import importlib
import pickle
import os
import sys
import uuid
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import colab_elastic
from colab_elastic.errors import RestoreWarning, StorageError, UnpicklableWarning
from colab_elastic.covariables import overlapping
from colab_elastic.fingerprint import fingerprint
from tests.kernels import roundtrip

# Each class breaks one thing a walk, a pickler or an unpickler may touch. They are defined
# in a notebook cell (the shell tests) or in a module-like namespace (the pure tests).
HOSTILE = '''
class Boom(Exception):
    pass

class Hostile:
    def __init__(self, n=0):
        object.__setattr__(self, "n", n)

class RaisingReduce(Hostile):
    def __reduce__(self):
        raise Boom("reduce refuses")

class RaisingReduceEx(Hostile):
    def __reduce_ex__(self, protocol):
        raise Boom("reduce_ex refuses")

class RaisingGetstate(Hostile):
    def __getstate__(self):
        raise Boom("getstate refuses")

class RaisingSizeof(Hostile):
    def __sizeof__(self):
        raise Boom("sizeof refuses")

class RaisingGetattribute(Hostile):
    def __getattribute__(self, name):
        raise Boom(f"getattribute {name} refuses")

class RaisingDictProperty(Hostile):
    @property
    def __dict__(self):
        raise Boom("__dict__ refuses")

class RaisingGetattr(Hostile):
    def __getattr__(self, name):
        raise Boom(f"getattr {name} refuses")

class RaisingSetstate(Hostile):
    def __setstate__(self, state):
        raise Boom("setstate refuses")

class RaisingEq(Hostile):
    def __eq__(self, other):
        raise Boom("eq refuses")
    __hash__ = Hostile.__hash__

class RaisingHash(Hostile):
    def __hash__(self):
        raise Boom("hash refuses")

class RaisingProperty(Hostile):
    @property
    def broken(self):
        raise Boom("property refuses")

class Saboteur:
    """A callable that does not pickle: only the pickler meets it, never the fingerprint."""
    def __call__(self, n):
        return Hostile(n)
    def __reduce__(self):
        raise Boom("saboteur refuses")

class PicklesBadly(Hostile):
    def __reduce__(self):
        return (Saboteur(), (self.n,))
'''

# What each kind of hostile value does to a checkpoint and a restore.
UNFINGERPRINTABLE = ["RaisingReduce", "RaisingReduceEx", "RaisingGetstate", "RaisingSizeof",
                     "RaisingGetattribute", "RaisingDictProperty"]
UNPICKLABLE = ["PicklesBadly"]  # fingerprints fine, fails only when written
UNLOADABLE = ["RaisingGetattr", "RaisingSetstate"]  # written fine, fails only when loaded
HARMLESS = ["RaisingEq", "RaisingHash", "RaisingProperty"]  # nothing of ours calls what raises


@pytest.fixture(scope="module")
def hostile():
    namespace: dict = {"__name__": "hostile_cells"}
    exec(HOSTILE, namespace)
    return namespace


def _state(value):
    return object.__getattribute__(value, "n")


# Fingerprints never raise ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UNFINGERPRINTABLE)
def test_a_hostile_value_is_fingerprinted_as_incomplete_with_its_reason(hostile, kind):
    shared = [1, 2]
    fp = fingerprint([shared, hostile[kind](1), {"k": 3}])
    assert not fp.complete
    assert fp.unpicklable and "refuses" in fp.unpicklable
    # The rest of the value is still walked: what it shares with others is still known.
    assert id(shared) in fp.objects


@pytest.mark.parametrize("kind", UNPICKLABLE + UNLOADABLE + HARMLESS)
def test_a_value_whose_odd_parts_the_walk_never_touches_fingerprints_normally(hostile, kind):
    first, second = hostile[kind](1), hostile[kind](1)
    assert fingerprint([first]).content == fingerprint([second]).content
    object.__setattr__(second, "n", 2)
    assert fingerprint([first]).content != fingerprint([second]).content


def test_a_hostile_value_inside_a_set_or_a_numpy_object_array(hostile):
    odd = hostile["RaisingGetattribute"](1)
    array = np.empty(2, dtype=object)
    array[0], array[1] = odd, 1  # not np.array([odd]): numpy itself would ask odd for __array__
    for value in (frozenset([odd, 1]), array):
        fp = fingerprint(value)
        assert not fp.complete and "refuses" in fp.unpicklable


def test_very_deep_nesting_is_fingerprinted_without_recursion():
    deep: list = []
    cursor = deep
    for _ in range(100_000):
        cursor.append([])
        cursor = cursor[0]
    assert fingerprint(deep).complete
    nested: frozenset = frozenset()
    for i in range(5_000):
        nested = frozenset([nested, i])
    fp = fingerprint(nested)  # nested sets are walked one level per call: too deep is opaque
    assert fp.complete or fp.unpicklable


# Numpy array subclasses ---------------------------------------------------------------------------
def _matrix(rows):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # numpy discourages np.matrix; users still have them
        return np.matrix(rows)


def _masked():
    return np.ma.masked_array([1.0, 2.0, 3.0, 4.0], mask=[0, 1, 0, 0], fill_value=-1.0)


def test_a_masked_array_counts_its_data_its_mask_and_its_fill_value():
    base = fingerprint(_masked())
    assert base.complete and base.unpicklable is None
    data = _masked()
    data.data[1] = 20.0  # under the mask: still what pickle stores
    mask = _masked()
    mask[3] = np.ma.masked
    fill = _masked()
    fill.fill_value = -2.0
    unmasked = _masked().data
    contents = {fingerprint(v).content for v in (data, mask, fill, unmasked)}
    assert base.content not in contents and len(contents) == 4


@pytest.mark.parametrize("make", [
    _masked,
    lambda: np.ma.masked_array([1, 2, 3]),  # no mask at all: pickle writes an all-False one
    lambda: np.ma.masked_array(np.arange(12.0).reshape(3, 4), mask=np.eye(3, 4))[:, 1:],
    lambda: np.ma.masked_array(["a", "bc", None], mask=[0, 0, 1], dtype=object),
    lambda: np.ma.masked_array(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]), mask=[(0, 1), (1, 0)]),
    lambda: np.zeros(4, dtype=[("age", "i4")]).view(np.recarray),
    lambda: _matrix([[1, 2], [3, 4]]),
], ids=["masked", "nomask", "masked-view", "masked-object", "masked-structured", "recarray", "matrix"])
def test_an_array_subclass_has_the_same_fingerprint_after_a_pickle_round_trip(make):
    value = make()
    fp = fingerprint(value)
    assert fp.complete and fp.unpicklable is None
    assert fingerprint(pickle.loads(pickle.dumps(value, protocol=5))).content == fp.content


def test_reading_a_masked_array_does_not_change_it():
    value = _masked()
    no_fill = np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
    before = (fingerprint(value).content, fingerprint(no_fill).content)
    value.filled(), value.mean(), no_fill.fill_value, no_fill.mask, value[1:]  # noqa: B018 - reads only
    assert (fingerprint(value).content, fingerprint(no_fill).content) == before


def test_record_arrays_and_matrices_see_in_place_changes():
    people = np.zeros(4, dtype=[("age", "i4")]).view(np.recarray)
    before = fingerprint(people).content
    people.age[2] = 41
    assert fingerprint(people).content != before
    grid = _matrix([[1, 2], [3, 4]])
    assert fingerprint(grid).content != fingerprint(np.asarray(grid)).content
    before = fingerprint(grid).content
    grid[0, 0] = 9
    assert fingerprint(grid).content != before


def test_masked_views_are_aliases_and_the_masked_constant_is_not():
    value = _masked()
    groups = overlapping({"value": fingerprint(value), "view": fingerprint(value[1:]),
                          "one": fingerprint([np.ma.masked]), "two": fingerprint([np.ma.masked])})
    assert {frozenset({"value", "view"}), frozenset({"one"}), frozenset({"two"})} == set(groups)


def test_matplotlib_scatter_and_imshow_fingerprint(matplotlib_agg):
    plt = matplotlib_agg
    fig, ax = plt.subplots()
    ax.scatter([1, 2], [3, 4])
    other, bx = plt.subplots()
    bx.imshow(np.arange(9.0).reshape(3, 3))
    try:
        for value in (fig, ax, other):
            assert fingerprint(value).unpicklable is None
    finally:
        plt.close("all")


@pytest.fixture
def matplotlib_agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# In a real (in-process) shell ---------------------------------------------------------------------
def _session(shell):
    from colab_elastic.extension import current

    return current().session


def _run(shell, code: str) -> None:
    result = shell.run_cell(code, store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec


def _fresh(shell) -> None:
    """A new runtime in the same process: no extension, an empty namespace."""
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")


def _decisions(plan) -> dict:
    return {name: decision for decision in plan.groups for name in decision.names}


def _all_recorded(shell) -> None:
    """No recording failed: every cell is in the history, and every one can be rerun."""
    executions = _session(shell).graph.executions[1:]
    assert executions and all(e.rerunnable for e in executions), [(e.code, e.note) for e in executions]


def test_hostile_values_do_not_stop_a_checkpoint_and_come_back_by_rerunning(shell, tmp_path, capsys):
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, HOSTILE)
    _run(shell, "import time\ntime.sleep(0.2)\nnumbers = list(range(50))\ntable = {'a': numbers}")
    kinds = UNFINGERPRINTABLE + UNPICKLABLE + UNLOADABLE + HARMLESS
    for i, kind in enumerate(kinds):  # one cell each: a rerun for one must not rerun the others
        _run(shell, f"time.sleep(0.1)\nodd_{kind} = [{kind}({i}), 'kept']")
    _run(shell, "total = sum(numbers) + len(odd_RaisingGetattribute)")
    _all_recorded(shell)
    url = str(tmp_path / "ckpt")
    with pytest.warns(UnpicklableWarning, match="odd_PicklesBadly"):
        result = colab_elastic.checkpoint(url)
    decisions = _decisions(result.plan)
    for kind in UNFINGERPRINTABLE:
        assert decisions[f"odd_{kind}"].action == "recompute", kind
        assert "refuses" in decisions[f"odd_{kind}"].reason, decisions[f"odd_{kind}"]
    assert decisions["odd_PicklesBadly"].action == "recompute"
    assert "saboteur refuses" in decisions["odd_PicklesBadly"].reason
    assert decisions["numbers"].action == "store" and decisions["total"].action != "lost"

    _fresh(shell)
    with pytest.warns(RestoreWarning, match="refuses"):
        report = colab_elastic.restore(url)
    assert report.ok, report
    assert any("odd_RaisingSetstate" in names for names in report.fallbacks)
    ns = shell.user_ns
    assert ns["numbers"] == list(range(50)) and ns["table"]["a"] is ns["numbers"] and ns["total"] == 1227
    for i, kind in enumerate(kinds):
        value = ns[f"odd_{kind}"]
        assert type(value[0]).__name__ == kind and _state(value[0]) == i and value[1] == "kept"
    capsys.readouterr()


def test_a_fill_that_raises_anything_is_recomputed_but_a_storage_failure_is_not(shell, tmp_path, monkeypatch):
    checkpoint_module = importlib.import_module("colab_elastic.checkpoint")  # the package exports a function of that name
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\ntime.sleep(0.2)\nkept = [1, 2, 3]")
    real = checkpoint_module.dump_group

    def failing(values, file, namespace, strings=None):
        raise MemoryError("no room to pickle this")

    monkeypatch.setattr(checkpoint_module, "dump_group", failing)
    with pytest.warns(UnpicklableWarning, match="MemoryError"):
        result = colab_elastic.checkpoint(str(tmp_path / "a"))
    assert _decisions(result.plan)["kept"].action == "recompute"

    def storage_down(values, file, namespace, strings=None):
        raise StorageError("the bucket went away")

    monkeypatch.setattr(checkpoint_module, "dump_group", storage_down)
    _run(shell, "time.sleep(0.2)\nkept = [4, 5, 6]")
    with pytest.raises(StorageError, match="went away"):
        colab_elastic.checkpoint(str(tmp_path / "b"))
    assert not (tmp_path / "b" / "LATEST").exists()
    monkeypatch.setattr(checkpoint_module, "dump_group", real)


def test_a_group_that_cannot_be_planned_is_recomputed_and_the_others_are_stored(shell, tmp_path, monkeypatch):
    checkpoint_module = importlib.import_module("colab_elastic.checkpoint")
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\ntime.sleep(0.2)\nodd = [1]")
    _run(shell, "time.sleep(0.2)\nfine = [2]")
    real = checkpoint_module._group

    def picky(recorder, members, fps, unpicklable):
        if "odd" in members:
            raise KeyError("lost track of it")
        return real(recorder, members, fps, unpicklable)

    monkeypatch.setattr(checkpoint_module, "_group", picky)
    decisions = _decisions(colab_elastic.checkpoint(str(tmp_path / "c")).plan)
    assert decisions["odd"].action == "recompute" and "could not be planned (KeyError" in decisions["odd"].reason
    assert decisions["fine"].action == "store"


def test_a_fingerprint_that_raises_keeps_the_cell_recorded(shell, tmp_path, monkeypatch):
    from colab_elastic import recorder as recorder_module

    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\ntime.sleep(0.2)\ncursed = [1, 2]\nplain = [3]")
    real = recorder_module.fingerprint

    def picky(value, **kwargs):
        if value is shell.user_ns.get("cursed"):
            raise RuntimeError("the walk itself broke")
        return real(value, **kwargs)

    monkeypatch.setattr(recorder_module, "fingerprint", picky)
    _run(shell, "cursed.append(len(plain))")
    _all_recorded(shell)
    last = _session(shell).graph.executions[-1]
    assert "cursed" in {n for n, _ in last.writes}  # unknown, so assumed changed
    result = colab_elastic.checkpoint(str(tmp_path / "c"))
    decision = _decisions(result.plan)["cursed"]
    assert decision.action == "recompute" and "the walk itself broke" in decision.reason
    monkeypatch.setattr(recorder_module, "fingerprint", real)
    _fresh(shell)
    report = colab_elastic.restore(str(tmp_path / "c"))
    assert report.ok and shell.user_ns["cursed"] == [1, 2, 1]


@pytest.mark.parametrize("libraries", [(), ("matplotlib.figure", "pandas")], ids=["alone", "with-libraries"])
def test_a_cell_that_reads_a_hostile_value_is_still_rerunnable(shell, tmp_path, libraries):
    for name in libraries:  # loaded, they make the recorder ask more of each value (is it a figure, a frame?)
        pytest.importorskip(name)
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, HOSTILE)
    _run(shell, "odd = RaisingGetattribute(1)\nbox = [odd]")
    _run(shell, "box.append(odd)")
    _all_recorded(shell)
    last = _session(shell).graph.executions[-1]
    assert {"odd", "box"} <= {n for n, _ in last.writes}  # its state is unknown: assumed changed


@pytest.mark.parametrize("definition, creation", [
    # A `__setstate__` that refuses; a tensor saved on a GPU this runtime does not have; a
    # class whose module is gone from the new runtime.
    ("class Fragile:\n    def __setstate__(self, state):\n        raise RuntimeError('cannot come back')",
     "value = Fragile()\nvalue.data = list(range(5))"),
    ("def to_device(data):\n    raise RuntimeError('CUDA error: no CUDA-capable device is detected')\n"
     "class Tensor:\n    def __init__(self, data):\n        self.data = data\n"
     "    def __reduce__(self):\n        return (to_device, (self.data,))",
     "value = Tensor(list(range(5)))"),
    ("pass",
     "import sys, types\nvanishing = types.ModuleType('vanishing')\n"
     "exec('class Thing:\\n    pass', vanishing.__dict__)\nsys.modules['vanishing'] = vanishing\n"
     "value = vanishing.Thing()\nvalue.data = list(range(5))\ndel vanishing"),
], ids=["setstate", "cuda", "moved-class"])
def test_a_group_that_fails_to_load_is_recomputed_and_the_namespace_stays_consistent(shell, tmp_path, definition,
                                                                                     creation):
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\ntime.sleep(0.2)\nearlier = {'loaded': True}")
    _run(shell, definition)
    _run(shell, "time.sleep(0.2)\n" + creation)
    _run(shell, "time.sleep(0.2)\nlater = [earlier['loaded'], len(value.data)]")
    url = str(tmp_path / "ckpt")
    result = colab_elastic.checkpoint(url)
    assert _decisions(result.plan)["value"].action == "store"
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    sys.modules.pop("vanishing", None)  # a new runtime: the module is not there
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "before_restore = 'untouched'")
    try:
        with pytest.warns(RestoreWarning, match="value"):
            report = colab_elastic.restore(url)
    finally:
        sys.modules.pop("vanishing", None)
    assert report.ok, report
    assert list(report.fallbacks) == ["value"]
    ns = shell.user_ns
    assert ns["value"].data == list(range(5)) and ns["earlier"] == {"loaded": True} and ns["later"] == [True, 5]
    assert ns["before_restore"] == "untouched"
    assert "value" in report.recomputed


def test_deep_nesting_does_not_stop_a_checkpoint(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\ntime.sleep(0.2)\ndeep = []\ncursor = deep\nfor _ in range(100_000):\n"
                "    cursor.append([])\n    cursor = cursor[0]\ndel cursor")
    _run(shell, "time.sleep(0.2)\nflat = [1, 2, 3]")
    with pytest.warns(UnpicklableWarning, match="deep.*RecursionError"):
        result = colab_elastic.checkpoint(str(tmp_path / "c"))
    decisions = _decisions(result.plan)
    assert decisions["deep"].action == "recompute" and decisions["flat"].action == "store"
    _fresh(shell)
    report = colab_elastic.restore(str(tmp_path / "c"))
    assert report.ok and shell.user_ns["flat"] == [1, 2, 3]
    depth, cursor = 0, shell.user_ns["deep"]
    while cursor:
        depth, cursor = depth + 1, cursor[0]
    assert depth == 100_000


PLOTS = [
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport time",
    "time.sleep(0.2)\nfig, ax = plt.subplots()\npoints = ax.scatter([1, 2, 3], [3, 1, 2])",
    "time.sleep(0.2)\nother, bx = plt.subplots()\npicture = bx.imshow(np.arange(9.0).reshape(3, 3))",
    "time.sleep(0.2)\nmasked = np.ma.masked_array([1.0, 2.0, 3.0, 4.0], mask=[0, 1, 0, 0], fill_value=-1.0)\n"
    "people = np.zeros(4, dtype=[('age', 'i4')]).view(np.recarray)\npeople.age[:] = [30, 40, 50, 60]",
    "masked[3] = np.ma.masked",  # the mask alone changes: a change all the same
]


def test_plots_masked_and_record_arrays_checkpoint_and_restore_in_process(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    hooks = list(shell.events.callbacks["post_execute"])
    try:
        for code in PLOTS:
            _run(shell, code)
        _all_recorded(shell)
        assert "masked" in {n for n, _ in _session(shell).graph.executions[-1].writes}
        result = colab_elastic.checkpoint(str(tmp_path / "c"))
        decisions = _decisions(result.plan)
        assert decisions["masked"].action == "store" and decisions["people"].action == "store"
        assert decisions["fig"].action in ("store", "recompute") and decisions["other"].action in ("store", "recompute")
        _fresh(shell)
        report = colab_elastic.restore(str(tmp_path / "c"))
        assert not report.missing and not report.failures, report
        ns = shell.user_ns
        masked = ns["masked"]
        assert masked.data.tolist() == [1.0, 2.0, 3.0, 4.0]
        assert masked.mask.tolist() == [False, True, False, True] and masked.fill_value == -1.0
        assert type(ns["people"]).__name__ == "recarray" and ns["people"].age.tolist() == [30, 40, 50, 60]
        assert len(ns["ax"].collections) == 1 and len(ns["bx"].images) == 1
    finally:
        plt = sys.modules["matplotlib.pyplot"]
        plt.close("all")
        if shell.events.callbacks["post_execute"] != hooks:
            plt.uninstall_repl_displayhook()  # pyplot's first import in a shell hooks into it


def test_grid_search_results_with_masked_columns_checkpoint(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time\nimport numpy as np\nfrom sklearn.model_selection import GridSearchCV\n"
                "from sklearn.tree import DecisionTreeClassifier\nX = np.arange(40.0).reshape(20, 2)\n"
                "y = np.arange(20) % 2\ntime.sleep(0.2)\nsearch = GridSearchCV(DecisionTreeClassifier(random_state=0), "
                "{'max_depth': [1, 2]}, cv=2).fit(X, y)\nresults = search.cv_results_")
    _all_recorded(shell)
    original = shell.user_ns["results"]["param_max_depth"]
    result = colab_elastic.checkpoint(str(tmp_path / "c"))
    assert _decisions(result.plan)["results"].action == "store"
    _fresh(shell)
    report = colab_elastic.restore(str(tmp_path / "c"))
    assert report.ok, report
    restored = shell.user_ns["results"]["param_max_depth"]
    assert isinstance(restored, np.ma.MaskedArray)
    assert restored.tolist() == original.tolist() and restored.mask.tolist() == np.ma.getmaskarray(original).tolist()


# Random mixes -------------------------------------------------------------------------------------
def _normal(kind: str, payload) -> tuple[str, object]:
    """Code that builds an ordinary value, and the value it builds."""
    if kind == "array":
        return f"np.array({payload!r}, dtype=float)", np.array(payload, dtype=float)
    if kind == "masked":
        data, mask = payload
        return (f"np.ma.masked_array({data!r}, mask={mask!r}, dtype=float)",
                np.ma.masked_array(data, mask=mask, dtype=float))
    return repr(payload), payload


def _equal(kind: str, restored, expected) -> bool:
    if kind == "masked":
        return (type(restored) is type(expected) and restored.data.tolist() == expected.data.tolist()
                and np.ma.getmaskarray(restored).tolist() == np.ma.getmaskarray(expected).tolist())
    if kind == "array":
        return restored.dtype == expected.dtype and restored.tolist() == expected.tolist()
    return type(restored) is type(expected) and restored == expected


_small_ints = st.integers(-1000, 1000)
_floats = st.floats(allow_nan=False, allow_infinity=False, width=32)
NORMAL = st.one_of(
    st.tuples(st.just("int"), st.integers()),
    st.tuples(st.just("list"), st.lists(_small_ints, max_size=5)),
    st.tuples(st.just("dict"), st.dictionaries(st.text("abc", max_size=3), _small_ints, max_size=3)),
    st.tuples(st.just("array"), st.lists(_floats, max_size=6)),
    st.tuples(st.just("masked"), st.lists(st.tuples(_floats, st.booleans()), max_size=5).map(
        lambda pairs: ([p[0] for p in pairs], [p[1] for p in pairs]))),
)
ODD = st.tuples(st.sampled_from(UNFINGERPRINTABLE + UNPICKLABLE + UNLOADABLE + HARMLESS), st.booleans())
# Mostly slow cells: those are the ones the planner stores, where writes and loads can fail.
VALUES = st.lists(st.tuples(st.one_of(NORMAL, ODD.map(lambda k: ("odd", k))), st.sampled_from([True, True, False])),
                  min_size=1, max_size=6)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=VALUES)
def test_random_mixes_of_hostile_and_normal_values(shell, capsys, values):
    """Whatever the mix, the checkpoint succeeds, ordinary values come back equal, and each
    hostile value is named in the plan (recomputed, with its reason, when it cannot be stored)."""
    _fresh(shell)
    _run(shell, "import time\nimport numpy as np\n" + HOSTILE)
    expected: dict[str, tuple[str, object]] = {}
    odd: dict[str, tuple[str, int]] = {}
    for i, ((kind, payload), slow) in enumerate(values):
        name = f"v{i}"
        if kind == "odd":
            odd_kind, nested = payload
            code = f"{odd_kind}({i})"
            code = f"{{'plain': [{i}], 'odd': {code}}}" if nested else code
            odd[name] = (odd_kind, nested)
        else:
            code, value = _normal(kind, payload)
            expected[name] = (kind, value)
        _run(shell, ("time.sleep(0.03)\n" if slow else "") + f"{name} = {code}")
    _all_recorded(shell)

    url = f"memory://isolation/{uuid.uuid4().hex}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = colab_elastic.checkpoint(url)
    assert all(issubclass(w.category, UnpicklableWarning) for w in caught), [str(w.message) for w in caught]
    event(f"a write failed: {bool(caught)}")
    decisions = _decisions(result.plan)
    for name in expected:
        assert decisions[name].action in ("store", "recompute"), decisions[name]
    for name, (kind, _) in odd.items():
        decision = decisions[name]
        assert decision.action in ("store", "recompute") and decision.reason, decision
        if kind in UNFINGERPRINTABLE:
            assert decision.action == "recompute" and "refuses" in decision.reason, decision
        if kind in UNPICKLABLE:
            assert decision.action == "recompute", decision

    _fresh(shell)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = colab_elastic.restore(url)
    assert all(issubclass(w.category, RestoreWarning) for w in caught), [str(w.message) for w in caught]
    event(f"a load failed: {bool(report.fallbacks)}")
    event(f"hostile values stored: {sum(decisions[n].action == 'store' for n in odd)}")
    assert report.ok, report
    ns = shell.user_ns
    for name, (kind, value) in expected.items():
        assert _equal(kind, ns[name], value), (name, ns[name], value)
    for name, (kind, nested) in odd.items():
        i = int(name[1:])
        value = ns[name]["odd"] if nested else ns[name]
        assert type(value).__name__ == kind and _state(value) == i
        if nested:
            assert ns[name]["plain"] == [i]
    capsys.readouterr()


# In real kernels, across a SIGKILL -----------------------------------------------------------------
@pytest.mark.kernel
def test_a_scatter_plot_and_a_masked_array_survive_a_kill(tmp_path, kernels):
    cells = [
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport time",
        "time.sleep(0.3)\nfig, ax = plt.subplots()\npoints = ax.scatter([1, 2, 3], [3, 1, 2])",
        "time.sleep(0.3)\nmasked = np.ma.masked_array([1.0, 2.0, 3.0, 4.0], mask=[0, 1, 0, 0], fill_value=-1.0)",
        "masked[3] = np.ma.masked\nmasked.data[1] = 20.0",  # the mask and the data under it change
    ]
    trip = roundtrip(tmp_path, cells)
    kernels.append(trip.kernel)
    assert trip.verdicts["masked"] == "same", trip.restore.text
    assert trip.value("(masked.data.tolist(), masked.mask.tolist(), float(masked.fill_value))") == (
        "([1.0, 20.0, 3.0, 4.0], [False, True, False, True], -1.0)")
    assert trip.value("(type(fig).__name__, len(ax.collections), ax.figure is fig)") == "('Figure', 1, True)"
    # A drawn figure gains ticks and loses caches: restored, compared by the checks above, and
    # named as not compared by fingerprint rather than called verified.
    assert "verified but 3 that cannot be compared" in trip.restore.text, trip.restore.text
    assert "ax, fig, points (a matplotlib figure changes when drawn)" in trip.restore.text


def test_an_interrupted_restore_leaves_the_namespace_as_it_was_and_can_be_run_again(shell, tmp_path):
    """Ctrl-C while a value loads: nothing half-restored; the same restore then succeeds."""
    shell.run_line_magic("load_ext", "colab_elastic")
    _run(shell, "import time, os\ntime.sleep(0.2)\nearlier = {'loaded': True}")
    _run(shell, "class Slow:\n    def __init__(self, n):\n        self.n = n\n"
                "    def __setstate__(self, state):\n"
                "        if os.path.exists(os.environ['ELASTIC_TEST_INTERRUPT']):\n"
                "            raise KeyboardInterrupt\n        self.__dict__.update(state)")
    _run(shell, "time.sleep(0.2)\nvalue = Slow(5)")
    url = str(tmp_path / "ckpt")
    colab_elastic.checkpoint(url)
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    flag = tmp_path / "interrupt"
    flag.write_text("now")
    os.environ["ELASTIC_TEST_INTERRUPT"] = str(flag)
    try:
        shell.run_line_magic("load_ext", "colab_elastic")
        _run(shell, "before_restore = 'untouched'")
        with pytest.raises(KeyboardInterrupt):
            colab_elastic.restore(url)
        names = {n for n in shell.user_ns if not n.startswith("_")} - set(shell.user_ns_hidden)
        assert names == {"before_restore"}, names
        flag.unlink()
        report = colab_elastic.restore(url)
        assert report.ok, report
        assert shell.user_ns["value"].n == 5 and shell.user_ns["earlier"] == {"loaded": True}
    finally:
        os.environ.pop("ELASTIC_TEST_INTERRUPT", None)
