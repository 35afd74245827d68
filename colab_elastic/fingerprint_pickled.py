"""Fingerprints of matplotlib values taken by the C pickler, for the recorder's in-process checks.

A figure is thousands of small artists, transforms and arrays: the walk (`fingerprint`) visits
each in Python, ~55 ms for two axes and ~150 ms for a 3x3 grid of histograms, on every cell
that creates or changes one. The C pickler goes through the same state, the one a
checkpoint would store (every matplotlib object says it through `__reduce_ex__`, as the walk
asks it), in ~9 and ~33 ms; ~20 and ~80 ms with the shared objects found (below). Its stream,
hashed as it is written, is the content; array buffers are handed over out of band (protocol 5)
and hashed in place. Equal streams unpickle to equal
figures, so the digest can also key a blob; it is never compared across processes, since a
figure's fingerprint is not (`Fingerprint.comparable`).

What the walk gives beside the content comes from what the pickler met, each object handed to
`persistent_id`: the ids of the mutable ones (`objects`, the sharing rule), less what a
`__reduce__` built for the occasion (nothing but our list holds it: its id would come back as
an unrelated object's), plus the array owning each array's memory (an array kept on a figure
can be a view of a frame's column).

Any doubt falls back to the walk (None): a function defined in the notebook (pickled by name,
its code would not be in the digest), a logger (pickled by name), anything that does not
pickle. Pure: imports neither IPython nor fsspec; numpy and matplotlib only from `sys.modules`.
"""

from __future__ import annotations

import copyreg
import enum
import functools
import gc
import itertools
import logging
import pickle
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable

import xxhash

from . import shared_arrays, torch_storage
from .errors import describe
from .fingerprint_kinds import ATOMIC, IMMUTABLE_CONTAINERS, LEAF_CALLABLES, REPR_HASHED
from .fingerprint_state import without_matplotlib_bookkeeping

log = logging.getLogger("colab_elastic.fingerprint")

MAX_ITEMS = 64  # a list, tuple or array of artists (`fig, axes = plt.subplots(2, 2)`) up to this


@dataclass(frozen=True)
class Pickled:
    """What the pickler said of one value: a content digest, the shared objects' ids, a size."""

    content: str
    objects: frozenset[int]
    size: int


def is_drawing(value: Any) -> bool:
    """Is `value` a matplotlib object, or a short list, tuple or object array of them?"""
    if sys.modules.get("matplotlib") is None:
        return False
    t = type(value)
    if _from_matplotlib(t):
        return True
    np = sys.modules.get("numpy")
    if np is not None and t is np.ndarray and value.dtype == object and 0 < value.size <= MAX_ITEMS:
        items = value.ravel().tolist()
    elif (t is list or t is tuple) and 0 < len(value) <= MAX_ITEMS:
        items = value
    else:
        return False
    return all(_from_matplotlib(type(item)) for item in items)


def _from_matplotlib(t: type) -> bool:
    module = getattr(t, "__module__", None)
    return type(module) is str and module.startswith("matplotlib.")


class _Refused(Exception):
    """The value holds something the pickler would not fingerprint faithfully: walk it instead."""


class _Pickler(pickle.Pickler):
    """The C pickler, handing every object it meets to `sink` (a C `list.append`: no Python
    call per object), with the reductions of `dispatch` (see `_dispatch`)."""

    def __init__(self, file: Any, sink: Callable[[Any], None], dispatch: dict[type, Any],
                 buffers: Callable[[pickle.PickleBuffer], None]) -> None:
        self._sink = sink
        self.dispatch_table = dispatch
        super().__init__(file, protocol=5, buffer_callback=buffers)

    @property  # type: ignore[override]  # read when the pickler is made; per instance
    def persistent_id(self) -> Callable[[Any], None]:
        return self._sink


def _without_bookkeeping(obj: Any) -> tuple[Any, ...]:
    """The reduction of a `CallbackRegistry` or a `TransformNode` less what is not its value,
    as the walk leaves it out (`without_matplotlib_bookkeeping`): the registry pickles `next()`
    of an id counter, so every look at a figure would change it; a transform's `_invalid` flag
    is cleared by a mere read of its points (`fig.bbox_inches.width`), and its parents are keyed
    by their addresses (`set_title` with the same title makes new ones)."""
    reduced = obj.__reduce_ex__(5)
    return (reduced[0], reduced[1], without_matplotlib_bookkeeping(reduced[2]), *reduced[3:])


def _partial(obj: functools.partial) -> tuple[Any, ...]:
    """`functools.partial`'s reduction, an empty `__dict__` as none: a partial makes its
    `__dict__` when first asked for it (the walk asks), which changes what it pickles."""
    reduced = obj.__reduce__()
    state = reduced[2]
    if type(state) is tuple and len(state) == 4 and state[3] == {}:
        state = (*state[:3], None)
    return (reduced[0], reduced[1], state, *reduced[3:])


def _dispatch() -> dict[type, Callable[[Any], tuple[Any, ...]]]:
    """copyreg's reductions, `_partial`, and `_without_bookkeeping` for matplotlib's classes that
    keep some (the pickler looks a reduction up by exact type: every subclass loaded is listed)."""
    table: dict[type, Callable[[Any], tuple[Any, ...]]] = dict(copyreg.dispatch_table)
    table[functools.partial] = _partial
    bases = [getattr(sys.modules.get(module), name, None)
             for module, name in (("matplotlib.cbook", "CallbackRegistry"), ("matplotlib.transforms", "TransformNode"))]
    pending = [base for base in bases if isinstance(base, type)]
    while pending:
        cls = pending.pop()
        if cls not in table:
            table[cls] = _without_bookkeeping
            pending.extend(cls.__subclasses__())
    return table


def pickled(value: Any, is_notebook_defined: Callable[[Any], bool]) -> Pickled | None:
    """Fingerprint a drawing (`is_drawing`) through the C pickler; None: walk it instead."""
    stream, buffers = xxhash.xxh3_128(), xxhash.xxh3_128()
    size = [0]

    def take_buffer(buffer: pickle.PickleBuffer) -> None:
        raw = buffer.raw()
        buffers.update(raw.nbytes.to_bytes(8, "little"))
        buffers.update(raw)
        size[0] += raw.nbytes

    met: list[Any] = []
    sink = _Sink(stream)
    try:
        pickler = _Pickler(sink, met.append, _dispatch(), take_buffer)
        pickler.dump(value)
        pickler.clear_memo()
        del pickler
        objects = _shared_objects(met, is_notebook_defined)
    except Exception as exc:  # noqa: BLE001 - whatever stops the pickler, the walk sees and says
        log.debug("walking %s instead: %s", type(value).__name__, describe(exc))
        return None
    finally:
        met.clear()
    return Pickled(stream.hexdigest() + buffers.hexdigest(), objects, sink.written + size[0])


class _Sink:
    """A file for the pickler: what it writes is hashed, and counted, never kept."""

    def __init__(self, hasher: Any) -> None:
        self._update = hasher.update
        self.written = 0

    def write(self, data: Any) -> None:
        self._update(data)
        self.written += len(data)


def _leaf_types() -> tuple[type, ...]:
    """Types whose instances are values, not places: holding the same one aliases nothing
    (the walk's leaves, atoms and immutable containers); bound methods, made on access, and the
    buffers an array hands the pickler, views made for the occasion."""
    leaves: tuple[type, ...] = (*ATOMIC, *IMMUTABLE_CONTAINERS, *REPR_HASHED, type, types.ModuleType,
                                *LEAF_CALLABLES, enum.Enum, types.MethodType, pickle.PickleBuffer)
    np = sys.modules.get("numpy")
    if np is not None:
        leaves += (np.dtype, np.generic)
    pd = sys.modules.get("pandas")
    if pd is not None and hasattr(pd, "api"):
        leaves += (pd.api.extensions.ExtensionDtype,)
    return leaves


def _shared_objects(met: list[Any], is_notebook_defined: Callable[[Any], bool]) -> frozenset[int]:
    """The ids of the mutable objects among `met` that outlive the pickling, and of the arrays
    owning their arrays' memory. Empties `met`. Raises `_Refused` for what the walk must see."""
    leaves = _leaf_types()
    np = sys.modules.get("numpy")
    kinds = list(map(type, met))  # (C loops from here on: a figure hands over ~60,000 objects)
    wanted, arrays = set(), set()
    for t in set(kinds):
        if issubclass(t, logging.Logger):
            raise _Refused("a logger pickles by its name only")
        if t is types.FunctionType or not issubclass(t, leaves):
            wanted.add(t)
            if np is not None and issubclass(t, np.ndarray):
                arrays.add(t)
    kept = list(itertools.compress(met, map(wanted.__contains__, kinds)))
    met.clear()
    del kinds
    # One entry per object (the pickler hands an object over at every reference to it).
    alive = dict(zip(map(id, kept), kept))
    del kept
    functions = [key for key, obj in alive.items() if type(obj) is types.FunctionType]
    if any(is_notebook_defined(alive[key]) for key in functions):
        raise _Refused("a function defined in the notebook")
    for key in functions:  # a library's function is named, not shared
        del alive[key]
    roots = _roots(itertools.compress(alive.values(), map(arrays.__contains__, map(type, alive.values()))))
    # What a `__reduce__` built for the occasion (a state dict, a list of items, a fresh array) is
    # held by nothing but `alive` now; dropping it frees what only it held, which the next round
    # looks at (only that: its referents). Instances of other classes are the value's own.
    made_kinds = arrays | {dict, list, set, bytearray}
    probe = {0: object()}
    floor = _refcounts(probe, probe)[0][1]
    suspects = list(itertools.compress(alive, map(made_kinds.__contains__, map(type, alive.values()))))
    while suspects:
        made = [key for key, count in _refcounts(alive, suspects) if count <= floor]
        if not made:
            break
        held = gc.get_referents(*map(alive.__getitem__, made))
        held_ids = set(map(id, itertools.compress(held, map(made_kinds.__contains__, map(type, held)))))
        del held
        for key in made:
            del alive[key]
        suspects = [key for key in held_ids if key in alive]
    return frozenset(alive) | frozenset(roots)


def _roots(arrays: Any) -> dict[int, Any]:
    """The arrays owning the memory of these views, by id, and where torch is loaded the keys of
    that memory (as the walk's `share_root`). A function of its own: no loop variable of the
    caller's keeps the last array alive."""
    roots: dict[int, Any] = {}
    np, with_torch = sys.modules.get("numpy"), bool(torch_storage.types()[0])
    for array in arrays:
        root = array
        while getattr(root, "base", None) is not None:
            root = root.base
        if root is not array:
            roots[id(root)] = root
        if with_torch and isinstance(root, np.ndarray) and root.nbytes:
            roots[torch_storage.memory_key(shared_arrays.address(root))] = None
    return roots


def _refcounts(table: dict[int, Any], keys: Any) -> list[tuple[int, int]]:
    """`sys.getrefcount` of the values of `table` at `keys`, read the same way every time (the
    floor, of an object nothing else holds, is read through this very code)."""
    return [(key, sys.getrefcount(table[key])) for key in keys]
