"""How a restore's large buffers get their memory: huge pages, unless they fault in slowly here.

numpy asks Linux for transparent huge pages for every array of 4 MB or more, and on most
machines a buffer read from the page cache fills fastest that way (4.9 against 1.9 GB/s for
1 GB, 2-core VM). On a virtual machine that hands free memory back to its host (free page
reporting: Firecracker, some balloon setups), a huge page taken from memory the host reclaimed
faults in at 0.3-0.5 GB/s instead: a 1 GB array loaded in 0.3 s one time and 2.3 s the next,
while 4 kB pages came in at a steady 1.2-1.8 GB/s.

So a large buffer is filled in slices, each timed. Once a slice comes in slower than 4 kB
pages would have been (`SLOW`), the rest of that buffer, and every large buffer after it in
this process, asks for 4 kB pages (`madvise(MADV_NOHUGEPAGE)` before a byte of it is touched):
the 1 GB load then took 0.55-0.84 s. A slice that is slow for another reason (a cold disk,
Drive, the network) sends us to 4 kB pages too, which costs nothing there: the reads are slower
than either kind of page. Pure: no IPython, no fsspec. Linux only; elsewhere nothing changes.
"""

from __future__ import annotations

import functools
import logging
import mmap
import sys
import time
from typing import Any, Callable

log = logging.getLogger("colab_elastic.pages")

SLICE = 32 << 20  # bytes read, and timed, at a time in a large buffer
SLOW = 1.0e9  # bytes/s: a slice that fills slower than this would have been faster in 4 kB pages
HUGE = 4 << 20  # numpy's threshold for asking for huge pages: smaller buffers are left alone


class _State:
    slow = False  # huge pages were seen faulting in slowly in this process: not asked for again


@functools.cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's `madvise`, looked up on first use (ctypes is not loaded by `%load_ext`)."""
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_NOHUGEPAGE"):
        return None
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    return call


def small_pages(address: int, length: int) -> bool:
    """Ask for 4 kB pages over the whole pages of [address, address + length), none of which
    may have been touched yet (a page already in memory stays as it is). False if not done."""
    madvise = _madvise()
    if madvise is None:
        return False
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + length) // page * page
    if end <= start:
        return False
    if madvise(start, end - start, mmap.MADV_NOHUGEPAGE) != 0:
        log.debug("madvise(MADV_NOHUGEPAGE) failed: errno %d", sys.modules["ctypes"].get_errno())
        return False
    return True


def fill(readinto: Callable[[memoryview], int], buffer: Any) -> int:
    """Read into all of `buffer` (a fresh, untouched numpy array or bytearray) with `readinto`;
    returns the bytes read, short only at the end of the file. Large numpy buffers are filled
    a `SLICE` at a time, moving to 4 kB pages for good once huge pages prove slow (see above)."""
    view = memoryview(buffer).cast("B")
    address = _address(buffer) if len(view) >= HUGE and _madvise() is not None else None
    if address is not None and _State.slow:
        small_pages(address, len(view))
        address = None  # asked already: nothing more to time
    done = 0
    while done < len(view):
        end = min(len(view), done + SLICE) if address is not None else len(view)
        started = time.perf_counter()
        n = readinto(view[done:end])
        if not n:
            break
        done += n
        if address is not None and n >= HUGE and n < SLOW * (time.perf_counter() - started):
            _State.slow = True
            log.debug("a %d-byte slice filled at %.2f GB/s: 4 kB pages from now on",
                      n, n / (time.perf_counter() - started) / 1e9)
            small_pages(address + done, len(view) - done)
            address = None
    return done


def _address(buffer: Any) -> int | None:
    """Where a numpy array's data starts (None for anything else: a bytearray is not madvised)."""
    interface = getattr(buffer, "__array_interface__", None)
    return interface["data"][0] if interface is not None else None
