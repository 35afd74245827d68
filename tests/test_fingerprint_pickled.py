"""Figures fingerprinted by the C pickler (`fingerprint_pickled`): the same answers as the walk
(changed or not, shared with what), or the walk itself when the pickler cannot be trusted."""

from __future__ import annotations

import gc

import pytest

np = pytest.importorskip("numpy")
matplotlib = pytest.importorskip("matplotlib")
# No `matplotlib.use` at import: collection runs before every test, and choosing a backend sets
# rcParams that tests of recorded settings compare (see `agg`).

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from colab_elastic import shared_arrays, torch_storage  # noqa: E402
from colab_elastic.fingerprint import SCHEME, fingerprint  # noqa: E402
from colab_elastic.fingerprint_pickled import is_drawing  # noqa: E402
from tests.cells import Cells  # noqa: E402

PICKLED = SCHEME + "pickled:"


@pytest.fixture(autouse=True)
def agg():
    matplotlib.use("agg")
    yield
    plt.close("all")


def _figure():
    fig, axs = plt.subplots(1, 2)
    axs[0].plot([1.0, 2.0, 3.0])
    axs[1].bar([1, 2], [3, 4])
    return fig, axs


def test_figures_axes_and_short_sequences_of_them_are_drawings():
    fig, axs = _figure()
    assert is_drawing(fig) and is_drawing(axs) and is_drawing(axs[0]) and is_drawing((fig, axs[0]))
    assert is_drawing(list(axs))
    assert not is_drawing([fig, 1]) and not is_drawing(np.zeros(3)) and not is_drawing({"fig": fig})
    assert not is_drawing(np.array([axs[0]] * 100, dtype=object))  # longer than MAX_ITEMS: walked


def test_a_figure_looks_the_same_until_it_changes():
    fig, axs = _figure()
    first = fingerprint(fig)
    assert first.content.startswith(PICKLED) and first.complete and not first.comparable
    assert fingerprint(fig).content == first.content  # each look advances a callback counter
    fig.bbox_inches.width, axs[0].get_position()  # reads that clear cache flags
    assert fingerprint(fig).content == first.content
    fingerprint({"fig": fig})  # the walk makes the `__dict__` of the partials it meets
    assert fingerprint(fig).content == first.content
    axs[0].set_title("same")
    titled = fingerprint(fig).content
    axs[0].set_title("same")  # new transforms, keyed by new addresses: the same figure
    assert fingerprint(fig).content == titled
    for change in (lambda: axs[0].set_title("t"), lambda: axs[1].set_xlim(0, 9),
                   lambda: axs[0].lines[0].set_color("red"), lambda: axs[0].text(1, 1, "note")):
        before = fingerprint(fig).content
        change()
        assert fingerprint(fig).content != before


def test_data_changed_in_place_inside_a_figure_is_seen():
    fig, ax = plt.subplots()
    (line,) = ax.plot(np.arange(5.0), np.arange(5.0))
    before = fingerprint(fig).content
    line.get_ydata(orig=True)[2] = 40.0  # the array the line keeps, written through
    assert fingerprint(fig).content != before


def test_shared_objects_are_the_figure_its_artists_and_the_arrays_it_holds():
    data = np.arange(1000.0)
    fig, ax = plt.subplots()
    (line,) = ax.plot(data)  # matplotlib keeps a copy of what it draws
    fig.sample = data[::2]  # a view kept on the figure: its owner is shared with it
    fp = fingerprint(fig)
    assert {id(fig), id(ax), id(line), id(fig.sample), id(data)} <= fp.objects
    walked = fingerprint({"fig": fig})  # not a drawing: walked, and the walk finds the same
    assert {id(fig), id(ax), id(line), id(fig.sample), id(data)} <= walked.objects


def test_two_figures_share_what_the_walk_says_they_share():
    # Classes, enum members (cap styles), library functions and dtypes are in every figure:
    # counted as shared, they would make every two figures one group. What is really shared
    # (matplotlib's cached unit paths, rcParams' font lists) is found by the walk too.
    one, _ = _figure()
    other, _ = _figure()
    # Ids are compared across four walks: an id left by a temporary one walk made can meet an
    # object of a later walk at the same address (seen once in CI). That is chance, a real
    # disagreement is not: it fails every attempt.
    for _attempt in range(3):
        walked = fingerprint({"one": one}).objects & fingerprint({"other": other}).objects
        if fingerprint(one).objects & fingerprint(other).objects == walked:
            break
    else:
        assert fingerprint(one).objects & fingerprint(other).objects == walked


def test_every_object_counted_as_shared_is_part_of_the_figure():
    # Not the state dicts a `__getstate__` copied for the pickler: gone after it, their ids would
    # come back as unrelated objects', sharing with this figure.
    fig, _ = _figure()
    fp = fingerprint(fig)
    gc.collect()
    reachable = _reachable(fig)
    # Where torch is loaded (another test imported it), the memory of the figure's arrays counts
    # too, by address (see `torch_storage.memory_key`): of arrays the figure holds, none made for the occasion.
    memory = {torch_storage.memory_key(shared_arrays.address(a)) for a in reachable if isinstance(a, np.ndarray)}
    assert fp.objects <= {id(obj) for obj in reachable} | memory


def _reachable(root):
    """Every object `root` holds through references (an array's `base` and an object's `__dict__`
    among them, which gc does not list), not through classes, modules or functions."""
    seen, stack, found = set(), [root], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        found.append(obj)
        if not isinstance(obj, (type, type(np), type(len), type(_reachable))):
            stack.extend(gc.get_referents(obj))
            stack.extend(part for part in (getattr(obj, "__dict__", None), getattr(obj, "base", None))
                         if part is not None)
    return found


def test_a_function_of_the_notebook_inside_a_figure_is_walked():
    namespace: dict = {}
    exec("def money(x, pos):\n    return f'${x:.0f}'", namespace)
    fig, ax = plt.subplots()
    ax.yaxis.set_major_formatter(FuncFormatter(namespace["money"]))
    fp = fingerprint(fig, is_notebook_defined=lambda obj: getattr(obj, "__globals__", None) is namespace)
    assert not fp.content.startswith(PICKLED)  # its code is in the walk's digest, not in a pickle's


def test_what_does_not_pickle_is_walked():
    fig, ax = plt.subplots()
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, pos: f"{x:.1f}"))  # a lambda: no pickle
    fp = fingerprint(fig)
    assert not fp.content.startswith(PICKLED) and fp.complete


def test_recorded_cells_see_figures_change_through_any_name_of_their_parts():
    cells = Cells(("fig", "axs"), plt=plt, np=np)
    assert {"x", "fig", "axs"} <= cells.run("x = np.arange(5.0)\nfig, axs = plt.subplots(1, 2)\naxs[0].plot(x)")
    assert not {"fig", "axs"} & cells.run("w = fig.get_figwidth()")
    assert {"fig", "axs"} <= cells.run("axs[1].set_title('t')")
    assert cells.run("x *= 2") == {"x"}  # the line drew a copy of `x`
    assert "line" in cells.run("line = axs[0].get_lines()[0]")
    assert {"line", "fig", "axs"} <= cells.run("line.set_color('red')")
    assert not {"fig", "axs", "line"} & cells.run("y = 3")
