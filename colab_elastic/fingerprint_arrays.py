"""Hashing numpy arrays (plain, masked, record, views) and pandas text columns in place.

Part of the fingerprint walk (see `fingerprint`), kept apart because it is the one part that
knows numpy and pandas. Pure: neither is imported here; both are looked up in `sys.modules`,
so a session that never imported them never pays for them.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

import xxhash


class ArrayHashing:
    """What the walk does with numpy arrays and pandas string columns (a mixin of `_Walk`)."""

    hasher: xxhash.xxh3_128
    size: int
    objects: set[int]
    keepalive: list[Any]
    strings: "StringMemo | None" = None

    def tag(self, text: str) -> None:
        raise NotImplementedError

    def init_arrays(self) -> None:
        """Look up the array types of the libraries the session has loaded (None if not)."""
        np = sys.modules.get("numpy")
        self.np = np
        self.ndarray = np.ndarray if np is not None else None
        # numpy loads numpy.ma lazily: no masked array can exist before it is loaded.
        ma = sys.modules.get("numpy.ma")
        self.masked_array = ma.MaskedArray if ma is not None else None
        self.ma_masked = ma.masked if ma is not None else None
        self.np_generic = np.generic if np is not None else None
        self.np_dtype = np.dtype if np is not None else None
        self.np_void_object = (np.object_,) if np is not None else ()
        pd = sys.modules.get("pandas")
        self.pandas_types: tuple[type, ...] = ()
        if pd is not None:
            self.pandas_types = (pd.DataFrame, pd.Series, pd.Index)

    def visit_ndarray(self, arr: Any) -> list[tuple[Any, bool]]:
        self.tag(f"{dtype_text(arr.dtype)}{arr.shape}")
        self.size += arr.nbytes
        # Views share memory with their base: the root owner makes them co-variables.
        self.share_root(arr)
        # A subclass (masked, record, matrix) is hashed as the plain array over the same buffer,
        # plus its own state: its methods (reshape, tolist) may mean something else.
        data = arr if type(arr) is self.ndarray else arr.view(self.ndarray)
        children: list[tuple[Any, bool]] = []
        if self.masked_array is not None and isinstance(arr, self.masked_array):
            children += self.visit_mask(arr)
        elif data is not arr:
            attrs = getattr(arr, "__dict__", None)
            if attrs:  # what a subclass keeps beside the buffer (a matrix's flags, units)
                children.append((attrs, True))
        if data.dtype.hasobject:
            if not self.hash_strings(data):
                children = [(item, True) for item in data.ravel(order="K").tolist()] + children
        else:
            self.hash_buffer(data)
        return children

    def share_root(self, arr: Any) -> None:
        """Count the array owning `arr`'s memory as reachable: views of one base are aliases."""
        base = arr
        while getattr(base, "base", None) is not None:
            base = base.base
        if base is not arr:
            self.objects.add(id(base))
            self.keepalive.append(base)

    def hash_buffer(self, data: Any) -> None:
        """Hash a plain ndarray's bytes in C order, without a copy when it is contiguous."""
        if data.flags.c_contiguous:
            self.hasher.update(data.reshape(-1).view("u1") if data.size else b"")
            return
        # Hash row blocks: bounded extra memory for a strided view.
        flat = data.reshape(data.shape[0], -1) if data.ndim > 1 else data.reshape(-1, 1)
        step = max(1, (64 << 20) // max(1, flat[0:1].nbytes))
        for start in range(0, flat.shape[0], step):
            chunk = flat[start : start + step].copy(order="C")
            self.hasher.update(chunk.view("u1").reshape(-1))

    def visit_mask(self, arr: Any) -> list[tuple[Any, bool]]:
        """The state of a masked array beside its data: what pickle keeps, the mask and the fill
        value, in the form pickle gives them back (no mask and an all-False one are the same;
        an unset fill value is its default, which merely reading `fill_value` sets)."""
        np, ma = self.np, sys.modules["numpy.ma"]
        mask = arr._mask
        if mask is ma.nomask or not _any(np, mask):
            self.tag("mask: none")
        else:
            self.tag("mask")
            self.share_root(mask)
            self.hash_buffer(mask.view(np.ndarray))
        fill = arr._fill_value
        if fill is None:
            fill = ma.default_fill_value(arr)
        try:
            fill = np.asarray(fill, dtype=arr.dtype)
        except (TypeError, ValueError):  # a fill value numpy itself could not convert
            fill = np.asarray(fill)
        self.tag(f"fill {dtype_text(fill.dtype)}")
        if fill.dtype.hasobject:
            return [(fill.tolist(), False)]
        self.hasher.update(fill.tobytes())
        return []

    def hash_strings(self, arr: Any) -> bool:
        """Hash an object array of strings (a pandas text column) in one vectorized pass.

        Walking millions of str objects one by one costs seconds per cell; pandas' own
        hasher does it in C. Only when pandas is already loaded, and only when every element
        is a str (or missing): anything else is walked, since it may be shared or mutable.
        A large array whose element pointers are those `strings` vouched for reuses its digest.
        """
        pd = sys.modules.get("pandas")
        if pd is None or arr.size == 0:
            return False
        memo = self.strings
        digest = memo.lookup(arr) if memo is not None else None
        if digest is None:
            digest = _digest_strings(pd, arr.ravel(order="K"))
            if digest is None:
                return False
            if memo is not None:
                memo.remember(arr, digest)
        self.tag("str-array")
        self.hasher.update(digest)
        self.size += int(sum(len(x) for x in arr.flat if isinstance(x, str))) if arr.size < 10_000 else 32 * arr.size
        return True


_SEPARATOR = "\x00"


def _digest_strings(pd: Any, flat: Any) -> bytes | None:
    """A digest of a 1-d object array whose elements are all str or missing (None otherwise).

    All str and none holding the separator: the joined text, hashed at memory speed (2.5x faster
    than pandas' per-element hasher on 3M short strings). Missing values or a separator inside a
    string: pandas' hasher. Which way is taken depends only on the contents, so a value hashes
    alike in every process.
    """
    try:
        kind = pd.api.types.infer_dtype(flat, skipna=False)
        if kind == "string":
            joined = _SEPARATOR.join(flat)
            if joined.count(_SEPARATOR) == len(flat) - 1:
                return b"joined" + xxhash.xxh3_128_digest(joined.encode("utf-8", "surrogatepass"))
        elif pd.api.types.infer_dtype(flat, skipna=True) not in ("string", "empty"):
            return None
        return b"hashed" + xxhash.xxh3_128_digest(pd.util.hash_array(flat, categorize=False))
    except (TypeError, ValueError):
        return None


class StringMemo:
    """Digests of large object arrays of strings, trusted while their element pointers are unchanged.

    Hashing 3M strings costs ~75 ms; comparing 3M pointers ~3 ms. A pointer says which object,
    not what it holds, and an address is reused once its object is freed: so for every array it
    vouches for, the memo keeps a shallow copy, whose references keep those very string objects
    alive. While they live no other object can take their addresses, and str is immutable: equal
    pointers then mean equal contents. Only arrays of `MIN_ELEMENTS` or more are kept (below that
    hashing is cheap), up to `limit` pointers in all (8 bytes each), least recently used first out.
    Thread-safe: the recorder and the background checkpoint both fingerprint.
    """

    MIN_ELEMENTS = 100_000

    def __init__(self, limit: int | None = None) -> None:
        mb = float(os.environ.get("COLAB_ELASTIC_STRING_MEMO_MB", "512"))
        self.limit = limit if limit is not None else int(mb * 1e6) // 8
        # id(array) -> (weak reference to it, shallow copy holding its elements, digest)
        self._entries: dict[int, tuple[weakref.ref, Any, bytes]] = {}
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, arr: Any) -> bytes | None:
        """The digest remembered for `arr`, if its elements are still the objects it had then."""
        if arr.size < self.MIN_ELEMENTS:
            return None
        with self._lock:
            entry = self._entries.get(id(arr))
        if entry is None or entry[0]() is not arr or entry[1].shape != arr.shape:
            return None
        np = sys.modules["numpy"]
        if not np.array_equal(_pointers(np, arr), _pointers(np, entry[1])):
            return None
        with self._lock:  # most recently used last
            if self._entries.pop(id(arr), None) is not None:
                self._entries[id(arr)] = entry
        return entry[2]

    def remember(self, arr: Any, digest: bytes) -> None:
        if arr.size < self.MIN_ELEMENTS or arr.size > self.limit:
            return
        key = id(arr)
        try:
            ref = weakref.ref(arr, lambda _, key=key: self._forget(key))
        except TypeError:  # not weak-referenceable: never vouched for
            return
        pinned = arr.copy(order="K")  # references, not strings: 8 bytes an element
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= old[1].size
            self._entries[key] = (ref, pinned, digest)
            self._held += pinned.size
            while self._held > self.limit and self._entries:
                oldest = next(iter(self._entries))
                self._held -= self._entries.pop(oldest)[1].size

    def _forget(self, key: int) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._held -= entry[1].size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held = 0


def _pointers(np: Any, arr: Any) -> Any:
    """The element pointers of an object array, as unsigned integers over the same memory
    (numpy refuses `view` on arrays of references; its array interface does not)."""
    interface = dict(arr.__array_interface__)
    interface["typestr"] = np.dtype(np.uintp).str
    interface.pop("descr", None)
    return np.asarray(_Interface(interface, arr))


class _Interface:
    """An array interface that keeps its owner alive as long as the array built on it."""

    def __init__(self, interface: dict[str, Any], owner: Any) -> None:
        self.__array_interface__ = interface
        self.owner = owner


def dtype_text(dtype: Any) -> str:
    # `str` alone says only "|V8" for a record: its fields' names and types must count too.
    return dtype.str if not dtype.fields else repr(dtype.descr)


def _any(np: Any, mask: Any) -> bool:
    """Is anything masked? (A structured array's mask has one bool field per field.)"""
    if mask.dtype.names:
        mask = np.ascontiguousarray(mask).view(np.bool_)
    return bool(mask.any())
