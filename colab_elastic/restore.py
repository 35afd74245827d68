"""Bringing a checkpoint back: load stored groups, rerun the planned cells, verify.

    manifest ─► fetch + verify blobs ─► (re-plan without the bad ones) ─► walk executions in
    order: rerun planned cells, load each stored group right after its last writer, apply
    the settings of cells not rerun (cwd, os.environ, rcParams, ...: see ambient) ─►
    drop leftovers ─► global random state as it was ─► compare fingerprints and sharing ─► report

A blob that is missing, truncated, altered or fails to load (whatever it raises) is not
fatal: the plan is made again with that group marked unstorable, and its cells are rerun. A
rerun cell that fails is reported with its traceback; the names it leaves missing are named.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from . import randomness
from .ambient import Ambient
from .errors import CorruptCheckpointError, RestoreError, RestoreWarning, StorageError, describe
from .covariables import overlapping
from .fingerprint import SCHEME, Fingerprint, fingerprint
from .fingerprint_arrays import StringMemo
from .history import HistoryGraph
from .import_clock import ImportClock
from .lineage import read_latest
from .manifest import BlobRef, Manifest
from .namespace import notebook_predicate
from .pages import one_restore
from .planner import MIN_MODULES_TIMED, Bandwidth, GroupInfo, Plan, plan
from .serialize import load_group
from .store import Store
from .streams import will_read

log = logging.getLogger("colab_elastic.restore")
# Settings given their last recorded value after the walk (see Ambient.settle).
SETTLED = ("ipython.matplotlib",)

# Blobs at least this large are streamed into place when loaded instead of fetched up front:
# a 5 GB array then needs about 5 GB, not 10.
STREAM_BYTES = int(float(os.environ.get("COLAB_ELASTIC_STREAM_MB", "32")) * 1e6)


@dataclass(frozen=True)
class RunOutcome:
    """The result of rerunning one cell."""

    ok: bool
    error: str | None = None  # exception type name
    traceback: str = ""


class Runner(Protocol):
    """What the restorer needs from a shell: its namespace, and a way to run a cell quietly."""

    namespace: dict[str, Any]
    # The session settings it can apply (see ambient); a runner without one gets the standard ones.
    ambient: Ambient

    def run(self, code: str, rng: str | None = None) -> RunOutcome:
        """Run `code` quietly; `rng` is the global random state to start from (see randomness)."""
        ...


class Progress(Protocol):
    """A progress bar (tqdm's API)."""

    def update(self, n: int = 1) -> Any: ...
    def set_postfix_str(self, s: str) -> Any: ...
    def close(self) -> Any: ...


@dataclass
class CellFailure:
    """A rerun cell that raised when the original did not."""

    index: int
    code: str
    error: str
    traceback: str


@dataclass
class RestoreReport:
    """What a restore did, and whether the session is back as it was."""

    url: str
    checkpoint: str
    loaded: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)
    reruns: list[int] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)  # names -> why their blob was not used
    failures: list[CellFailure] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # name -> reason it is not back
    differs: list[str] = field(default_factory=list)  # recomputed but not equal to the original
    unverified: dict[str, str] = field(default_factory=dict)  # back, but not comparable: why
    # name -> how its sharing changed: names that shared objects must share them again, others not
    aliasing: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # newer checkpoints passed over -> why
    settings: list[int] = field(default_factory=list)  # cells not rerun whose settings were applied
    unapplied: dict[str, str] = field(default_factory=dict)  # "setting (cell N)" -> why it is not back
    # Before any rerun: packages this runtime lacks, install lines replayed, files put back.
    environment: list[str] = field(default_factory=list)
    bytes_read: int = 0
    read_seconds: float = 0.0  # fetching and unpickling the stored values, their imports aside
    rerun_seconds: float = 0.0  # in the cells rerun
    import_seconds: float = 0.0  # importing the modules and classes loaded values need
    modules_imported: int = 0
    # What a rerun took beyond its cell's recorded runtime (median; None: nothing was rerun).
    rerun_overhead: float | None = None
    seconds: float = 0.0

    def per_import(self) -> float | None:
        """Seconds per module imported, when enough were to say (None: too few)."""
        return self.import_seconds / self.modules_imported if self.modules_imported >= MIN_MODULES_TIMED else None

    @property
    def ok(self) -> bool:
        return not (self.failures or self.missing or self.differs or self.aliasing)

    def problem_summary(self) -> str:
        """Every name not back as it was, on one line (empty when `ok`)."""
        parts = []
        if self.failures:
            parts.append("cells failed on rerun: " + ", ".join(str(f.index) for f in self.failures))
        if self.missing:
            parts.append("not restored: " + ", ".join(sorted(self.missing)))
        if self.differs:
            parts.append("differ from the original: " + ", ".join(self.differs))
        if self.aliasing:
            parts.append("share objects differently: " + ", ".join(sorted(self.aliasing)))
        return "; ".join(parts)

    def __repr__(self) -> str:
        from .report import restore_text

        return restore_text(self)

    def _repr_html_(self) -> str:
        from .report import restore_html

        return restore_html(self)


class _Checkpoint:
    """A manifest, as a restore walks it (its own copy of the history: the restore changes it)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.id = manifest.checkpoint
        self.graph = manifest.graph.copy()
        self.plan = manifest.plan
        self.entries = manifest.groups
        self.fingerprints = {n: fp for e in self.entries for n, fp in e.fingerprints.items()}

    def group_infos(self, unstorable: dict[int, str]) -> list[GroupInfo]:
        infos = []
        for i, (entry, decision) in enumerate(zip(self.entries, self.plan.groups)):
            has_blob = entry.blob is not None
            reason = unstorable.get(i) or ("" if has_blob else decision.reason or "not stored in this checkpoint")
            infos.append(GroupInfo(frozenset(decision.names), decision.size, storable=has_blob and i not in unstorable,
                                   reason=reason, already_stored=True))
        return infos


def restore(
    store: Store,
    runner: Runner,
    *,
    progress: Callable[[int, str, str], Progress],
    manifest: Manifest | None = None,
    strings: StringMemo | None = None,
) -> tuple[RestoreReport, HistoryGraph, dict[str, Fingerprint]]:
    """Restore the newest checkpoint at `store` (or `manifest`) into `runner`'s namespace.
    `strings`: the recorder's memo of text columns, which the verification fills (a merged
    frame's text holds the very strings of the frame it came from: hashed once, and not again
    by the first cell that reads them). Returns the report, the checkpoint's history, and the
    fingerprints the verification took that the recorder can take as its own."""
    started = time.perf_counter()
    ckpt = _Checkpoint(manifest if manifest is not None else read_latest(store))
    report = RestoreReport(url=store.url, checkpoint=ckpt.id)
    namespace = runner.namespace
    initial = dict(namespace)

    # 1. Fetch and verify the small stored blobs, in parallel, before touching the namespace.
    data: dict[int, bytes] = {}
    unstorable: dict[int, str] = {}
    wanted: dict[str, int] = {}
    for i, decision in enumerate(ckpt.plan.groups):
        if decision.action != "store":
            continue
        blob = ckpt.entries[i].blob
        if blob is None:
            unstorable[i] = "the manifest lists no blob for it"
        elif blob.size < STREAM_BYTES:
            wanted[blob.key] = i
        # Larger blobs are streamed into place when their turn comes (see `_load`).
    blobs = [(b.key, b.digest, b.size) for b in (ckpt.entries[i].blob for i in wanted.values()) if b is not None]
    bar = progress(sum(size for *_, size in blobs), "fetch", "B")
    read_started = time.perf_counter()
    try:
        fetched, failures = store.read_blobs(blobs, progress=bar.update)
    finally:
        bar.close()
    report.read_seconds = time.perf_counter() - read_started
    for key, payload in fetched.items():
        data[wanted[key]] = payload
        report.bytes_read += len(payload)
    for key, exc in failures.items():
        unstorable[wanted[key]] = str(exc)
    for i, reason in unstorable.items():
        names = ", ".join(ckpt.plan.groups[i].names)
        report.fallbacks[names] = reason
        warnings.warn(f"{names}: {reason}; recomputing instead", RestoreWarning, stacklevel=2)

    # 2. Walk the history; a group that fails to load sends us back to the start with a new plan.
    current = ckpt.plan if not unstorable else _replan(ckpt, unstorable)
    for _attempt in range(len(ckpt.entries) + 1):
        try:
            with one_restore():  # what one buffer learns of the pages, the next starts from
                failed = _walk(ckpt, current, data, store, runner, report, progress, strings)
        except BaseException:
            # Interrupted (Ctrl-C, a kill of the cell) or broken mid-walk: never leave the
            # namespace half-restored. The session is as before; the restore can be run again.
            _reset(namespace, initial)
            raise
        if failed is None:
            break
        index, reason = failed
        names = ", ".join(ckpt.plan.groups[index].names)
        unstorable[index] = reason
        report.fallbacks[names] = reason
        warnings.warn(f"{names}: {reason}; recomputing instead", RestoreWarning, stacklevel=2)
        _reset(namespace, initial)
        current = _replan(ckpt, unstorable)
    else:
        raise RestoreError("restore did not converge")

    # 3. Leftovers from reruns: names the reruns wrote that the checkpointed session no longer had.
    live = set(ckpt.graph.active)
    written = _written_names(ckpt.graph)
    for name in [n for n in namespace if n not in live and n in written]:
        if name not in initial:
            del namespace[name]
        elif namespace[name] is not initial[name]:
            namespace[name] = initial[name]

    # 4. The global generators where the checkpointed session left them. Each rerun started
    # from its own recorded state, so the values match; but the generators now stand wherever
    # the last rerun that drew left them (or fresh, if none did), and the next draw would differ.
    if ckpt.graph.rng is not None:
        randomness.apply(ckpt.graph.rng)

    # 5. Verify against the fingerprints taken at checkpoint time.
    now = _verify(ckpt, current, namespace, report, strings)
    for decision in current.groups:
        if decision.action == "lost":
            for name in decision.names:
                report.missing.setdefault(name, decision.reason)
    ckpt.graph.forget(report.missing)
    report.seconds = time.perf_counter() - started
    # The values as the verification just saw them, where the recorder would see them alike:
    # its cache, so the first cell to read a restored value does not walk it again (a 1 GB
    # array, a forest). Not a figure: the draw that ends the restoring cell changes it.
    seen = {name: fp for name, fp in now.items() if fp.as_in_process and fp.comparable}
    return report, ckpt.graph, seen


def _written_names(graph: HistoryGraph) -> set[str]:
    return {name for e in graph.executions for name, _ in e.writes}


def _replan(ckpt: _Checkpoint, unstorable: dict[int, str]) -> Plan:
    # Bandwidth does not matter here: every remaining blob is already fetched.
    return plan(ckpt.graph, ckpt.group_infos(unstorable), Bandwidth(write=1e12, read=1e12, latency=0.0))


def _reset(namespace: dict[str, Any], initial: dict[str, Any]) -> None:
    for name in list(namespace):
        if name not in initial:
            del namespace[name]
    namespace.update(initial)


def _load(ckpt: _Checkpoint, index: int, data: dict[int, bytes], store: Store, namespace: dict[str, Any],
          report: RestoreReport, strings: StringMemo | None, clock: ImportClock) -> dict[str, Any]:
    """One group's values: from bytes fetched already, or streamed from storage and checked.
    The text digests a blob carries go to `strings`, for the verification; the time its
    imports take to `clock`."""
    if index in data:
        return load_group(data[index], namespace, strings, clock)
    blob = ckpt.entries[index].blob
    if blob is None:
        raise CorruptCheckpointError(f"checkpoint {ckpt.id} at {store.url} lists no blob for group {index}")
    started, imports = time.perf_counter(), clock.seconds
    values = store.stream_blob(blob.key, blob.digest, blob.size, lambda f: load_group(f, namespace, strings, clock))
    report.bytes_read += blob.size
    report.read_seconds += time.perf_counter() - started - (clock.seconds - imports)
    return values


def _read_ahead(store: Store, blobs: list[BlobRef]) -> Callable[[], None]:
    """A call that asks the operating system to start reading the next of `blobs`, in the
    background, when they lie in a local folder (a disk, Drive's mount): the disk works while
    the blob before it is unpickled. One ahead, so the page cache holds one blob in advance."""
    upcoming = iter(blobs if store.local else [])

    def read_next() -> None:
        blob = next(upcoming, None)
        if blob is not None:
            will_read(store.path("blobs", blob.key), blob.size)

    return read_next


def _walk(ckpt: _Checkpoint, current: Plan, data: dict[int, bytes], store: Store, runner: Runner,
          report: RestoreReport, progress: Callable[[int, str, str], Progress],
          strings: StringMemo | None) -> tuple[int, str] | None:
    """Rerun and load in history order. Returns (group, reason) if a group failed to load."""
    loads: dict[int, list[int]] = {}
    for i, decision in enumerate(current.groups):
        if decision.action == "store":
            loads.setdefault(decision.load_after, []).append(i)
    reruns = set(current.reruns)
    cells = {e.index: e for e in ckpt.graph.executions}
    # A cell not rerun still changed the session's settings: its recorded change is applied in
    # its place, so later reruns see them (a relative path after `%cd`) and the walk ends with
    # the checkpoint's settings. A rerun cell changes them again itself.
    settings = {e.index for e in ckpt.graph.executions if e.ambient and e.index not in reruns}
    steps = sorted(reruns | set(loads) | settings)
    applier = getattr(runner, "ambient", None) or Ambient()
    report.failures.clear()
    report.unapplied.clear()
    report.reruns = sorted(reruns)
    report.settings = sorted(settings)
    bar = progress(len(reruns) + sum(len(v) for v in loads.values()), "restore", "step")
    beyond: list[float] = []
    clock = ImportClock()
    rerun_seconds = 0.0
    read_next = _read_ahead(store, [blob for step in steps for i in loads.get(step, [])
                                    if i not in data and (blob := ckpt.entries[i].blob) is not None])
    read_next()  # the first streamed blob, read while the reruns and loads before it run
    try:
        for step in steps:
            if step in reruns:
                cell = cells[step]
                bar.set_postfix_str(f"cell {step}")
                cell_started = time.perf_counter()
                outcome = runner.run(cell.code, cell.rng)
                took = time.perf_counter() - cell_started
                rerun_seconds += took
                beyond.append(max(0.0, took - cell.runtime))
                if outcome.error == "KeyboardInterrupt" and cell.error != "KeyboardInterrupt":
                    # Interrupted while the cell ran (the shell reports it as the cell's error):
                    # the user stopped the restore, so stop it; the caller puts the session back.
                    raise KeyboardInterrupt
                if not outcome.ok and outcome.error != cell.error:
                    report.failures.append(CellFailure(step, cell.code, outcome.error or "error", outcome.traceback))
                    log.info("rerun of cell %d failed: %s", step, outcome.error)
                bar.update(1)
            elif step in settings:
                for name, why in clock.timed(applier.apply, cells[step].ambient or "").items():
                    report.unapplied[f"{name} (cell {step})"] = why
            for i in loads.get(step, []):
                if i not in data:
                    read_next()  # the one after it, read while this one is unpickled
                try:
                    values = _load(ckpt, i, data, store, runner.namespace, report, strings, clock)
                except StorageError as exc:  # a streamed blob that is missing, truncated or altered
                    return i, str(exc)
                except Exception as exc:  # noqa: BLE001 - whatever one group raises, its cells rebuild it
                    # (a CUDA tensor without a GPU, a class that moved, a `__setstate__` that
                    # refuses). Nothing of it reached the namespace; the caller resets and replans.
                    return i, f"could not be loaded ({describe(exc)})"
                runner.namespace.update(values)
                bar.update(1)
        # The checkpoint's backend, which a rerun may not have chosen again.
        ordered = [e.ambient for e in sorted(ckpt.graph.executions, key=lambda e: e.index) if e.ambient]
        for name, why in clock.timed(applier.settle, ordered, SETTLED).items():
            report.unapplied[name] = why
        report.rerun_seconds = rerun_seconds
        report.import_seconds, report.modules_imported = clock.seconds, clock.modules
        if beyond:
            report.rerun_overhead = min(0.1, sorted(beyond)[len(beyond) // 2])
    finally:
        bar.close()
    report.loaded = sorted(n for d in current.groups if d.action == "store" for n in d.names)
    report.recomputed = sorted(n for d in current.groups if d.action == "recompute" for n in d.names)
    return None


_DRAWN = "a matplotlib figure changes when drawn"  # why a figure is restored, not compared


def _verify(ckpt: _Checkpoint, current: Plan, namespace: dict[str, Any], report: RestoreReport,
            strings: StringMemo | None = None) -> dict[str, Fingerprint]:
    """Compare the restored values with the checkpoint's fingerprints, into `report`; returns
    the fingerprints taken now."""
    is_notebook_defined = notebook_predicate(namespace)
    failed_cells = {f.index for f in report.failures}
    now: dict[str, Fingerprint] = {}
    for decision in current.groups:
        if decision.action == "lost":
            continue
        for name in decision.names:
            if name not in namespace:
                culprit = sorted(set(decision.cells) & failed_cells)
                why = f"cell {culprit[0]} failed on rerun" if culprit else "it was not recreated by its cells"
                report.missing[name] = why
                continue
            recorded = ckpt.fingerprints.get(name)
            if decision.action == "store" and recorded and not recorded.comparable:
                # Nothing to compare it with, and a group loaded from one blob keeps its
                # sharing (one pickle memo): walking a figure again (~0.1 s) would tell nothing.
                report.unverified[name] = _DRAWN
                continue
            now[name] = fingerprint(namespace[name], is_notebook_defined=is_notebook_defined, strings=strings)
            if not recorded or not recorded.complete or not now[name].complete:
                report.unverified[name] = "part of it is opaque to a fingerprint"
                continue
            if not recorded.comparable or not now[name].comparable:
                report.unverified[name] = _DRAWN
                continue
            if not recorded.content.startswith(SCHEME):
                report.unverified[name] = "fingerprinted by another version of colab_elastic"
                continue
            # `reloaded`: what the value looks like after a pickle round trip, when that is not
            # what it looked like before (a `__setstate__` that drops a cache): equal either way.
            if now[name].content not in (recorded.content, recorded.reloaded):
                report.differs.append(name)
    report.differs.sort()
    report.aliasing = _aliasing_changes(ckpt, now)
    return now


def _aliasing_changes(ckpt: _Checkpoint, now: dict[str, Fingerprint]) -> dict[str, str]:
    """Names that no longer share objects with names they shared them with at checkpoint time
    (co-variables, transitively), among the names back in the namespace."""
    # A value that could not be fingerprinted at all says nothing about what it shares.
    known = {n: fp for n, fp in now.items() if not fp.content.startswith("unknown-")
             and not (n in ckpt.fingerprints and ckpt.fingerprints[n].content.startswith("unknown-"))}
    before = {n: frozenset(e.fingerprints) & known.keys() for e in ckpt.entries for n in e.fingerprints}
    after = {n: group for group in overlapping(known) for n in group}
    changes: dict[str, str] = {}
    for name in sorted(known):
        was, is_ = before.get(name, frozenset({name})) - {name}, after[name] - {name}
        # Only sharing that is lost counts: separately loaded groups can come to share an
        # object a library keeps once per process (a cached dtype, an interned index), which
        # a write through one name can never reach the other through.
        if was - is_:
            changes[name] = (f"shared objects with {', '.join(sorted(was))}, "
                             f"now with {', '.join(sorted(is_)) or 'nothing'}")
    return changes
