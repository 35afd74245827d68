"""The Store contract, the same for every place a checkpoint can live.

Run against `memory://`, a local folder, `gs://` on a fake-gcs-server on loopback, and
`http://` on loopback (read-only: the checkpoint is written into the served folder through a
local Store, then read over HTTP), from a server that honours Range and one that ignores it.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from colab_elastic.errors import CheckpointNotFoundError, CorruptCheckpointError, StorageError
from colab_elastic.store import Store, digest_of

LOCATIONS = ["memory", "local", "gcs", "http", "http-no-range"]
WRITABLE = ["memory", "local", "gcs"]


@dataclass
class Location:
    """Where a test writes (`writer`) and where it reads the same checkpoint back (`reader`)."""

    kind: str
    writer: Store
    reader: Store

    @property
    def writable(self) -> bool:
        return not self.reader.read_only


@pytest.fixture
def location(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Location]:
    kind = request.param
    name = uuid.uuid4().hex[:10]
    if kind == "memory":
        store = Store(f"memory://elastic-{name}")
        yield Location(kind, store, store)
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)
    elif kind == "local":
        store = Store(str(tmp_path / "checkpoints"))
        yield Location(kind, store, store)
    elif kind == "gcs":
        gcs = request.getfixturevalue("gcs_url")
        store = Store(gcs.url, gcs.storage_options)
        yield Location(kind, store, store)
    else:
        base_url, directory = request.getfixturevalue("http_server" if kind == "http" else "http_server_no_range")
        yield Location(kind, Store(str(directory / name)), Store(f"{base_url}/{name}"))


def at(kinds: list[str] = WRITABLE) -> Any:
    return pytest.mark.parametrize("location", kinds, indirect=True)


every_location = pytest.mark.parametrize("location", LOCATIONS, indirect=True)


def fill_with(*parts: bytes) -> Any:
    """A fill that writes `parts` one write at a time, as pickle does."""
    def fill(f: Any) -> None:
        for part in parts:
            f.write(part)
    return fill


def manifest(checkpoint: str, **extra: Any) -> dict[str, Any]:
    return {"format": 1, "checkpoint": checkpoint, "groups": [], **extra}


@every_location
def test_blob_round_trip_checks_digest_and_size(location: Location) -> None:
    parts = [b"header", bytes(range(256)) * 1000, memoryview(b"tail")]
    info = location.writer.write_blob("g-1", fill_with(*parts))
    expected = b"".join(bytes(p) for p in parts)
    assert (info.key, info.size, info.digest) == ("g-1", len(expected), digest_of(expected))
    assert location.reader.read_blob("g-1", info.digest, info.size) == expected
    assert location.reader.has_blob("g-1")
    assert not location.reader.has_blob("g-2")


@every_location
def test_truncated_blob_is_corrupt(location: Location) -> None:
    info = location.writer.write_blob("g-1", fill_with(b"x" * 5000))
    location.writer.fs.pipe_file(location.writer.path("blobs", "g-1"), b"x" * 4000)
    with pytest.raises(CorruptCheckpointError, match="4000 bytes, not the 5000 recorded"):
        location.reader.read_blob("g-1", info.digest, info.size)


@every_location
def test_altered_blob_is_corrupt(location: Location) -> None:
    info = location.writer.write_blob("g-1", fill_with(b"x" * 5000))
    location.writer.fs.pipe_file(location.writer.path("blobs", "g-1"), b"x" * 4999 + b"y")
    with pytest.raises(CorruptCheckpointError, match="does not match its digest"):
        location.reader.read_blob("g-1", info.digest, info.size)


@every_location
def test_missing_blob_is_corrupt(location: Location) -> None:
    with pytest.raises(CorruptCheckpointError, match="blob g-9 is missing"):
        location.reader.read_blob("g-9", digest_of(b""), 0)


@every_location
def test_no_checkpoint_is_not_found(location: Location) -> None:
    with pytest.raises(CheckpointNotFoundError, match="no checkpoint at"):
        location.reader.latest()


@every_location
def test_latest_is_the_newest_commit(location: Location) -> None:
    assert location.writer.commit(manifest("c1", note="first"))
    assert location.reader.latest() == manifest("c1", note="first")
    location.writer.commit(manifest("c2", note="second"))
    assert location.reader.latest() == manifest("c2", note="second")


@every_location
def test_a_commit_moves_latest_only_from_the_checkpoint_it_replaces(location: Location) -> None:
    """Fast-forward only: a kernel that did not write or restore the current checkpoint
    keeps its own beside it, and LATEST stays."""
    assert location.writer.commit(manifest("c1"), replaces=None, force=False)  # nothing here yet
    assert not location.writer.commit(manifest("c2"), replaces=None, force=False)  # a new runtime
    assert location.reader.latest()["checkpoint"] == "c1"
    assert location.reader.pointer().checkpoint == "c1"
    assert location.writer.commit(manifest("c3"), replaces="c1", force=False)  # the kernel that wrote c1
    assert location.reader.latest()["checkpoint"] == "c3"
    assert location.reader.pointer().parent is None


@every_location
def test_pointer_to_an_altered_manifest_is_corrupt(location: Location) -> None:
    location.writer.commit(manifest("c1"))
    location.writer.fs.pipe_file(location.writer.path("manifests", "c1.json"), json.dumps(manifest("c1", x=1)).encode())
    with pytest.raises(CorruptCheckpointError, match="does not match its digest"):
        location.reader.latest()


@every_location
def test_failed_manifest_write_leaves_previous_checkpoint(location: Location) -> None:
    """A manifest name is never reused: the write fails, LATEST stays where it was."""
    info = location.writer.write_blob("g-1", fill_with(b"value"))
    location.writer.commit(manifest("c1", blob=info.digest))
    with pytest.raises(StorageError, match="already exists; the previous checkpoint is intact"):
        location.writer.commit(manifest("c1", blob="something else"))
    assert location.reader.latest() == manifest("c1", blob=info.digest)
    assert location.reader.read_blob("g-1", info.digest, info.size) == b"value"


@every_location
def test_parallel_helpers_move_every_blob_and_report_bytes(location: Location) -> None:
    blobs = {f"g-{i}": bytes([i]) * (1000 * (i + 1)) for i in range(8)}
    both_running = threading.Barrier(2, timeout=10)
    written_bytes: list[int] = []

    def fill_for(key: str) -> Any:
        def fill(f: Any) -> None:
            if key in ("g-0", "g-1"):
                both_running.wait()  # only passes if two blobs are being written at the same time
            f.write(blobs[key])
        return fill

    def unpicklable(f: Any) -> None:
        f.write(b"partial")
        raise TypeError("cannot pickle 'generator' object")

    jobs = {key: fill_for(key) for key in blobs} | {"g-bad": unpicklable}
    written, failed = location.writer.write_blobs(jobs, progress=written_bytes.append)
    assert sorted(written) == sorted(blobs)
    assert list(failed) == ["g-bad"] and isinstance(failed["g-bad"], TypeError)
    assert not location.reader.has_blob("g-bad"), "a failed fill must leave nothing behind"
    assert sum(written_bytes) == sum(map(len, blobs.values())) + len(b"partial")

    read_bytes: list[int] = []
    wanted = [(i.key, i.digest, i.size) for i in written.values()] + [("g-missing", digest_of(b""), 0)]
    data, errors = location.reader.read_blobs(wanted, progress=read_bytes.append)
    assert data == blobs
    assert list(errors) == ["g-missing"] and isinstance(errors["g-missing"], CorruptCheckpointError)
    assert sum(read_bytes) == sum(map(len, blobs.values()))


@every_location
def test_a_failing_fill_never_replaces_an_existing_blob(location: Location) -> None:
    info = location.writer.write_blob("g-1", fill_with(b"complete value"))

    def broken(f: Any) -> None:
        f.write(b"half")
        raise ValueError("pickling failed half way")

    with pytest.raises(ValueError, match="half way"):
        location.writer.write_blob("g-1", broken)
    assert location.reader.read_blob("g-1", info.digest, info.size) == b"complete value"


@at()
def test_check_writable_accepts_a_writable_location(location: Location) -> None:
    location.writer.check_writable()
    location.writer.commit(manifest("c1"))  # and leaves no probe that would confuse a reader
    assert location.reader.latest() == manifest("c1")


@at(["http", "http-no-range"])
def test_http_is_read_only(location: Location) -> None:
    with pytest.raises(StorageError, match=r"^http://127\.0\.0\.1:\d+/\w+ is read-only"):
        location.reader.check_writable()
    with pytest.raises(StorageError, match="is read-only"):
        location.reader.commit(manifest("c1"))
    with pytest.raises(StorageError, match="is read-only"):
        location.reader.write_blob("g-1", fill_with(b"x"))


@at()
def test_concurrent_commits_from_threads_never_tear_the_pointer(location: Location) -> None:
    store = location.writer
    committed = {f"{w}-{i}": manifest(f"{w}-{i}", payload="x" * (1000 * i)) for w in "ab" for i in range(12)}
    committed["start"] = manifest("start")
    store.commit(committed["start"])
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(12):
                store.commit(committed[f"{prefix}-{i}"])
        except StorageError as exc:
            errors.append(exc)

    def reader() -> None:
        while True:
            finished = done.is_set()  # so there is always one read after the last commit
            try:
                seen.append(store.latest())  # a torn pointer or manifest raises CorruptCheckpointError
            except StorageError as exc:
                errors.append(exc)
                return
            if finished:
                return

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert errors == []
    assert all(m == committed[m["checkpoint"]] for m in seen)
    assert store.latest()["checkpoint"] in {"a-11", "b-11"}


@every_location
def test_streamed_blob_is_read_front_to_back_and_checked(location: Location) -> None:
    payload = bytes(range(256)) * 40_000  # 10 MB, read through `readinto` as pickle does
    info = location.writer.write_blob("g-big", fill_with(payload))

    def consume(f: Any) -> bytes:
        head = f.read(100)
        rest = bytearray(len(payload) - 100)
        assert f.readinto(rest) == len(rest)
        return head + bytes(rest)

    assert location.reader.stream_blob("g-big", info.digest, info.size, consume) == payload
    # a consumer that stops early still has the whole blob checked
    assert location.reader.stream_blob("g-big", info.digest, info.size, lambda f: f.read(10)) == payload[:10]
    location.writer.fs.pipe_file(location.writer.path("blobs", "g-big"), payload[:-1] + b"\x00")
    with pytest.raises(CorruptCheckpointError, match="does not match its digest"):
        location.reader.stream_blob("g-big", info.digest, info.size, consume)
    location.writer.fs.pipe_file(location.writer.path("blobs", "g-big"), payload[:1000])
    with pytest.raises(CorruptCheckpointError, match="1000 bytes, not the"):
        location.reader.stream_blob("g-big", info.digest, info.size, consume)  # consume fails first: still named


def _lineage_manifest(checkpoint: str, parent: str | None, lineage: str = "L1") -> dict[str, Any]:
    from tests.test_manifest import example

    return example(checkpoint, lineage=lineage, parent=parent)


@every_location
def test_the_log_lists_every_checkpoint_and_a_damaged_newest_falls_back(location: Location) -> None:
    """By listing where the store can list, through parent links where it cannot (HTTP)."""
    from colab_elastic.lineage import choose, read_log

    ids = [f"2026010{i}T000000000000-0000000{i}" for i in (1, 2, 3)]
    parent = None
    for checkpoint in ids:
        location.writer.commit(_lineage_manifest(checkpoint, parent), replaces=parent, force=False)
        parent = checkpoint
    # Another runtime's checkpoint, kept beside: never what a plain restore falls back to.
    location.writer.commit(_lineage_manifest("20260104T000000000000-00000004", None, lineage="L2"), force=False)
    assert location.reader.pointer().checkpoint == ids[-1]
    manifest, skipped = choose(location.reader)
    assert manifest.checkpoint == ids[-1] and not skipped

    location.writer.fs.pipe_file(location.writer.path("manifests", f"{ids[-1]}.json"), b'{"format": 1, "chec')
    manifest, skipped = choose(location.reader)
    assert manifest.checkpoint == ids[1] and list(skipped) == [ids[-1]]
    entries = {e.checkpoint: e for e in read_log(location.reader).entries}
    assert set(ids) <= set(entries)
    assert not entries[ids[-1]].intact and entries[ids[-1]].latest
    assert entries[ids[0]].intact and entries[ids[1]].intact
    assert choose(location.reader, at=ids[0])[0].checkpoint == ids[0]
