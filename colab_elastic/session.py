"""One recorded notebook session: its history, its recorder, where and how fast it stores.

No IPython import: the extension hands it the namespace, a transform for cell source and a
`Runner` that reruns cells. Everything the magics and the Python API do goes through here.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable

from . import colab, files, lineage, sharing
from .checkpoint import CheckpointResult, Inputs, take_checkpoint
from .autosave import AutoCheckpointer, AutoPolicy
from .config import Settings
from .errors import CheckpointNotFoundError, ElasticError, RestoreVerificationError, UntrustedCheckpointError
from .history import HistoryGraph
from .manifest import Files, Manifest, Notebook
from .planner import Bandwidth, Plan
from .progress import progress_bar
from .recorder import Recorder
from .restore import RestoreReport, Runner, restore
from .speeds import Speeds
from .store import BlobInfo, Store
from .trust import judge, sign

log = logging.getLogger("colab_elastic.session")


# Per location, the checkpoint LATEST may be moved from by this kernel: the one it wrote or
# restored last (None: there was none). Kept per process, so `%reload_ext` goes on where the
# previous session of this kernel left off.
_HEADS: dict[str, str | None] = {}
# Per location, the newest checkpoint this kernel wrote (the `parent` of its next one), and
# the lineage this kernel continues.
_PARENTS: dict[str, str] = {}
_LINEAGE: list[str] = []
# Per location, every checkpoint this kernel sent to commit, noted before the first request:
# LATEST naming one of them is this kernel's own, even when an interrupt landed after LATEST
# moved and before `_HEADS` could note it.
_WRITTEN: dict[str, set[str]] = {}


@dataclass
class Status:
    """What `%elastic status` shows."""

    fields: dict[str, Any]

    def __repr__(self) -> str:
        from .report import status_text

        return status_text(self.fields)

    def _repr_html_(self) -> str:
        from .report import status_html

        return status_html(self.fields)


def _manifest_blobs(manifest: Manifest, damaged: Iterable[str] = ()) -> dict[str, BlobInfo]:
    """The content-keyed blobs a manifest references (reusable by later checkpoints), but for
    those of the groups in `damaged` (their names joined, as a restore reports fallbacks)."""
    found = {}
    skip = set(damaged)
    for entry in manifest.groups:
        blob = entry.blob
        if ", ".join(entry.decision.names) in skip:
            continue  # missing, cut or altered: a later checkpoint must write it again
        if blob is not None and blob.content:
            found[blob.content] = BlobInfo(blob.key, blob.digest, blob.size, 0.0)
    return found


def _names(store: Store, checkpoint: str) -> bool:
    """Does LATEST at `store` name `checkpoint` (False when that cannot be read)?"""
    try:
        pointer = store.pointer()
    except ElasticError:
        return False
    return pointer is not None and pointer.checkpoint == checkpoint


def _waiting_text(url: str, entry: lineage.CheckpointEntry, default: bool) -> str:
    """The one line that says a location holds a checkpoint this kernel has not restored."""
    where = "this session's location" if default else url
    if entry.intact:
        what = (f"a checkpoint is at {where} ({url}): taken {entry.created[:19].replace('T', ' ')} UTC, "
                f"{entry.cells} cells, {entry.variables} variables"
                + (f", from notebook {entry.notebook}" if entry.notebook else "")
                + (f", by {entry.writer}" if entry.writer else ""))
    else:
        what = f"a checkpoint is at {where} ({url}) but its newest manifest is damaged ({entry.problem})"
    ours = colab.notebook_record()
    clash = ""
    if entry.notebook_id and ours.get("id") and entry.notebook_id != ours["id"]:
        clash = f" It was written by another notebook (file id {entry.notebook_id})."
    elif entry.notebook and ours.get("name") and entry.notebook != ours["name"]:
        clash = f" It was written by notebook {entry.notebook}, not this one ({ours['name']})."
    elif entry.notebook and not (entry.notebook_id and ours.get("id")):
        # Names repeat (every new Colab notebook is Untitled0.ipynb): say we cannot be sure.
        clash = " Notebooks of the same name share this location."
    if clash:
        clash += " If it is not this notebook's session, %elastic name NEW gives this one its own location."
    return (f"{what}.{clash} %elastic restore brings it back; %elastic fresh starts a new session there instead. "
            "Auto-checkpoints wait until you choose.")


class Session:
    """The recorded session behind the extension."""

    def __init__(
        self,
        namespace: dict[str, Any],
        runner: Runner,
        *,
        hidden: dict[str, Any] | None = None,
        transform: Callable[[str], str] = lambda code: code,
        settings: Settings | None = None,
        auto_policy: AutoPolicy | None = None,
    ) -> None:
        self.namespace = namespace
        self.runner = runner
        self.settings = settings or Settings()
        self.graph = HistoryGraph()
        self.recorder = Recorder(namespace, self.graph, hidden=hidden, transform=transform,
                                 settings=getattr(runner, "ambient", None))
        self.graph.adopt(self.recorder.names())
        self.files = files.FileLog()  # what cells read, wrote and installed (fed by the audit hook)
        self.busy = False  # True while we checkpoint or restore: our own cell runs are not recorded
        self.unpicklable: dict[str, tuple[str, str]] = {}  # name -> (content that failed, why)
        self.speeds = Speeds(self.settings.write_bandwidth, self.settings.read_bandwidth,
                             self.settings.checkpoint_weight, is_local=colab.on_local_disk)
        self._known_blobs: dict[str, dict[str, BlobInfo]] = {}
        self._stores: dict[tuple[str, str], Store] = {}
        self._writable: set[str] = set()
        # Goes into the names of the blobs this session writes, so that two kernels writing
        # the same content to one place never overwrite each other's bytes.
        self.writer = uuid.uuid4().hex[:8]
        self.autosave = AutoCheckpointer(self, auto_policy)
        self.last_checkpoint: CheckpointResult | None = None
        self.last_restore: RestoreReport | None = None  # its report, for a look after the fact
        self.last_checkpoint_time: datetime.datetime | None = None
        if not _LINEAGE:
            _LINEAGE.append(uuid.uuid4().hex[:12])
        # Locations holding a checkpoint this kernel neither wrote nor restored: auto-checkpoints
        # there wait until the user restores it or starts fresh (url -> what is there).
        self.waiting: dict[str, lineage.CheckpointEntry] = {}
        self._lineage_lock = threading.Lock()
        self.notify: Callable[[str], None] = lambda text: log.warning("%s", text)

    @property
    def busy(self) -> bool:
        """True while we checkpoint or restore: our own cell runs and file reads are not recorded."""
        return self._busy

    @busy.setter
    def busy(self, value: bool) -> None:
        self._busy = value
        self.files.paused = value

    # Lineage -------------------------------------------------------------------------------
    @property
    def lineage(self) -> str:
        return _LINEAGE[-1]

    def check_location(self, url: str | None = None, storage_options: dict[str, Any] | None = None) -> str | None:
        """Is there a checkpoint at `url` this kernel did not write or restore? Then auto-
        checkpoints there wait, and the returned line says what it is and what to do."""
        target = self.url(url)
        if target in _HEADS:
            return None
        if target in self.waiting:
            return _waiting_text(target, self.waiting[target], url is None)
        try:
            store = self.store(target, storage_options)
            pointer = store.pointer()
        except ElasticError as exc:
            log.info("cannot look for a checkpoint at %s: %s", target, exc)
            return None  # every commit checks LATEST again before moving it
        if pointer is None:
            _HEADS[target] = None
            return None
        try:
            entry = lineage.summarize(lineage.read_latest(store), latest=True)
        except ElasticError as exc:
            entry = lineage.CheckpointEntry(pointer.checkpoint, created=pointer.created or "", problem=str(exc),
                                            latest=True)
        self.waiting[target] = entry
        return _waiting_text(target, entry, url is None)

    def may_autosave(self, url: str) -> bool:
        """False while the location holds another session's checkpoint (told once, via `notify`)."""
        if url in _HEADS:
            return True
        known = url in self.waiting
        text = self.check_location(None if url == self.url() else url)
        if text and not known:
            self.notify(text)
        return url not in self.waiting

    def fresh(self, url: str | None = None, storage_options: dict[str, Any] | None = None) -> str:
        """Start a new session at the location: this kernel's checkpoints replace what is there
        (which stays reachable through `%elastic log` and `%elastic restore --at`)."""
        target = self.url(url)
        pointer = self.store(target, storage_options).pointer()
        _HEADS[target] = pointer.checkpoint if pointer else None
        self.waiting.pop(target, None)
        if pointer is None:
            return f"a new session at {target}"
        return (f"a new session at {target}; checkpoint {pointer.checkpoint} stays there "
                f"(%elastic log, %elastic restore --at {pointer.checkpoint})")

    def commit(self, store: Store, manifest: Manifest, *, force: bool = False) -> bool:
        """Commit a prepared manifest as the next checkpoint of this kernel's lineage.

        LATEST moves only from the checkpoint this kernel wrote or restored last (or none),
        or with `force`; otherwise the checkpoint is kept beside it. Returns whether it moved."""
        with self._lineage_lock:
            notebook = colab.notebook_record()
            manifest = replace(manifest, lineage=self.lineage, parent=_PARENTS.get(store.url),
                               notebook=Notebook(notebook.get("name"), notebook.get("id")))
            written = _WRITTEN.setdefault(store.url, set())
            replaces = {_HEADS.get(store.url), *written}
            written.add(manifest.checkpoint)
        body = manifest.to_json()
        sign(body)  # last: the signature covers every field (see trust)
        try:
            moved = store.commit(body, replaces=replaces, force=force)
        except BaseException as exc:
            # Cut short (an interrupt), perhaps after LATEST was written: if it names this
            # checkpoint, it is this kernel's head all the same, or every later checkpoint would
            # be kept beside it. (A storage failure is reported as is: no more requests to it.)
            if not isinstance(exc, ElasticError) and _names(store, manifest.checkpoint):
                self._committed(store, manifest.checkpoint, True)
            raise
        self._committed(store, manifest.checkpoint, moved)
        return moved

    def _committed(self, store: Store, checkpoint: str, moved: bool) -> None:
        with self._lineage_lock:
            _PARENTS[store.url] = checkpoint
            if moved:
                _HEADS[store.url] = checkpoint
                self.waiting.pop(store.url, None)

    # Events --------------------------------------------------------------------------------
    def before_cell(self, raw_cell: str, cell_id: str | None = None) -> None:
        if not self.busy:
            self.recorder.before(raw_cell, cell_id)
            self.files.begin(raw_cell)

    def after_cell(self, error: BaseException | None) -> None:
        if not self.busy:
            self.files.close()  # before our own work, which opens files too
            execution = self.recorder.after(error)
            self.files.end(execution.index if execution is not None else None)
            self.autosave.after_cell(execution)

    # Locations -----------------------------------------------------------------------------
    def url(self, url: str | None = None) -> str:
        return url or self.settings.resolved_url()

    def bandwidth(self, url: str) -> Bandwidth:
        return self.speeds.bandwidth(url)

    def store(self, url: str, storage_options: dict[str, Any] | None = None,
              opener: Callable[[str, dict[str, Any] | None], Store] = Store) -> Store:
        """The store at `url` with these options, opened once per session. The default
        location gets the session's own storage options."""
        if not storage_options and url == self.url():
            storage_options = self.settings.storage_options or None
        key = (url, json.dumps(storage_options or {}, sort_keys=True, default=str))
        if key not in self._stores:
            self._stores[key] = opener(url, storage_options)
            local = url[len("file://"):] if url.startswith("file://") else url
            if os.path.isabs(local):
                self.files.ignore(local)  # our checkpoints are not the notebook's files
        return self._stores[key]

    def measure(self, url: str, blobs: list[BlobInfo] | None = None, read: tuple[int, float] | None = None,
                rerun_overhead: float | None = None, import_seconds: float | None = None) -> None:
        """Learn speeds from real transfers and a restore's reruns and imports (see `speeds`)."""
        self.speeds.measure(url, blobs, read, rerun_overhead, import_seconds)

    def ensure_writable(self, store: Store) -> None:
        """Refuse a location we cannot write to, once, up front, in one line."""
        if store.url not in self._writable:
            store.check_writable()
            self._writable.add(store.url)

    def checkpoint_inputs(self, store: Store, known: dict[str, BlobInfo]) -> Inputs:
        """What a checkpoint of this session to `store` starts from (`known`: blobs there already)."""
        return Inputs(self.recorder, self.graph, self.bandwidth(store.url), store.url, self.settings.session,
                      self.unpicklable, known, self.writer, self.files)

    def set_known_blobs(self, store: Store, blobs: dict[str, BlobInfo]) -> None:
        """After a commit: the blobs its manifest names are the ones safe to reuse."""
        self._known_blobs[store.url] = dict(blobs)

    def known_blobs(self, store: Store) -> dict[str, BlobInfo]:
        """Blobs already at this location, from its newest manifest (read once per session)."""
        if store.url not in self._known_blobs:
            known: dict[str, BlobInfo] = {}
            try:
                manifest = lineage.read_latest(store)
            except CheckpointNotFoundError:
                manifest = None
            except ElasticError as exc:
                log.info("not reusing blobs at %s: %s", store.url, exc)
                manifest = None
            if manifest is not None:
                known.update(_manifest_blobs(manifest))
                # Written by another kernel: reuse only blobs that are really there, whole.
                sizes = store.blob_sizes() if known else None
                if sizes is not None:
                    known = {c: b for c, b in known.items() if sizes.get(b.key) == b.size}
            self._known_blobs[store.url] = known
        return self._known_blobs[store.url]

    # Actions -------------------------------------------------------------------------------
    def checkpoint(self, url: str | None = None, storage_options: dict[str, Any] | None = None,
                   force: bool = False) -> CheckpointResult:
        """Store what the plan says, commit, and remember the destination's measured speed.

        A location holding another session's checkpoint (one this kernel neither wrote nor
        restored) is refused unless `force`: the other checkpoint then stays reachable."""
        target = self.url(url)
        store = self.store(target, storage_options)
        if self.check_location(target, storage_options) and not force:
            entry = self.waiting[target]
            raise ElasticError(
                f"{target} holds another session's checkpoint ({entry.checkpoint}, {entry.variables} variables): "
                "restore it first (%elastic restore), or add --force to put this session's checkpoint over it "
                "(the other stays reachable: %elastic log)")
        # An explicit checkpoint supersedes a waiting background one, and must not be
        # overtaken by one still uploading.
        self.autosave.cancel_queued()
        self.autosave.wait()
        self.ensure_writable(store)
        known = self.known_blobs(store)
        self.busy = True
        try:
            result, blobs, moved = take_checkpoint(
                self.checkpoint_inputs(store, known), store, progress=progress_bar,
                commit=lambda manifest: self.commit(store, manifest, force=force),
            )
        finally:
            self.busy = False
        written = [b for c, b in blobs.items() if c not in known]
        # Only what this checkpoint references is sure to outlive garbage collection.
        self.set_known_blobs(store, blobs)
        self.autosave.note_commit(target)
        if not moved:
            result = replace(result, note=lineage.kept_beside_note(store))
        if colab.on_drive(target):
            # Drive's FUSE mount uploads later: never call this safe before Colab has synced it.
            result = replace(result, note=f"on Google Drive, not known to be uploaded yet: {colab.DRIVE_FLUSH_HINT}")
        self.measure(target, written)
        self.last_checkpoint = result
        self.last_checkpoint_time = datetime.datetime.now()
        return result

    def plan(self, url: str | None = None, storage_options: dict[str, Any] | None = None) -> Plan:
        """A dry run: what a checkpoint to `url` would store and recompute, and the estimates."""
        target = self.url(url)
        store = self.store(target, storage_options)
        result, _, _ = take_checkpoint(self.checkpoint_inputs(store, self.known_blobs(store)), store, dry_run=True)
        return result.plan

    def restore(self, url: str | None = None, storage_options: dict[str, Any] | None = None,
                trust: bool = False, at: str | None = None, strict: bool = False,
                install: bool = False) -> RestoreReport:
        """Bring back the newest intact checkpoint at `url` (or checkpoint `at`); recording
        goes on from its history, and this kernel's checkpoints continue its lineage.

        A checkpoint not yours (see `trust`) runs someone else's code: without `trust` it is
        refused with UntrustedCheckpointError, whose `summary` says what it would run.
        `strict`: once the session is restored, any difference from the original raises
        RestoreVerificationError (carrying the report). `install`: replay the recorded
        install lines first. Missing packages are named (`notify`) before any cell runs."""
        target = sharing.zip_url(self.url(url))
        store = self.store(target, storage_options, opener=sharing.open_for_restore)
        pointer = store.pointer()
        manifest, skipped = lineage.choose(store, at)
        verdict = None if trust else judge(store, manifest)
        if verdict is not None and not verdict.yours:
            from .report import foreign_text, visible
            raise UntrustedCheckpointError(
                visible(f"{target} holds a checkpoint that is not yours ({verdict.why}); restoring it runs its "
                        "author's code (shown above): add --trust (or trust=True) if you trust it", lines=False),
                foreign_text(manifest))
        self.autosave.cancel_queued()
        self.autosave.wait()
        self.busy = True
        try:
            prepared = self._prepare_runtime(store, manifest, install)
            report, graph, seen = restore(store, self.runner, progress=progress_bar, manifest=manifest,
                                          strings=self.recorder.strings)
        finally:
            self.busy = False
        report.environment = prepared + report.environment
        report.skipped = skipped
        with self._lineage_lock:
            # Restoring a checkpoint makes its lineage ours: later checkpoints continue it and
            # may move LATEST on from what it named when we restored.
            if manifest.lineage is not None:
                _LINEAGE.append(manifest.lineage)
            _HEADS[target] = pointer.checkpoint if pointer else None
            _PARENTS[target] = manifest.checkpoint
            self.waiting.pop(target, None)
        self.graph = graph
        self.recorder.graph = graph
        self.files.load(manifest.files.log if manifest.files else {})
        self.recorder.reset_cache()
        self.recorder.adopt(seen)
        self.recorder.discard_pending()  # the cell running the restore must not record the restored names
        self.measure(target, read=(report.bytes_read, report.read_seconds), rerun_overhead=report.rerun_overhead,
                     import_seconds=report.per_import())
        self._known_blobs[target] = _manifest_blobs(manifest, damaged=report.fallbacks)
        self.last_restore = report
        if strict and not report.ok:
            raise RestoreVerificationError(f"strict restore: {report.problem_summary()}", report)
        return report

    def _prepare_runtime(self, store: Store, manifest: Manifest, install: bool) -> list[str]:
        """Before any rerun: name the packages this runtime lacks, replay the install lines
        (`install`), put back the files the reruns read. Returns what it did, for the report."""
        lines = []
        record = manifest.files or Files()
        installs = files.FileLog.installs_of(record.log)
        if install:
            for index, line in installs:
                outcome = self.runner.run(line)
                lines.append(f"ran {line!r} (cell {index})" + ("" if outcome.ok else f": failed ({outcome.error})"))
        missing = files.missing_packages(manifest.environment.imported)
        if missing:
            hint = " (%elastic restore --install replays the notebook's install lines)" if installs and not install else ""
            lines.append(f"missing packages: {', '.join(missing)}{hint}")
            self.notify(f"this runtime lacks {', '.join(missing)}, which the session imported: "
                        f"cells that import them will fail{hint}")
        lines += files.put_back(store, record.entries)
        return lines

    def log(self, url: str | None = None, storage_options: dict[str, Any] | None = None) -> lineage.CheckpointLog:
        """Every checkpoint at `url` (default: this session's location), newest first."""
        target = sharing.zip_url(self.url(url))
        return lineage.read_log(self.store(target, storage_options, opener=sharing.open_for_restore))

    def share(self, url: str | None = None, storage_options: dict[str, Any] | None = None) -> str:
        """What to send a collaborator, and the lines they run."""
        return sharing.share_text(self.store(self.url(url), storage_options))

    def export(self, path: str, url: str | None = None, storage_options: dict[str, Any] | None = None) -> int:
        """Write the newest checkpoint at `url` (default: this session's) into one zip file."""
        self.autosave.wait()
        return sharing.export(self.url(url), path, storage_options, notify=self.notify)

    def status(self) -> Status:
        url = self.url()
        fields: dict[str, Any] = {
            "session": self.settings.session,
            "location": url,
            "cells recorded": len(self.graph.executions) - 1,
            "live variables": len(self.graph.active),
        }
        bw = self.speeds.measured.get(url)
        if bw:
            fields["measured speed"] = f"write {bw.write / 1e6:.0f} MB/s, read {bw.read / 1e6:.0f} MB/s"
        if self.last_checkpoint is not None and self.last_checkpoint_time is not None:
            fields["last checkpoint"] = (
                f"{self.last_checkpoint.checkpoint} at {self.last_checkpoint.url} "
                f"({self.last_checkpoint_time:%H:%M:%S})"
            )
        else:
            fields["last checkpoint"] = "none yet in this session"
        if colab.on_drive(url):
            fields["Drive"] = f"writes reach Drive asynchronously; {colab.DRIVE_FLUSH_HINT}"
        fields["auto-checkpoint"] = self.autosave.policy.describe()
        if url in self.waiting:
            fields["auto-checkpoint"] += (f"; waiting: {url} holds checkpoint {self.waiting[url].checkpoint} "
                                          "(%elastic restore, or %elastic fresh)")
        done = self.autosave.last_completed
        if done is not None:
            fields["last complete auto-checkpoint"] = (
                f"{done.checkpoint} ({done.at:%H:%M:%S}), the state after cell {done.covers_cell}"
            )
        if self.autosave.busy:
            fields["in flight"] = "a checkpoint is uploading"
        if self.autosave.last_error:
            fields["last auto-checkpoint error"] = self.autosave.last_error
        if self.unpicklable:
            fields["cannot be stored"] = ", ".join(sorted(self.unpicklable))
        return Status(fields)
