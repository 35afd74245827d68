"""Benchmark 6: what recording adds to whole notebooks, cell by cell, without a kernel between.

The migration benchmark times cells from a Jupyter client, one kernel per run: between two
kernels the same pandas cell varies by tens of milliseconds (allocations, page faults), so its
notebook overhead moved from -1% to +17% from run to run on the same code. Here each run is a
fresh process with an IPython shell (`IPython.testing.globalipapp`, events and all, as a cell
from the front end); runs without and with `%load_ext colab_elastic` alternate, and each cell
counts its fastest run of each kind. The table names the cells that cost the most.

The workloads are the migration benchmark's; auto-checkpoints are off (they run in the background
and are measured by benchmark 2).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any

from .common import Scale, median, print_result, run_worker, table
from .workloads import all_workloads

RUNS = {"full": 3, "quick": 1}  # runs of each kind per workload
TOP = 3  # cells named per workload


def worker(config: dict[str, Any]) -> dict[str, Any]:
    from IPython.testing.globalipapp import start_ipython

    workload = {w.name: w for w in all_workloads(config["scale"])}[config["workload"]]
    shell = start_ipython()
    spent = [0.0]  # seconds inside the extension's own event callbacks, this cell
    if config["extension"]:
        shell.run_line_magic("load_ext", "colab_elastic")
        for event in ("pre_run_cell", "post_run_cell"):
            callbacks = shell.events.callbacks[event]
            callbacks[:] = [_timed(callback, spent) for callback in callbacks]
    times, hooks = [], []
    for cell in workload.cells:
        spent[0] = 0.0
        started = time.perf_counter()
        result = shell.run_cell(cell, store_history=True)  # not `silent`: that skips the events
        times.append(time.perf_counter() - started)
        hooks.append(spent[0])
        if not result.success:
            raise RuntimeError(f"cell failed: {cell.splitlines()[0]}")
    return {"cells": times, "hooks": hooks}


def _timed(callback: Any, spent: list[float]) -> Any:
    """`callback`, adding the time it takes to `spent[0]` (shell.events calls it with the event's arguments)."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return callback(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started
    return timed


def measure(scale: Scale) -> list[dict[str, Any]]:
    results = []
    for workload in all_workloads(scale.workload_scale):
        runs: dict[bool, list[list[float]]] = {False: [], True: []}
        hooks: list[list[float]] = []
        with tempfile.TemporaryDirectory(prefix=f"bench-rec-{workload.name}-") as tmp:
            for i in range(RUNS.get(scale.name, 1)):
                for extension in ((False, True) if i % 2 == 0 else (True, False)):
                    config = {"workload": workload.name, "scale": scale.workload_scale, "extension": extension,
                              "cwd": tmp}
                    got = run_worker("benchmarks.recording", config, env={"COLAB_ELASTIC_AUTO": "off"}, timeout=1800)
                    runs[extension].append(got["cells"])
                    if extension:
                        hooks.append(got["hooks"])
        results.append({"workload": workload.name, "cells": workload.cells, "plain": runs[False], "ext": runs[True],
                        "hooks": hooks})
    return results


def _fastest(runs: list[list[float]]) -> list[float]:
    return [min(run[i] for run in runs) for i in range(len(runs[0]))]


def _hooks(r: dict[str, Any]) -> list[float] | None:
    """Per cell, the median over the recorded runs of the time spent in our own callbacks."""
    runs = r.get("hooks")  # results saved before 2026-12-01 (tenth run) have none
    if not runs:
        return None
    return [median([run[i] for run in runs]) for i in range(len(runs[0]))]


def report(scale: Scale, results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        plain, ext = _fastest(r["plain"]), _fastest(r["ext"])
        added = [e - p for p, e in zip(plain, ext)]
        hooks = _hooks(r)
        top = sorted(range(len(added)), key=lambda i: -added[i])[:TOP]
        named = "; ".join(f"+{added[i] * 1000:.0f} ms"
                          + (f" (hooks {hooks[i] * 1000:.0f})" if hooks else "")
                          + f" {r['cells'][i].splitlines()[0][:40]}" for i in top)
        rows.append([r["workload"], round(sum(plain), 2), round(sum(ext), 2),
                     f"{100 * (sum(ext) / sum(plain) - 1):+.1f}%",
                     f"{sum(hooks):.3f}" if hooks else "-",
                     f"{100 * sum(hooks) / sum(plain):.1f}%" if hooks else "-", named])
    return table(f"6. Recording overhead in one IPython shell per run, no kernel ({scale.name}; each cell's "
                 f"fastest of {len(results[0]['plain']) if results else 0} runs each way; hooks: the median "
                 "time inside our own event callbacks; auto-checkpoints off)",
                 ["workload", "plain s", "recorded s", "added", "hooks s", "hooks", "costliest cells (added)"], rows)


if __name__ == "__main__":
    print_result(worker(json.load(sys.stdin)))
