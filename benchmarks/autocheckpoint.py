"""Benchmark 2: auto-checkpoints after every cell (`%elastic auto on --interval 0 --after 0`).

One process drives an in-process IPython shell holding a few GB of untouched arrays that
exist before `%load_ext` (so no cell can recompute them: the first checkpoint must store
them). Then, phase by phase, the same cells run with auto-checkpoints off (the baseline) and
on, and we read what the user waits for (`session.autosave.pauses`, the work done on the
kernel's thread after a cell, and the cell's wall-clock), the background upload time, the
bytes each checkpoint wrote (`autosave.last_completed.bytes_written`) and the peak RSS.

After each cell we wait for the background upload to finish before the next one, so every
checkpoint is measured alone (a user typing the next cell gives it that time too).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

from .common import MB, Scale, fmt_bytes, median, p95, peak_rss_bytes, print_result, reset_peak_rss, rss_bytes, run_worker, table

# A cell's own work is simulated by a sleep, so the planner sees an expensive producer and
# stores the changed value rather than planning to rerun the cell.
SMALL_CELL = "time.sleep(0.05)\nsmall += 1.0"
MID_CELL = "time.sleep(0.5)\nmid += 1.0"
# A new pandas text column of distinct Python strings (pandas 2.2's object dtype, Colab's), made
# anew by every run of the cell: the pause is the time to fingerprint and pickle it.
TEXT_CELL = ("time.sleep(0.5)\nrun_no += 1\n"
             "text = pd.Series([f'order #{{i}}-{{run_no}}' for i in range({rows})], dtype=object)")


def _phase(shell: Any, autosave: Any, code: str, reps: int) -> dict[str, Any]:
    """Run `code` `reps` times; per cell: wall-clock, the pause, upload wait, bytes written."""
    from .shell import run

    walls, pauses, uploads, written = [], [], [], []
    base_rss = rss_bytes()
    reset_peak_rss()
    for _ in range(reps):
        before = len(autosave.pauses)
        walls.append(run(shell, code))
        started = time.perf_counter()
        if not autosave.wait(600):
            raise RuntimeError("auto-checkpoint did not finish")
        uploads.append(time.perf_counter() - started)
        if len(autosave.pauses) > before:
            pauses.append(autosave.pauses[-1])
            done = autosave.last_completed
            written.append(done.bytes_written if done is not None else 0)
    return {"walls": walls, "pauses": pauses, "uploads": uploads, "written": written,
            "peak_extra": peak_rss_bytes() - base_rss, "error": autosave.last_error}


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """Build the namespace, then measure the first auto-checkpoint and the steady-state phases."""
    from colab_elastic.extension import current

    from .shell import allocate_untouched, run, start_shell

    shell = start_shell()
    allocate_untouched(shell, config["untouched_mb"], config["untouched_arrays"])
    run(shell, "%load_ext colab_elastic")  # auto is off through the environment for now
    run(shell, "import time")
    run(shell, "small = np.zeros(10_000)")
    run(shell, f"mid = np.full({config['mid_mb'] * MB // 8}, 1.0)")
    autosave = current().session.autosave
    reps = config["reps"]
    results: dict[str, Any] = {"small_bytes": 10_000 * 8, "mid_bytes": config["mid_mb"] * MB // 8 * 8}
    results["off_small"] = _phase(shell, autosave, SMALL_CELL, reps)
    results["off_mid"] = _phase(shell, autosave, MID_CELL, reps)
    text_cell = None
    if _has_pandas():
        run(shell, "import pandas as pd\nrun_no = 0")
        text_cell = TEXT_CELL.format(rows=config["text_rows"])
        results["text_rows"] = config["text_rows"]
        results["off_text"] = _phase(shell, autosave, text_cell, reps)
        results["text_bytes"] = int(shell.user_ns["text"].memory_usage(deep=True))  # read, not run: no cell
    # The cell that turns auto on is itself followed by the first checkpoint: everything.
    results["first"] = _phase(shell, autosave, "%elastic auto on --interval 0 --after 0", 1)
    results["on_small"] = _phase(shell, autosave, SMALL_CELL, reps)
    results["on_mid"] = _phase(shell, autosave, MID_CELL, reps)
    results["on_trivial"] = _phase(shell, autosave, "y = 1", reps)
    if text_cell is not None:
        results["on_text"] = _phase(shell, autosave, text_cell, reps)
    # A long session: the plan over hundreds of recorded cells is made off the kernel's thread.
    for i in range(config["history_cells"]):
        run(shell, f"h{i % 50} = {i}")
    if not autosave.wait(600):
        raise RuntimeError("auto-checkpoint did not finish")
    results["on_small_long"] = _phase(shell, autosave, SMALL_CELL, reps)
    results["history_cells"] = config["history_cells"]
    return results


def _has_pandas() -> bool:
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


def measure(scale: Scale) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-auto-") as tmp:
        env = {"COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_URL": os.path.join(tmp, "ckpt")}
        config = {"untouched_mb": scale.untouched_mb, "untouched_arrays": scale.untouched_arrays,
                  "mid_mb": scale.mid_mb, "reps": scale.auto_reps, "cwd": tmp, "history_cells": 300,
                  "text_rows": 1_000_000 if scale.name == "full" else 100_000}
        return run_worker("benchmarks.autocheckpoint", config, env)


def report(scale: Scale, results: dict[str, Any]) -> str:
    phases = [
        ("first auto-checkpoint (all data)", "first", None,
         scale.untouched_mb * MB + results["mid_bytes"] + results["small_bytes"]),
        (f"small changes ({fmt_bytes(results['small_bytes'])}; 50 ms cell)", "on_small", "off_small",
         results["small_bytes"]),
        (f"mid changes ({fmt_bytes(results['mid_bytes'])}; 0.5 s cell)", "on_mid", "off_mid", results["mid_bytes"]),
        ("nothing changes (y = 1)", "on_trivial", None, 0),
        (f"a new text column ({results.get('text_rows', 0):,} distinct strings; 0.5 s cell)", "on_text", "off_text",
         results.get("text_bytes", 0)),
        (f"small changes after {results.get('history_cells', 0)} more cells", "on_small_long", None,
         results["small_bytes"]),
    ]
    rows = []
    for label, key, off_key, changed in phases:
        if key not in results:
            continue  # results written before this phase existed
        r = results[key]
        off = results[off_key]["walls"] if off_key else []
        rows.append([
            label, len(r["walls"]), 1e3 * median(r["pauses"]), 1e3 * p95(r["pauses"]),
            1e3 * median(r["walls"]), 1e3 * p95(r["walls"]), 1e3 * median(off) if off else "-",
            1e3 * median(r["uploads"]), fmt_bytes(median(r["written"]) if r["written"] else None),
            fmt_bytes(changed), r["peak_extra"] / MB,
        ])
    title = (f"2. Auto-checkpoint after every cell ({scale.name}: {scale.untouched_mb / 1000:.1f} GB of untouched "
             f"arrays in the namespace; target: a local temp folder)")
    text = table(title, ["phase", "cells", "pause med ms", "pause p95 ms", "wall med ms", "wall p95 ms",
                         "wall auto-off ms", "upload med ms", "written/ckpt", "changed", "peak extra MB"], rows)
    note = ("   pause = autosave.pauses (work on the kernel's thread after the cell); wall = the cell as the user "
            "waits for it; upload = the background upload still running after the cell returned")
    errors = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and v.get("error")}
    return text + "\n" + note + (f"\n   errors: {errors}" if errors else "")


if __name__ == "__main__":
    if sys.stdin.isatty():
        from .common import QUICK

        print(report(QUICK, measure(QUICK)))
    else:
        print_result(worker(json.load(sys.stdin)))
