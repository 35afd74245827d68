"""Recording one cell execution: what it read, created, deleted and changed in place.

No IPython import: the glue calls `before(raw_cell)` from `pre_run_cell` and `after(error)`
from `post_run_cell`. A failure here never reaches the user's cell: it becomes a
`RecordingWarning` and the execution is recorded as not rerunnable, so the planner stores
its outputs instead of trusting a guess about them.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from . import randomness
from .analysis import analyze_cell, reachable_names, replayable_code
from .errors import RecordingWarning, describe
from .fingerprint import Fingerprint, fingerprint, unknown
from .history import CellExecution, HistoryGraph
from .namespace import notebook_predicate, user_names

log = logging.getLogger("colab_elastic.recorder")


@dataclass
class _Pending:
    """What `before` saw, waiting for `after`."""

    raw_cell: str
    started: float
    ids: dict[str, int]
    before: dict[str, Fingerprint] = field(default_factory=dict)
    loads: frozenset[str] = frozenset()
    failure: str = ""
    cell_id: str | None = None
    rng: randomness.State | None = None


class Recorder:
    """Turns pre/post cell events into `CellExecution`s on a `HistoryGraph`."""

    def __init__(
        self,
        namespace: dict[str, Any],
        graph: HistoryGraph,
        *,
        hidden: dict[str, Any] | None = None,
        transform: Callable[[str], str] = lambda code: code,
    ) -> None:
        self.namespace = namespace
        self.hidden = hidden or {}
        self.graph = graph
        self.transform = transform
        self.is_notebook_defined = notebook_predicate(namespace)
        # name -> (id of the bound object, its fingerprint after the last cell that wrote it)
        self._cache: dict[str, tuple[int, Fingerprint]] = {}
        self._pending: _Pending | None = None
        # The state `graph.rng` was encoded from, and that encoding: encode again only when it moves.
        self._rng_seen: tuple[str, randomness.State] | None = None

    def names(self) -> list[str]:
        return user_names(self.namespace, self.hidden)

    def fingerprint(self, name: str, *, fresh: bool = False) -> Fingerprint:
        value = self.namespace[name]
        cached = self._cache.get(name)
        if not fresh and cached is not None and cached[0] == id(value):
            return cached[1]
        try:
            fp = fingerprint(value, is_notebook_defined=self.is_notebook_defined)
        except Exception as exc:  # noqa: BLE001 - one value must not cost the cell its recording
            # Unknown: assumed changed by every cell that reaches it, recomputed, never stored.
            reason = f"could not be fingerprinted ({describe(exc)})"
            log.info("%s %s", name, reason)
            fp = unknown(reason)
        self._cache[name] = (id(value), fp)
        return fp

    def reset_cache(self) -> None:
        self._cache.clear()

    # Events --------------------------------------------------------------------------------
    def before(self, raw_cell: str, cell_id: str | None = None) -> None:
        started = time.perf_counter()
        self._pending = None
        try:
            names = self.names()
            # Values that appeared outside recorded cells (before %load_ext, in its own cell)
            # have no writer we could rerun: they belong to execution 0.
            self.graph.adopt(names)
            ids = {n: id(self.namespace[n]) for n in names}
        except Exception as exc:  # noqa: BLE001 - a hook must never break the user's cell
            warnings.warn(f"colab_elastic could not snapshot the namespace: {exc!r}", RecordingWarning, stacklevel=2)
            return
        pending = _Pending(raw_cell, started, ids, cell_id=cell_id)
        try:
            pending.rng = randomness.capture()
            analysis = analyze_cell(self.transform(raw_cell))
            if not analysis.parsed:
                pending.failure = "the cell could not be parsed"
            candidates = reachable_names(analysis.loads | analysis.deletes, self.namespace, self.is_notebook_defined)
            pending.loads = frozenset(candidates)
            pending.before = {n: self.fingerprint(n) for n in candidates if n in ids}
        except Exception as exc:  # noqa: BLE001
            pending.failure = f"analysis failed: {exc!r}"
            warnings.warn(f"colab_elastic could not analyse this cell ({exc!r}); its results will be stored, not rerun",
                          RecordingWarning, stacklevel=2)
        self._pending = pending
        # Restart the clock so our own work is not counted as the cell's runtime.
        pending.started = time.perf_counter()

    def after(self, error: BaseException | None = None) -> CellExecution | None:
        ended = time.perf_counter()
        pending, self._pending = self._pending, None
        if pending is None:
            return None  # a post without a pre: an empty cell, or the %load_ext cell itself
        try:
            return self._record(pending, ended - pending.started, error)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"colab_elastic could not record this cell: {exc!r}", RecordingWarning, stacklevel=2)
            names = set(self.names())
            return self.graph.record(
                replayable_code(pending.raw_cell), ended - pending.started,
                reads=(), writes=names, deletes=set(pending.ids) - names,
                error=type(error).__name__ if error else None, rerunnable=False, note=f"recording failed: {exc!r}",
            )

    def _record(self, pending: _Pending, runtime: float, error: BaseException | None) -> CellExecution:
        names = self.names()
        now = {n: id(self.namespace[n]) for n in names}
        created = {n for n in now if n not in pending.ids}
        deleted = {n for n in pending.ids if n not in now}
        rebound = {n for n in now if n in pending.ids and now[n] != pending.ids[n]}

        modified: set[str] = set()
        if pending.failure:
            # We do not know what the cell touched: everything it could see may have changed.
            modified = {n for n in now if n in pending.ids and n not in rebound}
        refreshed: set[str] = set()  # fingerprinted after the cell already: never hash twice
        for name, before in pending.before.items():
            if name not in now or name in rebound:
                continue
            after = self.fingerprint(name, fresh=True)
            refreshed.add(name)
            # An opaque value (a generator, a C object) may have changed unseen: if the
            # cell could reach it, assume it did.
            if after.content != before.content or not after.complete:
                modified.add(name)
        # A change made through one name is a change to every name sharing those objects.
        for name in [n for n in modified if n in pending.before]:
            shared = pending.before[name].objects
            for other, (obj_id, fp) in list(self._cache.items()):
                if other in now and other not in rebound and other != name and now[other] == obj_id and fp.objects & shared:
                    modified.add(other)

        for name in deleted:
            self._cache.pop(name, None)
        for name in (created | rebound | modified) - refreshed:
            self.fingerprint(name, fresh=True)

        note = pending.failure
        rng = None
        after = randomness.capture()
        if pending.rng is not None and randomness.changed(pending.rng, after):
            rng = randomness.encode(pending.rng)  # the cell drew random numbers: replay them
        self._note_random_state(after)
        execution = self.graph.record(
            replayable_code(pending.raw_cell),
            runtime,
            reads=(pending.loads & set(pending.ids)) | modified | deleted,
            writes=created | rebound | modified,
            deletes=deleted,
            error=type(error).__name__ if error is not None else None,
            rerunnable=not note,
            note=note,
            cell_id=pending.cell_id,
            rng=rng,
        )
        log.debug("recorded cell %d: reads %s writes %s", execution.index, execution.reads, execution.writes)
        return execution

    def _note_random_state(self, state: randomness.State) -> None:
        """Keep `graph.rng` at the global random state after the last recorded cell."""
        seen = self._rng_seen
        # `is not`: a graph swapped in by a restore carries its own state, which this one replaces.
        if seen is None or seen[0] is not self.graph.rng or randomness.changed(seen[1], state):
            encoded = randomness.encode(state)
            self.graph.rng = encoded
            self._rng_seen = (encoded, state)

    def discard_pending(self) -> None:
        """Forget the cell in progress (it restored the session: its changes are not its own)."""
        self._pending = None
