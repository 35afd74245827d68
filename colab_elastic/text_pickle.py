"""Large object arrays of strings, pickled at the speed of their strings.

Pickle remembers every str it writes (its memo), so that an object written twice is read back
once. For a text column of 3M distinct strings (pandas 2.2's object columns: what `str.lower`,
`dt.day_name` or an f-string make, one new object per row) that memo costs most of the dump:
0.86 s, against 0.14 s for the same list pickled without it (Python 3.13, 2-core VM).

So each row of such an array (a segment) is written one of two ways:

- without the memo, when no object occurs twice in it: the strings go into a nested pickle
  that memoizes nothing. Objects it shares with a segment written before, in this same pickle,
  are written as positions in that segment instead, so they come back as one object, as pickle
  would have made them. Pointers are compared while every array of the group is alive, so an
  equal pointer is the same object;
- as a list through the group's own pickler, memo and all, when an object does occur twice (a
  low-cardinality column: the memo is then what makes it small and fast).

Only str, None and float elements take the first way: pickle keeps no identity for floats and
None is one object, and a str holds nothing that another object could share. What this does not
keep is a string's identity with an object outside the large text arrays of the group (a dict
key holding one of the column's strings comes back as an equal, separate str).
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any

from .fingerprint_arrays import element_pointers

# Smaller arrays, and 2-d blocks with shorter rows, are left to numpy's own pickle: they are
# quick, and what they share with a large array written before comes back as a copy.
MIN_ELEMENTS = 10_000
_SAMPLE = 1024  # pointers looked at before sorting them all: a repeat there means "memo"
_ATOMS = frozenset({str, type(None), float})

# One segment, as written: (how, length, what, kept, refs). `how` is "fast" (`what` is a nested
# pickle without memo) or "memo" (`what` is a list, written by the group's own pickler); `kept`
# the positions of those elements in the segment (None: all of them); `refs` the other positions,
# as (number of an earlier "fast" segment, positions here, positions there).
Segment = tuple


class TextPickling:
    """What one group's pickler knows of the text segments it has written without the memo:
    their sorted pointers, so that a later segment can refer to their objects."""

    def __init__(self) -> None:
        # (sorted pointers, their positions, the segment), by number. Holding the segment keeps
        # its strings alive until the dump ends, so no later string can take one of their
        # addresses (an array a `__reduce__` makes on the fly is freed once written, were it
        # not for this and for pickle's memo, which holds what it remembers too).
        self._written: list[tuple[Any, Any, Any]] = []

    def reduce(self, arr: Any, *, keep: bool = False) -> tuple[Any, ...] | None:
        """`(shape, order, writeable, segments)` for `rebuild`, or None to leave `arr` to numpy's
        own pickle (not an object array, too small, more than 2-d, or no segment gains anything).
        `keep`: written this way even where nothing is gained (a digest rides along with it)."""
        np = sys.modules.get("numpy")
        if np is None or type(arr) is not np.ndarray or arr.dtype != object or arr.size < MIN_ELEMENTS:
            return None
        # numpy's own pickle gives a view back as a contiguous copy too; F order is kept.
        order = "C"
        if arr.ndim == 1:
            rows = [np.ascontiguousarray(arr)]
        elif arr.ndim == 2 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
            order, rows = "F", list(arr.T)
        elif arr.ndim == 2:
            rows = list(np.ascontiguousarray(arr))
        else:
            return None
        if rows[0].size < MIN_ELEMENTS and not keep:
            return None
        segments = [self._segment(np, row) for row in rows]
        if not keep and all(how == "memo" and not refs for how, _, _, _, refs in segments):
            return None
        return arr.shape, order, bool(arr.flags.writeable), segments

    def _segment(self, np: Any, row: Any) -> Segment:
        pointers = element_pointers(np, row)
        n = len(pointers)
        elements = row.tolist()
        if not set(map(type, elements)) <= _ATOMS:
            return "memo", n, elements, None, []  # anything may be shared: pickle's memo sees to it
        sample = pointers[np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.intp)]
        repeats = len(np.unique(sample)) < len(sample)
        if not repeats:
            positions = np.argsort(pointers, kind="stable")
            ordered = pointers[positions]
            repeats = n > 1 and bool((ordered[1:] == ordered[:-1]).any())
        refs, own = self._refs(np, pointers, sample, exhaustive=not repeats)
        mine = elements if own is None else row[own].tolist()
        if repeats:  # an object occurs twice: pickle's memo makes it one again
            return "memo", n, mine, own, refs
        self._written.append((ordered, _small(np, positions), row))  # 12 bytes an element, until the dump ends
        nested = io.BytesIO()
        pickler = pickle.Pickler(nested, protocol=5)
        pickler.fast = True  # no memo: no object occurs twice here (checked above)
        pickler.dump(mine)
        return "fast", n, pickle.PickleBuffer(nested.getbuffer()), own, refs

    def _refs(self, np: Any, pointers: Any, sample: Any, *, exhaustive: bool) -> tuple[list[Any], Any]:
        """The positions of `pointers` found in segments written before (where each is there),
        and the positions of the others (None: all). Not `exhaustive`: a segment is searched
        only if the sample finds something in it (a low-cardinality column sharing a handful
        of strings with one written before comes back with its own copies of those)."""
        own = np.ones(len(pointers), dtype=bool)
        refs = []
        low, high = pointers.min(), pointers.max()
        for number, (theirs, their_positions, _) in enumerate(self._written):
            if low > theirs[-1] or high < theirs[0]:
                continue  # address ranges apart: nothing in common
            if not exhaustive and not _find(np, theirs, sample)[0].any():
                continue
            found, at = _find(np, theirs, pointers)
            found &= own
            if found.any():
                here = np.flatnonzero(found)
                refs.append((number, _small(np, here), _small(np, their_positions[at[here]])))
                own[here] = False
        return refs, (None if not refs else _small(np, np.flatnonzero(own)))


def _small(np: Any, positions: Any) -> Any:
    """Positions as int32 where they fit (half the bytes to write and read)."""
    return positions.astype(np.int32) if len(positions) and positions.max() < 2**31 else positions


def _find(np: Any, ordered: Any, wanted: Any) -> tuple[Any, Any]:
    """Which of `wanted` are in the sorted `ordered`, and where (meaningful where found)."""
    at = np.searchsorted(ordered, wanted)
    at[at == len(ordered)] = 0
    return ordered[at] == wanted, at


class _AtomsOnly(pickle.Unpickler):
    """A segment's nested pickle holds str, None and float: nothing to look up."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a text segment names {module}.{name}")


def rebuild(written: list[Any], shape: tuple[int, ...], order: str, writeable: bool, segments: list[Segment]) -> Any:
    """The array `TextPickling.reduce` described. `written`: the segments of this pickle read so
    far without the memo, by number, which later ones refer to."""
    import numpy as np

    n = segments[0][1] if segments else 0
    if len(shape) == 1:
        arr = np.empty(n, dtype=object)
        rows = [arr]
    else:  # filled row by row in place: F order is the transpose of a C-ordered fill
        arr = np.empty((len(segments), n), dtype=object)
        rows = list(arr)
    if any(segment[1] != n for segment in segments):
        raise pickle.UnpicklingError("a text array's segments differ in length")
    for row, (how, _, what, kept, refs) in zip(rows, segments):
        mine = _AtomsOnly(io.BytesIO(what)).load() if how == "fast" else what
        if not isinstance(mine, list) or len(mine) != (n if kept is None else len(kept)):
            raise pickle.UnpicklingError("a text segment does not hold the strings written for it")
        if kept is None:
            row[:] = mine
        else:
            values = np.empty(len(mine), dtype=object)
            values[:] = mine
            row[kept] = values
        for number, here, there in refs:
            row[here] = written[number][there]
        if how == "fast":
            written.append(row)
    if order == "F":
        arr = arr.T
    if arr.shape != tuple(shape):
        raise pickle.UnpicklingError(f"a text array of shape {arr.shape} where {tuple(shape)} was written")
    if not writeable:
        arr.flags.writeable = False
    return arr
