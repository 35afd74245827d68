"""A checkpoint location, through fsspec: immutable blobs and manifests, one pointer.

Layout at URL (readable by file name alone, so a plain HTTP server can serve it)::

    blobs/<key>                  one pickled co-variable group; immutable, shared by checkpoints
    manifests/<checkpoint>.json  everything needed to restore one checkpoint; immutable
    LATEST                       {"manifest": ..., "digest": ...}: the newest complete checkpoint

The commit point is LATEST, written last, in one atomic step (`os.replace` of a synced temp
file on local disks; a single-object write on object stores). Until it is written, readers
see the previous checkpoint, whatever happened to the blobs and manifest of this one.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

import fsspec
import xxhash
from fsspec.implementations.local import LocalFileSystem

from .errors import CheckpointNotFoundError, CorruptCheckpointError, StorageError

log = logging.getLogger("colab_elastic.store")

LATEST = "LATEST"
DIGEST = "xxh3_128"


@dataclass(frozen=True)
class BlobInfo:
    """A blob as written: its key, digest and size, and how long the write took."""

    key: str
    digest: str
    size: int
    seconds: float


class _DigestWriter:
    """Forwards writes to a file while hashing and counting them (pickle streams into it)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.hasher = xxhash.xxh3_128()
        self.size = 0

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        n = memoryview(data).nbytes
        self.size += n
        self.file.write(data)
        return n


def digest_of(data: bytes) -> str:
    return f"{DIGEST}:{xxhash.xxh3_128_hexdigest(data)}"


class Store:
    """One checkpoint location (see the module docstring for the layout)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.url_to_fs(url, **(storage_options or {}))
        except ImportError as exc:
            raise StorageError(f"cannot open {url}: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise StorageError(f"cannot open {url}: {exc}") from None
        self.root = self.root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # Writing ------------------------------------------------------------------------------
    def _write(self, path: str, fill: Callable[[BinaryIO], None]) -> None:
        """Write a whole file so that readers see either nothing or all of it."""
        parent = path.rsplit("/", 1)[0]
        try:
            if self.local:
                os.makedirs(parent, exist_ok=True)
                tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
                try:
                    with open(tmp, "wb") as f:
                        fill(f)
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            else:
                self.fs.makedirs(parent, exist_ok=True)
                with self.fs.open(path, "wb") as f:
                    fill(f)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def has_blob(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self.path("blobs", key)))
        except OSError:
            return False

    def write_blob(self, key: str, fill: Callable[[Any], None]) -> BlobInfo:
        """Write blob `key`, streaming what `fill(file)` writes; returns its digest and size."""
        result: dict[str, Any] = {}

        def hashed(f: BinaryIO) -> None:
            writer = _DigestWriter(f)
            fill(writer)
            result["digest"] = f"{DIGEST}:{writer.hasher.hexdigest()}"
            result["size"] = writer.size

        start = time.perf_counter()
        self._write(self.path("blobs", key), hashed)
        return BlobInfo(key, result["digest"], result["size"], time.perf_counter() - start)

    def commit(self, manifest: dict[str, Any]) -> str:
        """Write the manifest, then point LATEST at it. Returns the checkpoint id."""
        checkpoint = manifest["checkpoint"]
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        name = f"manifests/{checkpoint}.json"
        self._write(self.path(name), lambda f: f.write(body))
        pointer = json.dumps({"manifest": name, "digest": digest_of(body), "checkpoint": checkpoint}).encode()
        self._write(self.path(LATEST), lambda f: f.write(pointer))
        log.info("committed checkpoint %s at %s", checkpoint, self.url)
        return checkpoint

    # Reading ------------------------------------------------------------------------------
    def _cat(self, path: str) -> bytes:
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc

    def read_blob(self, key: str, digest: str, size: int) -> bytes:
        """The blob's bytes, checked against the digest and size the manifest recorded."""
        path = self.path("blobs", key)
        try:
            data = self._cat(path)
        except FileNotFoundError:
            raise CorruptCheckpointError(f"blob {key} is missing") from None
        if len(data) != size:
            raise CorruptCheckpointError(f"blob {key} is truncated ({len(data)} of {size} bytes)")
        if digest_of(data) != digest:
            raise CorruptCheckpointError(f"blob {key} does not match its digest")
        return data

    def latest(self) -> dict[str, Any]:
        """The manifest of the newest complete checkpoint."""
        try:
            pointer = json.loads(self._cat(self.path(LATEST)))
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"no checkpoint at {self.url}") from None
        except ValueError as exc:
            raise CorruptCheckpointError(f"the checkpoint pointer at {self.url} is unreadable: {exc}") from None
        try:
            body = self._cat(self.path(pointer["manifest"]))
        except FileNotFoundError:
            raise CorruptCheckpointError(f"manifest {pointer['manifest']} at {self.url} is missing") from None
        if digest_of(body) != pointer.get("digest"):
            raise CorruptCheckpointError(f"manifest {pointer['manifest']} at {self.url} does not match its digest")
        return json.loads(body)
