"""Files that hash what passes through them: blobs are checked as they are read, and their
digest is known the moment their last byte is written (no second pass over the data)."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

import xxhash

from .errors import StorageError
from .storage_errors import backend_errors

log = logging.getLogger("colab_elastic.streams")
DIGEST = "xxh3_128"
Progress = Callable[[int], object]  # told how many more bytes moved; may be called from threads


def digest_of(data: bytes | memoryview) -> str:
    return f"{DIGEST}:{xxhash.xxh3_128_hexdigest(data)}"


class VerifyingReader:
    """A read-only file that hashes and counts what passes through it (pickle reads from it)."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.hasher = xxhash.xxh3_128()
        self.size = 0

    def _seen(self, data: Any) -> Any:
        self.hasher.update(data)
        self.size += memoryview(data).nbytes
        return data

    def read(self, n: int = -1) -> bytes:
        return self._seen(self.file.read(n))

    def readline(self, limit: int = -1) -> bytes:
        return self._seen(self.file.readline(limit))

    def readinto(self, buffer: Any) -> int:
        # Straight into the caller's buffer (a numpy array's bytearray): no extra copy where
        # the file can read into it (local files), else through 8 MB chunks.
        view = memoryview(buffer).cast("B")
        direct = getattr(self.file, "readinto", None)
        filled = 0
        while filled < len(view):
            end = min(len(view), filled + (64 << 20))
            if direct is not None:
                n = direct(view[filled:end])
            else:
                chunk = self.file.read(min(end - filled, 8 << 20))
                n = len(chunk)
                view[filled:filled + n] = chunk
            if not n:
                break
            self.hasher.update(view[filled:filled + n])  # while the chunk is still in cache
            filled += n
        self.size += filled
        return filled

    def drain(self) -> None:
        """Read what the consumer left, so the digest covers the whole blob."""
        while self.read(8 << 20):
            pass


class DigestWriter:
    """The file a fill writes into: hashes, counts and reports bytes on their way to storage.

    A failure of the storage underneath becomes a StorageError right here, so it cannot be
    mistaken for a failure of the fill itself (a value that would not pickle).
    """

    def __init__(self, file: Any, progress: Progress | None, fail: Callable[[BaseException], StorageError]) -> None:
        self.file = file
        self.hasher = xxhash.xxh3_128()
        self.size = 0
        self.progress = progress
        self.fail = fail

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.hasher.update(data)
        try:
            self.file.write(data)
        except backend_errors() as exc:
            raise self.fail(exc) from exc
        self.size += n
        if self.progress is not None:
            self.progress(n)
        return n

    @property
    def digest(self) -> str:
        return f"{DIGEST}:{self.hasher.hexdigest()}"


def will_read(path: str, size: int) -> None:
    """Tell the operating system a local file of `size` bytes is about to be read whole: it
    starts reading it in the background (a disk, Drive's mount), while we do something else.
    Advice only: a file that cannot be opened here fails later, when it is read for real; one
    larger than a quarter of the free memory is not read ahead (it would push out its own start)."""
    if not hasattr(os, "posix_fadvise"):  # not on macOS or Windows
        return
    if size > os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        log.debug("no read-ahead for %s: %s", path, exc)
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError as exc:
        log.debug("no read-ahead for %s: %s", path, exc)
    finally:
        os.close(fd)
