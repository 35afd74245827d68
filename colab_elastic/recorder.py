"""Recording one cell execution: what it read, created, deleted and changed in place.

No IPython import: the glue calls `before(raw_cell)` from `pre_run_cell` and `after(error)`
from `post_run_cell`. A failure here never reaches the user's cell: it becomes a
`RecordingWarning` and the execution is recorded as not rerunnable, so the planner stores
its outputs instead of trusting a guess about them.
"""

from __future__ import annotations

import logging
import sys
import time
import types
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from . import ambient, credentials, randomness, readonly
from .analysis import analyze_cell, reachable_names, replayable_code
from .errors import RecordingWarning, describe
from .fingerprint import Fingerprint, fingerprint, unknown
from .fingerprint_arrays import StringMemo
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
    unrepeatable: str = ""  # why a rerun could not reproduce the cell, known from its source
    modules: dict[str, int] = field(default_factory=dict)  # module signatures of names it may read
    cell_id: str | None = None
    rng: randomness.State | None = None
    settings: ambient.Snapshot | None = None
    modules_before: int = 0  # len(sys.modules) when the cell started
    imports: int = 0  # modules the cell added to sys.modules
    light: frozenset[str] = frozenset()  # names the cell uses only through a read-only API
    # Light pandas values -> their axes' fingerprint: a frame a chain derives keeps the same
    # `columns` Index (and categories), which pandas 2 lets numpy write into: that sharing is
    # checked by the axes alone.
    axes: dict[str, Fingerprint] = field(default_factory=dict)


class Recorder:
    """Turns pre/post cell events into `CellExecution`s on a `HistoryGraph`."""

    def __init__(
        self,
        namespace: dict[str, Any],
        graph: HistoryGraph,
        *,
        hidden: dict[str, Any] | None = None,
        transform: Callable[[str], str] = lambda code: code,
        settings: ambient.Ambient | None = None,
    ) -> None:
        self.namespace = namespace
        self.hidden = hidden or {}
        self.graph = graph
        self.transform = transform
        self.settings = settings or ambient.Ambient()
        self.is_notebook_defined = notebook_predicate(namespace)
        # name -> (id of the bound object, its fingerprint after the last cell that wrote it)
        self._cache: dict[str, tuple[int, Fingerprint]] = {}
        # Digests of large text columns, reused while their strings are the same objects.
        self.strings = StringMemo()
        # name -> (id of the bound object, in-process content, the portable fingerprint of it)
        self._portable: dict[str, tuple[int, str, Fingerprint]] = {}
        # name -> (id of the module bound, `_module_signature` of it after the last cell)
        self._modules: dict[str, tuple[int, int]] = {}
        # Names fingerprinted since the last cell ran: their cached fingerprints are current.
        self._since_cell: set[str] = set()
        # Names a cell changed through another name sharing their objects: recorded as written
        # without a walk of their own; the cached fingerprint keeps their objects for the sharing
        # rule, and its content is taken anew when next asked for (see `fingerprint`).
        self._stale: set[str] = set()
        self._pending: _Pending | None = None
        # The state `graph.rng` was encoded from, and that encoding: encode again only when it moves.
        self._rng_seen: tuple[str, randomness.State] | None = None

    def names(self) -> list[str]:
        return user_names(self.namespace, self.hidden)

    def fingerprint(self, name: str, *, fresh: bool = False, portable: bool = False) -> Fingerprint:
        """`name`'s fingerprint, cached until a cell may have changed it (`fresh` takes it anew).

        Cells are compared with this process's own fingerprints, which hash a new large text
        column by its strings' pointers (see `StringMemo`); `portable` asks for one a checkpoint
        can record, comparable in any process: the text is hashed then, once per column.
        """
        value = self.namespace[name]
        cached = self._cache.get(name)
        if not fresh and cached is not None and cached[0] == id(value) and name not in self._stale:
            fp = cached[1]
        else:
            fp = self._take(value, name, portable=False)
            self._cache[name] = (id(value), fp)
            self._since_cell.add(name)
            self._stale.discard(name)
        if not portable or fp.portable:
            return fp
        known = self._portable.get(name)
        # Equal in-process contents are the very same strings and the same everything else.
        if known is not None and known[0] == id(value) and known[1] == fp.content:
            return known[2]
        result = self._take(value, name, portable=True)
        self._portable[name] = (id(value), fp.content, result)
        return result

    def _take(self, value: Any, name: str, *, portable: bool) -> Fingerprint:
        try:
            return fingerprint(value, is_notebook_defined=self.is_notebook_defined, strings=self.strings,
                               portable=portable)
        except Exception as exc:  # noqa: BLE001 - one value must not cost the cell its recording
            # Unknown: assumed changed by every cell that reaches it, recomputed, never stored.
            reason = f"could not be fingerprinted ({describe(exc)})"
            log.info("%s %s", name, reason)
            return unknown(reason)

    def proven(self) -> set[str]:
        """Names whose cached fingerprint was taken after the last cell ran (see freshness)."""
        return set(self._since_cell)

    def adopt(self, seen: dict[str, Fingerprint]) -> None:
        """Take fingerprints walked elsewhere as this recorder's own for the values the namespace
        holds now (a restore's verification, walked like ours: see `Fingerprint.as_in_process`)."""
        for name, fp in seen.items():
            if name in self.namespace and fp.as_in_process:
                self._cache[name] = (id(self.namespace[name]), fp)
                self._stale.discard(name)

    def reset_cache(self) -> None:
        self._cache.clear()
        self._portable.clear()
        self._modules.clear()
        self._since_cell.clear()
        self._stale.clear()

    def _module_signature(self, name: str, *, fresh: bool = False) -> int | None:
        """What the notebook may have set on the module bound to `name` (None: not a module).

        A module's fingerprint is its name (it is stored by name); `json.flag = 5` shows here:
        public names and the ids of their values, leaving out what the library keeps there of
        its own (submodules, classes, its functions). In-process only, so ids may count.
        """
        value = self.namespace[name]
        if not issubclass(type(value), types.ModuleType):  # type(): a hostile `__class__` may raise
            return None
        cached = self._modules.get(name)
        if not fresh and cached is not None and cached[0] == id(value):
            return cached[1]
        pairs = tuple((key, id(item)) for key, item in list(vars(value).items())
                      if type(key) is str and not key.startswith("_") and not isinstance(item, (types.ModuleType, type))
                      and (type(item) is not types.FunctionType or self.is_notebook_defined(item)))
        signature = hash(pairs)
        self._modules[name] = (id(value), signature)
        return signature

    # Events --------------------------------------------------------------------------------
    def before(self, raw_cell: str, cell_id: str | None = None) -> None:
        started = time.perf_counter()
        self._pending = None
        self._since_cell.clear()
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
            pending.settings = self.settings.capture()
            code = self.transform(raw_cell)  # IPython's transform costs as much as the rest: once
            analysis = analyze_cell(code)
            if not analysis.parsed:
                pending.failure = "the cell could not be parsed"
            seed = set(ids) if analysis.dynamic else analysis.loads | analysis.deletes
            uses = readonly.uses(code) if not analysis.dynamic else {}
            drawing = bool(uses) and readonly.draws_on_current_figure(self.namespace, uses)
            if drawing:
                # `plt.title("x")` changes the current figure, held by a name the cell never says.
                seed |= {n for n in ids if (n in self._cache and not self._cache[n][1].comparable)
                         or (n not in self._cache and readonly.is_artist(self.namespace[n]))}
            candidates = reachable_names(seed, self.namespace, self.is_notebook_defined)
            pending.unrepeatable = analysis.unrepeatable
            pending.loads = frozenset(candidates)
            pending.before = {n: self.fingerprint(n) for n in candidates if n in ids}
            if uses and not drawing:  # `fig.savefig(...)` after `plt.title(...)` changed fig
                pending.light = self._light(uses, seed, candidates)
                if analysis.stores:  # only what the cell binds can share the axes (see `_kept_apart`)
                    pending.axes = {n: self._take(axes, n, portable=False) for n in pending.light
                                    if (axes := readonly.axes_of(self.namespace[n])) is not None}
            pending.modules = {n: sig for n in pending.before if (sig := self._module_signature(n)) is not None}
        except Exception as exc:  # noqa: BLE001
            pending.failure = f"analysis failed: {exc!r}"
            warnings.warn(f"colab_elastic could not analyse this cell ({exc!r}); its results will be stored, not rerun",
                          RecordingWarning, stacklevel=2)
        self._pending = pending
        self._since_cell.clear()  # what `before` fingerprinted is from before the cell
        # Restart the clock so our own work is not counted as the cell's runtime.
        pending.modules_before = len(sys.modules)
        pending.started = time.perf_counter()

    def _light(self, uses: dict[str, readonly.Uses], seed: set[str], candidates: set[str]) -> frozenset[str]:
        """Names the cell reads only through a library's read-only API (see `readonly`), and
        through no other route (a notebook function the cell calls may read them too)."""
        light = set()
        for name, use in uses.items():
            if name in candidates and name in seed and self._cache.get(name) is not None:
                try:
                    if readonly.is_light(self.namespace[name], use, self.namespace):
                        light.add(name)
                except Exception:  # noqa: BLE001 - a value that cannot say its type is not vouched for
                    continue
        if light:
            light -= reachable_names(seed - light, self.namespace, self.is_notebook_defined)
        return frozenset(light)

    def _defer_or_walk(self, names: set[str], bound: set[str], refreshed: set[str]) -> None:
        """Fingerprint what the cell wrote, except what another walk of this cell already covers
        (left stale, see `_stale`): a name changed through another that shares its objects
        (`axes[0].set_title(...)` changes `fig`), and a new value reached from one walked here
        (an axes reaches its figure: walked first, it covers `fig` of `fig, ax = plt.subplots()`)."""
        walked = [self._cache[n][1] for n in refreshed if n in self._cache]
        # Figures last: every artist reaches its figure, a figure's walk covers no new ndarray of axes.
        for name in sorted(names, key=lambda n: (readonly.is_figure(self.namespace[n]), n)):
            if name not in bound and name in self._cache:
                self._stale.add(name)
                continue
            key = id(self.namespace[name])
            cover = next((fp for fp in walked if key in fp.objects), None) if name in bound else None
            if cover is None:
                walked.append(self.fingerprint(name, fresh=True))
            else:
                # Its objects are among the cover's: a superset stands for them (more sharing, never less).
                self._cache[name] = (key, replace(cover, content=f"stale-{key}", pins=()))
                self._stale.add(name)
                self._since_cell.discard(name)

    def _kept_apart(self, name: str, pending: _Pending, bound: list[frozenset[int]]) -> bool:
        """Does nothing the cell bound share an object with light `name`, other than its axes,
        found unchanged? (A shared axis may have been written through the new name.)"""
        shared = frozenset().union(*(objects & pending.before[name].objects for objects in bound))
        if not shared:
            return True
        axes = pending.axes.get(name)
        if axes is None or not shared <= axes.objects or not axes.complete:
            return False
        now = readonly.axes_of(self.namespace[name])
        return now is not None and self._take(now, name, portable=False).content == axes.content

    def after(self, error: BaseException | None = None) -> CellExecution | None:
        ended = time.perf_counter()
        pending, self._pending = self._pending, None
        if pending is None:
            return None  # a post without a pre: an empty cell, or the %load_ext cell itself
        pending.imports = max(0, len(sys.modules) - pending.modules_before)
        try:
            return self._record(pending, ended - pending.started, error)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"colab_elastic could not record this cell: {exc!r}", RecordingWarning, stacklevel=2)
            names = set(self.names())
            return self.graph.record(
                credentials.scrub(replayable_code(pending.raw_cell))[0], ended - pending.started,
                reads=(), writes=names, deletes=set(pending.ids) - names,
                error=type(error).__name__ if error else None, rerunnable=False, note=f"recording failed: {exc!r}",
                imports=pending.imports,
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
        light = pending.light - rebound - deleted if not pending.failure else set()
        if light:
            # What the cell bound may be part of a light value (`coef = clf.coef_; coef *= 2`).
            bound = [self.fingerprint(n, fresh=True).objects for n in created | rebound]
            refreshed |= created | rebound
            light = {n for n in light if pending.before[n].complete and self._kept_apart(n, pending, bound)}
        for name, before in pending.before.items():
            if name not in now or name in rebound:
                continue
            if name in light:
                self._since_cell.add(name)  # unchanged by the library's contract: still current
                continue
            after = self.fingerprint(name, fresh=True)
            refreshed.add(name)
            # An opaque value (a generator, a C object) may have changed unseen: if the
            # cell could reach it, assume it did.
            if after.content != before.content or not after.complete:
                modified.add(name)
        for name, signature in pending.modules.items():
            if name in now and name not in rebound and self._module_signature(name, fresh=True) != signature:
                modified.add(name)  # an attribute set on a module the cell could reach
        # A change made through one name is a change to every name sharing those objects.
        for name in [n for n in modified if n in pending.before]:
            shared = pending.before[name].objects
            for other, (obj_id, fp) in list(self._cache.items()):
                if other in now and other not in rebound and other != name and now[other] == obj_id and fp.objects & shared:
                    modified.add(other)
        # `a.append(3); a = []`: the old object changed, then left through its name; the names
        # still sharing it see the change. Only aliases are looked at again, and only when
        # this cell has not looked at them already.
        for name in (rebound | deleted) & set(pending.before):
            shared = pending.before[name].objects
            for other, (obj_id, fp) in list(self._cache.items()):
                if (other in now and other not in rebound and other not in modified and other not in refreshed
                        and now[other] == obj_id and fp.objects & shared):
                    if other in self._stale:  # its content before the cell was never taken: assume changed
                        modified.add(other)
                        continue
                    after = self.fingerprint(other, fresh=True)
                    refreshed.add(other)
                    if after.content != fp.content or not after.complete:
                        modified.add(other)

        for name in deleted:
            self._cache.pop(name, None)
            self._modules.pop(name, None)
            self._stale.discard(name)
        self._defer_or_walk((created | rebound | modified) - refreshed, created | rebound, refreshed)

        # A credential typed into the cell never reaches a checkpoint; without it the cell
        # cannot be rerun, so its results are stored (a value that is itself a secret is not).
        code, scrubbed = credentials.scrub(replayable_code(pending.raw_cell))
        note = pending.failure or _unrepeatable(pending, error)
        if scrubbed and not note:
            note = (f"it holds a credential ({', '.join(sorted(set(scrubbed)))}), left out of the stored code: "
                    "its results are stored, not rerun")
        rng = None
        after = randomness.capture()
        if pending.rng is not None and randomness.changed(pending.rng, after):
            rng = randomness.encode(pending.rng)  # the cell drew random numbers: replay them
        self._note_random_state(after)
        settings = self._settings_changed(pending)
        execution = self.graph.record(
            code,
            runtime,
            reads=(pending.loads & set(pending.ids)) | modified | deleted,
            writes=created | rebound | modified,
            deletes=deleted,
            error=type(error).__name__ if error is not None else None,
            rerunnable=not note,
            note=note,
            cell_id=pending.cell_id,
            rng=rng,
            ambient=settings,
            imports=pending.imports,
        )
        log.debug("recorded cell %d: reads %s writes %s", execution.index, execution.reads, execution.writes)
        return execution

    def _settings_changed(self, pending: _Pending) -> str | None:
        """The session settings the cell changed (see ambient), encoded; None if it changed none."""
        if pending.settings is None:
            return None
        effect = self.settings.diff(pending.settings, self.settings.capture())
        if not effect:
            return None
        encoded, dropped = ambient.encode(ambient.withhold_credentials(effect))
        for name, why in dropped.items():
            warnings.warn(f"colab_elastic cannot record this cell's change to {name} ({why}); "
                          "a restore that does not rerun the cell will not have it", RecordingWarning, stacklevel=2)
        return encoded

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


def _unrepeatable(pending: _Pending, error: BaseException | None) -> str:
    """Why rerunning this cell would not reproduce it ("" when it would): its results must be
    stored, so the execution is recorded as not rerunnable with this as its note."""
    if isinstance(error, KeyboardInterrupt):
        return "it was interrupted: a rerun would not stop at the same place"
    if error is not None:
        return f"it failed part-way ({type(error).__name__}): a rerun may not stop at the same place"
    if pending.unrepeatable:
        return pending.unrepeatable
    return ""
