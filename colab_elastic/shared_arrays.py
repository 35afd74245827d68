"""Arrays that share memory: the array owning a view's memory, the numpy arrays inside pandas
objects, and pandas' copy-on-write bookkeeping after a load.

Under copy-on-write (always in pandas 3; in pandas 2 with `mode.copy_on_write`), a frame made
from another without a copy (`sub = df[["a", "b"]]`, `df.reset_index()`, a merge that keeps
every row) holds the very same arrays, and pandas keeps track of the blocks that share them: a
write through one frame copies first, so the others never see it. A checkpoint stores such
frames as one group with their arrays still shared (`serialize` finds them here); after the
load, `relink` puts the blocks that look into one memory back into one pandas record of
sharers. Without it, the first write through one frame would reach the others, which it
never did before. `arrow_wholes` names, among the objects a load made, the Arrow data that
holds exactly the one array pandas pickled (what a verification may digest as it stands).
Pure: pandas and numpy only from `sys.modules`.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator, Mapping

# Where pandas' arrays keep their numpy data: a datetime or plain extension array's values,
# a categorical's codes, a masked (nullable) array's values and mask.
_DATA_ATTRIBUTES = ("_ndarray", "_codes", "_data", "_mask")


def copy_on_write() -> bool:
    """Is pandas loaded, and does it track shared blocks (copy-on-write)?"""
    pd = sys.modules.get("pandas")
    if pd is None:
        return False
    major = str(getattr(pd, "__version__", "0")).split(".")[0]
    if major.isdigit() and int(major) >= 3:
        return True  # always on; asking for the option warns that it is deprecated
    try:
        return pd.options.mode.copy_on_write is True
    except AttributeError:  # pandas before 1.5: no such option
        return False


def frames(value: Any) -> list[Any]:
    """The DataFrames and Series in `value`: itself, or the items one level down in a dict,
    list or tuple (the same reach as `serialize._shared_roots`)."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return []
    kinds = (pd.DataFrame, pd.Series)
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return [v for v in (value, *inner) if isinstance(v, kinds)]


def _blocks(frame: Any) -> list[Any]:
    manager = getattr(frame, "_mgr", None)
    return list(getattr(manager, "blocks", ()))


def _arrays(values: Any) -> Iterator[Any]:
    """The numpy arrays holding `values` (a block's, or an Index's `_data`)."""
    np = sys.modules["numpy"]
    if isinstance(values, np.ndarray):
        yield values
        return
    for attribute in _DATA_ATTRIBUTES:
        if isinstance(getattr(type(values), attribute, None), property):
            continue  # computed, not held (pandas 2's ArrowStringArray._data warns it is deprecated)
        found = getattr(values, attribute, None)
        if isinstance(found, np.ndarray):
            yield found


def block_arrays(value: Any) -> list[Any]:
    """The numpy arrays holding the data of the pandas objects in `value`."""
    if "numpy" not in sys.modules:
        return []
    return [arr for frame in frames(value) for block in _blocks(frame) for arr in _arrays(block.values)]


def address(arr: Any) -> int:
    """Where a numpy array's data starts."""
    return arr.__array_interface__["data"][0]


def memory_bytes(arr: Any) -> Any:
    """A C- or Fortran-contiguous array's memory as bytes, in memory order, whatever its dtype
    (datetimes, and records holding them, export no buffer of their own)."""
    return (arr if arr.flags.c_contiguous else arr.T).reshape(-1).view(sys.modules["numpy"].uint8)


def memory_root(arr: Any) -> Any:
    """The array that owns the memory a view looks at (numpy collapses chains of views)."""
    while type(getattr(arr, "base", None)).__name__ == "ndarray":
        arr = arr.base
    return arr


def arrow_wholes(objects: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """The Arrow data of pandas' Arrow-backed arrays among `objects` (every object a load
    made), each with the one array it holds: what pandas pickled, its chunks combined when
    stored (`ArrowExtensionArray.__getstate__`), wrapped again as one chunk on load."""
    pd = sys.modules.get("pandas")
    arrow = getattr(getattr(pd, "arrays", None), "ArrowExtensionArray", None)
    if arrow is None:
        return
    for obj in objects:
        if isinstance(obj, arrow):
            data = getattr(obj, "__dict__", {}).get("_pa_array")
            if getattr(data, "num_chunks", None) == 1:
                yield data, data.chunk(0)


def relink(objects: Iterable[Any]) -> int:
    """After a load: the blocks of the loaded DataFrames and Series (among `objects`: every
    object the load made) that look into one memory share one record of sharers again, as
    they did when they were stored, and an Index looking into it is in that record too
    (pandas keeps an index's data from changing under it the same way). Returns the blocks
    and indexes linked. Raises TypeError if this pandas keeps no such record: sharing memory
    without it would let a write through one frame reach the others."""
    pd = sys.modules.get("pandas")
    if pd is None or not copy_on_write() or "numpy" not in sys.modules:
        return 0
    blocks: dict[int, dict[int, Any]] = {}
    indexes: dict[int, dict[int, Any]] = {}
    for obj in objects:
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            for block in _blocks(obj):
                for arr in _arrays(block.values):
                    blocks.setdefault(id(memory_root(arr)), {})[id(block)] = block
        elif isinstance(obj, pd.Index):
            # From the instance itself: a RangeIndex would build its `_data` when asked.
            for arr in _arrays(getattr(obj, "__dict__", {}).get("_data")):
                indexes.setdefault(id(memory_root(arr)), {})[id(obj)] = obj
    linked = 0
    for root, sharers in blocks.items():
        views = indexes.get(root, {})
        if len(sharers) + len(views) < 2:
            continue
        first = next(iter(sharers.values()))
        record = getattr(first, "refs", None)
        if record is None or not hasattr(record, "add_reference"):
            raise TypeError(f"pandas {pd.__version__} keeps no record of the blocks sharing memory")
        # Every block already recorded with any of them belongs to the merged record too.
        members = dict(sharers)
        for block in sharers.values():
            for ref in getattr(block.refs, "referenced_blocks", ()):
                other = ref()
                if other is not None and hasattr(other, "refs"):
                    members.setdefault(id(other), other)
        known = {id(ref()) for ref in record.referenced_blocks if ref() is not None}
        for block in members.values():
            if block.refs is not record:
                block.refs = record
                linked += 1
            if id(block) not in known:
                record.add_reference(block)
                known.add(id(block))
        for index in views.values():
            if id(index) not in known:
                record.add_index_reference(index)
                known.add(id(index))
                linked += 1
            if hasattr(index, "_references"):  # a Series made from it later joins the record
                index._references = record
    return linked


def pandas_arrays(values: Mapping[str, Any]) -> list[Any]:
    """The arrays of the pandas objects among a group's values (see `serialize._shared_roots`)."""
    return [arr for value in values.values() for arr in block_arrays(value)]
