"""Comparing two sessions value by value: the oracle of the demo and the tests.

It runs inside a kernel: `snapshot()` in the original session writes what every user
variable is (with stdlib pickle, independent of how colab_elastic stores things); `compare()`
in the restored session reads it and says, name by name, whether the value and the aliasing
(which names share objects) are the same. Numpy arrays compare by dtype and bytes, pandas
objects by `equals`, functions by code, and values that cannot be pickled (generators,
locks, files) by what can be observed of them. What cannot be looked at without raising (a
dead weak proxy) is described by its type; the builtins namespace (`d['__builtins__']` after
`exec(code, d)`) is, like a module, shared by everything and aliases nothing.
"""

from __future__ import annotations

import builtins
import gc
import inspect
import io
import pickle
import sys
import threading
import types
from typing import Any, Mapping

from .namespace import user_names

_LOCKS = (type(threading.Lock()), type(threading.RLock()))


def _observe(value: Any) -> tuple[str, Any]:
    if isinstance(value, types.ModuleType):
        return "module", value.__name__
    if isinstance(value, type):
        return "class", value.__qualname__
    if isinstance(value, types.FunctionType):
        return "function", (value.__qualname__, value.__code__.co_code, repr(value.__defaults__))
    if isinstance(value, types.GeneratorType):
        return "generator", inspect.getgeneratorstate(value)
    if isinstance(value, _LOCKS):
        return "lock", value.locked() if hasattr(value, "locked") else None
    if isinstance(value, io.IOBase) and not isinstance(value, (io.StringIO, io.BytesIO)):
        return "file", (getattr(value, "name", None), getattr(value, "mode", None), value.closed,
                        None if value.closed else value.tell())
    try:
        return "pickle", pickle.dumps(value, protocol=4)
    except Exception as exc:  # noqa: BLE001 - anything unpicklable is observed by type only
        return "type", f"{type(value).__module__}.{type(value).__qualname__} ({type(exc).__name__})"


def _observe_safely(value: Any) -> tuple[str, Any]:
    try:
        return _observe(value)
    except Exception as exc:  # noqa: BLE001 - e.g. a dead weak proxy: observed by type only
        return "type", f"{type(value).__module__}.{type(value).__qualname__} ({type(exc).__name__})"


def _dtype_types() -> tuple[type, ...]:
    """numpy and pandas dtypes: descriptions shared by every array of a kind, never changed in
    place, so holding the same one is not aliasing (`np.dtype('float64')` is one object). Written
    here, not taken from the fingerprint's `unshared`: this module judges our records independently."""
    found: tuple[type, ...] = ()
    numpy, pandas = sys.modules.get("numpy"), sys.modules.get("pandas")
    if numpy is not None:
        found += (numpy.dtype,)
    if pandas is not None and hasattr(pandas, "api"):
        found += (pandas.api.extensions.ExtensionDtype,)
    return found


def _reachable(value: Any, limit: int = 200_000) -> set[int]:
    """Ids of mutable objects reachable from a value, through real references only."""
    atomic = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)
    leaves = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, *_dtype_types())
    seen: set[int] = set()
    stack = [value]
    while stack and len(seen) < limit:
        obj = stack.pop()
        # `type(obj)`, not `isinstance`: a dead weak proxy raises when asked its class.
        if issubclass(type(obj), leaves) or obj is builtins.__dict__ or id(obj) in seen:
            continue
        if not issubclass(type(obj), atomic):
            seen.add(id(obj))
        if type(obj).__name__ == "ndarray" and obj.base is not None:
            stack.append(obj.base)
        stack.extend(gc.get_referents(obj))
    return seen


def aliasing(namespace: Mapping[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """Pairs of names whose values share a mutable object."""
    reach = {n: _reachable(namespace[n]) for n in names}
    ordered = sorted(names)
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :] if reach[a] & reach[b]]


def snapshot(path: str, namespace: Mapping[str, Any] | None = None, hidden: Mapping[str, Any] | None = None) -> list[str]:
    """Write what every user variable is to `path`; returns the names."""
    namespace, hidden = _shell_namespace(namespace, hidden)
    names = user_names(namespace, hidden)
    record = {"values": {n: _observe_safely(namespace[n]) for n in names}, "aliasing": aliasing(namespace, names)}
    with open(path, "wb") as f:
        pickle.dump(record, f, protocol=4)
    return names


def _equal(a: Any, b: Any, depth: int = 0) -> bool:
    """Deep equality that knows numpy and pandas, and looks inside plain objects."""
    if depth > 50:
        return False
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if type(a) is not type(b):
        # a class recreated in the new session has the same name, not the same identity
        if not (type(a).__qualname__ == type(b).__qualname__ and type(a).__module__ == type(b).__module__):
            return False
    if np is not None and isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.hasobject:
            return all(_equal(x, y, depth + 1) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        return a.tobytes() == b.tobytes()
    if np is not None and isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if pd is not None and isinstance(a, (pd.DataFrame, pd.Series, pd.Index)):
        return bool(a.equals(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_equal(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, (types.FunctionType, type, types.ModuleType)):
        return _observe(a) == _observe(b)
    state_a, state_b = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
    if state_a is not None and state_b is not None and type(a).__eq__ is object.__eq__:
        return _equal(state_a, state_b, depth + 1)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an __eq__ that raises is not equality
        return False


def _same(kind: str, original: Any, value: Any) -> bool:
    if kind != "pickle":
        return _observe_safely(value) == (kind, original)
    if _observe_safely(value) == ("pickle", original):
        return True  # byte-identical
    try:
        before = pickle.loads(original)
    except Exception:  # noqa: BLE001 - e.g. a notebook class not defined here: not the same
        return False
    return _equal(before, value)


def compare(path: str, namespace: Mapping[str, Any] | None = None, hidden: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compare the live session with a snapshot: {"values": {name: "same"|"differs"|"missing"|"extra"},
    "aliasing": {"same": bool, "original": [...], "restored": [...]}}."""
    namespace, hidden = _shell_namespace(namespace, hidden)
    with open(path, "rb") as f:
        record = pickle.load(f)
    names = user_names(namespace, hidden)
    verdicts: dict[str, str] = {}
    for name, (kind, original) in record["values"].items():
        if name not in namespace:
            verdicts[name] = "missing"
        else:
            verdicts[name] = "same" if _same(kind, original, namespace[name]) else "differs"
    for name in names:
        if name not in record["values"]:
            verdicts[name] = "extra"
    restored = aliasing(namespace, [n for n in names if n in record["values"]])
    original = [tuple(p) for p in record["aliasing"]]
    return {"values": verdicts, "aliasing": {"same": restored == original, "original": original, "restored": restored}}


def _shell_namespace(namespace: Mapping[str, Any] | None, hidden: Mapping[str, Any] | None) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    if namespace is not None:
        return namespace, hidden or {}
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns, shell.user_ns_hidden
