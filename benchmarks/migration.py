"""Benchmark 3: migration and restore in real kernels, against three baselines.

For each workload (see workloads.py), with every kernel a real ipykernel process:

- colab_elastic: run the cells after `%load_ext colab_elastic`, time `%elastic checkpoint DIR`,
  SIGKILL the kernel, start a new one, time `%load_ext` + `%elastic restore DIR`.
- rerun all: a new kernel without the extension runs every cell from the top (no checkpoint).
- dill session: `dill.dump_session(file)` in that kernel, `dill.load_session(file)` in a new one.
- pickle everything: every user variable pickled with protocol 5 to its own file (what a plan
  that never recomputes would store), loaded back in a new kernel.

Every restored kernel evaluates the workload's `verify` expression; it must equal the original's.
Each method restores `RESTORES` times, each in a kernel of its own, the methods taking turns
(round after round, each first in one round: a machine that drifts weighs on all alike); the
median is reported.
Then once more with the page cache emptied first ("cold", as root): a new runtime reads the
checkpoint, and the libraries the restore imports, from the disk. Files are fsync'd by every
method (colab_elastic's store does it too). Kernel start-up time is not counted anywhere.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Iterator
from typing import Any, Callable

from colab_elastic.kernel import Kernel

from .common import REPO, SINGLE_THREAD, Scale, drop_page_cache, fmt_bytes, folder_bytes, median, table
from .workloads import Workload, all_workloads

_HELPERS = "__import__('benchmarks.kernel_side', fromlist=['x'])"
# Restores per method, each in a fresh kernel, the median reported: one restore of the same
# checkpoint moved by 0.2 s from kernel to kernel (sklearn's imports alone: 1.3 s), more than
# the methods differ by.
RESTORES = {"full": 3, "quick": 1}


@dataclass
class MethodResult:
    """One method on one workload."""

    method: str
    checkpoint_s: float | None
    bytes: int | None
    restore_s: float | None  # the median of `restores_s`
    same: bool | None  # every restore equal to the original
    note: str = ""
    restores_s: list[float] = field(default_factory=list)  # each restore, in a kernel of its own
    # After each restore: the workload's `verify` expression run as a cell of the user's, what the
    # first cell after a restore pays (ours: the recorder's first look at what it reads).
    first_cell_s: list[float] = field(default_factory=list)
    # One more restore, the page cache emptied first: a new runtime reads the checkpoint and the
    # libraries it imports from the disk (None where the cache cannot be emptied: not root).
    cold_restore_s: float | None = None


@dataclass
class WorkloadResult:
    workload: str
    description: str
    notebook_s: float  # all cells, no extension
    notebook_ext_s: float  # all cells, extension loaded (auto-checkpoint off)
    methods: list[MethodResult] = field(default_factory=list)
    # Seconds per cell of every run without / with the extension: the recording overhead is
    # taken from each cell's fastest run of each kind (one slow outlier moves a sum by seconds).
    cells_plain: list[list[float]] = field(default_factory=list)
    cells_ext: list[list[float]] = field(default_factory=list)
    plan: dict[str, list[str]] = field(default_factory=dict)
    # Seconds to import, in a fresh kernel, every module a restored session holds (what
    # pickle-everything's restore left in `sys.modules`): a floor no restore goes under.
    imports_s: float | None = None


def _env() -> dict[str, str]:
    # One BLAS thread: on 2 shared cores, multi-threaded BLAS made the same cell vary 1-9 s.
    return {"COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_PROGRESS": "text", **SINGLE_THREAD,
            "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _timed(kernel: Kernel, code: str, timeout: float = 1800) -> tuple[float, Any]:
    started = time.perf_counter()
    out = kernel.run(code, timeout=timeout)
    elapsed = time.perf_counter() - started
    out.raise_for_error()
    return elapsed, out


def _json(kernel: Kernel, call: str) -> Any:
    return _timed_json(kernel, call)[1]


def _timed_json(kernel: Kernel, call: str) -> tuple[float, Any]:
    """A helper's JSON line, and the seconds the client waited for it: every method is timed
    from the client, as ours is (`%load_ext` and the magic), never by its own clock."""
    elapsed, out = _timed(kernel, f"{_HELPERS}.{call}")
    return elapsed, json.loads(out.stdout.strip().splitlines()[-1])


def _run_cells(kernel: Kernel, workload: Workload, into: list[list[float]]) -> float:
    into.append([_timed(kernel, cell)[0] for cell in workload.cells])
    return sum(into[-1])


def _recording_runs(workload: Workload, tmp: str, result: WorkloadResult, pairs: int) -> None:
    """`pairs` more runs of the notebook without and with the extension, in fresh kernels,
    alternating which goes first: the first pair (the restore runs) went extension first."""
    for i in range(pairs):
        for extension in ((False, True) if i % 2 == 0 else (True, False)):
            with _new_kernel(tmp) as kernel:
                if extension:
                    _timed(kernel, "%load_ext colab_elastic")
                _run_cells(kernel, workload, result.cells_ext if extension else result.cells_plain)


def recording_overhead(result: dict[str, Any]) -> float:
    """Percent added by recording: the sums of each cell's fastest run with and without it."""
    plain, ext = result.get("cells_plain"), result.get("cells_ext")
    if not plain or not ext:  # a result file from before per-cell runs were kept
        return 100 * (result["notebook_ext_s"] / result["notebook_s"] - 1)
    fastest = [sum(min(run[i] for run in runs) for i in range(len(runs[0]))) for runs in (plain, ext)]
    return 100 * (fastest[1] / fastest[0] - 1)


def _verify(kernel: Kernel, workload: Workload) -> Any:
    return _json(kernel, f"verify({workload.verify!r})")


def _cold(tmp: str, restore: Callable[[Kernel], float]) -> float | None:
    """Seconds of `restore` in a fresh kernel after the page cache was emptied; None if it cannot be."""
    with _new_kernel(tmp) as kernel:
        return restore(kernel) if drop_page_cache() else None


def _first_cell(kernel: Kernel, workload: Workload) -> float:
    """Seconds of the first cell after a restore: the workload's check, as the user would type it."""
    return _timed(kernel, f"first_look = {workload.verify}")[0]


def _plan_summary(kernel: Kernel) -> dict[str, list[str]]:
    """The plan's names per action, and under "estimate" its restore and import seconds."""
    code = ("print((lambda plan: __import__('json').dumps({**{a: sorted(n for g in plan.by_action(a) for n in g.names) "
            "for a in ('store', 'recompute', 'lost')}, "
            "'estimate': [f'{plan.restore_seconds:.2f}', f'{plan.import_seconds:.2f}']}))"
            "(__import__('colab_elastic.extension', fromlist=['x']).current().session.last_checkpoint.plan))")
    out = kernel.run(code)
    out.raise_for_error()
    return json.loads(out.stdout.strip().splitlines()[-1])


def _new_kernel(cwd: str) -> Kernel:
    """A started kernel that has run one cell: a kernel's first cell costs ~0.2 s more than
    the next (ipykernel's own start-up), which no method's timing should carry. The cell
    imports the helpers, so that calling them later costs every method alike."""
    kernel = Kernel(cwd=cwd, env=_env(), log=os.path.join(cwd, "kernels.log"))
    try:
        kernel.run(f"{_HELPERS} and None").raise_for_error()
    except BaseException:
        kernel.close()
        raise
    return kernel


def _fresh_kernels(tmp: str, count: int) -> Iterator[Kernel]:
    """`count` new kernels (see `_new_kernel`), one at a time: each is closed when the next is
    asked for, or when the loop over them ends or breaks."""
    for _ in range(count):
        with _new_kernel(tmp) as kernel:
            yield kernel


class _LoadFailed(Exception):
    """A baseline could not load what it stored (dill on an object it cannot rebuild)."""


class _Restorer:
    """One method's stored session and how a fresh kernel loads it; what its restores measured."""

    def __init__(self, name: str, checkpoint_s: float | None, size: int | None, load: Callable[[Kernel], float],
                 note: Callable[[], str] = str) -> None:
        self.name, self.checkpoint_s, self.size, self.load, self.note = name, checkpoint_s, size, load, note
        self.times: list[float] = []
        self.firsts: list[float] = []
        self.same: bool | None = True
        self.error = ""

    def once(self, kernel: Kernel, workload: Workload, original: Any) -> None:
        """Restore in `kernel`, then time the first cell and check the values."""
        if self.error:
            return
        try:
            self.times.append(self.load(kernel))
        except _LoadFailed as exc:
            self.error, self.same = str(exc), None
            return
        self.firsts.append(_first_cell(kernel, workload))
        self.same = bool(self.same) and _verify(kernel, workload) == original

    def result(self, tmp: str) -> MethodResult:
        """What its restores measured, with one more restore from a cold page cache."""
        try:
            cold = None if self.error else _cold(tmp, self.load)
        except _LoadFailed as exc:  # loaded warm, not cold: said, not hidden
            cold, self.error = None, f"cold load failed: {exc}"
        return MethodResult(self.name, self.checkpoint_s, self.size, median(self.times) if self.times else None,
                            self.same, self.error or self.note(), self.times, self.firsts, cold)


def _elastic(workload: Workload, tmp: str, result: WorkloadResult) -> tuple[Any, _Restorer]:
    """Record and checkpoint, then kill the kernel. Returns the original verify value."""
    url = os.path.join(tmp, "elastic")
    kernel = _new_kernel(tmp)
    try:
        _timed(kernel, "%load_ext colab_elastic")
        result.notebook_ext_s = _run_cells(kernel, workload, result.cells_ext)
        checkpoint_s, _ = _timed(kernel, f"%elastic checkpoint {url}")
        result.plan = _plan_summary(kernel)
        original = _verify(kernel, workload)
        kernel.kill()
    except BaseException:
        kernel.close()
        raise

    problems: list[str] = []  # what our own report found wrong, beside the `verify` check

    def restore(kernel: Kernel) -> float:
        extension_s = _timed(kernel, "%load_ext colab_elastic")[0]
        restore_s, out = _timed(kernel, f"%elastic restore {url}")
        if "restored with problems" in out.text and not problems:
            problems.append(" ".join(out.text.split())[:300])
        return extension_s + restore_s

    restore_est, imports_est = result.plan.get("estimate", ["?", "?"])
    note = (f"store {','.join(result.plan.get('store', [])) or '-'}; rerun for {','.join(result.plan.get('recompute', [])) or '-'}; "
            f"est. restore {restore_est} s, of which imports {imports_est} s")
    return original, _Restorer("colab_elastic", checkpoint_s, folder_bytes(url), restore,
                               lambda: note + (f"; our report: {problems[0]}" if problems else ""))


def _baselines(workload: Workload, tmp: str, original: Any, result: WorkloadResult) -> tuple[list[_Restorer], list[str]]:
    """Rerun all cells (its result is final here); dill.dump_session; pickle every variable.
    Returns the two that restore, and the modules pickle-everything's restores imported."""
    dill_path, pickles = os.path.join(tmp, "session.dill"), os.path.join(tmp, "pickles")
    kernel = _new_kernel(tmp)
    try:
        result.notebook_s = _run_cells(kernel, workload, result.cells_plain)
        rerun_same = _verify(kernel, workload) == original
        dump_s, dumped = _timed_json(kernel, f"dill_dump({dill_path!r})")
        pickle_s, pickled = _timed_json(kernel, f"pickle_all({pickles!r})")
        kernel.kill()
    except BaseException:
        kernel.close()
        raise
    result.methods.append(MethodResult("rerun all cells", None, None, result.notebook_s, rerun_same))
    restorers = []
    if dumped["error"]:
        result.methods.append(MethodResult("dill.dump_session", dump_s, None, None, None,
                                           f"dump failed: {dumped['error']}"))
    else:
        def dill_load(kernel: Kernel) -> float:
            load_s, loaded = _timed_json(kernel, f"dill_load({dill_path!r})")
            if loaded["error"]:
                raise _LoadFailed(loaded["error"])
            return load_s

        restorers.append(_Restorer("dill.dump_session", dump_s, os.path.getsize(dill_path), dill_load))
    held: list[str] = []
    failed = dict(pickled["failed"])

    def unpickle_all(kernel: Kernel) -> float:
        before = set(_json(kernel, "modules()"))
        load_s, loaded = _timed_json(kernel, f"unpickle_all({pickles!r})")
        if not held:  # what the first restore imported
            held[:] = sorted(set(_json(kernel, "modules()")) - before)
        failed.update(loaded["failed"])
        return load_s

    restorers.append(_Restorer("pickle everything (p5)", pickle_s, folder_bytes(pickles), unpickle_all,
                               lambda: f"not stored/loaded: {', '.join(sorted(failed))}" if failed else ""))
    return restorers, held


def measure_workload(workload: Workload, pairs: int = 1, restores: int = 1) -> WorkloadResult:
    """Every method stores the session once, then restores `restores` times, taking turns (see
    the module's docstring), then once more from a cold page cache."""
    result = WorkloadResult(workload.name, workload.description, 0.0, 0.0)
    with tempfile.TemporaryDirectory(prefix=f"bench-{workload.name}-") as tmp:
        original, ours = _elastic(workload, tmp, result)
        baselines, held = _baselines(workload, tmp, original, result)
        restorers = [ours, *baselines]
        for round_ in range(restores):
            # Each goes first in turn: the first restore after a kernel died lands on the memory
            # it freed, which this VM is handing back to its host just then.
            first = round_ % len(restorers)
            for restorer in restorers[first:] + restorers[:first]:
                with _new_kernel(tmp) as kernel:
                    restorer.once(kernel, workload, original)
        result.methods[:0] = [ours.result(tmp)]
        result.methods += [r.result(tmp) for r in baselines]
        result.imports_s = median([_timed_json(third, f"import_all({held!r})")[0]
                                   for third in _fresh_kernels(tmp, restores)])
        _recording_runs(workload, tmp, result, pairs)
    return result


def measure(scale: Scale, echo: Any = None) -> list[dict[str, Any]]:
    results = []
    for workload in all_workloads(scale.workload_scale):
        started = time.perf_counter()
        results.append(asdict(measure_workload(workload, restores=RESTORES.get(scale.name, 1))))
        if echo:
            echo(f"   {workload.name}: {time.perf_counter() - started:.0f} s")
    return results


def report(scale: Scale, results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for m in r["methods"]:
            rows.append([r["workload"], m["method"],
                         "-" if m["checkpoint_s"] is None else m["checkpoint_s"],
                         "-" if m["bytes"] is None else fmt_bytes(m["bytes"]),
                         "-" if m["restore_s"] is None else m["restore_s"],
                         "-" if m.get("cold_restore_s") is None else m["cold_restore_s"],
                         {True: "yes", False: "NO", None: "n/a"}[m["same"]], m["note"]])
    counts = {len(m.get("restores_s") or [1]) for r in results for m in r["methods"] if m["restore_s"] is not None}
    title = (f"3. Migration and restore in real kernels ({scale.name}; checkpoint to a local folder; restore = "
             f"new kernel after SIGKILL, kernel start-up and its first cell not counted, the median of "
             f"{'/'.join(map(str, sorted(counts))) or 1}, and one cold: the page cache emptied first; every method timed "
             f"from the client)")
    text = table(title, ["workload", "method", "checkpoint s", "bytes", "restore s", "cold restore s", "same", "notes"],
                 rows)
    lines = [f"   {r['workload']}: {r['description']}; notebook runs in {r['notebook_s']:.2f} s "
             f"({r['notebook_ext_s']:.2f} s with the extension recording; each cell's fastest of "
             f"{len(r.get('cells_ext') or [1])} runs: {recording_overhead(r):+.1f}%)"
             + (f"; importing the restored session's modules alone: {r['imports_s']:.2f} s" if r.get("imports_s") else "")
             + _first_cells(r) for r in results]
    return text + "\n" + "\n".join(lines) + "\n\n" + targets(results)


def _first_cells(result: dict[str, Any]) -> str:
    firsts = [f"{m['method'].split(' ')[0].split('.')[0]} {1000 * median(m['first_cell_s']):.0f}"
              for m in result["methods"] if m.get("first_cell_s")]
    return f"; the first cell after a restore (its check, ms): {', '.join(firsts)}" if firsts else ""


def _method(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((m for m in result["methods"] if m["method"] == name), None)


def targets(results: list[dict[str, Any]]) -> str:
    """Each workload against the targets of issue 10, as ratios to baselines of the same run."""
    rows, overheads, restores = [], [], []
    for r in results:
        ours, rerun = _method(r, "colab_elastic"), _method(r, "rerun all cells")
        overhead = recording_overhead(r)
        restore = 100 * ours["restore_s"] / rerun["restore_s"] if ours and rerun and rerun["restore_s"] else None
        overheads.append(overhead)
        if restore is not None:
            restores.append(restore)
        total = (ours["checkpoint_s"] or 0) + (ours["restore_s"] or 0) if ours else None
        beats = []
        for name in ("dill.dump_session", "pickle everything (p5)"):
            other = _method(r, name)
            if other and other["same"] and other["restore_s"] is not None:
                theirs = (other["checkpoint_s"] or 0) + other["restore_s"]
                beats.append(f"{'yes' if total is not None and total < theirs else 'NO'} ({theirs:.2f} s)")
            else:
                beats.append("n/a (did not restore equal)")
        floor = 100 * r["imports_s"] / rerun["restore_s"] if r.get("imports_s") and rerun and rerun["restore_s"] else None
        rows.append([r["workload"], f"{overhead:+.1f}%", "-" if restore is None else f"{restore:.1f}%",
                     "-" if floor is None else f"{floor:.1f}%", "-" if total is None else f"{total:.2f}", *beats])
    rows.append(["median", f"{sorted(overheads)[len(overheads) // 2]:+.1f}%" if overheads else "-",
                 f"{sorted(restores)[len(restores) // 2]:.1f}%" if restores else "-", "", "", "", ""])
    return table("   targets: recording <= +5% on pandas and <= +2% median; restore <= 10% of rerunning all "
                 "(<= 5% median); checkpoint + restore faster than dill and pickle-all where they restore equal",
                 ["workload", "recording", "restore / rerun all", "its imports alone / rerun all", "ckpt+restore s",
                  "faster than dill", "faster than pickle-all"], rows)


if __name__ == "__main__":
    from .common import QUICK

    print(report(QUICK, measure(QUICK, echo=lambda s: print(s, file=sys.stderr))))
