"""Helpers the migration benchmark calls inside a kernel, without binding names in it.

Called as `__import__('benchmarks.kernel_side', fromlist=['x']).NAME(...)` so the user
namespace (what dill and "pickle everything" store) holds only the notebook's own variables.
Each helper prints one JSON line; the client times the call (see `migration._timed_json`).
"""

from __future__ import annotations

import json
import os
import pickle
import types
from typing import Any


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


def user_variables() -> dict[str, Any]:
    """The notebook's variables: what `%who` lists (no IPython internals, no `_` names)."""
    shell = _shell()
    hidden = shell.user_ns_hidden
    return {name: value for name, value in shell.user_ns.items()
            if not name.startswith("_") and name not in hidden and not isinstance(value, types.ModuleType)}


def _modules() -> dict[str, str]:
    shell = _shell()
    return {name: value.__name__ for name, value in shell.user_ns.items()
            if isinstance(value, types.ModuleType) and not name.startswith("_") and name not in shell.user_ns_hidden}


def _fsync_write(path: str, write: Any) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def pickle_all(folder: str) -> None:
    """Baseline (c): store everything, one pickle (protocol 5) per variable; modules by name."""
    os.makedirs(folder, exist_ok=True)
    failed = {}
    for name, value in user_variables().items():
        path = os.path.join(folder, name + ".pkl")
        try:
            _fsync_write(path, lambda f, v=value: pickle.dump(v, f, protocol=5))
        except Exception as exc:  # noqa: BLE001 - a baseline reports what it could not store
            failed[name] = f"{type(exc).__name__}: {exc}"[:120]
            os.remove(path)
    _fsync_write(os.path.join(folder, "modules.json"), lambda f: f.write(json.dumps(_modules()).encode()))
    print(json.dumps({"failed": failed}))


def unpickle_all(folder: str) -> None:
    """Restore baseline (c): import the modules, load every pickle into the namespace."""
    import importlib

    ns = _shell().user_ns
    with open(os.path.join(folder, "modules.json")) as f:
        for name, module in json.load(f).items():
            ns[name] = importlib.import_module(module)
    failed = {}
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".pkl"):
            try:
                with open(os.path.join(folder, entry), "rb") as f:
                    ns[entry[:-4]] = pickle.load(f)
            except Exception as exc:  # noqa: BLE001
                failed[entry[:-4]] = f"{type(exc).__name__}: {exc}"[:120]
    print(json.dumps({"failed": failed}))


def dill_dump(path: str) -> None:
    """Baseline (b): `dill.dump_session` of the whole `__main__`."""
    import dill

    error = None
    try:
        dill.dump_session(path)
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    except Exception as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"[:200]
    print(json.dumps({"error": error}))


def dill_load(path: str) -> None:
    """Restore baseline (b): `dill.load_session`."""
    import dill

    error = None
    try:
        dill.load_session(path)
    except Exception as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"[:200]
    print(json.dumps({"error": error}))


def modules() -> None:
    """The names in `sys.modules`, as JSON."""
    import sys

    print(json.dumps(sorted(sys.modules)))


def import_all(names: list[str]) -> None:
    """Import `names` (modules another kernel held), skipping any that cannot be imported on
    its own (an alias such as `os.path`'s, a module only its package can load)."""
    import importlib

    skipped = 0
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a floor measured without it (a lower floor), counted
            skipped += 1
    print(json.dumps({"skipped": skipped}))


def verify(expression: str) -> None:
    """Evaluate the workload's check expression in the user namespace; print it as JSON."""
    try:
        value = eval(expression, _shell().user_ns)  # noqa: S307 - our own benchmark expression
    except Exception as exc:  # noqa: BLE001
        value = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    print(json.dumps(value, default=str))
