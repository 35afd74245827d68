"""A restore's large buffers fill on huge pages while those fault in fast, on 4 kB pages while
they do not, probing huge pages again as they fill (`pages`); the bytes come back exact either way.

Whether a huge page faults in slowly depends on the machine (memory a VM handed back to its
host), so the tests that need it make it happen: a file whose reads advance a clock of their own,
slowly where the destination asks for huge pages and fast where it asks for 4 kB, as the kernel
reports it (`hg`/`nh` in /proc/self/smaps, set by madvise). What is checked is what the kernel
reports for the buffer's memory afterwards, and the bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from typing import Callable

import numpy as np
import pytest

from colab_elastic import pages
from colab_elastic.serialize import dump_group, load_group

linux = pytest.mark.skipif(not os.path.isdir("/sys/kernel/mm/transparent_hugepage"),
                           reason="needs Linux with transparent huge pages (madvise, smaps)")
MB = 1 << 20
GB = 1e9


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages._State, "restoring", 0)
    monkeypatch.setattr(pages._State, "pace", None)


def vm_flags(address: int) -> set[str]:
    """The VmFlags of the memory mapping holding `address` (`nh`: 4 kB pages asked for, `hg`:
    huge pages asked for)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not line.startswith("VmFlags"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and line.startswith("VmFlags"):
                return set(line.split()[1:])
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


class Clock:
    """Time as the simulated memory spends it: every second of it in the kernel."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class SimulatedMemory(io.RawIOBase):
    """Reads that take `huge_rate(position)` bytes/s where the destination asks for huge pages
    and `small_rate` where it asks for 4 kB pages, on `clock`; `asked` records which, per read."""

    def __init__(self, data: bytes, clock: Clock, huge_rate: Callable[[int], float], small_rate: float) -> None:
        self.file, self.clock = io.BytesIO(data), clock
        self.huge_rate, self.small_rate = huge_rate, small_rate
        self.asked: list[tuple[int, int, bool]] = []  # (position, bytes, on huge pages)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(buffer).cast("B")
        at = self.file.tell()
        address = np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]
        huge = "nh" not in vm_flags(address + len(view) // 2)
        n = self.file.readinto(view)
        self.clock.now += n / (self.huge_rate(at) if huge else self.small_rate)
        self.asked.append((at, n, huge))
        return n


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Small slices (so a test needs tens of MB, not GB) timed by a simulated clock."""
    clock = Clock()
    monkeypatch.setattr(pages, "time", clock)
    monkeypatch.setattr(pages, "_kernel_seconds", clock.perf_counter)
    monkeypatch.setattr(pages, "SLICE", 4 * MB)
    monkeypatch.setattr(pages, "PROBE", 4 * MB)
    return clock


def fill_simulated(size: int, clock: Clock, huge_rate: Callable[[int], float],
                   small_rate: float = 1.5 * GB) -> tuple[np.ndarray, bytes, SimulatedMemory]:
    data = os.urandom(size)
    memory = SimulatedMemory(data, clock, huge_rate, small_rate)
    buffer = np.empty(size, dtype=np.uint8)
    assert pages.fill(memory.readinto, buffer) == size
    assert bytes(buffer) == data
    return buffer, data, memory


# The state machine alone -------------------------------------------------------------------------
def test_a_slow_huge_slice_moves_to_small_pages_only_when_it_was_faulting() -> None:
    pace = pages.Pace()
    assert pace.learn(4 * GB, faulting=True, probed=False) is None and not pace.small
    assert pace.learn(0.4 * GB, faulting=False, probed=False) is None and not pace.small  # a wait
    assert pace.learn(0.4 * GB, faulting=True, probed=False) is False and pace.small


def test_probes_back_off_while_huge_pages_stay_slow_and_return_when_they_are_fast() -> None:
    pace = pages.Pace()
    pace.learn(0.4 * GB, faulting=True, probed=False)
    waits = []
    for _probe in range(5):
        slices = 0
        while not pace.probe_due():
            assert pace.learn(1.5 * GB, faulting=True, probed=False) is None
            slices += 1
        waits.append(slices)
        assert pace.learn(0.5 * GB, faulting=True, probed=True) is None and pace.small
    assert waits == [pages.FIRST_BETWEEN, 2 * pages.FIRST_BETWEEN, 4 * pages.FIRST_BETWEEN,
                     pages.MOST_BETWEEN, pages.MOST_BETWEEN]
    while not pace.probe_due():
        pace.learn(1.5 * GB, faulting=True, probed=False)
    assert pace.learn(1.7 * GB, faulting=True, probed=True) is None  # not enough faster: stays
    while not pace.probe_due():
        pace.learn(1.5 * GB, faulting=True, probed=False)
    assert pace.learn(3.5 * GB, faulting=True, probed=True) is True and not pace.small


# Filling ----------------------------------------------------------------------------------------
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
def test_huge_pages_stay_while_slices_fill_fast(clock: Clock) -> None:
    buffer, data, memory = fill_simulated(32 * MB, clock, huge_rate=lambda at: 4 * GB)
    assert all(huge for _, _, huge in memory.asked)
    assert "nh" not in vm_flags(address_of(buffer, 30 * MB))


@linux
def test_slow_huge_pages_move_the_rest_to_small_pages_then_come_back_when_fast(clock: Clock) -> None:
    """Huge pages run out after 8 MB and come back after 40 MB (another process freed some):
    the fill moves to 4 kB pages after the first slow slice, probes, and goes back."""
    def huge_rate(at: int) -> float:
        return 4 * GB if at < 8 * MB or at >= 40 * MB else 0.4 * GB

    buffer, data, memory = fill_simulated(96 * MB, clock, huge_rate)
    kinds = "".join("H" if huge else "s" for _, _, huge in memory.asked)
    # 2 fast slices, 1 slow, 4 small, a failed probe at 28 MB, then (8 small later) one that
    # finds them fast again at 64 MB, and huge pages to the end.
    assert kinds == "HHH" + "ssss" + "H" + "ssssssss" + "H" + "HHHHHHH", kinds
    assert "nh" in vm_flags(address_of(buffer, 20 * MB)) and "nh" not in vm_flags(address_of(buffer, 90 * MB))
    # Faster than either page size alone would have been on this memory.
    only_small = len(data) / (1.5 * GB)
    only_huge = sum(n / huge_rate(at) for at, n, _ in memory.asked)
    assert clock.now < min(only_small, only_huge)


@linux
def test_within_a_restore_the_next_buffer_starts_where_the_last_left_off(clock: Clock) -> None:
    with pages.one_restore():
        fill_simulated(16 * MB, clock, huge_rate=lambda at: 0.4 * GB)
        assert pages._State.pace is not None and pages._State.pace.small
        later, _, memory = fill_simulated(8 * MB, clock, huge_rate=lambda at: 0.4 * GB)
        assert not memory.asked[0][2]  # asked for 4 kB pages before a byte of it was touched
        assert "nh" in vm_flags(address_of(later, 4 * MB))
    # The next restore, and a load outside any restore, try huge pages first.
    for block in (pages.one_restore(), contextlib.nullcontext()):
        with block:
            _, _, memory = fill_simulated(8 * MB, clock, huge_rate=lambda at: 4 * GB)
            assert memory.asked[0][2]


class Waiting(io.RawIOBase):
    """A file that waits before each read, as a cold disk or the network does: slow, but not
    in the kernel's page faults, which 4 kB pages would not make faster."""

    def __init__(self, data: bytes) -> None:
        self.file = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        time.sleep(0.3)  # longer than faulting in a slice takes, even on slow huge pages
        return self.file.readinto(buffer)


@linux
def test_a_slice_slow_from_waiting_keeps_huge_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "SLOW", 1e15)  # every slice is slow; none of it is in the kernel
    data = os.urandom(2 * pages.SLICE)
    buffer = np.empty(len(data), dtype=np.uint8)
    with pages.one_restore():
        assert pages.fill(Waiting(data).readinto, buffer) == len(data)
        assert not pages._State.pace.small  # type: ignore[union-attr]
    assert "nh" not in vm_flags(address_of(buffer, 3 * len(data) // 4))
    assert bytes(buffer) == data


@linux
def test_small_buffers_are_left_as_numpy_made_them(monkeypatch: pytest.MonkeyPatch) -> None:
    pace = pages.Pace()
    pace.small = True
    monkeypatch.setattr(pages._State, "pace", pace)
    small = np.empty(pages.HUGE // 2, dtype=np.uint8)
    pages.fill(io.BytesIO(os.urandom(small.nbytes)).readinto, small)
    assert "nh" not in vm_flags(address_of(small))


@linux
def test_a_group_loads_whole_from_a_file_on_small_pages(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The restore's path: a blob on disk, its arrays read straight into place, every slice
    judged slow (the threshold moved), so the switch is taken in the middle of the first one."""
    monkeypatch.setattr(pages, "SLOW", 1e15)
    monkeypatch.setattr(pages, "FAULTING", 0.0)
    rng = np.random.default_rng(0)
    values = {"field": rng.random(80 * MB // 8).reshape(-1, 512), "weights": rng.random(6 * MB // 8), "n": 7}
    path = tmp_path / "blob"
    with open(path, "wb") as f:
        dump_group(values, f, {})
    with open(path, "rb") as f, pages.one_restore():
        loaded = load_group(f, {})
        assert pages._State.pace.small  # type: ignore[union-attr]
    assert "nh" in vm_flags(address_of(loaded["field"], 70 * MB))
    assert np.array_equal(loaded["field"], values["field"]) and np.array_equal(loaded["weights"], values["weights"])
    assert loaded["n"] == 7


@linux
@pytest.mark.parametrize("order", ["C", "F", "datetime", "structured"])
def test_a_large_shared_root_is_copied_owning_onto_the_pages_found_faster(order: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The owner of memory its views share comes back owning a copy of the loaded bytes
    (`serialize._owned_array`): that copy faults in fresh memory too, so it goes slice by slice."""
    monkeypatch.setattr(pages, "SLOW", 1e15)
    monkeypatch.setattr(pages, "FAULTING", 0.0)
    rng = np.random.default_rng(1)
    root = rng.random((2048, 1024))  # 16 MB
    if order == "F":
        root = np.asfortranarray(root)
    elif order == "datetime":
        root = (rng.integers(0, 10**9, root.shape) * 10**6).astype("datetime64[us]")
    elif order == "structured":  # a datetime field: no buffer of the whole exists either
        root = np.zeros(root.size // 2, dtype=[("t", "datetime64[s]"), ("x", "f8")])  # 16 MB
        root["x"] = rng.random(root.size)
        root["t"] = rng.integers(0, 10**9, root.size).astype("datetime64[s]")
    values = {"root": root, "part": root[100:200, 3:9] if root.ndim == 2 else root[100:900]}
    file = io.BytesIO()
    dump_group(values, file, {})
    file.seek(0)
    with pages.one_restore():
        loaded = load_group(file, {})
    assert loaded["root"].flags.owndata and loaded["part"].base is loaded["root"]
    assert loaded["root"].dtype == root.dtype
    assert (loaded["root"].flags.c_contiguous, loaded["root"].flags.f_contiguous) == (root.flags.c_contiguous, root.flags.f_contiguous)
    assert np.array_equal(loaded["root"], root) and np.array_equal(loaded["part"], values["part"])
    assert "nh" in vm_flags(address_of(loaded["root"], 12 * MB))  # moved after the first slice
