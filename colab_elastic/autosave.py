"""Continuous checkpoints: after cells, what changed goes to the session's location in the background.

How, and why this way. At the end of a cell (in `post_run_cell`, on the kernel's main thread,
before the next cell can start) we plan and serialize the groups that changed into memory;
a background thread then uploads those bytes and commits the manifest. The snapshot is
consistent by construction: serialization finishes before the user's next cell runs, and
what the thread uploads are immutable bytes, so a next cell that mutates the same objects
cannot tear it. Only changed groups are serialized (blobs are keyed by content, and groups
already stored or on their way are reused), so the pause after a cell is the time to
pickle what that cell changed, and the extra memory is those bytes until they are uploaded.

We considered a forked child that pickles a copy-on-write image of the whole process (as Redis
does for BGSAVE): its pause is a fork (ms) whatever changed, but the child of a multi-threaded
kernel may inherit held locks, cannot touch CUDA tensors or reuse the gcsfs event loop, and
Python 3.12+ deprecates it. Serializing only the changed groups keeps the pause small where
it matters (a small change next to large unchanged data) without those hazards.

Bounded work: at most one checkpoint uploads while at most one more waits; a newer one
replaces the waiting one (they coalesce). If the bytes waiting would pass the memory budget,
the new blobs are streamed to the store in the foreground instead. A checkpoint never commits over a newer
one from this session. At interpreter exit an upload in flight gets a few seconds to finish;
an abandoned one never touched LATEST, so the previous checkpoint stays the restorable one.
"""

from __future__ import annotations

import atexit
from collections import deque
import datetime
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import xxhash

from .checkpoint import DeferredCheckpoint, PreparedCheckpoint, StoreSink, prepare_checkpoint, prepare_deferred
from .errors import ElasticError
from .history import CellExecution
from .lineage import kept_beside_note
from .retention import DEFAULT_KEEP, collect_garbage
from .store import DIGEST, BlobInfo, Store

if TYPE_CHECKING:
    from .session import Session


log = logging.getLogger("colab_elastic.autosave")

_GC_EVERY = 20  # auto-checkpoints between garbage collections


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(f"COLAB_ELASTIC_{name}", default))


@dataclass
class AutoPolicy:
    """When to checkpoint after a cell: after every cell that changed something (the default,
    `min_interval` 0), or at most every `min_interval` seconds and always after a cell that ran
    at least `long_cell` seconds. `memory_mb` bounds the bytes waiting for upload."""

    enabled: bool = field(default_factory=lambda: os.environ.get("COLAB_ELASTIC_AUTO", "on").lower() not in ("off", "0", "false"))
    min_interval: float = field(default_factory=lambda: _env_float("AUTO_INTERVAL", 0.0))
    long_cell: float = field(default_factory=lambda: _env_float("AUTO_AFTER", 5.0))
    memory_mb: float = field(default_factory=lambda: _env_float("AUTO_MEMORY_MB", 1024.0))
    # Changes up to this size are serialized right after the cell and planned in the background.
    defer_mb: float = field(default_factory=lambda: _env_float("AUTO_DEFER_MB", 8.0))
    exit_wait: float = field(default_factory=lambda: _env_float("AUTO_EXIT_WAIT", 10.0))
    keep: int = field(default_factory=lambda: int(_env_float("KEEP", DEFAULT_KEEP)))

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        if self.min_interval <= 0:
            return "on (after every cell that changes something)"
        return f"on (at most every {self.min_interval:g} s; always after a cell of {self.long_cell:g} s or more)"


class _MemorySink:
    """Serializes blobs into memory now; the upload happens later, in the background.

    If what is to be serialized would pass `budget` bytes, it is streamed to the store in the
    foreground instead (a longer pause, but no second copy of a large change in memory).
    """

    def __init__(self, store: Store, budget: float) -> None:
        self.store = store
        self.budget = budget
        self.pending: dict[str, tuple[BlobInfo, Any]] = {}  # content key -> (blob, bytes)
        self.direct: dict[str, BlobInfo] = {}  # written to the store already

    def put_many(self, items: list[tuple[str, str, Callable[[Any], None], int]]) -> tuple[dict[str, BlobInfo], dict[str, Exception]]:
        if sum(size for *_, size in items) > self.budget:
            done, failures = StoreSink(self.store).put_many(items)
            self.direct.update(done)
            return done, failures
        done: dict[str, BlobInfo] = {}
        failed: dict[str, Exception] = {}
        for content, name, fill, _ in items:
            # A list of immutable chunks: one copy of what the cell changed (the snapshot),
            # no reallocation as it grows, and no BytesIO.getbuffer() view (a view exported
            # from a BytesIO that the garbage collector frees first crashes CPython 3.12.1).
            data: list[bytes] = []
            hasher = xxhash.xxh3_128()

            class _Writer:
                def write(self, chunk: Any) -> int:
                    hasher.update(chunk)
                    data.append(bytes(chunk))
                    return len(data[-1])

            try:
                fill(_Writer())
            except Exception as exc:  # noqa: BLE001 - the caller decides what a failed fill means
                failed[content] = exc
                continue
            info = BlobInfo(name, f"{DIGEST}:{hasher.hexdigest()}", sum(map(len, data)), 0.0)
            self.pending[content] = (info, data)
            done[content] = info
        return done, failed


@dataclass
class _Job:
    """One checkpoint waiting to be uploaded and committed: planned already (`prepared`), or
    with its changed groups serialized and its plan left to the uploader (`deferred`)."""

    sequence: int
    store: Store
    covers_cell: int
    payload: dict[str, tuple[BlobInfo, Any]]  # serialized, not yet confirmed written, by content key
    prepared: PreparedCheckpoint | None
    deferred: DeferredCheckpoint | None
    pause: float = 0.0
    direct_bytes: int = 0  # written in the foreground (over the memory budget) before queueing

    @property
    def nbytes(self) -> int:
        return sum(info.size for info, _ in self.payload.values())


@dataclass
class Completed:
    """The newest checkpoint this session committed in the background."""

    checkpoint: str
    url: str
    covers_cell: int
    at: datetime.datetime
    bytes_written: int
    pause: float


class AutoCheckpointer:
    """Decides after each cell whether to checkpoint, and uploads in a background thread."""

    def __init__(self, session: "Session", policy: AutoPolicy | None = None) -> None:
        self.session = session
        self.policy = policy or AutoPolicy()
        self._lock = threading.Condition()
        self._pending: dict[str, tuple[BlobInfo, Any]] = {}  # serialized, not yet confirmed written
        self._queued: _Job | None = None
        self._inflight: _Job | None = None
        self._sequence = 0
        self._committed_sequence: dict[str, int] = {}
        self._last_prepared = float("-inf")
        self._thread: threading.Thread | None = None
        self._closed = False
        self.last_completed: Completed | None = None
        self.last_error: str | None = None
        self._commits = 0
        self._recomputed: set[str] = set()  # content keys the newest plan recomputes
        self.pauses: deque[float] = deque(maxlen=1000)  # seconds each auto-checkpoint held up the kernel
        atexit.register(self.close)

    # Main thread ------------------------------------------------------------------------------
    def after_cell(self, execution: CellExecution | None) -> None:
        if not self.policy.enabled or execution is None or self._closed:
            return
        if not self.session.may_autosave(self.session.url()):
            return  # another session's checkpoint is there: never bury it before the user chooses
        if not (execution.writes or execution.deletes) and self._sequence > 0:
            return  # nothing changed: the last checkpoint is this state already
        now = time.monotonic()
        if now - self._last_prepared < self.policy.min_interval and execution.runtime < self.policy.long_cell:
            return
        try:
            self.checkpoint_now()
        except ElasticError as exc:
            self.last_error = str(exc)
            log.warning("auto-checkpoint skipped: %s", exc)

    def checkpoint_now(self) -> None:
        """Snapshot the current state now; plan, upload and commit it in the background.

        When what changed is small (`defer_mb`), only its serialization happens here and the
        plan is made by the uploader; otherwise the plan comes first, so that a large value the
        plan recomputes is never serialized."""
        started = time.perf_counter()
        session = self.session
        url = session.url()
        store = session.store(url)
        with self._lock:
            known = dict(session.known_blobs(store))
            known.update({key: info for key, (info, _) in self._pending.items()})
            waiting = sum(info.size for info, _ in self._pending.values())
        budget = self.policy.memory_mb * 1e6 - waiting
        sink = _MemorySink(store, budget)
        session.ensure_writable(store)
        inputs = session.checkpoint_inputs(store, known)
        deferred = prepare_deferred(inputs, sink=sink, limit=min(self.policy.defer_mb * 1e6, budget),
                                    recomputed=self._recomputed)
        prepared = None
        if deferred is None:
            prepared = prepare_checkpoint(inputs, sink=sink, fresh=False)
            self._recomputed = prepared.recomputed
        referenced = set(prepared.blobs) if prepared is not None else set(sink.pending) | {
            g.key for g in deferred.groups if g.key is not None and g.info.storable}
        confirmed = session.known_blobs(store)
        with self._lock:
            confirmed.update(sink.direct)
            self._pending.update(sink.pending)
            payload = {c: self._pending[c] for c in referenced if c not in confirmed and c in self._pending}
            self._sequence += 1
            # What the user waited for: serializing, planning when it came first, any foreground write.
            job = _Job(self._sequence, store, session.graph.executions[-1].index, payload, prepared, deferred,
                       time.perf_counter() - started, sum(b.size for b in sink.direct.values()))
            self._last_prepared = time.monotonic()
            self._queued = job  # replaces an older waiting job: they coalesce
            self._forget_unreferenced()
            self._ensure_thread()
            self._lock.notify_all()
        self.pauses.append(job.pause)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or uploading. Returns False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._queued is not None or self._inflight is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def cancel_queued(self) -> None:
        """Drop a waiting checkpoint (an explicit checkpoint or a restore supersedes it)."""
        with self._lock:
            self._queued = None
            self._forget_unreferenced()

    def close(self) -> None:
        """At exit or unload: give an upload in flight a moment, then abandon the rest."""
        if self._closed:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except ValueError:
            pass
        finished = self.wait(self.policy.exit_wait)
        if not finished:
            log.warning("abandoning an unfinished auto-checkpoint; the previous complete one stays restorable")
        with self._lock:
            self._queued = None
            self._lock.notify_all()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._queued is not None or self._inflight is not None

    # Worker thread ----------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="colab-elastic-autosave", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._queued is None and not self._closed:
                    self._lock.wait()
                if self._queued is None:
                    return
                job, self._queued = self._queued, None
                self._inflight = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._inflight = None
                    self._forget_unreferenced()
                    self._lock.notify_all()
            del job  # its snapshot bytes go now, not when the next checkpoint arrives

    def _run(self, job: _Job) -> None:
        store = job.store
        confirmed = self.session.known_blobs(store)
        written: list[BlobInfo] = []
        label = f"after cell {job.covers_cell}"
        try:
            prepared = job.prepared if job.prepared is not None else job.deferred.finish()  # type: ignore[union-attr]
            manifest, references = prepared.manifest, prepared.blobs
            assert manifest is not None
            self._recomputed = prepared.recomputed
            label = manifest.checkpoint
            for content, (info, data) in job.payload.items():
                if content in confirmed or content not in references:
                    continue  # written already, or serialized on speculation and not stored by the plan
                done = store.write_blob(info.key, lambda f, data=data: [f.write(chunk) for chunk in data])
                if done.digest != info.digest:
                    raise ElasticError(f"blob {info.key} changed while uploading")
                written.append(done)
                with self._lock:
                    confirmed[content] = done
                    self._pending.pop(content, None)
            with self._lock:
                if job.sequence < self._committed_sequence.get(store.url, 0):
                    log.info("auto-checkpoint %s superseded before commit", label)
                    return
            moved = self.session.commit(store, manifest)
            with self._lock:
                self._committed_sequence[store.url] = job.sequence
                # Only what the newest manifest references is sure to outlive garbage collection.
                self.session.set_known_blobs(store, references)
            if not moved:
                self.last_error = f"auto-checkpoint {label} {kept_beside_note(store)}"
                log.warning("%s", self.last_error)
                return
            self.session.measure(store.url, written)
            self.last_completed = Completed(label, store.url, job.covers_cell, datetime.datetime.now(),
                                            job.direct_bytes + sum(b.size for b in written), job.pause)
            self.last_error = None
            self._commits += 1
            if self.policy.keep > 0 and self._commits % _GC_EVERY == 0:
                # In this thread, so never concurrent with our own uploads; the grace period
                # protects other kernels' checkpoints in flight.
                collect_garbage(store, keep=self.policy.keep)
            log.info("auto-checkpoint %s committed (cell %d, %d bytes)", label, job.covers_cell,
                     sum(b.size for b in written))
        except ElasticError as exc:
            self.last_error = str(exc)
            log.warning("auto-checkpoint %s failed: %s", label, exc)
        except Exception as exc:  # noqa: BLE001 - a dead uploader thread would stop every later checkpoint
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("auto-checkpoint %s failed unexpectedly", label, exc_info=True)

    def note_commit(self, url: str) -> None:
        """An explicit checkpoint committed: older background ones must not commit over it."""
        with self._lock:
            self._sequence += 1
            self._committed_sequence[url] = self._sequence

    def _forget_unreferenced(self) -> None:
        """Drop serialized bytes no waiting or running job references (called under the lock)."""
        keep = set()
        for job in (self._queued, self._inflight):
            if job is not None:
                keep.update(job.payload)
        for key in [k for k in self._pending if k not in keep]:
            del self._pending[key]
