"""What kind of object the walk meets, decided once per type, and the hasher it feeds.

A figure or a fitted model is tens of thousands of small objects of a few dozen types; asking
a dozen `isinstance` questions of each one cost more than hashing them. Here a type is asked
once per walk (`_Walk.kind_of`), with `issubclass`, which answers as `isinstance` does for every
instance whose `__class__` is its type. Types that can say otherwise (a `__class__` of their
own, or a `__getattribute__` that may forward it, as a weak proxy or a mock does) are left to
the full questions, so every route gives exactly what the full questions give.

Pure: imports neither IPython nor fsspec.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import io
import pickle
import socket
import threading
import types
import weakref
from typing import Any

import xxhash

from .fingerprint_state import has_custom_reduce

ATOMIC = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis), type(NotImplemented))
REPR_HASHED = (datetime.date, datetime.time, datetime.timedelta, datetime.timezone, decimal.Decimal, range)
# Containers that are values, not places: sharing one is not aliasing anything mutable
# (pandas hands the same `slice` objects to the blocks of different frames).
IMMUTABLE_CONTAINERS = (tuple, frozenset, slice)
BUILTIN_CONTAINERS = (dict, list, tuple, set, frozenset)
LEAF_CALLABLES = (
    weakref.ref,  # a weak reference does not own its target
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.CodeType,
)
_THREAD_LOCK_TYPES = tuple({type(threading.Lock()), type(threading.RLock())})
# Known not to pickle, whatever the pickler: recompute them instead.
UNPICKLABLE = (
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    types.FrameType,
    types.TracebackType,
    socket.socket,
    *_THREAD_LOCK_TYPES,
)
# Iterators over a live dict or set: pickle stores the items left as a plain list iterator,
# detached from its container (a later `d[k] = v` no longer makes `next()` raise). Recompute.
LIVE_ITERATORS = tuple({
    type(make(container)) for make in (iter, reversed)
    for container in ({}, {}.keys(), {}.values(), {}.items(), collections.OrderedDict(),
                      collections.OrderedDict().values(), collections.OrderedDict().items())
} | {type(iter(set()))})


def unpicklable_reason(obj: Any) -> str | None:
    """A short reason when `obj` itself is of a kind that never pickles."""
    if isinstance(obj, UNPICKLABLE):
        return f"a {type(obj).__name__} cannot be serialized"
    if isinstance(obj, LIVE_ITERATORS):
        return f"a {type(obj).__name__} cannot be serialized (it would come back detached from its container)"
    if isinstance(obj, io.IOBase) and not isinstance(obj, (io.StringIO, io.BytesIO)):
        return f"an open file ({type(obj).__name__}) cannot be serialized"
    return None


# Routes: how the walk treats an object of a type (see `route`).
LEAF = "leaf"  # `value_leaf` hashes it
CONTAINER = "container"  # exactly a dict, list or tuple
REDUCED = "reduced"  # what its `__reduce_ex__` says
OBJECT = "object"  # its `__dict__`, slots or referents
FULL = "full"  # anything else: every question, in order


def route(t: type, walk: Any) -> str:
    """How the walk treats every instance of `t` (`walk` holds the session's library types)."""
    try:
        return _route(t, walk)
    except Exception:  # noqa: BLE001 - a class whose lookups raise: each object gets every question
        return FULL


def _route(t: type, walk: Any) -> str:
    if not _class_is_type(t):
        return FULL
    leaves = (*REPR_HASHED, type, types.ModuleType, *LEAF_CALLABLES, enum.Enum)
    if walk.np_dtype is not None:
        leaves += (walk.np_dtype,)
    if issubclass(t, leaves) or (walk.np_generic is not None and issubclass(t, walk.np_generic)
                                 and not issubclass(t, walk.np_void_object)):
        return LEAF
    if t in (dict, list, tuple):
        return CONTAINER
    special = (UNPICKLABLE, LIVE_ITERATORS, io.IOBase, types.FunctionType, types.MethodType, set, frozenset,
               bytearray, memoryview, walk.pandas_types, walk.storages)
    if ((walk.ndarray is not None and issubclass(t, walk.ndarray))
            or (walk.logger is not None and issubclass(t, walk.logger))
            or t is pickle.PickleBuffer or any(issubclass(t, kinds) for kinds in special)):
        return FULL
    return REDUCED if has_custom_reduce(t) else OBJECT


def _class_is_type(t: type) -> bool:
    """Is `obj.__class__` certainly `type(obj)` for every instance (so `isinstance` is `issubclass`)?
    Yes when no class of `t` defines `__class__` and its attribute lookup is one of the interpreter's
    own (which find `object`'s `__class__` first), not a proxy's, which forwards it."""
    lookup = next(klass for klass in t.__mro__ if "__getattribute__" in vars(klass))
    if lookup.__module__ != "builtins" or lookup.__flags__ & _HEAPTYPE:
        return False
    return not any("__class__" in vars(klass) for klass in t.__mro__ if klass is not object)


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement


class TextHasher:
    """xxh3-128 over one stream, where the walk's many short texts (type tags, atoms) are
    gathered and hashed a batch at a time: one append each instead of an encode and a call.
    The stream, hence the digest, is exactly the concatenation of what was given, in order."""

    __slots__ = ("_hasher", "texts")
    BATCH = 2048

    def __init__(self) -> None:
        self._hasher = xxhash.xxh3_128()
        # Texts given and not yet hashed. A hot loop may append here itself, and must then
        # `flush` once `BATCH` are waiting, as `text` does.
        self.texts: list[str] = []

    def text(self, text: str) -> None:
        self.texts.append(text)
        if len(self.texts) >= self.BATCH:
            self.flush()

    def update(self, data: Any) -> None:
        """Bytes (or any buffer), after the texts given before them."""
        if self.texts:
            self.flush()
        self._hasher.update(data)

    def hexdigest(self) -> str:
        if self.texts:
            self.flush()
        return self._hasher.hexdigest()

    def flush(self) -> None:
        self._hasher.update("".join(self.texts).encode("utf-8", "surrogatepass"))
        self.texts.clear()
