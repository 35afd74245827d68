"""A checkpoint location, through fsspec: immutable blobs and manifests, one pointer.

Layout at URL (readable by file name alone, so a plain HTTP server or a public bucket can
serve it)::

    blobs/<key>                  one pickled co-variable group; shared by checkpoints
    manifests/<checkpoint>.json  everything needed to restore one checkpoint; immutable
    LATEST                       {"manifest": ..., "digest": ...}: the newest complete checkpoint

A commit happens in three steps, each whole-or-nothing on its own:

1. blobs: a synced temp file renamed into place on local disks; on object stores an upload
   that is finalized only after its last byte (and cancelled on failure); one assignment in
   `memory://`.
2. the manifest, under a name never used before, created only if absent (a hard link of a
   synced temp file locally; `ifGenerationMatch=0` on GCS through gcsfs `mode="create"`).
3. LATEST, a few hundred bytes, in one single-request write (`os.replace` locally).

Until step 3 readers see the previous checkpoint, whatever happened to this one's blobs and
manifest; a crash, a full disk or a lost server at any moment leaves it restorable.

Two kernels committing to one URL at once: each writes its own manifest and then its own
LATEST; the LATEST written last wins. Every LATEST ever readable is whole (one atomic object
or rename) and names a manifest that was completely written, with all its blobs, before the
pointer was. The other kernel's checkpoint stays on storage, complete but unnamed.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractBufferedFile

from .errors import CheckpointNotFoundError, CorruptCheckpointError, StorageError
from .pointer import CHECKPOINT_ID, Pointer, parse_manifest
from .streams import DIGEST, DigestWriter, Progress, VerifyingReader, digest_of
from .storage_errors import CREDENTIALS_HINT, INTACT, backend_errors, explain, missing_backend, one_line

log = logging.getLogger("colab_elastic.store")

LATEST = "LATEST"

T = TypeVar("T")
Fill = Callable[[BinaryIO], None]  # writes one blob's bytes into the file it is given

# Served over plain HTTP, or exported to one zip file, a checkpoint can be read, never written.
_READ_ONLY_PROTOCOLS = frozenset({"http", "https", "zip"})
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


@dataclass(frozen=True)
class BlobInfo:
    """A blob as written: its key, digest and size, and how long the write took."""

    key: str
    digest: str
    size: int
    seconds: float
    started: float = 0.0  # time.perf_counter() when the write began (0: not written here)


def _default_workers() -> int:
    return max(1, int(os.environ.get("COLAB_ELASTIC_WORKERS", "4")))


class Store:
    """One checkpoint location (see the module docstring for the layout and commit protocol).

    `workers` is how many blobs `write_blobs`/`read_blobs` move at once
    (default `COLAB_ELASTIC_WORKERS`, else 4).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *, workers: int | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.workers = workers or _default_workers()
        try:
            self.fs, root = fsspec.url_to_fs(url, **self.storage_options)
        except ImportError as exc:
            raise StorageError(missing_backend(url, exc)) from None
        except (ValueError, TypeError) as exc:
            raise StorageError(f"cannot open {url}: {one_line(exc)}") from None
        except backend_errors() as exc:
            raise StorageError(explain(exc, url, "open")) from None
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else set(self.fs.protocol)
        self.read_only = bool(protocols & _READ_ONLY_PROTOCOLS)
        self.listable = not protocols & {"http", "https"}  # a web server need not list its files
        # gcsfs, s3fs, adlfs: the first path segment is a bucket, and makedirs would create one.
        self._buckets = hasattr(self.fs, "split_path")

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # Failures ----------------------------------------------------------------------------
    @property
    def _bucket(self) -> str | None:
        """The bucket named by the URL, on stores that have buckets."""
        return self.root.split("/", 1)[0] if self._buckets else None

    @contextmanager
    def _failing(self, doing: str, what: str, *, writing: bool = False, missing: str = "",
                 keep: tuple[type[OSError], ...] = ()) -> Iterator[None]:
        """Turn a backend's own I/O errors into one StorageError line (except those in `keep`)."""
        try:
            yield
        except StorageError:
            raise
        except backend_errors() as exc:
            if isinstance(exc, keep):
                raise
            raise StorageError(explain(exc, self.url, doing, what, writing=writing, missing=missing)) from exc

    def _require_writable(self) -> None:
        if self.read_only:
            raise StorageError(f"{self.url} is read-only (a web server or an exported file can share a checkpoint, "
                               "not take one); "
                               "checkpoint to a folder, Drive or a gs:// bucket instead")

    def _bucket_missing(self) -> str:
        if self._bucket is not None:
            return f"bucket {self._bucket!r} does not exist (create it, or check the URL)"
        return "its folder does not exist"

    def _upload_lost(self) -> str:
        # A resumable upload answers 404 when the server forgot it (a restart) or the bucket is gone.
        if self._bucket is not None:
            return f"the server lost the upload, or bucket {self._bucket!r} does not exist"
        return "its folder disappeared"

    def check_writable(self) -> None:
        """Raise a one-line StorageError now if checkpoints cannot be written here.

        Read-only (HTTP), no credentials, a missing bucket, no permission: each is named.
        Costs one small create-only write and one delete of a probe object under the root.
        """
        self._require_writable()
        credentials = getattr(self.fs, "credentials", None)
        # gcsfs falls back to anonymous access when it finds no credentials; the user did not ask for it.
        if getattr(credentials, "method", None) == "anon" and self.storage_options.get("token") != "anon":
            raise StorageError(f"no Google Cloud credentials for {self.url}: {CREDENTIALS_HINT}")
        probe = self.path(f".colab-elastic-probe-{uuid.uuid4().hex[:12]}")
        try:
            self._put(probe, b"probe\n", create=True, what="a probe file", missing=self._bucket_missing(), writing=False)
        except FileExistsError:  # a new probe's name is unique: a file stands where the folder goes
            raise StorageError(f"cannot write at {self.url}: it is a file, not a folder") from None
        # Deleting needs the same right as replacing LATEST on object stores.
        with self._failing("delete", "a probe file", missing=self._bucket_missing()):
            self.fs.rm_file(probe)

    # Writing ----------------------------------------------------------------------------
    def _put(self, path: str, data: bytes, *, create: bool, what: str, missing: str = "", writing: bool = True) -> None:
        """Write a small object whole, in one request; `create` refuses to replace one (FileExistsError)."""
        self._require_writable()
        with self._failing("write", what, writing=writing, missing=missing or self._bucket_missing(),
                           keep=(FileExistsError,) if create else ()):
            if not self.local:
                self._make_parent(path)
                self.fs.pipe_file(path, data, mode="create" if create else "overwrite")
                return
            tmp = _temp_name(path)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                _publish(tmp, path, create)
            finally:
                _remove_quietly(tmp)

    def _make_parent(self, path: str) -> None:
        # Filesystems with real folders (sftp, ...) need them; on bucket stores makedirs would create a bucket.
        if not self._buckets and not isinstance(self.fs, MemoryFileSystem):
            self.fs.makedirs(self.fs._parent(path), exist_ok=True)

    def _stream(self, path: str, fill: Fill, what: str, progress: Progress | None) -> tuple[str, int]:
        """Write what `fill` writes, never visible half-done; returns (digest, size)."""
        self._require_writable()
        lost = self._upload_lost()
        fail = lambda exc: StorageError(explain(exc, self.url, "write", what, writing=True, missing=lost))  # noqa: E731
        with self._failing("write", what, writing=True, missing=lost):
            if self.local:
                tmp = _temp_name(path)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                file: Any = open(tmp, "wb")
            elif isinstance(self.fs, MemoryFileSystem):
                file = io.BytesIO()  # a memory:// file is visible from the moment it is opened
            else:
                self._make_parent(path)
                # Not fs.open(): it would also enlist the file in the filesystem's shared transaction.
                file = self.fs._open(path, mode="wb", autocommit=False)
        writer = DigestWriter(file, progress, fail)
        try:
            fill(writer)  # type: ignore[arg-type]
            with self._failing("write", what, writing=True, missing=lost):
                if self.local:
                    with file:
                        file.flush()
                        os.fsync(file.fileno())
                    _publish(tmp, path, create=False)
                elif isinstance(file, io.BytesIO):
                    self.fs.pipe_file(path, file.getvalue())
                else:
                    file.close()  # uploads what is buffered, without finalizing
                    file.commit()
        except BaseException:
            self._abandon(file)
            raise
        finally:
            if self.local:
                _remove_quietly(tmp)
        return writer.digest, writer.size

    def _abandon(self, file: Any) -> None:
        """Make sure a half-written file never becomes visible (its temp file is removed by the caller)."""
        remote = not (self.local or isinstance(file, io.BytesIO))
        try:
            if remote and hasattr(file, "discard"):
                file.discard()  # cancels the resumable upload on object stores
            else:
                file.close()
        except backend_errors() as exc:
            log.info("could not cancel an unfinished write at %s: %s", self.url, one_line(exc))
        if isinstance(file, AbstractBufferedFile):
            # fsspec files close themselves when collected; closing this one would start a new upload.
            file.closed = True

    def has_blob(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self.path("blobs", key)))
        except backend_errors() as exc:
            log.info("cannot tell whether blob %s exists at %s: %s", key, self.url, one_line(exc))
            return False

    def write_blob(self, key: str, fill: Fill, progress: Progress | None = None) -> BlobInfo:
        """Write blob `key`, streaming what `fill(file)` writes; returns its digest and size.

        Errors raised by `fill` itself (a value that will not pickle) pass through unchanged;
        failures of the storage are StorageError.
        """
        start = time.perf_counter()
        digest, size = self._stream(self.path("blobs", key), fill, f"blob {key}", progress)
        return BlobInfo(key, digest, size, time.perf_counter() - start, start)

    def write_blobs(self, blobs: Mapping[str, Fill] | Iterable[tuple[str, Fill]], *,
                    progress: Progress | None = None) -> tuple[dict[str, BlobInfo], dict[str, Exception]]:
        """Write several blobs at once, `self.workers` at a time; returns (written, failed fills).

        A fill that raises is reported in `failed` (by key) and the others go on; a failure of
        the storage cancels what has not started and raises StorageError. `progress` gets byte
        counts from the worker threads.
        """
        jobs = list(blobs.items() if isinstance(blobs, Mapping) else blobs)
        written: dict[str, BlobInfo] = {}
        failed: dict[str, Exception] = {}

        def one(key: str, fill: Fill) -> None:
            try:
                written[key] = self.write_blob(key, fill, progress)
            except StorageError:
                raise
            except Exception as exc:  # the fill's own failure: the caller decides per blob
                failed[key] = exc

        self._run_parallel([(one, job) for job in jobs])
        return written, failed

    def commit(self, manifest: dict[str, Any], *, replaces: str | Iterable[str | None] | None = None, force: bool = True) -> bool:
        """Write the manifest, then point LATEST at it, unless LATEST has moved on.

        Fast-forward only: unless `force`, LATEST is moved only if it names `replaces` (the
        checkpoint this kernel wrote or restored last, or one of several), or nothing. Otherwise the manifest is still written, kept beside the current one (see
        `%elastic log`), and False is returned. Raises StorageError, leaving the previous
        checkpoint current, if anything fails (including a manifest of that id already existing).

        On object stores the check and the move are two requests: two kernels racing from
        the same checkpoint can both move LATEST, and the last one wins (both stay complete).
        """
        checkpoint = manifest["checkpoint"]
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        name = f"manifests/{checkpoint}.json"
        try:
            self._put(self.path(name), body, create=True, what=f"manifest {name}")
        except FileExistsError:
            raise StorageError(f"cannot write manifest {name} at {self.url}: it already exists{INTACT}") from None
        if not force:
            current = self.pointer()
            allowed = {replaces} if replaces is None or isinstance(replaces, str) else set(replaces)
            if current is not None and current.checkpoint not in allowed:
                log.info("checkpoint %s kept beside %s at %s (LATEST moved on)", checkpoint, current.checkpoint, self.url)
                return False
        pointer = Pointer(name, digest_of(body), checkpoint, manifest.get("lineage"), manifest.get("parent"),
                          manifest.get("created"))
        self._put(self.path(LATEST), pointer.to_bytes(), create=False, what="the LATEST pointer")
        log.info("committed checkpoint %s at %s", checkpoint, self.url)
        return True

    # Reading ----------------------------------------------------------------------------
    def _cat(self, path: str, what: str) -> bytes:
        """The whole object in one request: no Range header, so no server can answer with the wrong part."""
        with self._failing("read", what, keep=(FileNotFoundError,)):
            return self.fs.cat_file(path)

    def read_blob(self, key: str, digest: str, size: int, progress: Progress | None = None) -> bytes:
        """The blob's bytes, checked against the digest and size the manifest recorded."""
        try:
            data = self._cat(self.path("blobs", key), f"blob {key}")
        except FileNotFoundError:
            raise CorruptCheckpointError(f"blob {key} is missing at {self.url}") from None
        if len(data) != size:
            raise CorruptCheckpointError(f"blob {key} at {self.url} has {len(data)} bytes, not the {size} recorded")
        if digest_of(data) != digest:
            raise CorruptCheckpointError(f"blob {key} at {self.url} does not match its digest")
        if progress is not None:
            progress(size)
        return data

    def stream_blob(self, key: str, digest: str, size: int, consume: Callable[[Any], T]) -> T:
        """Hand `consume` the blob as a file read front to back (a large blob is never held in
        memory whole); then check every byte against the recorded size and digest.

        `consume`'s result is returned only if the blob checks out: otherwise the caller gets
        CorruptCheckpointError and must discard whatever `consume` built. Sequential reads
        only, so a server that ignores Range requests cannot hand back the wrong part.
        """
        path = self.path("blobs", key)
        try:
            with self._failing("read", f"blob {key}", keep=(FileNotFoundError,)):
                # block_size=0 asks HTTP for one plain streaming GET; other backends read ahead.
                raw = self.fs.open(path, "rb", block_size=0) if self.read_only else self.fs.open(path, "rb")
        except FileNotFoundError:
            raise CorruptCheckpointError(f"blob {key} is missing at {self.url}") from None
        reader = VerifyingReader(raw)
        failure: BaseException | None = None
        with raw, self._failing("read", f"blob {key}"):
            try:
                result = consume(reader)
            except Exception as exc:  # noqa: BLE001 - re-raised below, unless the blob explains it
                failure = exc
            reader.drain()
        # A damaged blob is named as damaged, even when the damage already broke `consume`.
        if reader.size != size:
            raise CorruptCheckpointError(f"blob {key} at {self.url} has {reader.size} bytes, not the {size} recorded")
        if f"{DIGEST}:{reader.hasher.hexdigest()}" != digest:
            raise CorruptCheckpointError(f"blob {key} at {self.url} does not match its digest")
        if failure is not None:
            raise failure
        return result

    def read_blobs(self, blobs: Iterable[tuple[str, str, int]], *,
                   progress: Progress | None = None) -> tuple[dict[str, bytes], dict[str, StorageError]]:
        """Read and check several (key, digest, size) blobs at once; returns (data, failures) by key.

        Each failure (missing, corrupt, unreachable) is reported for its own blob, so a caller
        can recompute just those values.
        """
        data: dict[str, bytes] = {}
        failed: dict[str, StorageError] = {}

        def one(key: str, digest: str, size: int) -> None:
            try:
                data[key] = self.read_blob(key, digest, size, progress)
            except StorageError as exc:
                failed[key] = exc

        self._run_parallel([(one, blob) for blob in blobs])
        return data, failed

    def _run_parallel(self, calls: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        if self.workers == 1 or len(calls) <= 1:
            for function, args in calls:
                function(*args)
            return
        with ThreadPoolExecutor(min(self.workers, len(calls)), thread_name_prefix="colab-elastic-io") as pool:
            futures: list[Future[None]] = [pool.submit(function, *args) for function, args in calls]
            for future in futures:
                if future.exception() is not None:
                    pool.shutdown(wait=True, cancel_futures=True)  # no point writing on after the storage failed
                    future.result()

    def pointer(self) -> Pointer | None:
        """What LATEST says now: None when there is no checkpoint here, or the pointer is unreadable."""
        try:
            return Pointer.parse(self._cat(self.path(LATEST), "the LATEST pointer"), self.url)
        except FileNotFoundError:
            return None
        except CorruptCheckpointError as exc:
            log.info("%s", exc)
            return None

    def latest_files(self) -> tuple[bytes, str, bytes]:
        """The newest commit's own bytes: the LATEST pointer, its manifest's name, and the
        manifest, checked against the digest the pointer holds (for `latest` and for copies)."""
        try:
            raw = self._cat(self.path(LATEST), "the LATEST pointer")
        except FileNotFoundError:
            raise CheckpointNotFoundError(f"no checkpoint at {self.url}") from None
        pointer = Pointer.parse(raw, self.url)
        try:
            body = self._cat(self.path(pointer.manifest), f"manifest {pointer.manifest}")
        except FileNotFoundError:
            raise CorruptCheckpointError(f"manifest {pointer.manifest} at {self.url} is missing") from None
        if digest_of(body) != pointer.digest:
            raise CorruptCheckpointError(f"manifest {pointer.manifest} at {self.url} does not match its digest")
        return raw, pointer.manifest, body

    def latest(self) -> dict[str, Any]:
        """The manifest of the newest complete checkpoint (found by name: LATEST, then its manifest)."""
        _, name, body = self.latest_files()
        return parse_manifest(body, name, self.url)

    def manifest(self, checkpoint: str) -> dict[str, Any]:
        """The manifest of one checkpoint, by id (CorruptCheckpointError if missing or unreadable)."""
        if not CHECKPOINT_ID.fullmatch(checkpoint):
            raise CorruptCheckpointError(f"{checkpoint!r} is not a checkpoint id")
        name = f"manifests/{checkpoint}.json"
        try:
            body = self._cat(self.path(name), f"manifest {name}")
        except FileNotFoundError:
            raise CorruptCheckpointError(f"manifest {name} at {self.url} is missing") from None
        return parse_manifest(body, name, self.url)

    def listing(self, folder: str) -> list[dict[str, Any]] | None:
        """The files in `folder` (fsspec's details: name, size, ...); [] when it does not exist,
        None where the store cannot list its files (a plain web server)."""
        if not self.listable:
            return None
        try:
            with self._failing("list", folder, keep=(FileNotFoundError,)):
                return list(self.fs.ls(self.path(folder), detail=True))
        except NotImplementedError as exc:
            raise StorageError(f"cannot list {self.url}/{folder}: {exc}") from exc
        except FileNotFoundError:
            return []

    def checkpoint_ids(self) -> list[str] | None:
        """Every checkpoint id with a manifest here, oldest first; None where the store cannot
        list its files (follow `parent` links from LATEST instead)."""
        infos = self.listing("manifests")
        if infos is None:
            return None
        names = (_base_name(i["name"]) for i in infos)
        return sorted(n[:-5] for n in names if n.endswith(".json") and CHECKPOINT_ID.fullmatch(n[:-5]))

    def blob_sizes(self) -> dict[str, int] | None:
        """Size of every blob here by key, from one listing; None where the store cannot list."""
        infos = self.listing("blobs")
        return None if infos is None else {_base_name(i["name"]): int(i.get("size") or 0) for i in infos}


def _base_name(path: Any) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def _temp_name(path: str) -> str:
    # In the target folder, so the final rename never crosses filesystems.
    return f"{path}.tmp-{uuid.uuid4().hex[:12]}"


def _publish(tmp: str, path: str, create: bool) -> None:
    """Move a synced temp file to `path` in one step; `create` refuses to replace a file."""
    if not create:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if `path` exists
    except OSError as exc:
        if isinstance(exc, FileExistsError) or exc.errno not in _NO_LINKS:
            raise
        # Some FUSE mounts (Google Drive) have no hard links; names we create are unique anyway.
        if os.path.exists(path):
            raise FileExistsError(errno.EEXIST, "file exists", path) from None
        os.replace(tmp, path)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.info("could not remove temporary file %s: %s", path, exc)
