"""A restore's large buffers move to 4 kB pages once huge pages fill slowly (`pages`), and are
filled whole and exactly either way.

Whether a huge page faults in slowly depends on the machine (memory a VM handed back to its
host), so the threshold is moved instead: at 0 B/s no slice is slow, at 1 PB/s every one is.
What is checked is what the kernel reports for the buffer's memory (`nh` in /proc/self/smaps:
MADV_NOHUGEPAGE) and the bytes that came back.
"""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest

from colab_elastic import pages
from colab_elastic.serialize import dump_group, load_group

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and smaps are Linux's")
MB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages._State, "slow", False)


def no_huge_pages(address: int) -> bool:
    """Does the memory mapping holding `address` ask for 4 kB pages (MADV_NOHUGEPAGE)?"""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not line.startswith("VmFlags"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and line.startswith("VmFlags"):
                return "nh" in line.split()
    raise AssertionError(f"no mapping holds {address:#x}")


def address_of(arr: np.ndarray, offset: int = 0) -> int:
    return arr.__array_interface__["data"][0] + offset


class ShortReads(io.RawIOBase):
    """A file that gives at most `most` bytes a read, as a pipe or a network stream does."""

    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.at, self.most = data, 0, most

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(buffer).cast("B")
        n = min(len(view), self.most, len(self.data) - self.at)
        view[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n


@pytest.mark.parametrize("make", [lambda n: np.empty(n, dtype=np.uint8), bytearray], ids=["numpy", "bytearray"])
def test_fill_takes_every_byte_through_short_reads(make) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(6 * MB + 123)
    buffer = make(len(data))
    assert pages.fill(ShortReads(data, 1_000_003).readinto, buffer) == len(data)
    assert bytes(buffer) == data


def test_fill_stops_short_at_the_end_of_the_file() -> None:
    data = os.urandom(5 * MB)
    buffer = np.empty(len(data) + 10, dtype=np.uint8)
    assert pages.fill(io.BytesIO(data).readinto, buffer) == len(data)


@linux
def test_huge_pages_stay_while_slices_fill_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "SLOW", 0.0)
    data = os.urandom(4 * pages.SLICE)
    buffer = np.empty(len(data), dtype=np.uint8)
    assert pages.fill(io.BytesIO(data).readinto, buffer) == len(data)
    assert not pages._State.slow
    assert not no_huge_pages(address_of(buffer, 3 * len(data) // 4))
    assert bytes(buffer) == data


@linux
def test_a_slow_slice_moves_the_rest_and_every_later_buffer_to_small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "SLOW", 1e15)
    data = os.urandom(4 * pages.SLICE)
    first = np.empty(len(data), dtype=np.uint8)
    assert pages.fill(io.BytesIO(data).readinto, first) == len(data)
    assert pages._State.slow
    assert no_huge_pages(address_of(first, 3 * len(data) // 4))  # what was still untouched
    assert bytes(first) == data

    later = np.empty(8 * MB, dtype=np.uint8)  # asked for before a byte of it is touched
    pages.fill(io.BytesIO(data).readinto, later)
    assert no_huge_pages(address_of(later, 4 * MB))
    assert bytes(later) == data[:8 * MB]


@linux
def test_small_buffers_are_left_as_numpy_made_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages._State, "slow", True)
    small = np.empty(pages.HUGE // 2, dtype=np.uint8)
    pages.fill(io.BytesIO(os.urandom(small.nbytes)).readinto, small)
    assert not no_huge_pages(address_of(small))


@linux
def test_a_group_loads_whole_from_a_file_on_small_pages(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The restore's path: a blob on disk, its arrays read straight into place, the slow-slice
    switch taken in the middle of the first one."""
    monkeypatch.setattr(pages, "SLOW", 1e15)
    rng = np.random.default_rng(0)
    values = {"field": rng.random(12 * MB // 8).reshape(-1, 512), "weights": rng.random(3 * MB // 8), "n": 7}
    path = tmp_path / "blob"
    with open(path, "wb") as f:
        dump_group(values, f, {})
    with open(path, "rb") as f:
        loaded = load_group(f, {})
    assert pages._State.slow
    assert np.array_equal(loaded["field"], values["field"]) and np.array_equal(loaded["weights"], values["weights"])
    assert loaded["n"] == 7
