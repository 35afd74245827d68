"""How a restore's large buffers get their memory: huge pages while they fault in fast, 4 kB
pages while they do not, measured as the buffer fills.

numpy asks Linux for transparent huge pages for every array of 4 MB or more, and a buffer read
from the page cache usually fills fastest that way (3.5-5 GB/s against 1.3-1.9 GB/s for 4 kB
pages, 1 GB, 2-core VM). But on a virtual machine that hands free memory back to its host (free
page reporting, balloons), the supply of ready huge pages runs out partway: from there each huge
page is rebuilt from reclaimed memory at 0.3-0.5 GB/s, and a 1 GB array took 0.3 s one time and
2.7 s the next. Which memory a buffer lands on changes from one buffer, and one slice, to the next.

So a large buffer is filled in timed slices (`fill`), and the choice is made again as it fills:
- on huge pages, a slice slower than `SLOW` while this thread spent most of that time in the
  kernel (`FAULTING`: faults and the copy, not a wait for a disk or the network, which page size
  does not change) moves the untouched rest of the buffer to 4 kB pages (`MADV_NOHUGEPAGE`);
- on 4 kB pages, every few slices one `PROBE` slice is offered huge pages again; if it fills
  faster than `FASTER` times the 4 kB pace (and than `SLOW`), the rest goes back to huge pages,
  else the next probe waits twice as long (up to `MOST_BETWEEN` slices).
Within `one_restore()` what was learned carries from one buffer to the next (a restore's buffers
come from the same memory within seconds); each restore starts on huge pages again. Measured on
the benchmark VM, 1 GB from the page cache in fresh processes, interleaved: huge pages only
0.30-2.77 s (7 runs), 4 kB pages only 0.60-0.79 s (5), this 0.28-0.97 s (10); 6 loads in a row
in one process: this 0.34-0.58 s, huge pages only 0.24-2.73 s; from the disk (page cache
emptied): huge pages only 2.09-2.46 s, 4 kB pages only 0.84-1.15 s, this 0.65-1.20 s.

Pure: no IPython, no fsspec. Linux only; elsewhere a buffer is filled as numpy made it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mmap
import sys
import time
from typing import Any, Callable, Iterator

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("colab_elastic.pages")

SLICE = 32 << 20  # bytes read, and timed, at a time in a large buffer
PROBE = 8 << 20  # a slice offered huge pages again: four of them tell what they cost now
SLOW = 1.0e9  # bytes/s: a huge-page slice slower than this would have been faster in 4 kB pages
FAULTING = 0.5  # share of a slow slice's time spent in the kernel that blames the pages, not a wait
FASTER = 1.25  # a probe must beat the 4 kB pace by this much to bring huge pages back
FIRST_BETWEEN, MOST_BETWEEN = 4, 32  # 4 kB slices before the next probe: at first, at most
HUGE = 4 << 20  # numpy's threshold for asking for huge pages: smaller buffers are left alone


class Pace:
    """What the slices filled so far say about this memory: which pages to ask for next."""

    def __init__(self) -> None:
        self.small = False  # on 4 kB pages since huge ones filled slowly
        self.small_rate: float | None = None  # bytes/s of 4 kB slices, as measured
        self.since_probe = 0  # 4 kB slices since huge pages were last tried
        self.between = FIRST_BETWEEN  # 4 kB slices to wait before the next probe

    def probe_due(self) -> bool:
        return self.small and self.since_probe >= self.between

    def learn(self, rate: float, faulting: bool, probed: bool) -> bool | None:
        """Take one slice's pace; returns the pages the rest should ask for (True: huge,
        False: 4 kB), or None to leave them as they are."""
        if not self.small:
            if rate < SLOW and faulting:
                self.small, self.since_probe, self.between = True, 0, FIRST_BETWEEN
                return False
            return None
        if probed:
            if rate > max(SLOW, FASTER * (self.small_rate or 0.0)):
                self.small = False
                return True
            self.since_probe, self.between = 0, min(2 * self.between, MOST_BETWEEN)
            return None
        self.small_rate = rate if self.small_rate is None else (self.small_rate + rate) / 2
        self.since_probe += 1
        return None


class _State:
    restoring = 0  # depth of `one_restore()` blocks
    pace: Pace | None = None  # shared by the buffers of the current restore


@contextlib.contextmanager
def one_restore() -> Iterator[None]:
    """The loads of one restore: what one buffer learned of the pages, the next starts from."""
    if not _State.restoring:
        _State.pace = Pace()
    _State.restoring += 1
    try:
        yield
    finally:
        _State.restoring -= 1
        if not _State.restoring:
            _State.pace = None


@functools.cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's `madvise`, looked up on first use (ctypes is not loaded by `%load_ext`)."""
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_NOHUGEPAGE") \
            or not hasattr(resource, "RUSAGE_THREAD"):  # None has no RUSAGE_THREAD either
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return call


def ask_pages(address: int, length: int, huge: bool) -> bool:
    """Ask for huge or 4 kB pages over the whole pages of [address, address + length), none
    of which may have been touched yet (a page already in memory stays as it is). False if not
    done."""
    madvise = _madvise()
    if madvise is None:
        return False
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + length) // page * page
    if end <= start:
        return False
    advice = mmap.MADV_HUGEPAGE if huge else mmap.MADV_NOHUGEPAGE
    if madvise(start, end - start, advice) != 0:
        log.debug("madvise(%d) failed: errno %d", advice, sys.modules["ctypes"].get_errno())
        return False
    return True


def fill(readinto: Callable[[memoryview], int], buffer: Any) -> int:
    """Read into all of `buffer` (a fresh, untouched numpy array or bytearray) with `readinto`;
    returns the bytes read, short only at the end of the file. Large numpy buffers are filled
    a slice at a time, each on the pages the slices before it found faster."""
    view = memoryview(buffer).cast("B")
    address = _address(buffer) if len(view) >= HUGE and _madvise() is not None else None
    if address is None:
        return _fill_plain(readinto, view)
    pace = _State.pace if _State.pace is not None else Pace()
    if pace.small:
        ask_pages(address, len(view), huge=False)  # untouched yet: all of it at once
    done = 0
    while done < len(view):
        probed = pace.probe_due()
        end = min(len(view), done + (PROBE if probed else SLICE))
        if probed:
            ask_pages(address + done, end - done, huge=True)
        started, kernel = time.perf_counter(), _kernel_seconds()
        n = readinto(view[done:end])
        if not n:
            break
        wall = time.perf_counter() - started
        done += n
        if n < HUGE or wall <= 0:
            continue  # too little to judge (a short read, the buffer's tail)
        faulting = _kernel_seconds() - kernel >= FAULTING * wall
        rest = pace.learn(n / wall, faulting, probed)
        if rest is not None:
            log.debug("a %d-byte slice filled at %.2f GB/s: %s pages from here", n, n / wall / 1e9,
                      "huge" if rest else "4 kB")
            ask_pages(address + done, len(view) - done, huge=rest)
    return done


def copy_into(source: memoryview, buffer: Any) -> None:
    """Copy the first bytes of `source` into all of `buffer` (fresh, untouched), as `fill`
    reads a file: a copy faults in fresh memory as a read does."""
    at = 0

    def readinto(view: memoryview) -> int:
        nonlocal at
        n = min(len(view), len(source) - at)
        view[:n] = source[at:at + n]
        at += n
        return n

    if fill(readinto, buffer) != memoryview(buffer).nbytes:
        raise ValueError("the source is shorter than the buffer it fills")


def _fill_plain(readinto: Callable[[memoryview], int], view: memoryview) -> int:
    done = 0
    while done < len(view):
        n = readinto(view[done:])
        if not n:
            break
        done += n
    return done


def _kernel_seconds() -> float:
    """System time of this thread so far: page faults and copies count, waiting does not."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_stime if hasattr(resource, "RUSAGE_THREAD") else 0.0


def _address(buffer: Any) -> int | None:
    """Where a numpy array's data starts (None for anything else: a bytearray is not madvised)."""
    interface = getattr(buffer, "__array_interface__", None)
    return interface["data"][0] if interface is not None else None
