"""Benchmark 5: how fast a stored value loads, against the raw read speed of the same disk.

One large float64 array and one large numeric DataFrame are each written as a blob by
`colab_elastic`'s store (a local folder), then read back three ways, three times each (each
reader first once), twice over: "cold", after the file's pages were dropped from the page cache
(`drop_caches` as root, else `posix_fadvise(DONTNEED)`), so every read comes from the disk; and
"warm", from the page cache, as after a kernel restart on the same runtime:

- raw: `readinto` one `numpy.empty` buffer of the blob's size (the disk's speed; the ceiling);
- colab_elastic: `Store.stream_blob` + `load_group`, as a restore loads it (digest checked);
- pickle: `pickle.load` of a protocol-5 file of the same value (what a plain unpickle costs).

Target: colab_elastic at >= 70% of raw, with one copy of the value in memory (peak RSS above
the value's size is reported). Runs in this process (no kernel is needed to read a file).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from typing import Any

from .common import MB, Scale, drop_page_cache, median, peak_rss_bytes, reset_peak_rss, rss_bytes, table

TARGET = 0.70
_EVICTED: set[str] = set()  # how the page cache was emptied in this run


def _evict(path: str) -> str:
    """Drop the file's pages from the page cache, so the next read comes from the disk; returns
    how. `posix_fadvise(DONTNEED)` alone proved unreliable on the benchmark VM (a raw read after
    it ran at a third of the speed of reads after it that it should also have slowed), so as
    root the whole clean page cache is dropped (`/proc/sys/vm/drop_caches`)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return "drop_caches" if drop_page_cache() else "fadvise"


def _timed(path: str, read: Any, cold: bool = True) -> tuple[float, int]:
    """Seconds and peak RSS above the start for `read()`, from a cold cache (or a warm one)."""
    if cold:
        _EVICTED.add(_evict(path))
    before = rss_bytes()
    reset_peak_rss()
    started = time.perf_counter()
    value = read()
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes() - before
    del value
    return seconds, peak


def _values(scale: Scale) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    size = scale.big_read_mb * MB
    rng = np.random.default_rng(5)
    array = rng.standard_normal(size // 8)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(size // 8 // 8) for i in range(8)})
    return {"array": array, "frame": frame}


def measure(scale: Scale) -> dict[str, Any]:
    import numpy as np

    from colab_elastic.serialize import dump_group, load_group
    from colab_elastic.store import Store

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-load-", dir=os.getcwd()) as tmp:
        store = Store(tmp, workers=1)
        for name, value in _values(scale).items():
            info = store.write_blob(name, lambda f, v=value: dump_group({name: v}, f, {}))
            blob = os.path.join(tmp, "blobs", name)
            plain = os.path.join(tmp, f"{name}.pkl")
            with open(plain, "wb") as f:
                pickle.dump(value, f, protocol=5)
            del value

            def raw(path: str = blob, size: int = info.size) -> Any:
                # numpy.empty, as a load allocates: a bytearray would be zeroed first (a memset
                # of the whole size that no load pays).
                buffer = np.empty(size, dtype=np.uint8)
                view = memoryview(buffer)
                with open(path, "rb", buffering=0) as f:
                    done = 0
                    while done < size:  # 64 MB reads: one 1 GB read was half as fast here
                        n = f.readinto(view[done:done + (64 << 20)])
                        if not n:
                            break
                        done += n
                return buffer

            def ours(key: str = name, digest: str = info.digest, size: int = info.size) -> Any:
                return store.stream_blob(key, digest, size, lambda f: load_group(f, {}))

            def unpickle(path: str = plain) -> Any:
                with open(path, "rb") as f:
                    return pickle.load(f)

            readers = {"raw": (blob, raw), "ours": (blob, ours), "pickle": (plain, unpickle)}
            for cache in ("cold", "warm"):
                timings: dict[str, list[tuple[float, int]]] = {k: [] for k in readers}
                for round_ in range(3):
                    # Each reader goes first once: whoever follows a read may find its pages.
                    order = list(readers)[round_:] + list(readers)[:round_]
                    for k in order:
                        path, read = readers[k]
                        if cache == "warm":
                            _timed(path, read, cold=False)  # once to fill the cache
                        timings[k].append(_timed(path, read, cold=cache == "cold"))
                rows.append({"value": name, "cache": cache, "bytes": info.size,
                             **{f"{k}_s": median([t for t, _ in v]) for k, v in timings.items()},
                             **{f"{k}_peak": max(p for _, p in v) for k, v in timings.items()}})
    return {"rows": rows, "evicted_by": sorted(_EVICTED)}


def report(scale: Scale, results: dict[str, Any]) -> str:
    rows = []
    for r in results["rows"]:
        mbps = {k: r["bytes"] / MB / r[f"{k}_s"] for k in ("raw", "ours", "pickle")}
        rows.append([r["value"], r.get("cache", "cold"), r["bytes"] / MB, mbps["raw"], mbps["ours"],
                     mbps["pickle"], f"{100 * mbps['ours'] / mbps['raw']:.0f}%", f"{100 * TARGET:.0f}%",
                     r["ours_peak"] / MB])
    how = ", ".join(results.get("evicted_by", [])) or "fadvise"
    return table(f"5. Loading a stored value, page cache emptied ({how}) or warm (local folder; median of 3)",
                 ["value", "cache", "MB", "raw MB/s", "colab_elastic MB/s", "pickle MB/s", "of raw", "target",
                  "colab_elastic peak MB"], rows)
