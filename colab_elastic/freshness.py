"""Which cached fingerprints a checkpoint may trust, and which it must take again.

Pure: no IPython, no fsspec. The recorder keeps a value's fingerprint from the last cell that
could reach it; cells that could not reach it cannot have changed it. Code that is not a cell
can: a background thread the user started, or a callback the kernel runs between cells (a
widget's observer, a timer). A cached fingerprint is *proven* when

- it was taken after the last cell ran (the recorder refreshes what the cell could reach), or
- the value reaches no mutable object (nothing to change in place: a rebinding is seen), or
- no other code can have run: no thread but the kernel's and ours is alive. Even then small
  values (a callback's usual state) are refreshed, up to `SMALL_BYTES` in all per checkpoint.

What is not proven is fingerprinted again: a stale fingerprint would reuse the blob of the
old content, and a restore would then verify the old value against it and call it equal.
"""

from __future__ import annotations

import os
import threading
from typing import Iterable

from .fingerprint import Fingerprint

# Threads started by these packages run no user code between cells.
_INFRASTRUCTURE = ("ipykernel", "IPython", "zmq", "jupyter_client", "traitlets", "tornado", "tqdm",
                   "colab_elastic", "google.colab")
# Small values not proven are refreshed even in a quiet kernel, up to this many bytes in all.
SMALL_BYTES = int(float(os.environ.get("COLAB_ELASTIC_REFRESH_MB", "4")) * 1e6)


def _is_infrastructure(thread: threading.Thread) -> bool:
    if thread is threading.main_thread() or thread.name.startswith("colab-elastic"):
        return True
    target = getattr(thread, "_target", None)  # a plain Thread(target=...) says its code here
    module = getattr(target, "__module__", None) if target is not None else type(thread).__module__
    return isinstance(module, str) and module.split(".")[0] in {m.split(".")[0] for m in _INFRASTRUCTURE}


def foreign_threads() -> list[str]:
    """Names of live threads that may run user code (not the kernel's, not ours)."""
    return [t.name for t in threading.enumerate() if not _is_infrastructure(t)]


def to_refresh(fingerprints: dict[str, Fingerprint], proven: Iterable[str], *, quiet: bool,
               small_bytes: int = SMALL_BYTES) -> list[str]:
    """The names whose cached fingerprints must be taken again (see the module docstring).
    `proven`: names fingerprinted since the last cell ran; `quiet`: no foreign thread."""
    fresh = set(proven)
    stale = [n for n, fp in fingerprints.items() if n not in fresh and fp.objects]
    if not quiet:
        return sorted(stale)
    chosen, budget = [], small_bytes
    for name in sorted(stale, key=lambda n: (fingerprints[n].size, n)):
        if fingerprints[name].size > budget:
            break
        budget -= fingerprints[name].size
        chosen.append(name)
    return chosen
