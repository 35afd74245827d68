"""Turning a co-variable group into bytes and back.

Standard pickle (protocol 5: numpy and Arrow buffers of 1 MB or more are written beside the
pickle, without a copy, and read back into memory of their own; see `frames`), with a few
rules for things a notebook defines, none of which stdlib pickle or cloudpickle gets right for us:

- functions and lambdas defined in the notebook are stored by value (their code), and come
  back bound to the *live* namespace of the restoring session, so they see restored globals;
- classes defined in the notebook are stored by name and looked up in the restoring
  namespace, so `isinstance(p, Point)` holds after a restore (classes themselves are never
  stored: their defining cell is rerun, which is cheap);
- modules are stored by name and imported again;
- numpy arrays that share memory in the group (`view = arr[:, 1]`) are stored as views of
  one base array, so writing through one is still seen through the other after a restore;
  that base comes back owning its memory, and is the `.base` of the views;
- torch tensors that share memory in the group (`view = base[1:3]`, or with a numpy array:
  `t = torch.from_numpy(a)`) still share it after a restore (see `torch_storage`);
- the builtins namespace (`d['__builtins__']` after `exec(code, d)`) is stored as a reference;
- large object arrays of strings (pandas 2.2's text columns) are written without pickle's memo
  where that changes nothing (2.5x faster to write; see `text_pickle`), with the digest of their
  text beside them when the checkpoint has one, so a restore need not hash it again.

Code objects are only valid on the Python that compiled them: loading one elsewhere fails
cleanly and the group is recomputed instead.

What the C pickler refuses (a class or function defined inside a function, a lambda held by
a module, `types.MappingProxyType`, a lock inside an object...) is handed, object by object,
to dill when dill is installed (Colab ships it): that object alone becomes a nested dill
pickle, the rest of the group stays on the C pickler; what dill refuses goes to cloudpickle
the same way, when installed. Both are tried before a value is declared recompute-only;
what they refuse too (generators, frames) still fails the group.
An object inside such a nested pickle that is also referenced from outside it comes back as
a copy there, and a class pickled that way (one defined inside a function) comes back as a
new class; the notebook rules above apply inside it as well.
"""

from __future__ import annotations

import builtins
import copyreg
import functools
import importlib
import importlib.util
import io
import marshal
import pickle
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any, BinaryIO, Mapping

from . import pages, shared_arrays, text_pickle, torch_storage
from .frames import FRAMED, FrameWriter, Prefixed, WholeReads, buffers_from, read_exact

if TYPE_CHECKING:
    from .fingerprint_arrays import StringMemo
    from .import_clock import ImportClock

_PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
_BUILTINS = "builtins.__dict__"  # the persistent id of the builtins namespace
# What the C pickler's own reduction refuses (any of these means "try dill").
_REFUSED = (TypeError, pickle.PicklingError, AttributeError, NotImplementedError)
# Types whose pickling the C pickler does itself, never through `__reduce_ex__`; and a
# memoryview, which dill would store as a copy, cut off from the memory it is a view of.
_NATIVE = (types.BuiltinFunctionType, types.MethodType, types.ModuleType, pickle.PickleBuffer, memoryview)


@functools.cache
def has_dill() -> bool:
    """Is the dill fallback available (found without importing it: it costs ~50 ms)?"""
    return "dill" in sys.modules or importlib.util.find_spec("dill") is not None


def _importable(obj: Any) -> bool:
    """Would pickle find this class or function again by its module and qualified name?"""
    name = getattr(obj, "__module__", None)
    if name is None:
        return False  # pickle would search every module for it (sympy's lambdify functions)
    module = sys.modules.get(name)
    if module is None:
        return True  # not imported here: pickle imports it, or says why not
    value: Any = module
    for part in getattr(obj, "__qualname__", "").split("."):
        value = getattr(value, part, None)
    return value is obj


class _Pickler(pickle.Pickler):
    def __init__(self, file: BinaryIO, namespace: Mapping[str, Any], shared_roots: dict[int, Any],
                 fallback: bool = False, buffer_callback: Any = None, strings: StringMemo | None = None) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffer_callback)
        self.namespace = namespace
        self.shared_roots = shared_roots
        self.fallback = fallback
        self.strings = strings
        self.texts = text_pickle.TextPickling()
        self.typed_storages, self.untyped_storages = torch_storage.types()
        # Numpy memory that a tensor of the group uses too (`torch.from_numpy`), by address.
        self.numpy_memory = {shared_arrays.address(r): r for r in shared_roots.values()} if self.typed_storages else {}

    def reducer_override(self, obj: Any) -> Any:
        rule = self.notebook_rule(obj)
        if rule is NotImplemented:
            rule = self.text_rule(obj)
        if rule is NotImplemented and self.typed_storages:
            rule = self.storage_rule(obj)
        if rule is NotImplemented and self.fallback:
            return self.reduce_or_dill(obj)
        return rule

    def reduce_or_dill(self, obj: Any) -> Any:
        """What the C pickler would do with `obj`, or a nested dill pickle where it would refuse.
        The reduction is computed once, here: the C pickler uses what this returns."""
        kind = type(obj)
        if isinstance(obj, _NATIVE) or copyreg.dispatch_table.get(kind) is not None:
            return NotImplemented
        if isinstance(obj, (type, types.FunctionType)):
            return NotImplemented if _importable(obj) else _by_dill(obj, self.namespace)
        try:
            return obj.__reduce_ex__(5)
        except _REFUSED:
            return _by_dill(obj, self.namespace)

    def storage_rule(self, obj: Any) -> Any:
        """A torch storage (see `torch_storage`): one memo entry per memory, its bytes a buffer."""
        if isinstance(obj, self.typed_storages) and torch_storage.handled(obj._untyped_storage):
            return torch_storage.reduce_typed(obj)
        if isinstance(obj, self.untyped_storages) and torch_storage.handled(obj):
            root = self.numpy_memory.get(obj.data_ptr()) if obj.device.type == "cpu" else None
            if root is not None and root.nbytes >= obj.nbytes():
                return torch_storage.over_array, (root,)  # the array's memory, shared again on load
            return torch_storage.reduce_untyped(obj)
        return NotImplemented

    def text_rule(self, obj: Any) -> Any:
        """A large object array of strings: its segments written without pickle's memo where
        that is exact (see `text_pickle`), and the digest of its text beside it when the memo of
        text columns holds one, so that a restore need not hash millions of strings again to
        verify what it loaded (pickle gives str back exactly)."""
        np = sys.modules.get("numpy")
        if np is None or type(obj) is not np.ndarray or obj.dtype != object or obj.size < text_pickle.MIN_ELEMENTS:
            return NotImplemented
        entry = self.strings.find(obj) if self.strings is not None else None
        if entry is not None and entry.content is None:
            entry = None  # its text was never hashed: nothing to carry
        encoded = self.texts.reduce(obj, keep=entry is not None)
        if encoded is None:
            return NotImplemented
        # Checked again after the elements were taken: equal pointers mean they are the very
        # strings the digest was computed from (the memo keeps them alive).
        carried = None
        if entry is not None and self.strings.find(obj) is entry:  # type: ignore[union-attr]
            carried = (entry.kind, entry.content)
        return _text_array, (*encoded, carried)

    def notebook_rule(self, obj: Any) -> Any:
        if self.shared_roots and type(obj).__name__ == "ndarray" and obj.base is not None:
            root = shared_arrays.memory_root(obj)
            if id(root) in self.shared_roots and root is not obj:
                start = shared_arrays.address(obj) - shared_arrays.address(root)
                return _array_view, (root, start, obj.shape, obj.strides, obj.dtype, obj.flags.writeable)
        if self.shared_roots and self.shared_roots.get(id(obj)) is obj and (obj.flags.c_contiguous or obj.flags.f_contiguous):
            # The owner of shared memory: numpy's own pickle loads it as a view of a hidden
            # buffer, so it must come back owning its data (and be the `.base` of its views).
            return _owned_array, (pickle.PickleBuffer(shared_arrays.memory_bytes(obj)), obj.shape, obj.strides, obj.dtype,
                                  obj.flags.writeable)
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if isinstance(obj, types.FunctionType) and obj.__globals__ is self.namespace:
            return _rebuild_function, _function_state(obj)
        if isinstance(obj, type) and obj.__module__ == "__main__" and "<locals>" not in obj.__qualname__:
            if _lookup(self.namespace, obj.__qualname__) is not obj:
                raise pickle.PicklingError(
                    f"class {obj.__qualname__} was redefined after this value was created"
                )
            return _notebook_attribute, (obj.__qualname__,)
        return NotImplemented


def _by_dill(obj: Any, namespace: Mapping[str, Any]) -> tuple[Any, tuple[bytes]]:
    """`obj` as a nested dill pickle (the notebook rules still apply inside it); where dill
    fails too, a nested cloudpickle pickle if cloudpickle is installed (sympy's `lambdify`
    functions: dill looks their numpy ufuncs up in `__main__`)."""
    buffer = io.BytesIO()
    try:
        _dill_classes()[0](buffer, namespace).dump(obj)
        return _from_dill, (buffer.getvalue(),)
    except (*_REFUSED, RecursionError, Warning) as exc:  # dill warns, then fails, on some cycles
        cloud = _cloud_pickler()
        if cloud is None:
            raise
        buffer = io.BytesIO()
        try:
            cloud(buffer, namespace).dump(obj)
        except _REFUSED:
            raise exc from None
        return _from_cloudpickle, (buffer.getvalue(),)


def _with_notebook_rules(base: type, *, defer: bool) -> type:
    """`base` (dill's or cloudpickle's Pickler) for a nested pickle under the notebook rules;
    `defer`: what the rules leave goes to `base`'s own `reducer_override`."""

    class Nested(base):  # type: ignore[misc, valid-type]
        def __init__(self, file: BinaryIO, namespace: Mapping[str, Any]) -> None:
            super().__init__(file, protocol=5)
            self.namespace = namespace
            self.shared_roots: dict[int, Any] = {}

        notebook_rule = _Pickler.notebook_rule

        def reducer_override(self, obj: Any) -> Any:
            rule = self.notebook_rule(obj)
            return super().reducer_override(obj) if defer and rule is NotImplemented else rule

    Nested.__name__ = Nested.__qualname__ = f"{base.__module__.split('.')[0].capitalize()}Pickler"
    return Nested


@functools.cache
def _cloud_pickler() -> type | None:
    """cloudpickle's (C) Pickler with the notebook rules, or None without cloudpickle."""
    try:
        import cloudpickle
    except ImportError:
        return None

    # cloudpickle does its own work in `reducer_override`: what the rules leave goes there.
    return _with_notebook_rules(cloudpickle.Pickler, defer=True)


@functools.cache
def _dill_classes() -> tuple[type, type]:
    """dill's Pickler and Unpickler with the notebook rules, made on first use."""
    import dill

    # dill warns before it fails on some self-referencing functions: the failure is handled
    # (cloudpickle, or the value is recomputed), the warning would only reach the user's cell.
    warnings.filterwarnings("ignore", category=dill.PicklingWarning)

    DillPickler = _with_notebook_rules(dill.Pickler, defer=False)

    class DillUnpickler(dill.Unpickler):  # type: ignore[misc, name-defined]
        def __init__(self, file: BinaryIO, namespace: dict[str, Any]) -> None:
            super().__init__(file)
            self.namespace = namespace

        def find_class(self, module: str, name: str) -> Any:
            found = _bound_class(self.namespace, module, name)
            return found if found is not None else super().find_class(module, name)

    return DillPickler, DillUnpickler


class _NamespacePickler(_Pickler):
    """For groups holding a namespace filled by `exec(code, d)`: what it leaves in
    `d['__builtins__']` is the interpreter's own namespace, stored as a reference. Not in
    `reducer_override`, which pickle skips for exact dicts; and not in every group, since a
    `persistent_id` is asked about every object pickled (2x slower on millions of objects)."""

    def persistent_id(self, obj: Any) -> Any:
        return _BUILTINS if obj is builtins.__dict__ else None


def _holds_builtins(values: Mapping[str, Any]) -> bool:
    """Is a value a namespace `exec(code, d)` filled (it holds the builtins namespace)? One
    nested deeper makes the group fail to pickle: it is recomputed instead, never wrong."""
    return any(type(v) is dict and v.get("__builtins__") is builtins.__dict__ for v in values.values())


def _function_state(func: types.FunctionType) -> tuple[Any, ...]:
    closure = None
    if func.__closure__ is not None:
        closure = tuple(cell.cell_contents for cell in func.__closure__)
    return (
        _PY,
        marshal.dumps(func.__code__),
        func.__name__,
        func.__qualname__,
        func.__defaults__,
        func.__kwdefaults__,
        closure,
        func.__dict__ or None,
        func.__doc__,
    )


def _lookup(namespace: Mapping[str, Any], qualname: str) -> Any:
    head, *rest = qualname.split(".")
    value = namespace.get(head)
    for part in rest:
        value = getattr(value, part, None)
    return value


def _shared_roots(values: Mapping[str, Any]) -> dict[int, Any]:
    """Base arrays that two or more arrays of the group look into (top level and one level
    down, and the arrays inside pandas objects there: frames that share blocks), or an array and
    a tensor (`torch.from_numpy`)."""
    np = sys.modules.get("numpy")
    if np is None:
        return {}
    arrays = []
    tensor = torch_storage.tensor_type()
    tensors: set[int] = set()  # where the group's tensors' memory starts: `torch.from_numpy(a)` uses a's
    for value in values.values():
        inner = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        for candidate in (value, *inner):
            if isinstance(candidate, np.ndarray) and not candidate.dtype.hasobject:
                arrays.append(candidate)
            elif tensor is not None and isinstance(candidate, tensor) and candidate.device.type == "cpu":
                tensors.add(candidate.untyped_storage().data_ptr())
    arrays += [arr for arr in shared_arrays.pandas_arrays(values) if not arr.dtype.hasobject]
    users: dict[int, list[Any]] = {}
    roots: dict[int, Any] = {}
    for arr in arrays:
        root = shared_arrays.memory_root(arr)
        if isinstance(root, np.ndarray) and root.base is None:
            roots[id(root)] = root
            users.setdefault(id(root), []).append(arr)
    return {key: roots[key] for key, found in users.items()
            if len({id(a) for a in found}) > 1 or (tensors and shared_arrays.address(roots[key]) in tensors)}


def _owned_array(data: Any, shape: tuple[int, ...], strides: tuple[int, ...], dtype: Any, writeable: bool) -> Any:
    np = sys.modules["numpy"]
    # Copied out of the pickle's buffer (in the same C or Fortran layout, so the views' byte
    # offsets still hold): the result owns its memory, like the original. `pages` copies a
    # large one a slice at a time onto the pages it finds faster (a copy faults in fresh
    # memory as a read does).
    stored = np.ndarray(shape, dtype=dtype, buffer=data, strides=strides)
    arr = np.empty(shape, dtype=dtype, order="C" if stored.flags.c_contiguous else "F")
    pages.copy_into(memoryview(data).cast("B"), shared_arrays.memory_bytes(arr))
    if not writeable:
        arr.flags.writeable = False
    return arr


def _array_view(root: Any, start: int, shape: tuple[int, ...], strides: tuple[int, ...], dtype: Any, writeable: bool) -> Any:
    np = sys.modules["numpy"]
    view = np.ndarray(shape, dtype=dtype, buffer=root, offset=start, strides=strides)
    if not writeable:
        view.flags.writeable = False
    return view


# These two are called by the unpickler with the restoring namespace bound first.
def _rebuild_function(namespace: dict[str, Any], python: str, code: bytes, name: str, qualname: str,
                      defaults: Any, kwdefaults: Any, closure: Any, fdict: Any, doc: Any) -> types.FunctionType:
    if python != _PY:
        raise pickle.UnpicklingError(f"function {qualname} was compiled by Python {python}, this is {_PY}")
    cells = None if closure is None else tuple(types.CellType(v) for v in closure)
    func = types.FunctionType(marshal.loads(code), namespace, name, defaults, cells)
    func.__qualname__ = qualname
    func.__kwdefaults__ = kwdefaults
    func.__doc__ = doc
    func.__module__ = "__main__"
    if fdict:
        func.__dict__.update(fdict)
    return func


def _notebook_attribute(namespace: dict[str, Any], qualname: str) -> Any:
    value = _lookup(namespace, qualname)
    if value is None:
        raise pickle.UnpicklingError(f"{qualname} is not defined in the restoring session yet")
    return value


def _from_cloudpickle(namespace: dict[str, Any], data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data), namespace).load()


def _from_dill(namespace: dict[str, Any], data: bytes) -> Any:
    try:
        unpickler = _dill_classes()[1]
    except ImportError as exc:
        raise pickle.UnpicklingError("this value was stored by dill, which is not installed here") from exc
    return unpickler(io.BytesIO(data), namespace).load()


def _text_array(written: list[Any], adopted: list[tuple[Any, str, bytes]], shape: tuple[int, ...], order: str,
                writeable: bool, segments: list[Any], carried: tuple[str, bytes] | None) -> Any:
    """A text array written by `text_pickle`, and the digest its blob carried, if any."""
    arr = text_pickle.rebuild(written, shape, order, writeable, segments)
    if carried is not None:
        adopted.append((arr, *carried))
    return arr


_BOUND = {"_rebuild_function": _rebuild_function, "_notebook_attribute": _notebook_attribute,
          "_from_dill": _from_dill, "_from_cloudpickle": _from_cloudpickle}


def _bound_class(namespace: dict[str, Any], module: str, name: str) -> Any:
    """What `find_class` resolves against the restoring namespace, or None."""
    if module == __name__ and name in _BOUND:
        return functools.partial(_BOUND[name], namespace)
    if module == "__main__":
        return _notebook_attribute(namespace, name)
    return None


def _from_pandas(cls: type) -> bool:
    return any(getattr(base, "__module__", "").startswith("pandas") for base in cls.__mro__)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, namespace: dict[str, Any], buffers: Any = None,
                 clock: ImportClock | None = None) -> None:
        super().__init__(file, buffers=buffers)
        self.namespace = namespace
        self.clock = clock
        self.adopted: list[tuple[Any, str, bytes]] = []  # text arrays loaded with their digest
        self.written: list[Any] = []  # text segments read so far without the memo (`text_pickle`)
        self.pandas = False  # did the pickle name a pandas class (see `shared_arrays.relink`)

    def persistent_load(self, pid: Any) -> Any:
        if pid == _BUILTINS:
            return builtins.__dict__
        raise pickle.UnpicklingError(f"unknown reference {pid!r}")

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_text_array":
            return functools.partial(_text_array, self.written, self.adopted)
        found = _bound_class(self.namespace, module, name)
        if found is not None:  # a notebook's own class, maybe a DataFrame's subclass
            self.pandas = self.pandas or (isinstance(found, type) and _from_pandas(found))
            return found
        self.pandas = self.pandas or module.startswith("pandas")
        if self.clock is None:
            return super().find_class(module, name)
        if module == "importlib" and name == "import_module":
            return self.clock.import_module  # a module reference: its import is timed when called
        return self.clock.timed(super().find_class, module, name)


def dump_group(values: Mapping[str, Any], file: BinaryIO, namespace: Mapping[str, Any],
               strings: StringMemo | None = None) -> None:
    """Write one group (name -> value) as one pickle, so shared objects stay shared, its large
    buffers beside it (see `frames`). `strings`: the memo whose text digests ride along."""
    pickler = _NamespacePickler if _holds_builtins(values) else _Pickler
    file.write(FRAMED)
    frames = FrameWriter(file)
    pickler(frames, namespace, _shared_roots(values), fallback=has_dill(), buffer_callback=frames.in_band,
            strings=strings).dump(dict(values))
    if frames.waiting:  # cannot happen: the last frame is always written
        raise pickle.PicklingError("a buffer was left without its frame")


def load_group(data: bytes | BinaryIO, namespace: dict[str, Any], strings: StringMemo | None = None,
               clock: ImportClock | None = None) -> dict[str, Any]:
    """Read a group written by `dump_group` (bytes, or a file read front to back), resolving
    notebook names in `namespace`. `strings` is given the text digests the blob carried;
    `clock` the time spent importing the modules and classes it names."""
    file = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    start = read_exact(file, len(FRAMED), allow_short=True)
    if start != FRAMED:  # a bare pickle: the bytes read so far are its first ones
        unpickler = _Unpickler(Prefixed(start, file), namespace, clock=clock)
    else:
        unpickler = _Unpickler(WholeReads(file), namespace, buffers=buffers_from(file), clock=clock)
    values = unpickler.load()
    if not isinstance(values, dict):
        raise pickle.UnpicklingError("blob does not hold a variable group")
    relink = unpickler.pandas and shared_arrays.copy_on_write()
    # Every object the load made, however deep: for pandas' record of shared blocks, and the
    # Arrow data pandas pickled whole.
    made = unpickler.memo.copy().values() if unpickler.pandas and (relink or strings is not None) else ()
    if relink:
        shared_arrays.relink(made)
    if strings is not None:
        for arr, kind, digest in unpickler.adopted:
            strings.adopt(arr, kind, digest)
        for data, whole in shared_arrays.arrow_wholes(made):
            strings.adopt_arrow(data, whole)
    return values


class _CountingSink(io.RawIOBase):
    """A file that only counts what is written to it."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.count += n
        return n


def serialized_size(values: Mapping[str, Any], namespace: Mapping[str, Any]) -> int:
    """Exact size `dump_group` would write, without keeping the bytes (raises if unpicklable)."""
    sink = _CountingSink()
    dump_group(values, sink, namespace)  # type: ignore[arg-type]
    return sink.count
