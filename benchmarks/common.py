"""Shared pieces: sizes for quick/full runs, statistics, memory readings, tables, workers."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any, Sequence

MB = 1_000_000
RESULT_MARKER = "@@benchmark-result "
# Every benchmark process and kernel runs BLAS on one thread, so timings do not swing with
# whatever else the (2-core) machine is doing.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Scale:
    """How big each benchmark is. `full` is sized for 2 cores / 24 GiB; `quick` for < 2 minutes."""

    name: str
    untouched_mb: int  # untouched arrays held next to the measured cells (bench 1 and 2)
    untouched_arrays: int
    big_read_mb: int  # the array a "read big" cell reads (bench 1)
    reps: int  # timed executions per cell kind (bench 1)
    auto_reps: int  # cells per auto-checkpoint phase (bench 2)
    mid_mb: int  # the "100 MB" array changed in bench 2
    workload_scale: float  # 1.0 = full-size notebooks in bench 3

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Scale("full", untouched_mb=2048, untouched_arrays=4, big_read_mb=1024, reps=30, auto_reps=8, mid_mb=100,
             workload_scale=1.0)
QUICK = Scale("quick", untouched_mb=256, untouched_arrays=4, big_read_mb=128, reps=8, auto_reps=3, mid_mb=20,
              workload_scale=0.1)


# Statistics --------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest-rank (with few samples it is the maximum or close to it)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return ordered[rank - 1]


# Memory (Linux /proc) ------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_bytes() -> int:
    """Resident set size of this process now."""
    return _status_kb("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since the process started or since `reset_peak_rss()`."""
    return _status_kb("VmHWM") * 1024


def reset_peak_rss() -> None:
    """Make the peak (VmHWM) start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def drop_page_cache() -> bool:
    """Empty the clean page cache, as a new runtime starts: every file read next (a checkpoint,
    the libraries a restore imports) comes from the disk. False where that is not allowed (not
    root, a read-only /proc in a container)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("1")
        return True
    except OSError:
        return False


# Tables --------------------------------------------------------------------------------------
def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [title, line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value in ("-", "n/a")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def fmt_bytes(n: float | None) -> str:
    """Bytes in human units (decimal)."""
    if n is None:
        return "n/a"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


# Workers -------------------------------------------------------------------------------------
def run_worker(module: str, config: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run `python -m module` with `config` as JSON on stdin; it ends with `print_result`."""
    full_env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                **SINGLE_THREAD, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", module], input=json.dumps(config), capture_output=True, text=True,
        env=full_env, cwd=config.get("cwd", REPO), timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    # IPython 7.34 writes terminal-title escapes to stdout: look for our marker, not a clean line.
    marker = proc.stdout.rfind(RESULT_MARKER)
    if marker < 0:
        raise RuntimeError(f"{module} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout[marker + len(RESULT_MARKER):].splitlines()[0])


def print_result(result: dict[str, Any]) -> None:
    """What a worker does last: its result as one marked JSON line on stdout."""
    print("\n" + RESULT_MARKER + json.dumps(result), flush=True)


def folder_bytes(path: str) -> int:
    """Total size of the files under `path`."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total
