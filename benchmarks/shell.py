"""The in-process IPython shell the overhead benchmarks drive (IPython.testing.globalipapp)."""

from __future__ import annotations

import time
from typing import Any


def start_shell() -> Any:
    """A real InteractiveShell in this process: `run_cell` fires pre/post_run_cell as in a kernel."""
    from IPython.testing.globalipapp import start_ipython

    return start_ipython()


def run(shell: Any, code: str) -> float:
    """Run one cell as a user would (stored in history, events fired); its wall-clock seconds."""
    started = time.perf_counter()
    result = shell.run_cell(code, store_history=True)
    elapsed = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"cell failed: {code!r}: {result.error_before_exec or result.error_in_exec!r}")
    return elapsed


def allocate_untouched(shell: Any, total_mb: int, arrays: int) -> None:
    """`arrays` float64 arrays of `total_mb` MB in all, every page written (so they are resident)."""
    each = total_mb * 1_000_000 // 8 // arrays
    run(shell, "import numpy as np")
    for i in range(arrays):
        run(shell, f"untouched_{i} = np.full({each}, {i + 1}.0)")
