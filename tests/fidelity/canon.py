"""A canonical, pickle-free form of a value, computed inside a kernel: the fidelity oracle.

The test sends this file's source to a kernel and calls `evaluate(expressions, namespace)` in
a private dict (a silent execution, so colab_elastic records nothing). Two kernels agree on a
value when they print the same JSON for it. It knows nothing of colab_elastic's own records:
floats compare by `float.hex` (exactly, NaN included), numpy arrays by dtype, shape, order and
`tolist()`, pandas objects by `to_dict` and their dtypes and index, anything else by its type
and `repr` with memory addresses blanked out.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any, Iterable, Mapping

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _type(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _float(value: float) -> str:
    return "nan" if math.isnan(value) else float(value).hex()


def _numpy(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if isinstance(value, np.ma.MaskedArray):
        return ["masked", _type(value), str(value.dtype), canon(value.data.tolist()),
                canon(np.ma.getmaskarray(value).tolist()), canon(value.fill_value)]
    if isinstance(value, np.ndarray):
        order = "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
        return ["ndarray", _type(value), str(value.dtype), list(value.shape), order, canon(value.tolist())]
    if isinstance(value, np.generic):
        return ["npscalar", _type(value), canon(value.item())]
    if isinstance(value, np.dtype):
        return ["dtype", str(value)]
    return None


def _pandas(value: Any) -> Any:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if isinstance(value, pd.DataFrame):
        return ["DataFrame", [str(t) for t in value.dtypes], canon(value.index), canon(value.columns),
                canon(value.to_dict("split")["data"])]
    if isinstance(value, pd.Series):
        return ["Series", str(value.dtype), repr(value.name), canon(value.index), canon(value.tolist())]
    if isinstance(value, pd.MultiIndex):
        return ["MultiIndex", canon(list(value.names)), canon(value.tolist())]
    if isinstance(value, pd.Index):
        return ["Index", _type(value), str(value.dtype), repr(value.name), canon(value.tolist()),
                str(getattr(value, "freq", None))]
    if isinstance(value, pd.Categorical):
        return ["Categorical", canon(value.categories), bool(value.ordered), canon(value.codes.tolist())]
    return None


def canon(value: Any) -> Any:
    """A JSON-able form that two kernels share exactly when the values are the same."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and type(value) is int:
        return ["int", str(value)]
    if type(value) is float:
        return ["float", _float(value)]
    if type(value) is complex:
        return ["complex", _float(value.real), _float(value.imag)]
    for special in (_numpy, _pandas):
        form = special(value)
        if form is not None:
            return form
    if type(value) in (list, tuple):
        return [type(value).__name__, [canon(v) for v in value]]
    if type(value) in (set, frozenset):
        return [type(value).__name__, sorted((canon(v) for v in value), key=repr)]
    if isinstance(value, Mapping) and type(value).__module__ == "builtins":
        return [type(value).__name__, [[canon(k), canon(v)] for k, v in value.items()]]
    if isinstance(value, float):
        return [_type(value), _float(value)]
    return [_type(value), _ADDRESS.sub(" at 0x?", repr(value))]


def evaluate(expressions: Iterable[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """expression -> its canonical value, or the exception it raised (also canonical)."""
    results = {}
    for expression in expressions:
        try:
            results[expression] = canon(eval(expression, namespace))
        except BaseException as exc:  # noqa: BLE001 - a raised error is an observation too
            results[expression] = ["raised", _type(exc), str(exc)]
    return results
