"""Taking a checkpoint: fingerprint the live state, plan, write the chosen groups, commit.

    names ─► fingerprints ─► co-variable groups ─► planner ─► blobs ─► manifest ─► LATEST

Blobs are keyed by the content fingerprint of their group, so a group unchanged since an
earlier checkpoint to the same place is not written again. A group that turns out not to
pickle is marked unstorable and the plan is made again without it.

Isolation per value: whatever one value raises while it is fingerprinted, grouped or
serialized marks its group unstorable, with the reason, and the checkpoint goes on (the
group is recomputed by rerunning its cells). Only a failure of the storage stops it.
"""

from __future__ import annotations

import datetime
import functools
import io
import logging
import time
import types
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

import xxhash

from . import credentials, freshness, sharing
from ._version import __version__
from .analysis import analyze_cell
from .errors import StorageError, UnpicklableWarning, describe
from .files import Carried, FileLog, carry, environment
from .covariables import overlapping
from .fingerprint import Fingerprint, fingerprint
from .history import HistoryGraph
from .manifest import Author, BlobRef, Environment, Files, GroupEntry, Manifest, Recorded
from .planner import Bandwidth, GroupInfo, Plan, plan
from .recorder import Recorder
from .serialize import dump_group, load_group
from .store import BlobInfo, Store

log = logging.getLogger("colab_elastic.checkpoint")


@dataclass(frozen=True)
class CheckpointResult:
    """What one checkpoint did: the plan it followed, and what it wrote where."""

    checkpoint: str
    url: str
    plan: Plan
    bytes_written: int
    blobs_written: int
    blobs_reused: int
    seconds: float
    note: str = ""  # something the user must know about where it went (Drive sync, ...)

    def __repr__(self) -> str:
        from .report import checkpoint_text

        return checkpoint_text(self)

    def _repr_html_(self) -> str:
        from .report import checkpoint_html

        return checkpoint_html(self)


@dataclass
class _Group:
    info: GroupInfo
    key: str | None  # content-derived blob key, None when the content is not fully known
    fingerprints: dict[str, Fingerprint]
    reloaded: dict[str, str] = field(default_factory=dict)  # see `_reloaded`
    # Names whose value looks like a credential: never stored, not even their fingerprint.
    withheld: frozenset[str] = frozenset()


def _groups(recorder: Recorder, unpicklable: dict[str, tuple[str, str]], fresh: bool = True) -> list[_Group]:
    names = recorder.names()
    fps = {n: recorder.fingerprint(n, fresh=fresh, portable=True) for n in names}
    if not fresh:
        # Cached is not current for what code outside cells may have changed (see freshness).
        threads = freshness.foreign_threads()
        for name in freshness.to_refresh(fps, recorder.proven(), quiet=not threads):
            fps[name] = recorder.fingerprint(name, fresh=True, portable=True)
    groups = []
    for members in overlapping(fps):
        try:
            groups.append(_group(recorder, frozenset(members), fps, unpicklable))
        except Exception as exc:  # noqa: BLE001 - one odd value must not stop the checkpoint
            reason = f"{', '.join(sorted(members))}: could not be planned ({describe(exc)})"
            info = GroupInfo(frozenset(members), sum(fps[n].size for n in members), storable=False, reason=reason)
            groups.append(_Group(info, None, {n: fps[n] for n in members}))
    return groups


def _changed_in_place(graph: HistoryGraph, name: str) -> int:
    """The cell that wrote the live version of `name` by changing the value it read, or that
    set attributes on it right after binding it (`import json; json.flag = 5`); 0 if none."""
    ref = (name, graph.active.get(name, 0))
    for execution in reversed(graph.executions):
        if ref in execution.writes:
            changed = any(n == name for n, _ in execution.reads) or name in _attribute_stores(execution.code)
            return execution.index if changed else 0
    return 0


@functools.lru_cache(maxsize=256)
def _attribute_stores(code: str) -> frozenset[str]:
    # Cached: every auto-checkpoint asks again about the same import cells.
    return analyze_cell(code).attribute_stores


def _group(recorder: Recorder, members: frozenset[str], fps: dict[str, Fingerprint],
           unpicklable: dict[str, tuple[str, str]]) -> _Group:
    # A value that is itself a secret never goes to storage: a restore names it instead.
    withheld = frozenset(n for n in members if credentials.secret_value(recorder.namespace[n], n))
    reasons = [f"{n}: {credentials.WITHHELD}" for n in sorted(withheld)]
    reasons += [f"{n}: {fps[n].unpicklable}" for n in sorted(members) if fps[n].unpicklable]
    # Remembered failures count only while the value is the one that failed.
    reasons += [f"{n}: {unpicklable[n][1]}" for n in sorted(members)
                if n in unpicklable and unpicklable[n][0] == fps[n].content]
    # type(), not isinstance(): a hostile value's `__class__` may raise.
    classes = [n for n in sorted(members) if issubclass(type(recorder.namespace[n]), type)
               and recorder.is_notebook_defined(recorder.namespace[n])]
    if classes:
        reasons.append(f"{classes[0]}: a class defined in the notebook is recreated by its cell")
    # A module is stored by name and imported again: what a cell set on it would be lost.
    changed = [(n, cell) for n in sorted(members) if issubclass(type(recorder.namespace[n]), types.ModuleType)
               and (cell := _changed_in_place(recorder.graph, n))]
    if changed:
        reasons.append(f"{changed[0][0]}: cell {changed[0][1]} set attributes on this module: it is imported "
                       "again and that cell rerun")
    key = None
    if all(fps[n].complete for n in members):
        h = xxhash.xxh3_128()
        for n in sorted(members):
            h.update(f"{n}={fps[n].content};".encode())
        key = f"g-{h.hexdigest()}"
    info = GroupInfo(
        names=members,
        size=sum(fps[n].size for n in members),
        storable=not reasons,
        reason=reasons[0] if reasons else "",
    )
    return _Group(info, key, {n: fps[n] for n in members}, withheld=withheld)


Fill = Callable[[Any], None]


class BlobSink(Protocol):
    """Where serialized groups go: straight to the store, or to memory for a background upload.

    `put_many` takes (content key, blob name, fill, estimated size) and returns the blobs
    written by content key, and the fills that raised (values that would not serialize).
    """

    def put_many(self, items: list[tuple[str, str, Fill, int]]) -> tuple[dict[str, BlobInfo], dict[str, Exception]]: ...


class StoreSink:
    """Streams blobs straight to the store, several at a time (no copy of the data in memory),
    with one byte-level progress bar over the whole transfer."""

    def __init__(self, store: Store, progress: Callable[[int, str, str], Any] | None = None) -> None:
        self.store = store
        self.progress = progress

    def put_many(self, items: list[tuple[str, str, Fill, int]]) -> tuple[dict[str, BlobInfo], dict[str, Exception]]:
        names = {name: content for content, name, _, _ in items}
        estimate = sum(size for *_, size in items)  # sizes in memory: the pickles come out smaller or larger
        bar = self.progress(estimate, "checkpoint", "B") if self.progress and items else None
        try:
            written, failed = self.store.write_blobs([(name, fill) for _, name, fill, _ in items],
                                                     progress=bar.update if bar is not None else None)
            if bar is not None and not failed:  # a finished upload ends its bar full
                bar.update(max(0, estimate - sum(info.size for info in written.values())))
        finally:
            if bar is not None:
                bar.close()
        return ({names[n]: info for n, info in written.items()}, {names[n]: exc for n, exc in failed.items()})


@dataclass
class PreparedCheckpoint:
    """A checkpoint whose plan is made and whose new blobs are handed to a sink; committing
    the manifest is what remains. `blobs` are the content-keyed blobs the manifest references;
    `recomputed` the content keys of the groups its plan recomputes."""

    result: CheckpointResult
    manifest: Manifest | None
    written: list[BlobInfo]
    blobs: dict[str, BlobInfo]
    recomputed: set[str] = field(default_factory=set)


def collect_groups(recorder: Recorder, graph: HistoryGraph, unpicklable: dict[str, tuple[str, str]],
                   known_blobs: dict[str, BlobInfo], *, fresh: bool = True) -> list[_Group]:
    """The live co-variable groups, those already at the destination marked so (on the
    kernel's thread: it reads the namespace, and brings the graph's live names up to date)."""
    names = recorder.names()
    graph.adopt(names)
    graph.forget([n for n in list(graph.active) if n not in set(names)])
    groups = _groups(recorder, unpicklable, fresh=fresh)
    for group in groups:
        if group.key and group.info.storable and group.key in known_blobs:
            group.info = GroupInfo(group.info.names, group.info.size, True, "", already_stored=True)
        group.reloaded = _reloaded(recorder, group)
    return groups


# Group content key -> `_reloaded` of it: a group is round-tripped once, not after every cell.
_RELOADED: dict[str, dict[str, str]] = {}
RELOAD_CHECK_BYTES = 1_000_000


def _reloaded(recorder: Recorder, group: _Group) -> dict[str, str]:
    """Content fingerprints of the group's values after a pickle round trip, for the names
    where it is not their own (a `__setstate__` that drops a cache, as sklearn's `Bunch`
    does): a restore loading the blob gives exactly that, and verifies against it.

    Only small groups (a round trip costs a copy); a value that does not survive the round
    trip is simply not given one (its serialization, later, says why)."""
    if group.key is None or not group.info.storable or group.info.size > RELOAD_CHECK_BYTES:
        return {}
    if group.key in _RELOADED:
        return _RELOADED[group.key]
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():  # the user sees a value's warnings when it is really stored
            warnings.simplefilter("ignore")
            dump_group({n: recorder.namespace[n] for n in group.info.names}, buffer, recorder.namespace)
            copies = load_group(buffer.getvalue(), recorder.namespace)
    except Exception as exc:  # noqa: BLE001 - whatever it raises, the value's own serialization reports it
        log.debug("%s: no round trip (%s)", ", ".join(sorted(group.info.names)), describe(exc))
        return {}
    reloaded = {}
    for name, fp in group.fingerprints.items():
        if name not in copies:
            continue
        again = fingerprint(copies.get(name), is_notebook_defined=recorder.is_notebook_defined)
        if again.complete and again.content != fp.content:
            reloaded[name] = again.content
    if len(_RELOADED) > 10_000:
        _RELOADED.clear()
    _RELOADED[group.key] = reloaded
    return reloaded


def _serialize(indices: list[int], groups: list[_Group], recorder: Recorder, sink: BlobSink, *, writer: str,
               unpicklable: dict[str, tuple[str, str]], blobs: dict[int, BlobInfo], written: list[BlobInfo]) -> bool:
    """Hand the groups at `indices` to `sink`; record their blobs in `blobs`. A group whose
    value will not serialize is marked unstorable (and remembered in `unpicklable`).
    Returns whether any failed. A failure of the storage itself raises StorageError."""
    batch: list[tuple[str, str, Fill, int]] = []
    by_content: dict[str, int] = {}
    for index in indices:
        group = groups[index]
        values = {n: recorder.namespace[n] for n in group.info.names}
        content = group.key or f"u-{uuid.uuid4().hex}"
        # The blob's name carries the writer: two kernels never overwrite each other's
        # blob with different bytes of the same content.
        name = f"{content}.{writer}" if group.key else content
        batch.append((content, name, lambda f, values=values: dump_group(values, f, recorder.namespace, recorder.strings),
                      group.info.size))
        by_content[content] = index
    if not batch:
        return False
    done, failures = sink.put_many(batch)
    for content, info in done.items():
        blobs[by_content[content]] = info
        written.append(info)
    for content, exc in failures.items():
        if isinstance(exc, StorageError):
            raise exc  # the destination failed, not the value: no checkpoint
        # Whatever else the fill raised, the value is at fault: recompute it, and
        # remember for next time.
        group = groups[by_content[content]]
        reason = f"cannot be serialized ({describe(exc)})"
        for n in group.info.names:
            unpicklable[n] = (group.fingerprints[n].content, reason)
        warnings.warn(f"{', '.join(sorted(group.info.names))} {reason}; it will be recomputed",
                      UnpicklableWarning, stacklevel=5)
        group.info = GroupInfo(group.info.names, group.info.size, False, reason)
    return bool(failures)


def _recorded(fp: Fingerprint, reloaded: str | None, withheld: bool = False) -> Recorded:
    if withheld:  # a hash of a short secret can be guessed back: keep none
        return Recorded("withheld", False)
    return Recorded(fp.content, fp.complete, reloaded, fp.comparable)


def _finish(graph: HistoryGraph, groups: list[_Group], current: Plan, blobs: dict[int, BlobInfo],
            written: list[BlobInfo], *, url: str, session: str, started: float, dry_run: bool,
            carried: Carried | None = None) -> PreparedCheckpoint:
    """The manifest of a planned checkpoint whose stored groups all have their blobs."""
    entries = []
    referenced: dict[str, BlobInfo] = {}
    for index, decision in enumerate(current.groups):
        group = groups[index]
        blob = None
        if decision.action == "store" and not dry_run:
            info = blobs[index]
            if group.key is not None:
                referenced[group.key] = info
            blob = BlobRef(info.key, info.digest, info.size, group.key)
        fingerprints = {n: _recorded(fp, group.reloaded.get(n), n in group.withheld) for n, fp in group.fingerprints.items()}
        entries.append(GroupEntry(decision, fingerprints, blob))

    checkpoint_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:8]
    result = CheckpointResult(
        checkpoint=checkpoint_id if not dry_run else "(dry run)",
        url=url,
        plan=current,
        bytes_written=sum(b.size for b in written),
        blobs_written=len(written),
        blobs_reused=sum(1 for i, d in enumerate(current.groups) if d.action == "store" and groups[i].info.already_stored),
        seconds=time.perf_counter() - started,
        note="; ".join(carried.notes) if carried is not None else "",
    )
    recomputed = {groups[i].key for i, d in enumerate(current.groups) if d.action == "recompute" and groups[i].key}
    if dry_run:
        return PreparedCheckpoint(result, None, written, referenced, recomputed)
    files = None
    if carried is not None:
        # Files the reruns need, put back before them; and what each cell read and installed.
        # Checked as a reader will check them (`files.carry` only carries names that pass).
        files = Files.from_json({"entries": carried.entries, "log": carried.record})
        referenced.update(carried.blobs)
    writer = sharing.author()
    manifest = Manifest(
        checkpoint=checkpoint_id,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        session=session,
        author=Author(writer["id"], writer["name"]),
        colab_elastic=__version__,
        environment=Environment(**environment()),
        graph=graph.copy(),  # the session's graph goes on changing; the manifest's must not
        plan=current,
        groups=tuple(entries),
        covers_cell=graph.executions[-1].index,
        files=files,
    )
    return PreparedCheckpoint(result, manifest, written, referenced, recomputed)


@dataclass
class Inputs:
    """What a checkpoint of one session starts from: its recorder and history, where it goes
    (`url`) and how fast, and what is there already.

    `known_blobs` are blobs already at the destination (or on their way there), by content
    key: groups whose key is among them are not serialized again. `unpicklable` (name ->
    (content fingerprint, reason)) is updated with what failed to serialize, so the next
    checkpoint does not try that value again. `writer` goes into the names of new blobs;
    `files` (when recorded) says which files the reruns need."""

    recorder: Recorder
    graph: HistoryGraph
    bandwidth: Bandwidth
    url: str
    session: str
    unpicklable: dict[str, tuple[str, str]]
    known_blobs: dict[str, BlobInfo]
    writer: str = "w"
    files: FileLog | None = None


def prepare_checkpoint(inputs: Inputs, *, sink: BlobSink | None, fresh: bool = True) -> PreparedCheckpoint:
    """Fingerprint, group, plan, and serialize every stored group not already known.

    `sink=None` is a dry run. `fresh=False` trusts fingerprints cached by the recorder where
    they are proven current (see freshness).
    """
    started = time.perf_counter()
    recorder, graph, known_blobs, writer = inputs.recorder, inputs.graph, inputs.known_blobs, inputs.writer
    groups = collect_groups(recorder, graph, inputs.unpicklable, known_blobs, fresh=fresh)
    # Files the reruns need go first: a cell whose file cannot travel is planned not rerunnable.
    carried = carry(graph, inputs.files, sink, known_blobs, writer=writer) if inputs.files is not None else None
    if carried is not None:
        graph = carried.graph
    written: list[BlobInfo] = []
    blobs: dict[int, BlobInfo] = {}
    while True:
        current = plan(graph, [g.info for g in groups], inputs.bandwidth)
        if sink is None:
            break
        wanted = []
        for index, decision in enumerate(current.groups):
            if decision.action != "store" or index in blobs:
                continue
            group = groups[index]
            if group.info.already_stored and group.key is not None:
                blobs[index] = known_blobs[group.key]
            else:
                wanted.append(index)
        if not _serialize(wanted, groups, recorder, sink, writer=writer, unpicklable=inputs.unpicklable,
                          blobs=blobs, written=written):
            break
    return _finish(graph, groups, current, blobs, written, url=inputs.url, session=inputs.session,
                   started=started, dry_run=sink is None, carried=carried)


@dataclass
class DeferredCheckpoint:
    """A checkpoint whose every changed storable group is serialized already, and whose plan
    and manifest are left for later (a background thread): they read only this snapshot.

    After a cell that changed little, this is what keeps the kernel's pause to milliseconds:
    the min-cut over a long history takes tens of them."""

    graph: HistoryGraph
    groups: list[_Group]
    blobs: dict[int, BlobInfo]  # every storable group's blob: known already, or just serialized
    written: list[BlobInfo]
    bandwidth: Bandwidth
    url: str
    session: str
    started: float
    carried: Carried | None = None

    def finish(self) -> PreparedCheckpoint:
        """Plan over the snapshot and build the manifest (any thread)."""
        current = plan(self.graph, [g.info for g in self.groups], self.bandwidth)
        return _finish(self.graph, self.groups, current, self.blobs, self.written, url=self.url,
                       session=self.session, started=self.started, dry_run=False, carried=self.carried)


def prepare_deferred(inputs: Inputs, *, sink: BlobSink, limit: float, recomputed: set[str]) -> DeferredCheckpoint | None:
    """Serialize every storable group not already known, if they add up to at most `limit`
    bytes, and leave the plan for later; None when they are larger (plan first, then
    serialize only what the plan stores: `prepare_checkpoint`).

    `recomputed`: content keys of groups the previous plan chose to recompute. Unchanged
    since, they are recomputed again rather than serialized on speculation: the same
    cells still rebuild the same content."""
    started = time.perf_counter()
    recorder, graph, known_blobs, writer = inputs.recorder, inputs.graph, inputs.known_blobs, inputs.writer
    groups = collect_groups(recorder, graph, inputs.unpicklable, known_blobs, fresh=False)
    for group in groups:
        if group.key in recomputed and group.info.storable and not group.info.already_stored:
            group.info = GroupInfo(group.info.names, group.info.size, False,
                                   "cheaper to recompute (unchanged since the last plan found so)")
    changed = [i for i, g in enumerate(groups) if g.info.storable and not g.info.already_stored]
    if sum(groups[i].info.size for i in changed) > limit:
        return None
    blobs = {i: known_blobs[g.key] for i, g in enumerate(groups) if g.info.already_stored and g.key is not None}
    written: list[BlobInfo] = []
    _serialize(changed, groups, recorder, sink, writer=writer, unpicklable=inputs.unpicklable, blobs=blobs,
               written=written)
    carried = carry(graph, inputs.files, sink, known_blobs, writer=writer) if inputs.files is not None else None
    if carried is not None:
        graph = carried.graph
    return DeferredCheckpoint(graph.copy(), groups, blobs, written, inputs.bandwidth, inputs.url, inputs.session,
                              started, carried)


def take_checkpoint(
    inputs: Inputs,
    store: Store,
    *,
    progress: Callable[[int, str, str], Any] | None = None,
    dry_run: bool = False,
    commit: Callable[[Manifest], bool] | None = None,
) -> tuple[CheckpointResult, dict[str, BlobInfo], bool]:
    """Plan, and unless `dry_run`, write and commit one checkpoint now, streaming blobs to the
    store. `commit(manifest)` commits (default: `store.commit`) and says whether LATEST moved.
    Returns the result, the blobs the manifest references by content key, and whether LATEST moved."""
    started = time.perf_counter()
    prepared = prepare_checkpoint(inputs, sink=None if dry_run else StoreSink(store, progress))
    if prepared.manifest is None:
        return prepared.result, {}, False
    moved = (commit or (lambda manifest: store.commit(manifest.to_json())))(prepared.manifest)
    elapsed = time.perf_counter() - started
    result = prepared.result
    log.info("checkpoint %s: %d blobs written (%d bytes), %d reused in %.3f s", result.checkpoint,
             result.blobs_written, result.bytes_written, result.blobs_reused, elapsed)
    return replace(result, seconds=elapsed), prepared.blobs, moved
