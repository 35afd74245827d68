"""Fault injectors for the reliability harness: count the storage operations a process makes and
act at the N-th one (SIGKILL, SIGINT, stopping the server), or make writes fail after N bytes.

A storage operation is one file-system call under the checkpoint folder (open, rename, link,
remove, mkdir, listing: seen through an audit hook), one HTTP request to the GCS server
(gcsfs's `_request`, below its retries), or one chunk a blob writer hands to storage.
Installed once per process; only ever used in a harness process, never in pytest's own.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from typing import Any, Callable

_LOCAL_EVENTS = {"open", "os.rename", "os.link", "os.remove", "os.mkdir", "os.listdir", "os.scandir", "os.rmdir"}


class Injector:
    """Counts storage operations; at operation `at`, runs `action` (once)."""

    def __init__(self) -> None:
        self.count = 0
        self.at: int | None = None
        self.action: Callable[[], None] | None = None
        self.root = ""  # local folder whose file operations count
        self.space: int | None = None  # bytes left before writes fail with ENOSPC (None: no limit)
        self.fired = False
        self.written = 0  # bytes written so far (every write, limited or not)
        self._lock = threading.Lock()

    def arm(self, at: int | None, action: Callable[[], None] | None) -> None:
        with self._lock:
            self.count, self.at, self.action, self.fired = 0, at, action, False

    def tick(self) -> None:
        with self._lock:
            self.count += 1
            fire = self.action is not None and self.count == self.at
            if fire:
                self.fired = True
        if fire:
            assert self.action is not None
            self.action()

    def take(self, n: int) -> None:
        """`n` bytes are about to be written: ENOSPC once the space is used up."""
        with self._lock:
            self.written += n
            if self.space is None:
                return
            if n > self.space:
                self.space = 0
                self.fired = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.space -= n


INJECTOR = Injector()


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def interrupt() -> None:
    """What a kernel interrupt is: SIGINT, turned into KeyboardInterrupt in the main thread."""
    os.kill(os.getpid(), signal.SIGINT)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _LOCAL_EVENTS and INJECTOR.root and args:
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and path.startswith(INJECTOR.root):
            INJECTOR.tick()


class _LimitedFile:
    """A local file whose writes fail with ENOSPC once the injector's space is used up."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: Any) -> int:
        INJECTOR.take(memoryview(data).nbytes)
        return self._file.write(data)

    def __enter__(self) -> _LimitedFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def install() -> None:
    """Hook every storage path of this process into INJECTOR."""
    sys.addaudithook(_audit)

    from colab_elastic import store, streams

    write = streams.DigestWriter.write

    def counted_write(self: Any, data: Any) -> int:
        INJECTOR.tick()
        return write(self, data)

    streams.DigestWriter.write = counted_write  # type: ignore[method-assign]

    # A full local disk: the store's own `open` for writing gives files that run out of space.
    def limited_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened = open(file, mode, *args, **kwargs)
        return _LimitedFile(opened) if "w" in mode or "a" in mode else opened

    store.open = limited_open  # type: ignore[attr-defined]

    import gcsfs.core

    request = gcsfs.core.GCSFileSystem._request

    async def counted_request(self: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        INJECTOR.tick()
        data = kwargs.get("data")
        if method.upper() in {"POST", "PUT"} and isinstance(data, (bytes, bytearray, memoryview)):
            INJECTOR.take(memoryview(data).nbytes)  # a full "disk" behind an object store
        return await request(self, method, path, *args, **kwargs)

    gcsfs.core.GCSFileSystem._request = counted_request  # type: ignore[method-assign]
