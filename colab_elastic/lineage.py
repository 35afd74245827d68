"""Every checkpoint at a location: their lineages, the log, and which one a restore takes.

A lineage is one session's chain of checkpoints. Each manifest names its `lineage` (an id a
kernel makes when it starts fresh, and inherits when it restores) and its `parent` (the
checkpoint the writing kernel wrote or restored before it). LATEST only moves forward along
the lineage of the kernel that moves it (`Store.commit`); a new runtime's checkpoints are
kept beside it until the user restores or starts fresh.

A plain restore takes the checkpoint LATEST names; if that manifest is missing or damaged
(Drive syncs files in no guaranteed order), the newest intact checkpoint of the same
lineage, and says which it skipped. On a store that cannot list its files (a web server),
older checkpoints are found through `parent` links alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

from .errors import CheckpointNotFoundError, CorruptCheckpointError, StorageError
from .manifest import Manifest, Notebook
from .pointer import CHECKPOINT_ID, parse_manifest
from .store import Pointer, Store

log = logging.getLogger("colab_elastic.lineage")


def parse(data: dict[str, Any], url: str) -> Manifest:
    """The manifest in `data`, every field checked (see manifest): CorruptCheckpointError
    naming the checkpoint, its location and the field that is wrong, never a KeyError later."""
    try:
        return Manifest.from_json(data)
    except CorruptCheckpointError as exc:
        name = data.get("checkpoint") if isinstance(data, dict) else None
        shown = name if isinstance(name, str) and CHECKPOINT_ID.fullmatch(name) else "?"
        raise CorruptCheckpointError(f"checkpoint {shown} at {url}: {exc}") from None


def read_latest(store: Store) -> Manifest:
    """The checked manifest LATEST names (checked against the digest LATEST holds, too)."""
    _, name, body = store.latest_files()
    manifest = parse(parse_manifest(body, name, store.url), store.url)
    if name != f"manifests/{manifest.checkpoint}.json":
        raise CorruptCheckpointError(f"manifest {name} at {store.url} holds checkpoint {manifest.checkpoint}")
    return manifest


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint at a location, as `%elastic log` lists it. `problem` is empty when intact."""

    checkpoint: str
    created: str = ""
    lineage: str | None = None
    parent: str | None = None
    session: str = ""
    notebook: str = ""
    notebook_id: str | None = None
    writer: str = ""
    cells: int = 0
    variables: int = 0
    stored_bytes: int = 0
    problem: str = ""
    latest: bool = False

    @property
    def intact(self) -> bool:
        return not self.problem


def summarize(manifest: Manifest, *, latest: bool = False, blob_sizes: dict[str, int] | None = None) -> CheckpointEntry:
    """The log line of a manifest; `blob_sizes` (from one listing) finds missing or cut blobs."""
    blobs = [g.blob for g in manifest.groups if g.blob is not None]
    problem = ""
    if blob_sizes is not None:
        bad = [b.key for b in blobs if blob_sizes.get(b.key) != b.size]
        if bad:
            problem = f"{len(bad)} of {len(blobs)} stored values missing or cut short (they would be recomputed)"
    notebook = manifest.notebook or Notebook()
    return CheckpointEntry(
        checkpoint=manifest.checkpoint,
        created=manifest.created,
        lineage=manifest.lineage,
        parent=manifest.parent,
        session=manifest.session,
        notebook=notebook.name or "",
        notebook_id=notebook.id,
        writer=manifest.author.name,
        cells=len(manifest.graph.executions) - 1,
        variables=len(manifest.graph.active),
        stored_bytes=sum(b.size for b in blobs),
        problem=problem,
        latest=latest,
    )


@dataclass
class CheckpointLog:
    """Every checkpoint at one location, newest first (what `%elastic log` shows)."""

    url: str
    entries: list[CheckpointEntry]
    listed: bool = True  # False: found through parent links only (the store cannot list)

    def __repr__(self) -> str:
        from .report import log_text

        return log_text(self)

    def _repr_html_(self) -> str:
        from .report import log_html

        return log_html(self)


def _read(store: Store, checkpoint: str) -> Manifest:
    manifest = parse(store.manifest(checkpoint), store.url)
    if manifest.checkpoint != checkpoint:
        raise CorruptCheckpointError(f"manifest {checkpoint} at {store.url} holds checkpoint {manifest.checkpoint}")
    return manifest


def _chain(store: Store, start: str | None) -> Iterator[tuple[str, Manifest | None, str]]:
    """(id, manifest or None, problem) along parent links from `start`, newest first."""
    seen: set[str] = set()
    while start and start not in seen:
        seen.add(start)
        try:
            manifest = _read(store, start)
        except StorageError as exc:
            yield start, None, str(exc)
            return  # the link to the one before is in the manifest we could not read
        yield start, manifest, ""
        start = manifest.parent


def read_log(store: Store) -> CheckpointLog:
    """Every checkpoint at `store`, newest first, each marked intact or damaged."""
    pointer = store.pointer()
    latest_problem = ""
    if pointer is not None:
        try:
            read_latest(store)  # the one LATEST names is checked against its digest too
        except StorageError as exc:
            latest_problem = str(exc)
    ids = store.checkpoint_ids()
    sizes = store.blob_sizes()
    entries: list[CheckpointEntry] = []
    if ids is None:
        start = pointer.checkpoint if pointer else None
        found = list(_chain(store, start))
        if found and found[0][1] is None and pointer is not None and pointer.parent:
            found += list(_chain(store, pointer.parent))  # LATEST's manifest is gone; its pointer knows the parent
        pairs = [(c, m, p) for c, m, p in found]
    else:
        pairs = []
        for checkpoint in reversed(ids):
            try:
                pairs.append((checkpoint, _read(store, checkpoint), ""))
            except StorageError as exc:
                pairs.append((checkpoint, None, str(exc)))
    for checkpoint, manifest, problem in pairs:
        is_latest = pointer is not None and checkpoint == pointer.checkpoint
        if is_latest and latest_problem:
            problem, manifest = latest_problem, None
        if manifest is None:
            entries.append(CheckpointEntry(checkpoint, problem=problem or "unreadable", latest=is_latest,
                                           lineage=pointer.lineage if is_latest and pointer else None))
        else:
            entries.append(summarize(manifest, latest=is_latest, blob_sizes=sizes))
    if pointer is not None and not any(e.checkpoint == pointer.checkpoint for e in entries):
        entries.insert(0, CheckpointEntry(pointer.checkpoint, lineage=pointer.lineage, latest=True,
                                          problem=latest_problem or "its manifest is missing"))
    entries.sort(key=lambda e: e.checkpoint, reverse=True)  # ids start with their UTC time
    return CheckpointLog(store.url, entries, listed=ids is not None)


def resolve_id(store: Store, at: str) -> str:
    """The full checkpoint id `at` stands for: itself, or the one id containing it."""
    ids = store.checkpoint_ids()
    if ids is None:
        return at  # cannot list: only whole ids work here
    if at in ids:
        return at
    matches = [i for i in ids if at in i]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CheckpointNotFoundError(f"no checkpoint {at!r} at {store.url} (see %elastic log)")
    raise CheckpointNotFoundError(f"{at!r} matches {len(matches)} checkpoints at {store.url}: {', '.join(matches[:5])}")


def choose(store: Store, at: str | None = None) -> tuple[Manifest, dict[str, str]]:
    """The manifest a restore should use, and the checkpoints it skipped (id -> why).

    `at`: that checkpoint (an id, or a unique part of one). Otherwise the one LATEST names,
    or, when that is missing or damaged, the newest intact one of the same lineage.
    """
    if at is not None:
        return _read(store, resolve_id(store, at)), {}
    skipped: dict[str, str] = {}
    pointer: Pointer | None = None
    try:
        return read_latest(store), skipped
    except CheckpointNotFoundError:
        if not store.checkpoint_ids():
            raise
        skipped["LATEST"] = "the pointer to the newest checkpoint is missing"
    except CorruptCheckpointError as exc:
        pointer = store.pointer()
        skipped[pointer.checkpoint if pointer else "LATEST"] = str(exc)
    ids = store.checkpoint_ids()
    if ids is None:
        candidates = _chain(store, pointer.parent if pointer else None)
    else:
        candidates = ((c, None, "") for c in reversed(ids) if c not in skipped)
    for checkpoint, manifest, problem in candidates:
        if manifest is None and not problem:
            try:
                manifest = _read(store, checkpoint)
            except StorageError as exc:
                problem = str(exc)
        if manifest is None:
            skipped[checkpoint] = problem
            continue
        if pointer is not None and pointer.lineage and manifest.lineage != pointer.lineage:
            continue  # another runtime's session, kept beside this one: not what LATEST continued
        log.info("restoring %s at %s; skipped %s", checkpoint, store.url, skipped)
        return manifest, skipped
    reasons = "; ".join(f"{c}: {why}" for c, why in skipped.items())
    raise CorruptCheckpointError(f"no intact checkpoint at {store.url} ({reasons})")


def kept_beside_note(store: Store) -> str:
    pointer = store.pointer()
    newest = pointer.checkpoint if pointer else "another checkpoint"
    return (f"kept beside {newest}, which another runtime wrote and this one has not restored: LATEST still "
            "names it (see %elastic log; --force makes this checkpoint the newest)")
