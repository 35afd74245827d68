"""Values a cell uses only through a library's read-only API are not fingerprinted after it; every
other use, including a change made through what escapes from them, is still seen."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
matplotlib = pytest.importorskip("matplotlib")
# No `matplotlib.use` at import: collection runs before every test, and switching backends
# changes rcParams that tests of recorded settings compare (see `agg` below).

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from colab_elastic import readonly  # noqa: E402
from tests.cells import Cells as _Cells  # noqa: E402


@pytest.mark.parametrize("code, methods, other", [
    ("y = clf.predict(X)", {"predict"}, False),
    ("print(clf.score(X, t))", {"score"}, False),
    ("n = clf.n_features_in_", set(), False),
    ("clf", set(), False),
    ("f'{clf.classes_}'", set(), False),
    ("clf.fit(X, t)", {"fit"}, False),  # a method the library does not vouch for: see is_light
    ("clf.predict(X)[0] = 5", set(), True),  # chained on
    ("clf.coef_[0] = 5", set(), True),
    ("clf.coef_ *= 2", set(), True),
    ("np.clip(clf.coef_, 0, 1, out=clf.coef_)", set(), True),
    ("helper(clf)", set(), True),
    ("clf = None", set(), True),
    ("[c.set_title('x') for c in fig.get_axes()]", set(), True),
    ("fig.get_axes()[0].set_title('x')", set(), True),
    ("def f():\n    return clf.predict(X)", set(), True),
])
def test_uses_are_classified(code, methods, other):
    name = "fig" if "fig" in code else "clf"
    use = readonly.uses(code)[name]
    assert (set(use.methods), use.other) == (methods, other)


def Cells(**values) -> _Cells:  # noqa: N802 - reads as the class it builds
    return _Cells(("clf", "fig"), **values)


@pytest.fixture(autouse=True)
def agg():
    matplotlib.use("agg")


@pytest.fixture
def cells():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    t = (X[:, 0] > 0).astype(int)
    fig, axs = plt.subplots(1, 2)
    axs[0].plot([1, 2, 3])
    c = Cells(np=np, X=X, t=t, clf=LogisticRegression().fit(X, t), fig=fig)
    yield c
    plt.close(fig)


@pytest.mark.parametrize("code", ["y = clf.predict(X)", "s = clf.score(X, t)", "print(clf.n_features_in_)",
                                  "w = fig.get_figwidth()", "fig.savefig(__import__('io').BytesIO())", "fig"])
def test_a_read_only_use_costs_no_walk_and_records_no_change(cells, code):
    cells.run("z = 0")  # a baseline fingerprint of everything
    cells.walks = 0
    writes = cells.run(code)
    assert not writes & {"clf", "fig"}
    assert cells.walks == 0


@pytest.mark.parametrize("code, name", [
    ("clf.fit(X[:100], t[:100])", "clf"),
    ("coef = clf.coef_\ncoef *= 2", "clf"),
    ("clf.coef_[0, 0] = 5.0", "clf"),
    ("fig.get_axes()[0].set_title('changed')", "fig"),
    ("[a.set_title('changed') for a in fig.get_axes()]", "fig"),
    ("ax0 = fig.axes[0]\nax0.set_title('changed')", "fig"),
    ("y = clf.predict(X)\nclf.intercept_[:] = 3.0", "clf"),
])
def test_any_other_use_still_sees_the_change(cells, code, name):
    cells.run("z = 0")
    assert name in cells.run(code)


def test_a_value_a_called_notebook_function_also_reads_is_walked(cells):
    cells.run("def refit():\n    clf.fit(X[:50], t[:50])")
    assert "clf" in cells.run("y = clf.predict(X)\nrefit()")


@pytest.mark.parametrize("code", ["plt.title('drawn through pyplot')", "plt.plot([3, 2, 1])",
                                  "plt.gca().set_xlabel('x')"])
def test_drawing_through_pyplot_changes_the_figures_it_does_not_name(code):
    plt.close("all")
    fig, ax = plt.subplots()
    cells = Cells(plt=plt, fig=fig, ax=ax)
    cells.run("n = len(ax.lines)")
    assert {"fig", "ax"} <= cells.run(code)
    assert not {"fig", "ax"} & cells.run("plt.show()\nplt.close('all')")
    plt.close(fig)


def test_a_figure_the_cell_saves_after_drawing_on_it_through_pyplot_is_walked():
    plt.close("all")
    fig = plt.figure()  # no name for its axes: nothing else would make fig look changed
    plt.plot([1, 2])
    cells = Cells(plt=plt, fig=fig, io=__import__("io"))
    cells.run("n = fig.get_figwidth()")
    assert "fig" in cells.run("plt.title('drawn')\nfig.savefig(io.BytesIO())")
    plt.close(fig)


def test_a_figure_changed_through_its_axes_is_walked_only_when_next_needed():
    plt.close("all")
    fig, axs = plt.subplots(1, 2)
    cells = Cells(plt=plt, fig=fig, axs=axs)
    cells.run("n = fig.get_figwidth(), axs.shape")  # both fingerprinted, as cells that made them would
    cells.walks = 0
    assert {"fig", "axs"} <= cells.run("axs[0].set_title('first')")
    assert cells.walks == 0  # fig shares the axes' objects: changed, not walked
    assert "fig" in cells.run("fig.suptitle('second')")  # its `before` is taken anew
    assert fig._suptitle.get_text() == "second"
    assert not {"fig", "axs"} & cells.run("w = fig.get_figwidth()")
    assert {"fig", "axs"} <= cells.run("axs[1].set_xlabel('x')")
    # What a checkpoint takes is the figure as it is now, not the deferred one.
    taken = cells.recorder.fingerprint("fig")
    from colab_elastic.fingerprint import fingerprint
    assert taken.content == fingerprint(fig).content
    plt.close(fig)


def test_a_new_figure_reached_from_its_new_axes_is_not_walked_twice():
    plt.close("all")
    cells = Cells(plt=plt)
    assert {"fig", "axs"} <= cells.run("fig, axs = plt.subplots(1, 2)\naxs[0].plot([1, 2, 3])")
    assert cells.walks == 0  # the axes' walk reached the figure: it waits until asked for
    assert "fig" in cells.run("fig.suptitle('later')")
    assert {"fig", "axs"} <= cells.run("axs[1].set_title('through the axes')")
    assert not {"fig", "axs"} & cells.run("w = fig.get_figwidth()")
    from colab_elastic.fingerprint import fingerprint
    assert cells.recorder.fingerprint("fig").content == fingerprint(cells.ns["fig"]).content
    plt.close("all")


# numpy arrays: read through their own methods, or changed --------------------------------------
@pytest.fixture
def arrays():
    big = np.arange(1_000, dtype=float)
    # `buf` is a 0-d view of big[0]: a reduction written into it writes into `big`.
    return _Cells(("big",), np=np, big=big, buf=big[:1].reshape(()), i=3, axis=0)


@pytest.mark.parametrize("code", [
    "s = big.shape", "n = len(big)", "m = float(big.sum())", "x = big[:10].mean()", "print(big.dtype)",
    "t = big.T.copy()", "big", "y = big.reshape(-1)[::2].max(axis=axis)", "v = big[i]",
    "z = big.astype(float).std()", "ok = big.all() or big.nbytes > 0",
])
def test_an_array_read_through_its_methods_costs_no_walk(arrays, code):
    arrays.run("z0 = 0")
    before = arrays.ns["big"].copy()
    arrays.walks = 0
    assert "big" not in arrays.run(code)
    assert arrays.walks == 0
    assert np.array_equal(arrays.ns["big"], before)


@pytest.mark.parametrize("code", [
    "big.sort()", "big[0] = 5.0", "big.cumsum(out=big)", "v = big.reshape(-1)\nv[0] = 9.0",
    "big.reshape(-1)[0] = 7.0", "np.add(big, 1, out=big)", "big += 1", "big.sum(None, None, buf)",
    "w = big.view()\nw[1] = -1.0", "big.real[2] = 4.0", "big.clip(0, 1, out=big)",
])
def test_an_array_changed_through_a_method_a_view_or_an_out_is_seen(arrays, code):
    arrays.run("z0 = 0")
    arrays.ns["big"][0] = 5000.5  # out of order, and a value no change above leaves as it is
    arrays.run("z1 = 0")
    before = arrays.ns["big"].copy()
    writes = arrays.run(code)
    assert not np.array_equal(arrays.ns["big"], before)  # the cell did change it
    assert "big" in writes


def test_an_array_of_python_objects_is_never_vouched_for():
    values = {"obj": np.array([[1], [2]], dtype=object)}
    use = readonly.uses("x = obj.sum()")["obj"]
    assert not readonly.is_light(values["obj"], use, values)
    assert readonly.is_light(np.zeros(3), readonly.uses("x = a.sum()")["a"], {})
