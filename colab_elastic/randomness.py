"""Global random state, so that a rerun cell draws the same numbers it drew the first time.

`random` and numpy's legacy global generator (`np.random.rand`, `np.random.seed`) keep hidden
state that cells advance. We take that state before each cell (a few microseconds) and keep
it only for cells that changed it; a rerun starts from it, so an unseeded
`np.random.rand(3)` gives back the same three numbers. The state after the last cell goes
with the history too: a restore ends there, whatever its reruns drew. Generators the user
holds in a variable (`np.random.default_rng()`) are values like any other: stored, or
rebuilt by rerunning their cells. numpy is used only when the session already imported it.
"""

from __future__ import annotations

import base64
import pickle
import random
import sys
from typing import Any

from .errors import CorruptCheckpointError, describe

State = dict[str, Any]


def capture() -> State:
    """The global random states right now."""
    state: State = {"random": random.getstate()}
    np = sys.modules.get("numpy")
    if np is not None:
        state["numpy"] = np.random.get_state(legacy=False)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "random"):  # a half-imported torch has no generators yet
        state["torch"] = bytes(torch.random.get_rng_state().numpy())
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_initialized():
            state["torch.cuda"] = [bytes(s.cpu().numpy()) for s in cuda.get_rng_state_all()]
    return state


def _tensor(torch: Any, data: bytes) -> Any:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "tobytes") and hasattr(b, "tobytes"):
        return bool(a.tobytes() == b.tobytes())
    return bool(a == b)


def changed(before: State, after: State) -> bool:
    """Did a cell draw from a global generator (or seed one)?"""
    return before.keys() != after.keys() or not all(_same(before[k], after[k]) for k in before)


def encode(state: State) -> str:
    """Plain text for the manifest. Only builtins, bytes and numpy arrays: nothing executable."""
    return base64.b64encode(pickle.dumps(state, protocol=4)).decode("ascii")


def apply(encoded: str) -> None:
    """Put the global generators back where they were before the cell first ran
    (CorruptCheckpointError if the record is damaged)."""
    try:
        _apply(pickle.loads(base64.b64decode(encoded)))
    except Exception as exc:  # noqa: BLE001 - whatever a damaged record raises, it is one line
        raise CorruptCheckpointError(f"the recorded random state is unreadable ({describe(exc)})") from None


def _apply(state: State) -> None:
    random.setstate(state["random"])
    np = sys.modules.get("numpy")
    if "numpy" in state and np is not None:
        np.random.set_state(state["numpy"])
    torch = sys.modules.get("torch")
    if torch is None:
        return  # never imported here yet: nothing of it to put back (we do not import it)
    if "torch" in state:
        torch.random.set_rng_state(_tensor(torch, state["torch"]))
    if "torch.cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_tensor(torch, s) for s in state["torch.cuda"]])
