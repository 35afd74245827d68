"""`python -m benchmarks [--quick] [--only overhead,auto,migration,recording] [--json PATH]`: run and print tables."""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import sys
import time
from typing import Any, Callable

from . import autocheckpoint, loadspeed, migration, overhead, planning, recording
from .common import FULL, QUICK, REPO, Scale

BENCHMARKS: dict[str, tuple[Callable[[Scale], Any], Callable[[Scale, Any], str]]] = {
    "overhead": (overhead.measure, overhead.report),
    "auto": (autocheckpoint.measure, autocheckpoint.report),
    "migration": (lambda s: migration.measure(s, echo=_echo), migration.report),
    "planning": (planning.measure, planning.report),
    "load": (loadspeed.measure, loadspeed.report),
    "recording": (recording.measure, recording.report),
}


def _echo(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import IPython

    memory = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "python": platform.python_version(),
            "ipython": IPython.__version__, "cpus": os.cpu_count(), "memory_gib": round(memory / 2**30, 1),
            "platform": platform.platform()}


def reprint(path: str) -> int:
    """Print the tables of a results JSON written by an earlier run."""
    with open(path) as f:
        results = json.load(f)
    scale = Scale(**results["scale"])
    info = results["machine"]
    print(f"colab_elastic benchmarks ({scale.name}) - {info['date']}, Python {info['python']}, "
          f"IPython {info['ipython']}, {info['cpus']} CPUs, {info['memory_gib']} GiB RAM\n")
    for name, (_, report) in BENCHMARKS.items():
        if name in results:
            print(report(scale, results[name]) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under 2 minutes")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON "
                        "(default for full runs: benchmarks/results-<date>.json)")
    parser.add_argument("--report", metavar="PATH", help="print the tables of a saved results JSON; run nothing")
    args = parser.parse_args(argv)
    if args.report:
        return reprint(args.report)
    scale = QUICK if args.quick else FULL
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    # pip writes the package's bytecode when it installs it; a checkout run with
    # PYTHONDONTWRITEBYTECODE (as CI sets) would compile every module in every new kernel
    # instead, ~90 ms on each `%load_ext` that no installed user pays.
    compileall.compile_dir(os.path.join(REPO, "colab_elastic"), quiet=1)
    info = machine()
    print(f"colab_elastic benchmarks ({scale.name}) - {info['date']}, Python {info['python']}, "
          f"IPython {info['ipython']}, {info['cpus']} CPUs, {info['memory_gib']} GiB RAM\n", flush=True)
    results: dict[str, Any] = {"machine": info, "scale": scale.to_json()}
    for name in chosen:
        measure, report = BENCHMARKS[name]
        _echo(f"running {name} ...")
        started = time.perf_counter()
        results[name] = measure(scale)
        print(report(scale, results[name]) + "\n", flush=True)
        _echo(f"{name} took {time.perf_counter() - started:.0f} s")
    path = args.json or (None if args.quick else os.path.join(REPO, "benchmarks", f"results-{info['date'][:10]}.json"))
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
        print(f"raw results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
