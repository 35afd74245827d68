"""A group's blob: a pickle (protocol 5) with its large buffers beside it, out of band.

Numpy and Arrow data of 1 MB or more are not copied into the pickle: each is written right after
the pickle frame that asks for it and read there, straight into memory numpy allocates. Used by
`serialize`, which decides what goes into the pickle. Pure: no IPython, no fsspec.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, BinaryIO, Callable

from .pages import fill

# A group's blob: this mark, then the pickle with each large buffer (array and Arrow data, out
# of band) written right after the pickle frame that asks for it, as its length and its bytes.
# The unpickler reads a frame whole before it runs it, so when it asks for a buffer the file is
# just past that frame: the buffer is read there, straight into memory numpy allocates (huge
# pages on Linux, where the pickle's own `bytearray` faults in every 4 kB page: 4.9 against
# 1.9 GB/s for a 1 GB array from the page cache; `pages` moves to 4 kB pages while huge ones
# fault in slowly). Both ways stream: nothing is held whole. A blob that starts as a bare
# pickle (written before this frame) is read as one.
FRAMED = b"\x00colab-elastic-frames\x00"
_OUT_OF_BAND = 1 << 20  # smaller buffers stay inside the pickle
_SIZE = struct.Struct("<Q")


class FrameWriter:
    """What the pickler writes to: its frames go to `file`, each followed by the buffers that
    frame asked for."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.waiting = file, []

    def write(self, data: Any) -> int:
        if not self.waiting:
            return self.file.write(data)
        # The buffers go right after the frames: a large payload's opcode may follow them in
        # the same write, outside any frame, and is read after the frame's NEXT_BUFFERs ran.
        view = memoryview(data).cast("B")
        end = _frames_end(view)
        if end == 0:
            raise pickle.PicklingError("a buffer was asked for outside a pickle frame")
        self.file.write(view[:end])
        for buffer in self.waiting:
            self.file.write(_SIZE.pack(buffer.nbytes))
            self.file.write(buffer)
        self.waiting.clear()
        self.file.write(view[end:])
        return len(view)

    def in_band(self, buffer: pickle.PickleBuffer) -> bool:
        try:
            view = buffer.raw()  # C or Fortran order: the bytes as they lie in memory
        except BufferError:  # not contiguous: the pickler decides what to do with it
            return True
        if view.nbytes < _OUT_OF_BAND:
            return True
        self.waiting.append(view)  # the frame holding its NEXT_BUFFER is written next
        return False


def _frames_end(data: memoryview) -> int:
    """Where the pickle frames of `data` (one write of the pickler) end: after the protocol
    mark, if any, and every FRAME opcode with its length and body; 0 if none."""
    at = 2 if data[:1] == b"\x80" else 0
    end = 0
    while at + 9 <= len(data) and data[at] == 0x95:  # FRAME
        at += 9 + int.from_bytes(data[at + 1:at + 9], "little")
        end = at
    return end if end <= len(data) else 0


def buffers_from(file: Any) -> Any:
    while True:  # as many as the pickle asks for
        buffer = _new_buffer(_SIZE.unpack(read_exact(file, 8))[0])
        _fill(file, buffer)
        yield buffer


class WholeReads:
    """The unpickler's view of the file: reads only (no `peek`, no `readinto`), so that it never
    reads ahead of the frame it runs."""

    def __init__(self, file: Any) -> None:
        self.read, self.readline = file.read, file.readline


def read_exact(file: Any, size: int, allow_short: bool = False) -> bytes:
    data = file.read(size)
    if len(data) != size and not allow_short:
        raise pickle.UnpicklingError("blob ends early")
    return data


_LARGEST = 1 << 42  # no buffer is bigger: a damaged length fails here, not in an allocation


def _new_buffer(size: int) -> Any:
    if size > _LARGEST:
        raise pickle.UnpicklingError(f"blob names a buffer of {size} bytes: it is damaged")
    np = sys.modules.get("numpy")  # loaded by now if the pickle holds arrays
    return np.empty(size, dtype=np.uint8) if np is not None else bytearray(size)


def _fill(file: Any, buffer: Any) -> None:
    if fill(getattr(file, "readinto", None) or _copying_reader(file), buffer) != memoryview(buffer).nbytes:
        raise pickle.UnpicklingError("blob ends inside a buffer")


def _copying_reader(file: Any) -> Callable[[memoryview], int]:
    """`readinto` for a file that only has `read`: through chunks of 8 MB."""
    def readinto(view: memoryview) -> int:
        chunk = file.read(min(len(view), 8 << 20))
        view[:len(chunk)] = chunk
        return len(chunk)
    return readinto


class Prefixed:
    """A file whose first bytes were already read (`prefix`): served again, then the rest."""

    def __init__(self, prefix: bytes, file: Any) -> None:
        self.prefix, self.file = prefix, file

    def read(self, n: int = -1) -> bytes:
        if not self.prefix:
            return self.file.read(n)
        if n < 0:
            data, self.prefix = self.prefix + self.file.read(), b""
            return data
        data, self.prefix = self.prefix[:n], self.prefix[n:]
        return data + (self.file.read(n - len(data)) if len(data) < n else b"")

    def readline(self, limit: int = -1) -> bytes:
        if self.prefix and b"\n" in self.prefix:
            end = self.prefix.index(b"\n") + 1
            line, self.prefix = self.prefix[:end], self.prefix[end:]
            return line
        line, self.prefix = self.prefix, b""
        return line + self.file.readline(limit)
