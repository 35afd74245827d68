"""The walk's per-type routes give exactly what asking every object every question gives, and the
hashed stream is the one earlier releases wrote (a checkpoint's digests still verify)."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import functools
import io
import logging
import weakref
from unittest import mock

import pytest
import xxhash

import colab_elastic.fingerprint as fingerprint_module
from colab_elastic.fingerprint import fingerprint
from colab_elastic.fingerprint_kinds import FULL, TextHasher


class Colour(enum.Enum):
    RED = 1


class Plain:
    def __init__(self) -> None:
        self.items = [1, 2.5, "x", None, True]
        self.same = self.items
        self.nested = {"k": (1, 2), 3: [b"raw"]}


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = 1
        self.b = [self]


class SaysItIsADict:
    """`isinstance(obj, dict)` is True for it, `type(obj) is dict` is not."""

    @property
    def __class__(self):  # noqa: D401 - a property, as mocks have
        return dict


class Forwarding:
    """Answers every attribute itself, `__class__` included."""

    def __getattribute__(self, name):
        if name == "__class__":
            return list
        return object.__getattribute__(self, name)


class Reduces:
    def __init__(self, value) -> None:
        self.value = value

    def __reduce__(self):
        return (Reduces, (self.value,))


def _corpus() -> dict[str, object]:
    target = Plain()
    shared = [1, 2]
    values: dict[str, object] = {
        "atoms": [None, True, 0, -1, 2**70, 1.5, float("nan"), 1j, "", "é\ud800", b"ab", ..., NotImplemented],
        "long int": 10**5000,  # repr() refuses it: an opaque part, on either path
        "nested": {"a": [[1], 2], "b": [[1, 2]], "t": (shared, shared), 3: {"x": shared}},
        "sets": [{1, "a", (1, 2)}, frozenset({"b", 2.0})],
        "objects": [Plain(), Slotted(), Colour.RED, datetime.date(2020, 1, 2), decimal.Decimal("1.1"), range(3)],
        "spoofing": [SaysItIsADict(), Forwarding(), mock.Mock(spec=dict), weakref.proxy(target), list[int]],
        "reducing": [Reduces([1]), functools.partial(int, base=2), collections.OrderedDict(a=1),
                     collections.defaultdict(list, {"a": [1]}), collections.deque([1, 2])],
        "callables": [len, Plain.__init__, Plain().__init__, lambda x: x, logging.getLogger("colab_elastic.kinds")],
        "buffers": [io.BytesIO(b"x"), bytearray(b"yz"), memoryview(b"mv")],
        "unpicklable": [iter({}), (i for i in range(2))],
    }
    values["target"] = target
    return values


def _with_every_question(monkeypatch: pytest.MonkeyPatch, value: object):
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint_module, "route", lambda t, walk: FULL)
        return fingerprint(value)


def _same(a, b) -> bool:
    return (a.content, a.objects, a.size, a.complete, a.unpicklable, a.comparable) == \
        (b.content, b.objects, b.size, b.complete, b.unpicklable, b.comparable)


@pytest.mark.parametrize("name", sorted(_corpus()))
def test_routes_give_what_every_question_gives(monkeypatch, name):
    value = _corpus()[name]
    assert _same(fingerprint(value), _with_every_question(monkeypatch, value))


def test_routes_give_what_every_question_gives_on_library_objects(monkeypatch):
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    values = [np.arange(6).reshape(2, 3).T, np.float64(1.5), np.ma.masked_array([1, 2], mask=[0, 1]), np.ma.masked,
              np.dtype("f4"), np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])[0],
              pd.DataFrame({"a": [1, 2], "s": ["x", None], "c": pd.Categorical(["u", "v"])})]
    for value in values:
        assert _same(fingerprint(value), _with_every_question(monkeypatch, value)), type(value)


def test_routes_give_what_every_question_gives_on_a_figure_and_a_forest(monkeypatch):
    np = pytest.importorskip("numpy")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    ensemble = pytest.importorskip("sklearn.ensemble")

    fig, axes = plt.subplots(1, 2)
    axes[0].hist(np.arange(50.0), bins=5)
    axes[1].set_title("t")
    forest = ensemble.RandomForestClassifier(3, random_state=0).fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
    try:
        for value in (fig, forest):
            assert _same(fingerprint(value), _with_every_question(monkeypatch, value)), type(value)
    finally:
        plt.close(fig)


def test_the_hashed_stream_is_the_one_earlier_releases_wrote():
    """Digests are compared across runtimes (a restore verifies what the checkpoint recorded):
    a change to the stream must come with a new `SCHEME`. Expected values computed with 0.1.x."""
    value = {"a": [1, 2.5, "x", None, True], "b": (b"raw", -3), "c": {1j, "s"}, "d": [[1], 2], "e": Colour.RED}
    assert fingerprint(value).content == "f2:" + _EXPECTED_PLAIN


_EXPECTED_PLAIN = "1f5ecf3b9a870ef382c737653a00829e"


def test_text_hasher_hashes_the_concatenation_in_order():
    hasher, reference = TextHasher(), xxhash.xxh3_128()
    for i in range(5 * TextHasher.BATCH + 7):  # across several batches
        text = f"t{i}\ud800\x00"
        hasher.text(text)
        reference.update(text.encode("utf-8", "surrogatepass"))
        if i % 997 == 0:
            hasher.update(bytes([i % 256]) * 3)
            reference.update(bytes([i % 256]) * 3)
    assert hasher.hexdigest() == reference.hexdigest()
    assert TextHasher().hexdigest() == xxhash.xxh3_128().hexdigest()


class _Raising(type):
    """A metaclass whose every class answers attribute lookups on itself by raising."""

    def __getattribute__(cls, name):
        if name in ("__mro__", "__reduce_ex__", "__getstate__"):
            raise RuntimeError("no")
        return super().__getattribute__(name)


def test_a_type_that_raises_when_asked_is_walked_as_before(monkeypatch):
    class Odd(metaclass=_Raising):
        def __init__(self) -> None:
            self.x = [1]

    value = [Odd(), Odd]
    assert _same(fingerprint(value), _with_every_question(monkeypatch, value))
