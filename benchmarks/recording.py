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

from .common import Scale, print_result, run_worker, table
from .workloads import all_workloads

RUNS = {"full": 3, "quick": 1}  # runs of each kind per workload
TOP = 3  # cells named per workload


def worker(config: dict[str, Any]) -> dict[str, Any]:
    from IPython.testing.globalipapp import start_ipython

    workload = {w.name: w for w in all_workloads(config["scale"])}[config["workload"]]
    shell = start_ipython()
    if config["extension"]:
        shell.run_line_magic("load_ext", "colab_elastic")
    times = []
    for cell in workload.cells:
        started = time.perf_counter()
        result = shell.run_cell(cell, store_history=True)  # not `silent`: that skips the events
        times.append(time.perf_counter() - started)
        if not result.success:
            raise RuntimeError(f"cell failed: {cell.splitlines()[0]}")
    return {"cells": times}


def measure(scale: Scale) -> list[dict[str, Any]]:
    results = []
    for workload in all_workloads(scale.workload_scale):
        runs: dict[bool, list[list[float]]] = {False: [], True: []}
        with tempfile.TemporaryDirectory(prefix=f"bench-rec-{workload.name}-") as tmp:
            for i in range(RUNS.get(scale.name, 1)):
                for extension in ((False, True) if i % 2 == 0 else (True, False)):
                    config = {"workload": workload.name, "scale": scale.workload_scale, "extension": extension,
                              "cwd": tmp}
                    got = run_worker("benchmarks.recording", config, env={"COLAB_ELASTIC_AUTO": "off"}, timeout=1800)
                    runs[extension].append(got["cells"])
        results.append({"workload": workload.name, "cells": workload.cells, "plain": runs[False], "ext": runs[True]})
    return results


def _fastest(runs: list[list[float]]) -> list[float]:
    return [min(run[i] for run in runs) for i in range(len(runs[0]))]


def report(scale: Scale, results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        plain, ext = _fastest(r["plain"]), _fastest(r["ext"])
        added = [e - p for p, e in zip(plain, ext)]
        top = sorted(range(len(added)), key=lambda i: -added[i])[:TOP]
        named = "; ".join(f"+{added[i] * 1000:.0f} ms {r['cells'][i].splitlines()[0][:40]}" for i in top)
        rows.append([r["workload"], round(sum(plain), 2), round(sum(ext), 2),
                     f"{100 * (sum(ext) / sum(plain) - 1):+.1f}%", named])
    return table(f"6. Recording overhead in one IPython shell per run, no kernel ({scale.name}; each cell's "
                 f"fastest of {len(results[0]['plain']) if results else 0} runs each way; auto-checkpoints off)",
                 ["workload", "plain s", "recorded s", "added", "costliest cells (added)"], rows)


if __name__ == "__main__":
    print_result(worker(json.load(sys.stdin)))
