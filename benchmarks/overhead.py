"""Benchmark 1: what recording costs per cell, with auto-checkpoints off.

Two fresh processes, each driving an in-process IPython shell that holds the same namespace
(untouched arrays of a few GB, one big array the cells read, a small array, a fitted 200-tree
random forest, a 3x3 grid of histograms): one without the
extension, one after `%load_ext colab_elastic`. Each runs the same cells, interleaved, and
the added latency is the difference of their per-cell wall-clock statistics. Peak memory is
the rise of VmHWM above the RSS measured after the namespace was built.

Run alone: `python -m benchmarks.overhead` (driver); the worker reads its config on stdin.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

from .common import MB, Scale, median, p95, peak_rss_bytes, print_result, reset_peak_rss, rss_bytes, run_worker, table

# (kind, code) cells, run interleaved `reps` times.
CELLS: list[tuple[str, str]] = [
    ("trivial (y = 1)", "y = 1"),
    ("read small", "total = float(small.sum())"),
    ("modify small in place", "small += 1.0"),
    ("rebind small", "small = small * 0.5"),
    ("read big array", "big_sum = float(big.sum())"),
    ("read a fitted 200-tree forest", "pred = forest.predict(Xs[:5])"),
    ("read a 3x3 figure", "width = fig.get_figwidth()"),
    ("change a 3x3 figure", "axs[0, 0].set_title('first')"),
]
# Built before the timed cells, in both processes: what the forest and figure cells read.
_MODELS = """\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestClassifier
rs = np.random.default_rng(0)
Xs = rs.standard_normal((2000, 10))
forest = RandomForestClassifier(n_estimators=200, max_depth=8, random_state=0, n_jobs=1).fit(Xs, Xs[:, 0] > 0)
fig, axs = plt.subplots(3, 3)
for axis in axs.flat:
    axis.hist(rs.standard_normal(1000), bins=30)
"""


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """Build the namespace, optionally load the extension, time the cells; return the figures."""
    from .shell import allocate_untouched, run, start_shell

    shell = start_shell()
    allocate_untouched(shell, config["untouched_mb"], config["untouched_arrays"])
    run(shell, f"big = np.full({config['big_read_mb'] * MB // 8}, 0.5)")
    run(shell, "small = np.zeros(10_000)")
    run(shell, _MODELS)
    if config["loaded"]:
        run(shell, "%load_ext colab_elastic")
    for kind, code in CELLS:  # warm-up: imports, first fingerprints, caches
        run(shell, code)
        run(shell, code)
    base_rss = rss_bytes()
    reset_peak_rss()
    times: dict[str, list[float]] = {kind: [] for kind, _ in CELLS}
    for _ in range(config["reps"]):
        for kind, code in CELLS:
            times[kind].append(run(shell, code))
    return {"times": times, "base_rss": base_rss, "peak_extra": peak_rss_bytes() - base_rss,
            "rss_extra": rss_bytes() - base_rss}


def measure(scale: Scale) -> dict[str, Any]:
    """Run the baseline and the loaded variant; return both raw results."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        env = {"COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_URL": os.path.join(tmp, "ckpt")}
        for loaded in (False, True):
            config = {"untouched_mb": scale.untouched_mb, "untouched_arrays": scale.untouched_arrays,
                      "big_read_mb": scale.big_read_mb, "reps": scale.reps, "loaded": loaded, "cwd": tmp}
            results["loaded" if loaded else "baseline"] = run_worker("benchmarks.overhead", config, env)
    return results


def report(scale: Scale, results: dict[str, Any]) -> str:
    """The per-cell latency table and the memory line."""
    base, ext = results["baseline"], results["loaded"]
    rows = []
    for kind, _ in CELLS:
        b, e = base["times"][kind], ext["times"][kind]
        rows.append([kind, 1e3 * median(b), 1e3 * median(e), 1e3 * (median(e) - median(b)),
                     1e3 * p95(b), 1e3 * p95(e), 1e3 * (p95(e) - p95(b))])
    namespace = (scale.untouched_mb + scale.big_read_mb) / 1000
    title = (f"1. Per-cell recording overhead, auto-checkpoint off ({scale.name}: namespace {namespace:.1f} GB = "
             f"{scale.untouched_arrays} untouched arrays of {scale.untouched_mb / scale.untouched_arrays:.0f} MB + "
             f"a {scale.big_read_mb} MB array read by 'read big array'; {scale.reps} runs per cell)")
    text = table(title, ["cell", "base med ms", "ext med ms", "added med ms", "base p95 ms", "ext p95 ms",
                         "added p95 ms"], rows)
    mem = table("   peak RSS during the timed cells, above the RSS after the namespace was built",
                ["variant", "RSS before MB", "peak extra MB", "RSS extra after MB"],
                [[name, r["base_rss"] / MB, r["peak_extra"] / MB, r["rss_extra"] / MB]
                 for name, r in (("no extension", base), ("%load_ext colab_elastic", ext))])
    return text + "\n\n" + mem


if __name__ == "__main__":
    if sys.stdin.isatty():
        from .common import QUICK

        print(report(QUICK, measure(QUICK)))
    else:
        print_result(worker(json.load(sys.stdin)))
