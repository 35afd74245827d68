"""Fingerprints of values: did a cell change this value, and what does it share with others?

Pure: imports neither IPython nor fsspec; numpy and pandas are used only when the user's
session has already imported them (looked up in `sys.modules`, never imported here).

A walk follows the references a value really holds (`gc.get_referents`, so no temporaries),
hashing what it meets with xxh3-128: atomic values by content, numpy buffers in place (never
copied when contiguous; see `fingerprint_arrays`), back-references by their position in the
walk. Functions, classes and modules are leaves: descending into a function's `__globals__`
would reach the whole namespace. One exception: the fingerprint *of* a notebook class (the
value of its variable) covers its own data attributes, which cells may change in place.
Nothing is mutated and nothing is deep-copied.

A fingerprint never raises. An object that raises when looked at (a `__sizeof__`, a
`__getattribute__` or a `__reduce__` of the user's that throws) makes its value incomplete
and unpicklable, with the reason: that value is then recomputed, never stored, and assumed
changed by every cell that can reach it. The rest of the value is still walked.
"""

from __future__ import annotations

import builtins
import enum
import gc
import pickle
import sys
import types
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import xxhash

from .errors import describe
from .fingerprint_arrays import ArrayHashing, StringMemo, dtype_text
from .fingerprint_kinds import (ATOMIC, BUILTIN_CONTAINERS, CONTAINER, FULL, IMMUTABLE_CONTAINERS, LEAF,
                                LEAF_CALLABLES, OBJECT, REDUCED, REPR_HASHED, TextHasher, route,
                                unpicklable_reason)
from .fingerprint_pickled import is_drawing, pickled
from .fingerprint_state import (FunctionState, addresses_in, has_custom_reduce, instance_state,
                                without_matplotlib_bookkeeping, without_pandas_cache)

_LOGGER_REASON = "a logger pickles by its name only: its cells set its level and handlers again"

# What a class body defines as behaviour rather than data.
_CLASS_BEHAVIOUR = (types.FunctionType, staticmethod, classmethod, property, *LEAF_CALLABLES)
_ATOMIC_TYPES, _STR_ONLY = frozenset(ATOMIC), {str}

DEFAULT_BUDGET = 2_000_000  # objects visited per value before we stop and call it opaque
# Starts every content digest; bump it when a value may hash differently. A restore compares only
# its own scheme's (a new runtime installs the newest release: an old checkpoint is not "changed").
SCHEME = "f2:"


@dataclass(frozen=True)
class Fingerprint:
    """What one value looked like at one moment.

    `content` changes when anything reachable changes (values, structure, types); `objects`
    are the ids of the mutable objects reachable from it, so two values whose `objects`
    intersect are aliases (co-variables). `complete` is False when part of the value was opaque
    to us (a C object without visible state, or the walk budget ran out): its content may
    change without `content` changing. `unpicklable` names a part known not to pickle.
    """

    content: str
    objects: frozenset[int]
    size: int
    complete: bool = True
    unpicklable: str | None = None
    # False when part of the value is a matplotlib artist: a draw (the inline backend draws after
    # every cell; a restore may draw) adds ticks and clears caches, so two processes holding the
    # same figure see different contents. Within one process a change is still a change.
    comparable: bool = True
    # False when large text columns are hashed by their pointers (the recorder's, see `hash_strings`):
    # comparable only within this process, while `pins` (copies holding those strings) live.
    portable: bool = True
    # False when the recorder's walk (`portable=False`) may hash it otherwise, by its text's
    # pointers: only when True can it be handed to the recorder as its own (`Recorder.adopt`).
    as_in_process: bool = field(default=True, compare=False)
    pins: tuple[Any, ...] = field(default=(), compare=False, repr=False)


def _type_name(t: type) -> str:
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"


class _Walk(ArrayHashing, FunctionState):
    """One fingerprinting walk over one value."""

    def __init__(self, budget: int, is_notebook_defined: Callable[[Any], bool],
                 strings: StringMemo | None = None, portable: bool = True) -> None:
        self.strings = strings
        self.portable = portable
        self.portable_content = True
        self.as_in_process = True
        self.pins: list[Any] = []
        self.hasher = TextHasher()
        self.seen: dict[int, int] = {}
        self.keepalive: list[Any] = []  # ids stay unique only while the objects live
        # Objects met only through what a `__reduce__` built: real parts, or things it made for
        # the occasion (a fitted tree's node table as fresh arrays). See `shared_objects`.
        self.made: list[Any] = []
        self.objects: set[int] = set()
        self.size = 0
        self.complete = True
        self.unpicklable: str | None = None
        self.comparable = True
        logging = sys.modules.get("logging")
        self.logger = logging.Logger if logging is not None else None
        self.budget = budget
        self.is_notebook_defined = is_notebook_defined
        self.init_arrays()
        self.kinds: dict[type, tuple[str, str, bool | None]] = {}  # see `kind_of`

    def tag(self, text: str) -> None:
        self.hasher.text(text + "\x00")

    def content_of(self, value: Any) -> str:
        return fingerprint(value, budget=self.budget).content

    def kind_of(self, t: type) -> tuple[str, str, bool | None]:
        """`t`'s route, its type tag, and whether its instances count as shared objects
        (None: only when met for real, not in what a `__reduce__` built). Once per type and walk."""
        kind = route(t, self)
        shared: bool | None = False
        if kind is not FULL and kind is not LEAF and not issubclass(t, self.unshared):
            shared = None if issubclass(t, BUILTIN_CONTAINERS) else True
        return kind, _type_name(t) + "\x00", shared

    def run(self, value: Any) -> None:
        stack: list[tuple[Any, bool]] = [(value, True)]
        if isinstance(value, type) and self.is_notebook_defined(value):
            # A notebook class held by its variable: a leaf, plus its data attributes, which
            # are state too (`Registry.items.append(x)`).
            stack = [(child, True) for child in reversed(self.class_data(value))]
            self.value_leaf(value, type(value))
        # The hasher's batch is filled here directly: a call per string or number was a tenth
        # of a figure's walk (see `TextHasher`).
        pop, texts, flush = stack.pop, self.hasher.texts, self.hasher.flush
        add, batch = texts.append, TextHasher.BATCH
        while stack:
            obj, real = pop()
            t = type(obj)
            if t is str:  # most of what a walk meets: hashed here, without a call to `visit`
                add(f"str {len(obj)}:{obj}\x00")
                if len(texts) >= batch:
                    flush()
                self.size += len(obj)
                continue
            if t is float or t is int or t is bool or obj is None:
                try:
                    add(f"{t.__name__}:{obj!r}\x00")  # as `_atom_text`
                except ValueError as exc:  # an int too long for repr()
                    self.opaque(obj, exc)
                    continue
                if len(texts) >= batch:
                    flush()
                self.size += 8
                continue
            try:
                children = self.visit(obj, real)
            except Exception as exc:  # noqa: BLE001 - one odd object must not cost the whole walk
                self.opaque(obj, exc)
                continue
            if children:
                # Reverse so children are visited in order (stable hashes).
                stack.extend(reversed(children))

    def shared_objects(self) -> frozenset[int]:
        """The ids of `objects`, less those of objects the walk alone kept alive: freed now,
        their ids would come back as unrelated values and look like shared objects. Ends the walk."""
        refs = []
        while self.made:  # popped, so that no loop variable keeps the last one alive
            try:
                refs.append((id(self.made[-1]), weakref.ref(self.made.pop())))
            except TypeError:  # no weak references: kept, as if shared (conservative)
                continue
        self.keepalive.clear()
        return frozenset(self.objects - {key for key, ref in refs if ref() is None})

    def opaque(self, obj: Any, exc: Exception) -> None:
        """`obj` raised when we looked at it: its state is unknown (any reader may have changed
        it) and what we could not see we do not store. It still counts as a shared object."""
        self.complete = False
        self.unpicklable = self.unpicklable or f"{type(obj).__qualname__} could not be inspected ({describe(exc)})"
        self.tag("<failed>")
        if not issubclass(type(obj), (*ATOMIC, *IMMUTABLE_CONTAINERS)):
            self.objects.add(id(obj))
            self.keepalive.append(obj)

    def atom(self, obj: Any, t: type) -> None:
        """Hash a value of an `ATOMIC` type (see `_atom_text`)."""
        if t is bytes:
            self.tag(f"bytes {len(obj)}")
            self.hasher.update(obj)
            self.size += len(obj)
        else:
            self.hasher.text(_atom_text(obj, t))
            self.size += len(obj) if t is str else 8

    def visit(self, obj: Any, real: bool) -> list[tuple[Any, bool]]:
        t = type(obj)
        if t in _ATOMIC_TYPES:
            self.atom(obj, t)
            return []
        known = self.kinds.get(t)
        if known is None:
            known = self.kinds[t] = self.kind_of(t)
        kind, type_tag, shared = known
        if kind is LEAF:
            self.value_leaf(obj, t)
            return []
        if (kind is FULL or obj is builtins.__dict__) and self.value_leaf(obj, t):
            return []
        key = id(obj)
        seen = self.seen
        at = seen.get(key)
        if at is not None:
            self.hasher.text(f"@{at}\x00")  # a back-reference: aliasing inside the value
            return []
        seen[key] = len(seen)
        self.keepalive.append(obj)
        if len(seen) > self.budget:
            self.complete = False
            self.tag("…")
            return []
        self.hasher.text(type_tag)
        # Containers built by a `__reduce__` are temporaries: their ids mean nothing (and
        # are reused once freed). Anything else met through them is a real, shared object.
        if kind is FULL:  # its `__class__` may not be its type: ask the object itself
            shared = (real or not isinstance(obj, BUILTIN_CONTAINERS)) and not isinstance(obj, self.unshared)
        else:
            shared = shared is True or (shared is None and real)
        if shared:
            self.objects.add(key)
            if not real:
                self.made.append(obj)
        if kind is CONTAINER:
            return self.visit_container(obj, real)
        if kind is REDUCED:
            return self.visit_reduced(obj)
        if kind is OBJECT:
            return self.visit_object(obj)

        if self.ndarray is not None and isinstance(obj, self.ndarray):
            return self.visit_ndarray(obj)
        if self.storages and isinstance(obj, self.storages):
            return self.visit_storage(obj)
        if self.logger is not None and isinstance(obj, self.logger):
            # Pickled by name only: a restored logger is the new runtime's, at its defaults. Its
            # level, handlers and filters are what cells change: seen here, rebuilt by a rerun.
            self.unpicklable = self.unpicklable or _LOGGER_REASON
            # Not its `manager` and `parent`: they reach every logger of the process.
            self.tag(f"logger {obj.name} {obj.level} {obj.propagate} {obj.disabled}")
            for handler in list(obj.handlers):
                formatter = getattr(handler, "formatter", None)
                self.tag(f"handler {_type_name(type(handler))} {getattr(handler, 'level', '')} "
                         f"{getattr(formatter, '_fmt', '')}")
            return [(list(obj.filters), False)]
        reason = unpicklable_reason(obj)
        if reason is not None:
            self.unpicklable = self.unpicklable or reason
            self.complete = False  # its state is invisible: assume any reader changes it
            return []
        if isinstance(obj, types.FunctionType):
            return self.visit_function(obj)
        if isinstance(obj, types.MethodType):
            # A bound method is a fresh wrapper on every attribute access: only what it
            # binds (`__self__`) can be shared.
            self.objects.discard(key)
            return [(obj.__func__, True), (obj.__self__, True)]
        if isinstance(obj, (set, frozenset)):
            return self.visit_set(obj)
        if isinstance(obj, (bytearray, memoryview)):
            self.hasher.update(obj)
            self.size += len(obj)
            return []
        if t is pickle.PickleBuffer:
            # What a buffer's `__reduce_ex__(5)` hands over (pyarrow's, under every Arrow-backed
            # pandas column): its bytes are the value. Its referents are only its owner.
            view = memoryview(obj)
            self.hasher.update(view.cast("B") if view.contiguous else view.tobytes())
            self.size += view.nbytes
            return []
        if self.pandas_types and isinstance(obj, self.pandas_types):
            return self.visit_reduced(obj)
        if type(obj) in (dict, list, tuple):
            return self.visit_container(obj, real)
        if has_custom_reduce(t):
            # What pickle would store: random generators keep their state in C, sklearn
            # estimators trim their __dict__; both say what they are through __reduce__.
            return self.visit_reduced(obj)
        return self.visit_object(obj)

    def visit_container(self, obj: dict | list | tuple, real: bool) -> list[tuple[Any, bool]]:
        # The length too: without it `[[1], 2]` and `[[1, 2]]` hashed alike.
        self.tag(f"{len(obj)} items")
        self.size += 8 * len(obj)
        if type(obj) is dict:
            return [(x, real) for pair in obj.items() for x in pair]
        return [(item, real) for item in obj]

    def class_data(self, owner: type) -> list[Any]:
        """A notebook class's own data attributes, tagged by name: not its functions and not
        dunders (redefining the class rebinds the variable, which is seen anyway)."""
        items = [(k, v) for k, v in vars(owner).items() if not (k.startswith("__") and k.endswith("__"))
                 and k != "_abc_impl" and not isinstance(v, _CLASS_BEHAVIOUR)]
        children: list[Any] = []
        for key, value in items:
            self.tag(f".{key}")
            children.append(value)
        self.tag(f"attributes {len(children)}")
        return children

    def value_leaf(self, obj: Any, t: type) -> bool:
        """Hash values whose identity means nothing (dtypes, scalars, classes, modules, enum
        members): two equal ones are interchangeable, and a pickle round trip may turn one
        shared instance into several, so they must not count as back-references."""
        if isinstance(obj, REPR_HASHED):
            self.tag(_type_name(t))
            self.tag(repr(obj))
            self.size += 16
        elif isinstance(obj, (type, types.ModuleType)) or isinstance(obj, LEAF_CALLABLES):
            # By reference: the name identifies it; redefining it rebinds the variable.
            self.tag(_type_name(t))
            self.tag(getattr(obj, "__qualname__", getattr(obj, "__name__", "")))
        elif isinstance(obj, enum.Enum):
            self.tag(_type_name(t))
            self.tag(obj.name)
        elif obj is builtins.__dict__:
            # What `exec(code, d)` leaves in `d['__builtins__']`: shared with every module, it
            # would make unrelated values aliases. Stored by reference (see `serialize`).
            self.tag("builtins.__dict__")
        elif self.np_dtype is not None and isinstance(obj, self.np_dtype):
            self.tag("dtype")
            self.tag(dtype_text(obj))
        elif self.ma_masked is not None and obj is self.ma_masked:
            self.tag("numpy.ma.masked")  # a singleton, like None: sharing it aliases nothing
        elif self.np_generic is not None and isinstance(obj, self.np_generic) and not isinstance(obj, self.np_void_object):
            self.tag(str(obj.dtype))
            self.hasher.update(obj.tobytes())
        else:
            return False
        return True

    def visit_set(self, items: set | frozenset) -> list[tuple[Any, bool]]:
        # Order-independent: set order depends on the process's hash seed.
        digests = []
        for item in items:
            if type(item) in ATOMIC:
                # Most set members are strings or numbers: hash them without a walk of their own.
                digests.append(xxhash.xxh3_64_hexdigest(f"{type(item).__name__}\x00{item!r}".encode("utf-8", "surrogatepass")))
                self.size += 8
                continue
            sub = fingerprint(item, budget=self.budget, is_notebook_defined=self.is_notebook_defined,
                              strings=self.strings, portable=self.portable)
            self.pins.extend(sub.pins)
            self.portable_content &= sub.portable
            self.as_in_process &= sub.as_in_process
            digests.append(sub.content)
            self.objects |= sub.objects
            self.size += sub.size
            self.complete &= sub.complete
            self.comparable &= sub.comparable
            self.unpicklable = self.unpicklable or sub.unpicklable
        for digest in sorted(digests):
            self.tag(digest)
        return []

    def visit_reduced(self, obj: Any) -> list[tuple[Any, bool]]:
        # pandas objects carry lazily filled caches in __dict__ (index engines, item caches)
        # that change on mere reads; the pickled state is what the value *is*.
        # `__dict__` before `__reduce_ex__`: some objects create it on first access
        # (`functools.partial` pickles None until then), so the first walk would differ.
        own = getattr(obj, "__dict__", None)
        if isinstance(own, dict) and "_pa_array" in own and type(obj).__module__.startswith("pandas."):
            return self.visit_arrow_backed(own)
        try:
            reduced = obj.__reduce_ex__(5)
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot pickle"
            self.unpicklable = self.unpicklable or f"{type(obj).__name__}: {exc}"
            self.complete = False
            return []
        if isinstance(reduced, str):
            return []
        self.size += 64  # not sys.getsizeof: pandas answers it by measuring every string
        # Skip the callable (a class or a constructor function). What pickle builds for the
        # occasion (argument tuples, a copy of `__dict__`, item iterators) is a temporary whose
        # id means nothing; what it passes along (the object's own attributes and items) is
        # real and may be shared with other variables.
        args, state, listitems, dictitems = (list(reduced[1:]) + [None] * 3)[:4]
        module = type(obj).__module__
        if module.startswith("pandas."):  # its arrays too, not only `pandas_types`
            state = without_pandas_cache(state)
        elif module.startswith("matplotlib."):
            state = without_matplotlib_bookkeeping(state)
            self.comparable = False
        children: list[tuple[Any, bool]] = [] if args is None else [(args, False)]
        if type(state) is dict and isinstance(own, dict) and state is not own:
            self.tag(f"state {len(state)}")
            addresses = addresses_in(state)
            # Attribute order says how the object was built (a `__setstate__` adds them in
            # its own order), not what it is.
            pairs = sorted(state.items()) if set(map(type, state)) == _STR_ONLY else state.items()
            for key, value in pairs:
                if key in addresses:
                    # An attribute holding `id()` of another attribute (sklearn's
                    # `_stop_words_id`): an address, new in every process; what it says is
                    # which attribute it points at.
                    self.tag(f"id of {addresses[key]!r}")
                    children.append((key, False))
                    continue
                children += [(key, False), (value, key in own and own[key] is value)]
        elif state is not None:
            children.append((state, state is own))
        if listitems is not None:
            items = list(listitems)
            self.tag(f"items {len(items)}")
            children += [(item, True) for item in items]
        if dictitems is not None:
            pairs = list(dictitems)
            self.tag(f"pairs {len(pairs)}")
            children += [(x, True) for pair in pairs for x in pair]
        return children

    def visit_object(self, obj: Any) -> list[tuple[Any, bool]]:
        state = instance_state(obj)
        if state is not None:
            self.size += sys.getsizeof(obj, 64)
            self.tag(f"{len(state)} parts")
            return [(r, True) for r in state]
        referents = [r for r in gc.get_referents(obj) if not isinstance(r, type)]
        if not referents:
            try:
                view = memoryview(obj)
            except TypeError:
                view = None
            if view is not None:
                self.hasher.update(view.cast("B") if view.contiguous else view.tobytes())
                self.size += view.nbytes
                return []
            if type(obj) is not object and not hasattr(obj, "__dict__") and not hasattr(type(obj), "__slots__"):
                # (A bare `object()` is a sentinel: it has no state to change.)
                # A C object whose state we cannot see (a random generator's state, a
                # compiled model): treat it as changed whenever a cell reads it.
                self.complete = False
            self.size += sys.getsizeof(obj, 64)
            return []
        self.size += sys.getsizeof(obj, 64)
        self.tag(f"{len(referents)} referents")
        return [(r, True) for r in referents]


def _atom_text(obj: Any, t: type) -> str:
    """How an atomic value is hashed: a string with its length (so that no two sequences of
    strings read alike), anything else by type and repr."""
    if t is str:
        return f"str {len(obj)}:{obj}\x00"
    return f"{t.__name__}:{obj!r}\x00"


def fingerprint(
    value: Any,
    *,
    budget: int = DEFAULT_BUDGET,
    is_notebook_defined: Callable[[Any], bool] = lambda obj: False,
    strings: StringMemo | None = None,
    portable: bool = True,
) -> Fingerprint:
    """Fingerprint one value (see `Fingerprint`). Never raises: what could not be looked at
    makes the fingerprint incomplete, with the reason in `unpicklable`. `strings` remembers
    the digests of large text columns between calls (see `StringMemo`); a portable result is
    the same with or without it, in any process. `portable=False` lets `strings` hash new large
    text columns by their pointers: cheaper, and comparable only with this process's own."""
    if is_drawing(value):
        drawn = pickled(value, is_notebook_defined)
        if drawn is not None:
            # Not comparable across processes, as the walk's of a figure is not (a draw changes it).
            return Fingerprint(content=f"{SCHEME}pickled:{drawn.content}", objects=drawn.objects, size=drawn.size,
                               comparable=False)
    walk = _Walk(budget, is_notebook_defined, strings, portable)
    try:
        walk.run(value)
    except Exception as exc:  # noqa: BLE001 - e.g. a RecursionError while noting another failure
        walk.complete = False
        walk.unpicklable = walk.unpicklable or f"could not be fingerprinted ({describe(exc)})"
    return Fingerprint(
        content=SCHEME + walk.hasher.hexdigest(), objects=walk.shared_objects(), size=walk.size,
        complete=walk.complete, unpicklable=walk.unpicklable, comparable=walk.comparable,
        portable=walk.portable_content, as_in_process=walk.as_in_process, pins=tuple(walk.pins),
    )


def unknown(reason: str) -> Fingerprint:
    """The fingerprint of a value that could not be fingerprinted at all: unlike any other,
    even its own next one (so it always looks changed), and never stored."""
    return Fingerprint(content=f"unknown-{uuid.uuid4().hex}", objects=frozenset(), size=0, complete=False,
                       unpicklable=reason)
