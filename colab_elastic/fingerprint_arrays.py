"""Hashing numpy arrays (plain, masked, record, views), pandas text columns and torch storages
in place.

Part of the fingerprint walk (see `fingerprint`), kept apart because it is the one part that
knows numpy, pandas and torch. Pure: none is imported here; each is looked up in `sys.modules`,
so a session that never imported them never pays for them.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xxhash

from . import shared_arrays, torch_storage
from .fingerprint_kinds import IMMUTABLE_CONTAINERS

if TYPE_CHECKING:
    from .fingerprint_kinds import TextHasher


class ArrayHashing:
    """What the walk does with numpy arrays and pandas string columns (a mixin of `_Walk`)."""

    hasher: TextHasher  # update(bytes) after the texts before them
    size: int
    objects: set[int]
    keepalive: list[Any]
    strings: "StringMemo | None" = None
    portable: bool = True  # see `hash_strings`
    portable_content: bool = True  # False once a digest of pointers went into the hash
    # False once a portable walk hashed text that a walk of the recorder's may hash by its
    # pointers: this walk's result cannot then stand in for the recorder's (see `Fingerprint`).
    as_in_process: bool = True
    pins: list[Any]

    def tag(self, text: str) -> None:
        raise NotImplementedError

    def content_of(self, value: Any) -> str:
        """The content digest of a value of its own (a walk of its own)."""
        raise NotImplementedError

    def init_arrays(self) -> None:
        """Look up the array types of the libraries the session has loaded (None if not)."""
        self.typed_storages, self.untyped_storages = torch_storage.types()
        self.storages = self.typed_storages + self.untyped_storages
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
        # Values, not places: holding the same one is not aliasing. Dtypes are descriptions,
        # shared by every array of that type and never changed in place.
        self.unshared: tuple[type, ...] = (*IMMUTABLE_CONTAINERS, *((np.dtype,) if np is not None else ()))
        if pd is not None:
            self.pandas_types = (pd.DataFrame, pd.Series, pd.Index)
            self.unshared += (pd.api.extensions.ExtensionDtype,) if hasattr(pd, "api") else ()

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

    def visit_storage(self, obj: Any) -> list[tuple[Any, bool]]:
        """A torch storage (see `torch_storage`). A typed one is its untyped one, which is the
        memory: met for real, so every tensor looking into it shares it; hashed by its bytes."""
        if isinstance(obj, self.typed_storages):
            self.tag(f"typed {obj.dtype}")
            return [(obj._untyped_storage, True)]
        self.tag(torch_storage.label(obj))
        self.size += obj.nbytes()
        if not torch_storage.has_bytes(obj):
            return []
        if not torch_storage.handled(obj):
            self.complete = False  # memory we cannot read: assume any reader changes it
            return []
        data = torch_storage.host_bytes(obj)
        self.hasher.update(data if data.size else b"")
        if data.size and obj.device.type == "cpu":
            self.objects.add(torch_storage.memory_key(obj.data_ptr()))  # a numpy array's, maybe
        return []

    def share_root(self, arr: Any) -> None:
        """Count the array owning `arr`'s memory as reachable: views of one base are aliases."""
        base = arr
        while getattr(base, "base", None) is not None:
            base = base.base
        if base is not arr:
            self.objects.add(id(base))
            self.keepalive.append(base)
        if self.storages and isinstance(base, self.ndarray) and base.nbytes:
            # A tensor made by `torch.from_numpy` uses this memory: see `visit_storage`.
            self.objects.add(torch_storage.memory_key(shared_arrays.address(base)))

    def hash_buffer(self, data: Any) -> None:
        """Hash a plain ndarray's bytes in C order, without a copy when it is contiguous."""
        if data.flags.c_contiguous:
            self.hasher.update(data.reshape(-1).view("u1") if data.size else b"")
            return
        if data.flags.f_contiguous:
            # Column-major (a DataFrame's `to_numpy()`, and what ufuncs make of it): hashed in
            # memory order, without a copy. Pickle keeps the order, and so does a rerun.
            self.tag("F-order")
            self.hasher.update(data.T.reshape(-1).view("u1"))
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

    def visit_arrow_backed(self, own: dict[str, Any]) -> list[tuple[Any, bool]]:
        """A pandas Arrow-backed array: its Arrow data by a digest of the data in one chunk (what
        pandas pickles, whatever the chunks), the rest of its `__dict__` walked. Arrow arrays are
        immutable, so the digest of the very same one (`strings` remembers it) is reused: pandas'
        own `__getstate__` copies every chunk into one, each time a cell reads the column."""
        data = own["_pa_array"]
        digest = self.strings.arrow(data) if self.strings is not None else None
        if digest is None:
            whole = self.strings.arrow_whole(data) if self.strings is not None else None
            if whole is None:
                whole = data.combine_chunks() if hasattr(data, "combine_chunks") else data
            digest = self.content_of(whole)
            if self.strings is not None:
                self.strings.remember_arrow(data, digest)
        self.size += getattr(data, "nbytes", 0)
        self.tag(f"arrow {digest}")
        rest = sorted((k, v) for k, v in own.items() if k not in ("_pa_array", "_cache") and type(k) is str)
        self.tag(f"state {len(rest)}")
        return [(x, True) for pair in rest for x in pair]

    def hash_strings(self, arr: Any) -> bool:
        """Hash an object array of strings (a pandas text column) in one vectorized pass.

        Walking millions of str objects one by one costs seconds per cell; pandas' own
        hasher does it in C. Only when pandas is already loaded, and only when every element
        is a str (or missing): anything else is walked, since it may be shared or mutable.

        With a memo, a large array whose element pointers are those the memo pinned reuses
        its digest. A walk that is not `portable` (the recorder's, compared only within this
        process) hashes a new large array by its pointers instead of its text: the pinned
        copy the fingerprint keeps (`pins`) makes equal pointers mean the same strings, and
        the text is hashed once, when a checkpoint needs a portable fingerprint.
        """
        pd = sys.modules.get("pandas")
        if pd is None or arr.size == 0:
            return False
        memo = self.strings
        entry = (memo.find(arr) or memo.rows_of(arr)) if memo is not None else None
        kind = entry.kind if entry is not None else _string_kind(pd, arr.ravel(order="K"))
        if kind is None:
            return False
        if self.portable and arr.size >= StringMemo.MIN_ELEMENTS:
            self.as_in_process = False
        if not self.portable and memo is not None and arr.size >= memo.MIN_ELEMENTS:
            entry = entry or memo.remember(arr, kind)
            if entry is not None:
                self.tag("str-pointers")
                self.hasher.update(entry.pointers)
                self.pins.append(entry.pinned)
                self.portable_content = False
                self.size += 32 * arr.size
                return True
        digest = entry.content if entry is not None else None
        if digest is None:
            digest = _digest_strings(pd, arr.ravel(order="K"), kind)
            if digest is None:
                return False
            if memo is not None:
                memo.set_content(entry or memo.remember(arr, kind), digest)
        self.tag("str-array")
        self.hasher.update(digest)
        self.size += int(sum(len(x) for x in arr.flat if isinstance(x, str))) if arr.size < 10_000 else 32 * arr.size
        return True


def _string_kind(pd: Any, flat: Any) -> str | None:
    """"string" when every element of a 1-d object array is a str, "missing" when every one is a
    str or missing (None, NaN), None otherwise."""
    try:
        if pd.api.types.infer_dtype(flat, skipna=False) == "string":
            return "string"
        return "missing" if pd.api.types.infer_dtype(flat, skipna=True) in ("string", "empty") else None
    except (TypeError, ValueError):
        return None


_SEPARATOR = "\x00"


def _digest_strings(pd: Any, flat: Any, kind: str) -> bytes | None:
    """A digest of a 1-d object array of `kind` (see `_string_kind`); None if it cannot be had.

    All str and none holding the separator: the joined text, hashed at memory speed (2.5x faster
    than pandas' per-element hasher on 3M short strings). Missing values or a separator inside a
    string: pandas' hasher. Which way is taken depends only on the contents, so a value hashes
    alike in every process.
    """
    try:
        if kind == "string":
            joined = _SEPARATOR.join(flat)
            if joined.count(_SEPARATOR) == len(flat) - 1:
                return b"joined" + xxhash.xxh3_128_digest(joined.encode("utf-8", "surrogatepass"))
        return b"hashed" + xxhash.xxh3_128_digest(pd.util.hash_array(flat, categorize=False))
    except (TypeError, ValueError):
        return None


@dataclass
class MemoEntry:
    """What the memo knows of one array of strings: a shallow copy holding its very elements
    (`pinned`), the digest of their pointers, their kind, and their text's digest once hashed."""

    pinned: Any
    pointers: bytes
    kind: str
    content: bytes | None = None


class StringMemo:
    """Digests of large object arrays of strings, trusted while their element pointers are unchanged.

    Hashing 3M strings costs ~100 ms; comparing or hashing 3M pointers 1-3 ms. A pointer says
    which object, not what it holds, and an address is reused once its object is freed: so for
    every array it vouches for, the memo keeps a shallow copy, whose references keep those very
    string objects alive. While they live no other object can take their addresses, and str is
    immutable: equal pointers then mean equal contents. An array is found by its identity, or by
    its pointers (a merge or a copy that kept the rows in order holds the same strings).

    Only arrays of `MIN_ELEMENTS` or more are kept (below that hashing is cheap), up to `limit`
    pointers in all (8 bytes each), least recently used first out. Thread-safe: the recorder and
    the background checkpoint both fingerprint.
    """

    MIN_ELEMENTS = 100_000

    def __init__(self, limit: int | None = None) -> None:
        mb = float(os.environ.get("COLAB_ELASTIC_STRING_MEMO_MB", "512"))
        self.limit = limit if limit is not None else int(mb * 1e6) // 8
        # id(array) -> (weak reference to it, what is known of its elements)
        self._entries: dict[int, tuple[weakref.ref, MemoEntry]] = {}
        self._by_pointers: dict[bytes, int] = {}  # pointer digest -> id of the newest array with them
        self._arrow: dict[int, tuple[weakref.ref, str]] = {}  # id of an Arrow array -> its digest
        self._arrow_whole: dict[int, tuple[weakref.ref, Any]] = {}  # id -> the one-chunk array it wraps
        self._held = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, arr: Any) -> MemoEntry | None:
        """What is known of `arr`, if its elements are objects the memo holds, in that order."""
        if arr.size < self.MIN_ELEMENTS:
            return None
        np = sys.modules["numpy"]
        pointers = element_pointers(np, arr)
        with self._lock:
            found = self._entries.get(id(arr))
        if found is not None and found[0]() is arr and _same(np, pointers, found[1].pinned):
            self._touch(id(arr))
            return found[1]
        with self._lock:
            owner = self._by_pointers.get(_pointer_digest(pointers))
            found = self._entries.get(owner) if owner is not None else None
        if found is None or not _same(np, pointers, found[1].pinned):
            return None
        entry = found[1]
        self._add(arr, entry)  # the same strings, found again under this array's identity
        return entry

    def rows_of(self, arr: Any) -> MemoEntry | None:
        """What is known of `arr` as rows of a 2-d array of strings the memo vouches for: the
        block pandas (2 and 3) splits when a cell sets one of its columns (`df['date'] = ...` leaves
        the other text columns as a view of the old block). Their strings are the objects the
        old block's entry pinned, at the same places: their kind is not checked again. They
        are pinned by a copy of their own, not by a view of the old copy, which would keep
        the strings of the column the cell replaced alive as long as the new block lives."""
        np = sys.modules["numpy"]
        base = arr.base
        if (type(base) is not np.ndarray or base.ndim != 2 or arr.ndim != 2 or base.dtype != object
                or not (arr.flags.c_contiguous and base.flags.c_contiguous) or arr.shape[1] != base.shape[1]):
            return None
        with self._lock:
            found = self._entries.get(id(base))
        # Only "string" carries over to a part: a part of a column with missing values may
        # have none, and its kind decides how its text is hashed (`_digest_strings`).
        if found is None or found[0]() is not base or found[1].kind != "string":
            return None
        offset = shared_arrays.address(arr) - shared_arrays.address(base)
        start, partial = divmod(offset, base.strides[0])
        if partial or not 0 <= start <= base.shape[0] - arr.shape[0]:
            return None
        # Changed since (its pointers differ from the old copy's at those places): not vouched for.
        return self.remember(arr, "string", unless_unlike=found[1].pinned[start:start + arr.shape[0]])

    def remember(self, arr: Any, kind: str, *, unless_unlike: Any = None) -> MemoEntry | None:
        """Pin `arr`'s elements; None when it is too small or too large to keep, or when its
        pointers differ from those of `unless_unlike` (compared on the copy: what is checked is
        what is pinned)."""
        if arr.size < self.MIN_ELEMENTS or arr.size > self.limit:
            return None
        np = sys.modules["numpy"]
        pinned = arr.copy(order="K")  # references, not strings: 8 bytes an element
        pointers = element_pointers(np, pinned)
        if unless_unlike is not None and not _same(np, pointers, unless_unlike):
            return None
        entry = MemoEntry(pinned, _pointer_digest(pointers), kind)
        return entry if self._add(arr, entry) else None

    def adopt(self, arr: Any, kind: str, content: bytes) -> None:
        """Vouch for an array a restore just unpickled, with the digest of its text that its
        blob carried (the blob's own digest was checked, and pickle gives str back exactly):
        verifying it then costs a pointer hash, not a text hash. Only after checking that its
        elements are still of `kind`."""
        pd = sys.modules.get("pandas")
        if pd is None or getattr(arr, "dtype", None) != object or arr.size < self.MIN_ELEMENTS:
            return
        if _string_kind(pd, arr.ravel(order="K")) == kind:
            self.set_content(self.remember(arr, kind), content)

    def arrow(self, data: Any) -> str | None:
        """The digest remembered for this very Arrow array (immutable: same object, same data)."""
        return self._arrow_known(self._arrow, data)

    def remember_arrow(self, data: Any, digest: str) -> None:
        self._arrow_note(self._arrow, data, digest)

    def adopt_arrow(self, data: Any, whole: Any) -> None:
        """Vouch that `data` (an Arrow chunked array a restore just unpickled) holds exactly
        `whole`, the array pandas pickled (its chunks combined when stored): its digest is
        `whole`'s, without combining its chunks again (a copy of every text column)."""
        self._arrow_note(self._arrow_whole, data, whole)

    def arrow_whole(self, data: Any) -> Any:
        """What `adopt_arrow` vouched `data` holds, or None."""
        return self._arrow_known(self._arrow_whole, data)

    def _arrow_known(self, table: dict[int, tuple[weakref.ref, Any]], data: Any) -> Any:
        with self._lock:
            found = table.get(id(data))
        return found[1] if found is not None and found[0]() is data else None

    def _arrow_note(self, table: dict[int, tuple[weakref.ref, Any]], data: Any, value: Any) -> None:
        key = id(data)
        try:
            ref = weakref.ref(data, lambda _, key=key: self._forget_arrow(key))
        except TypeError:
            return
        with self._lock:
            table[key] = (ref, value)

    def _forget_arrow(self, key: int) -> None:
        with self._lock:
            self._arrow.pop(key, None)
            self._arrow_whole.pop(key, None)

    def set_content(self, entry: MemoEntry | None, digest: bytes) -> None:
        if entry is not None:
            entry.content = digest  # one assignment: atomic for another thread reading it

    def _add(self, arr: Any, entry: MemoEntry) -> bool:
        key = id(arr)
        try:
            ref = weakref.ref(arr, lambda _, key=key: self._forget(key))
        except TypeError:  # not weak-referenceable: never vouched for
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._held -= old[1].pinned.size
            self._entries[key] = (ref, entry)
            self._held += entry.pinned.size
            self._by_pointers[entry.pointers] = key
            while self._held > self.limit and self._entries:
                self._drop(next(iter(self._entries)))
        return True

    def _touch(self, key: int) -> None:
        with self._lock:  # most recently used last
            found = self._entries.pop(key, None)
            if found is not None:
                self._entries[key] = found

    def _forget(self, key: int) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: int) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._held -= found[1].pinned.size
            if self._by_pointers.get(found[1].pointers) == key:
                del self._by_pointers[found[1].pointers]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_pointers.clear()
            self._arrow.clear()
            self._arrow_whole.clear()
            self._held = 0


def _pointer_digest(pointers: Any) -> bytes:
    """A digest of an array of element pointers, in C order whatever its layout."""
    return xxhash.xxh3_128_digest(pointers if pointers.flags.c_contiguous else pointers.copy())


def _same(np: Any, pointers: Any, pinned: Any) -> bool:
    return pinned.shape == pointers.shape and bool(np.array_equal(pointers, element_pointers(np, pinned)))


def element_pointers(np: Any, arr: Any) -> Any:
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
