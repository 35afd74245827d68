"""Where a value's state is, for the fingerprint walk: in what its type's `__reduce__` says
(`has_custom_reduce`), or in its items, `__dict__` and slots (`instance_state`); and what a
pickled state says that is not the value: caches a read fills (pandas' `_cache`), `id()`
addresses of its own attributes (sklearn's `_stop_words_id`), which differ in every process, and
matplotlib's bookkeeping (a callback-id counter that pickling itself advances, transform
parents keyed by address). Part of the fingerprint walk; pure.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .fingerprint_kinds import TextHasher


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


def instance_state(obj: Any) -> list[Any] | None:
    """What a plain Python object holds: its items (for subclasses of builtin containers), its
    `__dict__` and its slots. None for objects without them (C objects).

    Not `gc.get_referents`: since Python 3.11 an instance's `__dict__` exists only once
    something asked for it, so the referents of equal objects can differ.
    """
    parts: list[Any] = []
    if isinstance(obj, dict):
        parts.extend(x for pair in obj.items() for x in pair)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        parts.extend(obj)
    found = bool(parts) or isinstance(obj, (dict, list, tuple, set, frozenset))
    try:
        attrs = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        attrs = None
    if isinstance(attrs, dict):
        parts.append(attrs)
        found = True
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            found = True
            try:
                parts.append(object.__getattribute__(obj, name))
            except AttributeError:
                parts.append(None)  # an unset slot
    return parts if found else None


_PLAIN_REDUCE = {getattr(object, name) for name in ("__reduce__", "__reduce_ex__", "__getstate__") if hasattr(object, name)}


# Builtin iterators keep their position in C, where a walk cannot see it; their `__reduce__`
# says it (`next(it)` is a change). Not itertools': pickling them is deprecated (3.12+ warns).
_POSITIONED = frozenset({type(iter([])), type(iter(())), type(iter(range(0))), type(iter("")), type(iter(b"")),
                         type(reversed([])), map, filter, zip, enumerate})


def has_custom_reduce(t: type) -> bool:
    """Does this type say itself how it pickles (rather than pickling its `__dict__`)?"""
    if t in _POSITIONED:
        return True
    if t.__module__ == "builtins" or issubclass(t, BaseException):
        return False
    return any(getattr(t, name, None) not in _PLAIN_REDUCE for name in ("__reduce__", "__reduce_ex__", "__getstate__") if hasattr(t, name))


class FunctionState:
    """A notebook function's state, for the walk (a mixin of `_Walk`): its code, defaults,
    closure cells and attributes. A library function is its name."""

    hasher: TextHasher  # update(bytes) after the texts before them
    objects: set[int]
    is_notebook_defined: Callable[[Any], bool]

    def tag(self, text: str) -> None:
        raise NotImplementedError

    def visit_function(self, func: types.FunctionType) -> list[tuple[Any, bool]]:
        if not self.is_notebook_defined(func):
            self.tag(func.__qualname__)
            self.objects.discard(id(func))
            return []
        self.hash_code(func.__code__)
        children: list[tuple[Any, bool]] = [(func.__defaults__, True), (func.__kwdefaults__, True)]
        self.tag(f"{len(func.__closure__ or ())} cells")
        for cell in func.__closure__ or ():
            try:
                children.append((cell.cell_contents, True))
            except ValueError:  # an empty cell: the variable is not bound yet
                self.tag("<empty cell>")
        children.append((func.__dict__, True))
        return children

    def hash_code(self, code: types.CodeType) -> None:
        # Not repr(co_consts): a nested code object's repr holds its memory address.
        self.hasher.update(code.co_code)
        self.tag(repr(code.co_names))
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.hash_code(const)
            else:
                self.tag(repr(const))
