"""What a value's pickled state says about it, less what is not the value: caches a read
fills (pandas' `_cache`), `id()` addresses of its own attributes (sklearn's `_stop_words_id`),
which differ in every process, and matplotlib's bookkeeping (a callback-id counter that pickling
itself advances, transform parents keyed by address). Part of the fingerprint walk; pure.
"""

from __future__ import annotations

from typing import Any


def without_pandas_cache(state: Any) -> Any:
    """`state` without pandas' `_cache` (where `cache_readonly` keeps what it derived, filled
    on first read: a repr puts `_creso` in a DatetimeArray's), as a dict state or as the
    `__dict__` ending a tuple state (dropped when nothing else is in it, as before the read)."""
    if type(state) is dict and "_cache" in state:
        return {k: v for k, v in state.items() if k != "_cache"}
    if type(state) is tuple and state and type(state[-1]) is dict and "_cache" in state[-1]:
        rest = {k: v for k, v in state[-1].items() if k != "_cache"}
        return state[:-1] + ((rest,) if rest else ())
    return state


# Counters and cache flags: a draw (the inline backend draws after every cell) or a pickle moves them.
_MATPLOTLIB_COUNTERS = frozenset({"_cid_gen", "_invalid", "stale"})
_MATPLOTLIB_BOOKKEEPING = _MATPLOTLIB_COUNTERS | {"_parents"}


def without_matplotlib_bookkeeping(state: Any) -> Any:
    """A matplotlib object's pickled state less what is not its value: `CallbackRegistry`
    pickles `next(_cid_gen)`, so every look at a figure would change it; a draw clears the
    `_invalid` and `stale` flags, an unpickled figure has them set; `TransformNode`
    pickles its parents as `{id(parent): parent}`, and an unpickled one keeps the old
    process's addresses as keys. The parents themselves, in order, are what counts."""
    if type(state) is not dict or not _MATPLOTLIB_BOOKKEEPING.intersection(state):
        return state
    state = {k: v for k, v in state.items() if k not in _MATPLOTLIB_COUNTERS}
    parents = state.get("_parents")
    if type(parents) is dict:
        state["_parents"] = tuple(v for v in parents.values() if v is not None)
    return state


def addresses_in(state: dict[Any, Any]) -> dict[Any, Any]:
    """Keys of `state` whose value is an int equal to `id()` of another value in it -> that
    other value's key. Only ints that can be addresses (aligned, past the first pages) count.

    A key named `_<other>_id` next to `<other>` (sklearn's `_stop_words_id`) is taken for
    `id(<other>)` even when it is not that now: in a loaded value it is the address from the
    process that pickled it (`id(None)` there), a cache token with no say in what the value is.
    """
    candidates = [k for k, v in state.items() if type(v) is int and v > 0xFFFF and not v % 8]
    if not candidates:
        return {}
    ids = {id(v): k for k, v in state.items()}
    found = {k: ids[state[k]] for k in candidates if state[k] in ids and ids[state[k]] != k}
    for key in candidates:
        named = key[1:-3] if isinstance(key, str) and key.startswith("_") and key.endswith("_id") else None
        if named and named in state:
            found[key] = named
    return found
