"""torch tensors' memory (storages): fingerprinted by their bytes, pickled as raw buffers.

A tensor pickles as its storage plus an offset, a shape and strides. torch pickles a storage
by running `torch.save` into a fresh in-memory file: a full copy, whose bytes carry the
storage's memory address. Left to that, equal tensors fingerprinted in two processes differed
(every restore of a torch session said its tensors "differ from the original"), and two
tensors sharing one storage (`view = base[1:3]`) came back from one pickle as two copies: each
`Tensor.__reduce_ex__` wraps the storage in a new `TypedStorage`, so pickle's memo never saw
they were one. The `UntypedStorage` under it is one Python object for as long as its memory
lives (torch keeps it), so here it stands for the memory: a shared object to the fingerprint
walk, one memo entry to pickle, written once as a buffer (out of band when large, no copy).

Pure: torch is never imported here, only looked up in `sys.modules`.
"""

from __future__ import annotations

import importlib
import pickle
import sys
import warnings
from typing import Any

from . import pages, shared_arrays
from .errors import RestoreWarning, describe

# Devices whose storages are copied to the host to be read, and rebuilt there on load. Others
# (`meta` has no data; XLA and the like) keep torch's own pickling.
_DEVICES = ("cpu", "cuda", "mps", "xpu")


def types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(typed, untyped) storage classes of the loaded torch, or ((), ()) without torch."""
    torch = sys.modules.get("torch")
    storage = sys.modules.get("torch.storage")
    untyped = getattr(torch, "UntypedStorage", None)
    typed = getattr(storage, "TypedStorage", None)
    if not isinstance(untyped, type) or not isinstance(typed, type):
        return (), ()  # not imported, or half-imported
    return (typed,), (untyped,)


def memory_key(address: int) -> int:
    """A shared-object key for the memory at `address`, the same for a torch storage and for
    the numpy array whose memory it uses (`t = torch.from_numpy(a)`: writing `a` changes `t`).
    Odd, so never a Python object's id (those are multiples of 8)."""
    return (address << 1) | 1


def tensor_type() -> type | None:
    """`torch.Tensor`, or None where torch is not (fully) imported."""
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)
    return tensor if isinstance(tensor, type) else None


def handled(untyped: Any) -> bool:
    """Do we read and write this storage's bytes ourselves (see `_DEVICES`)? Through numpy,
    which torch uses when it is installed (as it always is in Colab)."""
    return untyped.device.type in _DEVICES and sys.modules.get("numpy") is not None


def has_bytes(untyped: Any) -> bool:
    """Does the storage hold data at all (a `meta` tensor has a shape and nothing else)?"""
    return untyped.device.type != "meta"


def label(untyped: Any) -> str:
    """What a storage is, besides its bytes: where it lives and how long it is."""
    return f"storage {untyped.device} {untyped.nbytes()}"


def host_bytes(untyped: Any) -> Any:
    """A storage's bytes as a uint8 numpy array: a view of its memory on the CPU, a copy from
    any other device."""
    torch = sys.modules["torch"]
    if untyped.device.type != "cpu":
        untyped = untyped.cpu()
    return torch.empty(0, dtype=torch.uint8).set_(untyped).numpy()


def reduce_typed(typed: Any) -> tuple[Any, ...]:
    """A `TypedStorage`: its untyped storage (one pickle memo entry for all its tensors) and dtype."""
    return _typed, (typed._untyped_storage, typed.dtype)


def reduce_untyped(untyped: Any) -> tuple[Any, ...]:
    """An `UntypedStorage`: its device and bytes, as a buffer the pickler may write out of band."""
    return _untyped, (str(untyped.device), pickle.PickleBuffer(host_bytes(untyped)))


def over_array(root: Any) -> Any:
    """The storage of `torch.from_numpy(root)`: `root`'s own memory (a contiguous array that owns it)."""
    torch = importlib.import_module("torch")
    flat = shared_arrays.memory_bytes(root)
    with warnings.catch_warnings():  # a read-only array: so was the original's
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(flat).untyped_storage()


def _typed(untyped: Any, dtype: Any) -> Any:
    return sys.modules["torch"].storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _untyped(device: str, data: Any) -> Any:
    torch = importlib.import_module("torch")
    view = memoryview(data).cast("B")
    storage = torch.UntypedStorage(view.nbytes)
    if view.nbytes:
        # Memory of its own, as torch's own load gives (a large one copied a slice at a time,
        # onto the pages `pages` finds faster to fault in).
        pages.copy_into(view, host_bytes(storage))
    if device == "cpu":
        return storage
    try:
        return storage.to(device=torch.device(device))
    except (RuntimeError, AssertionError) as exc:  # no such device here: a CPU-only build asserts
        # A GPU runtime preempted, the session resumed on a CPU one: the trained weights are
        # kept, on the CPU, and said so, rather than lost with the group (its cells, rerun here,
        # would fail to reach the GPU too). The restore's verification names them as differing.
        warnings.warn(f"tensors stored from {device} are loaded on the CPU: this runtime has no {device} "
                      f"({describe(exc)}); move them with .to(device) where it has one", RestoreWarning, stacklevel=2)
        return storage
