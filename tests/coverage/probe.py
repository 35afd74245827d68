"""Equality and serializer checks computed inside a kernel: the coverage oracle.

The runner sends this file's source to a kernel in a silent execution (colab_elastic records
nothing), so it may import only the standard library at the top. `same(a, b)` is the
library's own equality where it has one (`np.array_equal`, `df.equals`, `torch.equal`,
`==`), else the state (`__dict__`, compared recursively); it knows nothing of colab_elastic's
fingerprints. `compare` runs a case's cells again in a private namespace: the value a
restored variable is compared with.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import sys
import traceback
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _kind(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _numpy(a: Any, b: Any) -> bool | None:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if isinstance(a, np.ma.MaskedArray):
        return (a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.data, b.data)
                and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
                and same(a.fill_value, b.fill_value))
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or a.flags.f_contiguous != b.flags.f_contiguous:
            return False
        if a.dtype.hasobject:
            return all(same(x, y) for x, y in zip(a.ravel(order="K").tolist(), b.ravel(order="K").tolist()))
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.random.Generator):
        return same(a.bit_generator.state, b.bit_generator.state)
    if isinstance(a, np.random.RandomState):
        return same(a.get_state(legacy=False), b.get_state(legacy=False))
    if isinstance(a, np.generic):
        return same(a.item(), b.item()) and a.dtype == b.dtype
    return None


def _pandas(a: Any, b: Any) -> bool | None:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return bool(a.equals(b)) and same(getattr(a, "attrs", {}), getattr(b, "attrs", {})) and (
            list(map(str, a.dtypes)) == list(map(str, b.dtypes)) if isinstance(a, pd.DataFrame) else str(a.dtype) == str(b.dtype)
        ) and a.index.equals(b.index) and (not isinstance(a, pd.Series) or a.name == b.name)
    if isinstance(a, pd.Index):
        return bool(a.equals(b)) and str(a.dtype) == str(b.dtype) and list(a.names) == list(b.names)
    if isinstance(a, pd.Categorical):
        return bool(a.equals(b)) and a.ordered == b.ordered
    return None


def _torch(a: Any, b: Any) -> bool | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(a, torch.Tensor):
        return (a.dtype == b.dtype and a.device == b.device and a.requires_grad == b.requires_grad
                and bool(torch.equal(a.detach(), b.detach())))
    if isinstance(a, torch.nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        return list(sa) == list(sb) and all(same(sa[k], sb[k]) for k in sa) and a.training == b.training
    if isinstance(a, torch.optim.Optimizer):
        return same(a.state_dict(), b.state_dict())
    if isinstance(a, torch.Generator):
        return same(a.get_state(), b.get_state())
    return None


def _by_state(a: Any, b: Any, seen: set) -> bool:
    state_a, state_b = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
    if state_a is None and hasattr(type(a), "__slots__"):
        slots = [s for t in type(a).__mro__ for s in getattr(t, "__slots__", ())]
        state_a = {s: getattr(a, s, None) for s in slots}
        state_b = {s: getattr(b, s, None) for s in slots}
    if state_a is None or state_b is None:
        return _ADDRESS.sub("", repr(a)) == _ADDRESS.sub("", repr(b))
    return _same(state_a, state_b, seen)


def same(a: Any, b: Any) -> bool:
    """Is `b` the same value as `a`, by the library's own equality or else by state?"""
    return _same(a, b, set())


def _same(a: Any, b: Any, seen: set) -> bool:
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, type):
        return _kind(a) == _kind(b) and a.__qualname__ == b.__qualname__
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b
    if (id(a), id(b)) in seen:
        return True
    seen.add((id(a), id(b)))
    for special in (_numpy, _pandas, _torch):
        verdict = special(a, b)
        if verdict is not None:
            return bool(verdict)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y, seen) for x, y in zip(a, b))
    if isinstance(a, dict) and type(a).__module__ in ("builtins", "collections"):
        return (list(a) == list(b) if type(a).__name__ == "OrderedDict" else set(a) == set(b)) and all(
            _same(a[k], b[k], seen) for k in a)
    notebook = type(a).__module__ == "__main__"  # its class object differs in a rebuilt namespace
    if not notebook and type(a).__eq__ is not object.__eq__:
        try:
            verdict = a == b
            if isinstance(verdict, bool):
                return verdict
            if hasattr(verdict, "all"):
                return bool(verdict.all())
        except (TypeError, ValueError):
            pass  # an equality that refuses this pair: compare the state
    return _by_state(a, b, seen)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


def rebuild_namespace(cells: list[str], name: str) -> dict[str, Any]:
    scratch: dict[str, Any] = {"__name__": "__main__"}
    for cell in cells:
        exec(compile(cell, f"<rebuild {name}>", "exec"), scratch)
    return scratch


def compare(value: Any, cells: list[str], name: str, state: str | None,
            namespace: dict[str, Any]) -> tuple[bool | None, str]:
    """(equal?, note): `value` (living in `namespace`) against one rebuilt from `cells`,
    through the case's `state` expression if it has one (evaluated in each value's namespace)."""
    try:
        scratch = rebuild_namespace(cells, name)
        other = scratch[name]
        if state:
            value, other = eval(state, {**namespace, "v": value}), eval(state, {**scratch, "v": other})
        return same(value, other), ""
    except BaseException as exc:  # noqa: BLE001 - a failure to compare is an observation
        return None, _error(exc)


def round_trips(value: Any, state: str | None, namespace: dict[str, Any]) -> dict[str, str]:
    """Per serializer (the C pickler, dill, cloudpickle): 'equal', 'differs' or why it failed.
    Measured on the live value alone, outside colab_elastic."""
    results: dict[str, str] = {}
    for name in ("pickle", "dill", "cloudpickle"):
        try:
            module = pickle if name == "pickle" else __import__(name)
            copy = module.loads(module.dumps(value, protocol=5))
            a, b = (eval(state, {**namespace, "v": value}), eval(state, {**namespace, "v": copy})) if state else (value, copy)
            results[name] = "equal" if same(a, b) else "differs"
        except BaseException as exc:  # noqa: BLE001
            results[name] = _error(exc)
    return results


def stored_by(value: Any, name: str, namespace: dict[str, Any]) -> str:
    """Which path colab_elastic's serializer takes for this value alone: 'pickle' (the C
    pickler), 'dill' or 'cloudpickle' (a nested pickle for some part), or why it fails."""
    try:
        from colab_elastic.serialize import dump_group

        buffer = io.BytesIO()
        dump_group({name: value}, buffer, namespace)
        data = buffer.getvalue()
        return "cloudpickle" if b"_from_cloudpickle" in data else "dill" if b"_from_dill" in data else "pickle"
    except BaseException as exc:  # noqa: BLE001
        return _error(exc)


def describe_error() -> str:
    return traceback.format_exc(limit=3)
