"""Storage hygiene: drop old checkpoints and the blobs no kept checkpoint needs.

Safe by construction: the checkpoint LATEST names is always kept, and so is the newest intact
checkpoint of every lineage (a session another runtime kept beside this one); a blob is deleted only if
no kept manifest references it *and* it is older than a grace period, so a blob just
written by a checkpoint still in flight (its manifest not yet committed, in this process or
another) is never taken from under it.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckpointNotFoundError, CorruptCheckpointError, StorageError
from .manifest import Manifest
from .store import Store

log = logging.getLogger("colab_elastic.retention")

DEFAULT_KEEP = 5
DEFAULT_GRACE = 3600.0  # seconds


@dataclass
class GarbageReport:
    """What a collection removed (or, in a dry run, would remove)."""

    kept: list[str] = field(default_factory=list)
    removed_manifests: list[str] = field(default_factory=list)
    removed_blobs: list[str] = field(default_factory=list)
    removed_partial: list[str] = field(default_factory=list)  # what writes cut short left behind
    freed_bytes: int = 0

    def __str__(self) -> str:
        return (f"kept {len(self.kept)} checkpoints; removed {len(self.removed_manifests)} old checkpoints and "
                f"{len(self.removed_blobs)} unreferenced blobs ({self.freed_bytes / 1e6:.1f} MB)")


def _age(info: dict[str, Any], now: float) -> float:
    """Seconds since the object was written; 0 when the backend does not say (never delete)."""
    for key in ("mtime", "updated", "timeCreated", "LastModified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return now - float(value)
        if isinstance(value, datetime.datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
            return now - stamp.timestamp()
        if isinstance(value, str):
            try:
                return now - datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _listing(store: Store, folder: str) -> list[dict[str, Any]]:
    _check_inside(store, folder)
    infos = store.listing(folder)
    if infos is None:
        raise StorageError(f"{store.url} cannot be listed (a web server): garbage collection needs its files")
    return infos


def _check_inside(store: Store, folder: str) -> None:
    """On a local disk, refuse a folder that leads out of the checkpoint folder (a `blobs`
    symlink to somewhere else): whatever is there is not ours to delete."""
    if not store.local:
        return  # object stores and memory:// have no links
    path = store.path(folder)
    if os.path.lexists(path) and os.path.realpath(path) != os.path.normpath(os.path.join(os.path.realpath(store.root), folder)):
        raise StorageError(f"{path} is a link out of the checkpoint folder {store.url}: garbage collection "
                           "deletes nothing through it")


def _parse(body: bytes) -> Manifest | None:
    try:
        return Manifest.from_json(body)
    except CorruptCheckpointError:
        return None


def _partial(info: dict[str, Any]) -> bool:
    """A file a write cut short left behind: the temporary file of a manifest or of LATEST
    (renamed into place when whole), or a probe of `Store.check_writable` never deleted."""
    name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
    return info.get("type", "file") == "file" and (".tmp-" in name or name.startswith(".colab-elastic-probe-"))


def collect_garbage(store: Store, keep: int = DEFAULT_KEEP, grace: float = DEFAULT_GRACE,
                    dry_run: bool = False) -> GarbageReport:
    """Keep the newest `keep` checkpoints, whatever LATEST names, and the newest intact
    checkpoint of every lineage (another runtime's session kept beside this one); delete the
    rest and every blob none of them needs that is older than `grace` seconds."""
    report = GarbageReport()
    now = time.time()
    try:
        _, current_path, _ = store.latest_files()
    except CheckpointNotFoundError:
        return report  # nothing committed here yet: nothing is garbage
    current = current_path.rsplit("/", 1)[-1]
    manifests_and_more = _listing(store, "manifests")
    manifests = sorted((i for i in manifests_and_more if i["name"].endswith(".json")), key=lambda i: i["name"])
    names = [i["name"].rsplit("/", 1)[-1] for i in manifests]
    blobs = _listing(store, "blobs")
    sizes = {i["name"].rsplit("/", 1)[-1]: int(i.get("size") or 0) for i in blobs}
    bodies: dict[str, Manifest] = {}
    for info, name in zip(manifests, names):
        try:
            body = _parse(store.fs.cat_file(info["name"]))
        except OSError as exc:
            body = None
            log.info("manifest %s is unreadable: %s", name, exc)
        if body is not None:
            bodies[name] = body
    kept = set(names[-keep:]) | {current}
    newest_of_lineage: dict[Any, str] = {}
    for name in reversed(names):
        body = bodies.get(name)
        if body is None or any(sizes.get(b.key) != b.size for b in body.blobs()):
            continue  # damaged: it cannot stand for its lineage
        newest_of_lineage.setdefault(body.lineage, name)
    kept |= set(newest_of_lineage.values())
    referenced: set[str] = set()
    for info, name in zip(manifests, names):
        if name in kept:
            referenced.update(b.key for b in (bodies[name].blobs() if name in bodies else ()))
            report.kept.append(name)
        elif _age(info, now) >= 0:
            report.removed_manifests.append(info["name"])
    if any(name not in bodies for name in kept):
        # A kept manifest we cannot read may name any blob: delete none.
        referenced = set(sizes)
    for info in blobs:
        key = info["name"].rsplit("/", 1)[-1]
        if key not in referenced and _age(info, now) > grace:
            report.removed_blobs.append(info["name"])
            report.freed_bytes += int(info.get("size") or 0)
    # Blobs' temporary files are unreferenced blobs (above); those of manifests and LATEST are
    # beside them, older than the grace period, so no write in flight is using them.
    for info in [i for i in manifests_and_more if _partial(i)] + [i for i in _listing(store, "") if _partial(i)]:
        if _age(info, now) > grace:
            report.removed_partial.append(info["name"])
    if not dry_run:
        # Manifests first: a manifest never outlives a blob it names.
        for path in report.removed_manifests + report.removed_blobs + report.removed_partial:
            # Checked again right before: a folder swapped for a link since the listing.
            if path in report.removed_manifests or path in report.removed_blobs:
                _check_inside(store, "manifests" if path in report.removed_manifests else "blobs")
            elif "/manifests/" in path.replace("\\", "/"):
                _check_inside(store, "manifests")
            try:
                store.fs.rm_file(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StorageError(f"cannot delete {path}: {exc}") from exc
    log.info("%s at %s", report, store.url)
    return report
