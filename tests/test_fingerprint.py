"""Fingerprints: a value's content changes with in-place edits, not with reads; overlaps are aliases."""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

from colab_elastic.covariables import overlapping
from colab_elastic.fingerprint import fingerprint, unpicklable_reason
from colab_elastic.namespace import notebook_predicate


def content(value) -> str:
    return fingerprint(value).content


def groups(**values) -> list[set[str]]:
    return [set(g) for g in overlapping({name: fingerprint(v) for name, v in values.items()})]


# Content: in-place changes are seen ------------------------------------------------------------
def test_equal_values_have_equal_content_and_different_values_do_not():
    assert content({"a": [1, 2.5, "x", None]}) == content({"a": [1, 2.5, "x", None]})
    assert content([1, 2]) != content([2, 1])
    assert content([1]) != content([True])
    assert content((1, 2)) != content([1, 2])


def test_list_append_changes_content():
    values = [1, 2]
    before = content(values)
    values.append(3)
    assert content(values) != before


def test_dict_set_item_changes_content():
    config = {"lr": 0.1}
    before = content(config)
    config["lr"] = 0.2
    assert content(config) != before


def test_attribute_set_changes_content():
    class Box:
        pass

    box = Box()
    box.width = 3
    before = content(box)
    box.width = 4
    assert content(box) != before


def test_change_deep_inside_a_nested_value_is_seen():
    nested = {"rows": [[1, 2], [3, 4]]}
    before = content(nested)
    nested["rows"][1][0] = 30
    assert content(nested) != before


def test_numpy_element_write_changes_content():
    np = pytest.importorskip("numpy")
    grid = np.zeros((4, 5))
    before = content(grid)
    grid[2, 3] = 1.0
    assert content(grid) != before


def test_numpy_write_through_a_view_changes_the_base():
    np = pytest.importorskip("numpy")
    base = np.arange(12.0).reshape(3, 4)
    column = base[:, 1]  # a strided view
    before_base, before_column = content(base), content(column)
    column[0] = -1.0
    assert content(base) != before_base
    assert content(column) != before_column


def test_pandas_column_add_changes_content():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    before = content(df)
    df["c"] = df["a"] * 2
    assert content(df) != before


def test_pandas_inplace_drop_changes_content():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    before = content(df)
    with warnings.catch_warnings():
        # pandas 3 deprecates `inplace=`; the in-place drop itself is what we test.
        warnings.simplefilter("ignore", DeprecationWarning)
        df.drop(columns="b", inplace=True)
    assert content(df) != before


def test_pandas_reads_do_not_change_content():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]}, index=["x", "y", "z"])
    before = fingerprint(df)
    _ = df.loc["y", "a"]
    _ = df["a"]
    _ = df.b.sum()
    _ = df.iloc[0]
    _ = df.index.get_loc("z")
    _ = repr(df)
    after = fingerprint(df)
    assert after.content == before.content
    assert after.complete


def test_state_created_on_first_look_does_not_change_content():
    """A `functools.partial` makes its `__dict__` when first asked, pandas fills `_cache` on a
    repr: the first fingerprint of a fresh value must equal the later ones."""
    import functools
    pd = pytest.importorskip("pandas")
    assert content(functools.partial(int, "7")) == content(functools.partial(int, "7"))
    made = functools.partial(int, "7")
    first = content(made)
    assert content(made) == first
    index = pd.date_range("2024-03-30", periods=4, freq="D", tz="Europe/Paris")
    before = content(index)
    _ = repr(index)
    assert content(index) == before
    assert content(pd.date_range("2024-03-30", periods=4, freq="D", tz="UTC")) != before


def test_an_id_attribute_from_another_process_is_not_a_change():
    """sklearn's `_stop_words_id` is `id(stop_words)`: a loaded estimator holds the address from
    the process that pickled it, until its next transform resets it."""
    text = pytest.importorskip("sklearn.feature_extraction.text")
    vectorizer = text.CountVectorizer()
    vectorizer.fit(["the cat sat", "the dog sat down"])
    before = content(vectorizer)
    vectorizer._stop_words_id += 4096  # what the pickling process's id(None) may have been
    assert content(vectorizer) == before
    vectorizer.stop_words = ["the"]
    assert content(vectorizer) != before


def test_sklearn_refit_changes_content_and_predict_does_not():
    np = pytest.importorskip("numpy")
    linear_model = pytest.importorskip("sklearn.linear_model")
    X = np.arange(10.0).reshape(-1, 1)
    model = linear_model.LinearRegression().fit(X, 2 * X[:, 0])
    fitted = content(model)
    model.predict(X)
    assert content(model) == fitted
    model.fit(X, 3 * X[:, 0])
    assert content(model) != fitted


def test_notebook_function_content_follows_its_code_and_defaults():
    namespace: dict = {}
    exec("def f(v, k=1):\n    return v + k\n", namespace)
    first = fingerprint(namespace["f"], is_notebook_defined=lambda obj: True).content
    exec("def f(v, k=1):\n    return v - k\n", namespace)
    assert fingerprint(namespace["f"], is_notebook_defined=lambda obj: True).content != first
    namespace["f"].__defaults__ = (2,)
    assert fingerprint(namespace["f"], is_notebook_defined=lambda obj: True).content != first


@pytest.mark.parametrize(
    ("value", "change"),
    [
        (collections.defaultdict(list, a=[1]), lambda v: v["a"].append(2)),
        (collections.defaultdict(int), lambda v: v.__setitem__("new", 1)),
        (collections.OrderedDict(a=[1]), lambda v: v["a"].append(2)),
        (collections.deque([1, 2]), lambda v: v.append(3)),
        (collections.Counter("aab"), lambda v: v.update("b")),
    ],
    ids=["defaultdict-nested", "defaultdict-key", "OrderedDict", "deque", "Counter"],
)
def test_in_place_change_of_a_collections_container_changes_content(value, change):
    before = content(value)
    change(value)
    assert content(value) != before


# Sets and processes -----------------------------------------------------------------------------
def test_set_content_does_not_depend_on_iteration_order():
    # 8 and 16 collide in a small set's table, so insertion order decides iteration order.
    first, second = {8}, {16}
    first.add(16)
    second.add(8)
    assert list(first) != list(second)  # the precondition that makes this test mean something
    assert content(first) == content(second)
    assert content(frozenset(first)) == content(frozenset(second))
    assert content({8, 16}) != content({8, 24})


_SAMPLE = """
import json, sys
from colab_elastic.fingerprint import fingerprint
value = {
    "words": {"alpha", "beta", "gamma", "delta", "epsilon"},
    "frozen": frozenset({("x", 1), ("y", 2)}),
    "nested": [1, 2.5, None, b"raw", ("t", True)],
    "mapping": {"k": {"inner"}},
}
print(json.dumps([fingerprint(value).content, list(value["words"])]))
"""


def test_content_is_stable_across_processes_with_different_hash_seeds():
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_SAMPLE)], env=env, capture_output=True, text=True, check=True, timeout=60
        )
        results.append(json.loads(out.stdout))
    (content_1, order_1), (content_2, order_2) = results
    assert order_1 != order_2  # the seeds really did change set order
    assert content_1 == content_2


# Completeness and pickling ----------------------------------------------------------------------
def test_budget_exhaustion_marks_the_fingerprint_incomplete():
    rows = [[i] for i in range(50)]
    assert fingerprint(rows, budget=1000).complete
    assert not fingerprint(rows, budget=10).complete


def _generator():
    yield 1


@pytest.mark.parametrize(
    ("make", "word"),
    [
        (_generator, "generator"),
        (threading.Lock, "lock"),
        (threading.RLock, "RLock"),
        (lambda: open(os.devnull), "open file"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "socket"),
    ],
)
def test_unpicklable_parts_are_named(make, word):
    obj = make()
    try:
        assert word in unpicklable_reason(obj)
        fp = fingerprint({"holder": [obj]})
        assert fp.unpicklable is not None and word in fp.unpicklable
        assert not fp.complete  # its state is invisible, so a reader may have changed it
    finally:
        if hasattr(obj, "close"):
            obj.close()


@pytest.mark.parametrize(
    "make",
    [lambda d: iter(d), lambda d: iter(d.values()), lambda d: iter(d.items()), reversed,
     lambda d: reversed(d.items()), lambda d: iter(set(d)), lambda d: iter(collections.OrderedDict(d))],
)
def test_iterators_over_a_live_container_are_recomputed_not_stored(make):
    reason = unpicklable_reason(make({"a": 1, "b": 2}))
    assert reason is not None and "detached" in reason


def test_picklable_values_have_no_unpicklable_reason():
    import io

    assert unpicklable_reason(io.StringIO("text")) is None
    assert unpicklable_reason([1, 2]) is None
    assert fingerprint({"buffer": io.BytesIO(b"x"), "n": 1}).unpicklable is None


# Aliasing -----------------------------------------------------------------------------------------
def test_a_name_bound_to_the_same_list_is_an_alias():
    a = [1, 2]
    b = a
    d = {"k": a}
    c = [1, 2]  # equal, but not the same object
    assert sorted(map(sorted, groups(a=a, b=b, d=d, c=c))) == [["a", "b", "d"], ["c"]]


def test_shared_immutable_values_are_not_aliases():
    shared = (1, 2, "x")
    assert sorted(map(sorted, groups(p=shared, q=shared, r=frozenset({1})))) == [["p"], ["q"], ["r"]]


def test_numpy_view_is_an_alias_of_its_base():
    np = pytest.importorskip("numpy")
    a = np.arange(10.0)
    view = a[2:5]
    other = np.arange(10.0)
    assert sorted(map(sorted, groups(a=a, view=view, other=other))) == [["a", "view"], ["other"]]


def test_dataframe_and_a_series_taken_from_it_are_aliases():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    column = df["a"]
    separate = pd.Series([1.0, 2.0, 3.0])
    assert sorted(map(sorted, groups(df=df, column=column, separate=separate))) == [["column", "df"], ["separate"]]


def test_matplotlib_figure_and_its_axes_are_aliases():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        assert groups(fig=fig, ax=ax, n=3) == [{"ax", "fig"}, {"n"}]
    finally:
        plt.close(fig)


def test_attributes_kept_by_a_custom_reduce_are_still_aliases():
    """sklearn estimators pickle a copy of their __dict__; the attributes in it are real."""
    text = pytest.importorskip("sklearn.feature_extraction.text")
    vocabulary = ["apple", "pear"]
    vectorizer = text.CountVectorizer(vocabulary=vocabulary)
    assert groups(vectorizer=vectorizer, vocabulary=vocabulary) == [{"vectorizer", "vocabulary"}]


def test_values_of_dict_and_list_subclasses_are_aliases():
    shared = [1]
    assert groups(
        counts=collections.defaultdict(list, k=shared), shared=shared, order=collections.OrderedDict(a=1)
    ) == [{"counts", "shared"}, {"order"}]


def test_overlapping_puts_every_name_in_exactly_one_group():
    x = [0]
    result = overlapping({name: fingerprint(v) for name, v in {"x": x, "y": {"x": x}, "z": {}, "w": 5}.items()})
    names = [n for g in result for n in g]
    assert sorted(names) == ["w", "x", "y", "z"]
    assert frozenset({"x", "y"}) in result


def test_the_builtins_namespace_held_by_an_exec_dict_aliases_nothing():
    filled: dict = {}
    exec("a = [1]", filled)
    other: dict = {}
    exec("b = 2", other)
    assert sorted(map(sorted, groups(filled=filled, other=other, bystander=[1]))) == [["bystander"], ["filled"], ["other"]]
    assert fingerprint(filled).complete and fingerprint(filled).unpicklable is None


def test_enum_members_are_constants_not_aliases():
    import enum

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    assert sorted(map(sorted, groups(style={"c": Color.RED}, palette=[Color.RED]))) == [["palette"], ["style"]]
    assert content([Color.RED]) != content([Color.BLUE])


def test_a_notebook_class_covers_its_data_attributes_but_not_its_instances():
    ns: dict = {"__name__": "__main__"}
    exec("class Registry:\n    items = []\n    def add(self, x):\n        self.items.append(x)\nr = Registry()", ns)
    is_notebook_defined = notebook_predicate(ns)
    cls = ns["Registry"]
    before = fingerprint(cls, is_notebook_defined=is_notebook_defined)
    instance = fingerprint(ns["r"], is_notebook_defined=is_notebook_defined)
    cls.items.append("x")
    after = fingerprint(cls, is_notebook_defined=is_notebook_defined)
    assert after.content != before.content and id(cls.items) in after.objects
    # An instance does not reach its class's attributes: it is not grouped with the class.
    assert not instance.objects & after.objects
    assert fingerprint(ns["r"], is_notebook_defined=is_notebook_defined).content == instance.content


def test_a_bare_object_sentinel_is_stateless_not_opaque():
    # matplotlib keeps `object()` sentinels in every figure: taking them for opaque C state made
    # every cell that read a figure count as changing it.
    assert fingerprint({"unset": object()}).complete


def test_arrays_a_reduce_makes_for_the_occasion_alias_nothing_later():
    # A fitted tree pickles its node table as fresh views of its own memory; their ids, freed
    # after the walk, came back as the next arrays made and looked like shared objects.
    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree")
    X = np.random.default_rng(0).standard_normal((200, 4))
    model = tree.DecisionTreeClassifier(random_state=0).fit(X, X[:, 0] > 0)
    before = fingerprint(model)
    fresh = [np.zeros(3) for _ in range(200)]  # take freed addresses
    assert not any(before.objects & fingerprint(a).objects for a in fresh)


@pytest.mark.parametrize("before, after", [
    ([[1], 2], [[1, 2]]),
    ({"a": [1], "b": 2}, {"a": [1, "b", 2]}),
    (["a", "b"], ["astr 1:b"]),
    ([(1,), ()], [(), (1,)]),
])
def test_moving_items_between_nested_containers_changes_content(before, after):
    # `x[0].append(2); x.pop()` turns [[1], 2] into [[1, 2]]: without container lengths in the
    # hash, both read alike and the change went unseen.
    assert content(before) != content(after)


@pytest.mark.parametrize("make", [lambda: iter([1, 2, 3]), lambda: iter((1, 2, 3)), lambda: iter(range(3)),
                                  lambda: map(str, [1, 2, 3]), lambda: enumerate("abc"), lambda: reversed([1, 2, 3])])
def test_next_on_a_builtin_iterator_changes_content(make):
    it = make()
    before = content(it)
    assert content(it) == before
    next(it)
    assert content(it) != before


def test_a_logger_level_change_is_seen_and_the_logger_is_rebuilt_not_stored():
    import logging

    logger = logging.getLogger("colab_elastic.tests.fingerprint")
    logger.setLevel(logging.WARNING)
    before = fingerprint(logger)
    logger.setLevel(logging.DEBUG)
    after = fingerprint(logger)
    assert after.content != before.content
    assert after.unpicklable and "logger" in after.unpicklable  # pickle would bring back the defaults


@pytest.mark.parametrize("dtype, value", [("string[pyarrow]", "zz"), ("int64[pyarrow]", 7)])
def test_a_write_into_an_arrow_backed_column_changes_content(dtype, value):
    # pandas 3 makes text columns Arrow-backed when pyarrow is installed: their bytes reach
    # the walk as pickle.PickleBuffer, which used to be walked for referents, never hashed.
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    series = pd.Series(["a", "b", "c"] if "string" in dtype else [1, 2, 3], dtype=dtype)
    before = content(series)
    series[1] = value
    assert content(series) != before
