"""What a plan's costs are made of, learned in this runtime: each destination's speed from real
transfers (no probe files), and what a rerun costs beyond its cell's runtime and what importing
a module takes from restores.

Pure: no IPython, no fsspec; fed with `BlobInfo`s and a restore's timings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from .planner import Bandwidth

if TYPE_CHECKING:  # annotations only: the store imports fsspec
    from .store import BlobInfo

MIN_MEASURED_BYTES = 1 << 20  # smaller transfers measure latency, not bandwidth

# Until a transfer measures them. A network destination (GCS, a Drive mount read back on a new
# runtime) is assumed slow. A local folder is only ever read back on the machine that wrote it
# (a kernel restart, a crash), mostly from the page cache: on the 2-core benchmark VM a 1 GB
# array loads at 1.5-2.7 GB/s with the page cache emptied and 3.6-5.8 GB/s from it (a frame of
# Python strings far slower: its bytes are not what its load costs), and blobs are written,
# fsync'd, at 0.4-0.5 GB/s.
NETWORK = Bandwidth(write=100e6, read=200e6)
LOCAL_DISK = Bandwidth(write=400e6, read=2000e6)


class Speeds:
    """Per destination URL, the speeds measured so far; one rerun overhead for the runtime.

    `write` / `read` (bytes per second), when given, are what every destination is assumed to
    do until measured; otherwise `is_local(url)` picks LOCAL_DISK or NETWORK.
    """

    def __init__(self, write: float | None, read: float | None, checkpoint_weight: float,
                 is_local: Callable[[str], bool] = lambda url: False) -> None:
        self.write, self.read = write, read
        self.is_local = is_local
        self.checkpoint_weight = checkpoint_weight
        self.measured: dict[str, Bandwidth] = {}
        self.rerun_overhead = Bandwidth().rerun_overhead
        self.import_seconds: float | None = None  # per module, as the last restore here measured it

    def assumed(self, url: str) -> Bandwidth:
        """What `url` is taken to do before any transfer to or from it was timed."""
        kind = LOCAL_DISK if self.is_local(url) else NETWORK
        return Bandwidth(kind.write if self.write is None else self.write,
                         kind.read if self.read is None else self.read)

    def bandwidth(self, url: str) -> Bandwidth:
        """What a plan for `url` is made of now."""
        return replace(self.measured.get(url) or self.assumed(url), rerun_overhead=self.rerun_overhead,
                       import_seconds=self.import_seconds,
                       checkpoint_weight=self.checkpoint_weight)

    def measure(self, url: str, blobs: list[BlobInfo] | None = None, read: tuple[int, float] | None = None,
                rerun_overhead: float | None = None, import_seconds: float | None = None) -> None:
        """Learn from blobs written to `url`, (bytes, seconds) read from it, a restore's reruns
        and imports (seconds per module)."""
        current = self.bandwidth(url)
        write, read_bw, latency = current.write, current.read, current.latency
        if blobs:
            big = [b for b in blobs if b.size >= MIN_MEASURED_BYTES]
            small = [b for b in blobs if b.size < MIN_MEASURED_BYTES]
            if big:
                # Parallel uploads overlap: the bytes moved over the time from the first start
                # to the last end, not over the sum of their durations.
                timed = [b for b in big if b.started]
                span = (max(b.started + b.seconds for b in timed) - min(b.started for b in timed)) if timed else 0.0
                measured = sum(b.size for b in big) / max(1e-6, span or sum(b.seconds for b in big))
                write = measured if url not in self.measured else 0.5 * write + 0.5 * measured
                if self.is_local(url) and url not in self.measured:
                    # A local disk reads back at least as fast as it wrote (until a restore
                    # measures the read itself).
                    read_bw = max(read_bw, write)
            if small:
                latency = sorted(b.seconds for b in small)[len(small) // 2]
        if read and read[0] >= MIN_MEASURED_BYTES and read[1] > 0:
            read_bw = read[0] / read[1]
        self.measured[url] = Bandwidth(write, read_bw, latency)
        if rerun_overhead is not None:
            self.rerun_overhead = rerun_overhead
        if import_seconds is not None:
            self.import_seconds = import_seconds
