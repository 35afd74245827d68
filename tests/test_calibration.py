"""What plans are made of is measured: parallel uploads count as parallel, a restore's reruns
teach what a rerun costs beyond its runtime, and the checkpoint weight trades bytes for restore."""

from __future__ import annotations

import pytest

from colab_elastic.history import HistoryGraph
from colab_elastic.planner import Bandwidth, GroupInfo, plan
from colab_elastic.session import Session
from colab_elastic.store import BlobInfo

MB = 1 << 20


class _NoRunner:
    namespace: dict = {}


@pytest.fixture
def session():
    return Session({}, _NoRunner())


def test_four_blobs_uploaded_side_by_side_measure_four_times_one(session):
    # Four 10 MB blobs, each taking 1 s, all started together: 40 MB moved in 1 s.
    blobs = [BlobInfo(f"b{i}", "d", 10 * MB, 1.0, started=100.0 + 0.01 * i) for i in range(4)]
    session.measure("file:///x", blobs)
    assert session.bandwidth("file:///x").write == pytest.approx(40 * MB / 1.03, rel=1e-6)
    one_after_another = [BlobInfo(f"c{i}", "d", 10 * MB, 1.0, started=200.0 + i) for i in range(4)]
    session.measure("file:///y", one_after_another)
    assert session.bandwidth("file:///y").write == pytest.approx(10 * MB, rel=1e-6)


def test_a_restore_teaches_the_rerun_overhead_and_plans_use_it(session):
    assert session.bandwidth("file:///x").rerun_overhead == pytest.approx(1e-3)
    session.measure("file:///x", rerun_overhead=0.02)
    assert session.bandwidth("file:///x").rerun_overhead == 0.02
    assert session.bandwidth("file:///other").rerun_overhead == 0.02  # a property of the runtime


def _one_cell(runtime: float, size: int) -> tuple[HistoryGraph, list[GroupInfo]]:
    graph = HistoryGraph()
    graph.record("x = make()", runtime, reads=(), writes={"x"})
    return graph, [GroupInfo(frozenset({"x"}), size)]


def test_many_quick_reruns_cost_their_overhead():
    # 200 cells of 1 ms each, 5 ms to load each value: rerunning is cheaper, unless a rerun
    # really costs 20 ms more than its runtime, as a restore may have measured.
    graph = HistoryGraph()
    for i in range(200):
        graph.record(f"v{i} = {i}", 0.001, reads=(), writes={f"v{i}"})
    groups = [GroupInfo(frozenset({f"v{i}"}), 5 * 10**6) for i in range(200)]
    speeds = dict(write=1e12, read=1e9, latency=0.0, checkpoint_weight=0.0)
    cheap = plan(graph, groups, Bandwidth(**speeds, rerun_overhead=0.0))
    costly = plan(graph, groups, Bandwidth(**speeds, rerun_overhead=0.02))
    assert not cheap.by_action("store") and len(costly.by_action("store")) == 200
    assert cheap.restore_seconds == pytest.approx(0.2) and costly.restore_seconds == pytest.approx(1.0)


def test_the_checkpoint_weight_stores_what_saves_restore_time():
    # 100 MB: 1 s to upload, 0.1 s to load, 0.5 s to rerun. Counted whole, the upload makes it
    # cheaper to rerun; weighted at 0.25 (uploads in the background), storing wins.
    graph, groups = _one_cell(0.5, 100 * 10**6)
    speeds = dict(write=100e6, read=1e9, latency=0.0, rerun_overhead=0.0)
    assert plan(graph, groups, Bandwidth(**speeds, checkpoint_weight=1.0)).by_action("recompute")
    weighted = plan(graph, groups, Bandwidth(**speeds, checkpoint_weight=0.25))
    assert weighted.by_action("store")
    assert "load + 0.25 x store" in weighted.groups[0].reason


def test_a_local_folder_is_assumed_faster_than_a_network_location(tmp_path, monkeypatch):
    # Until measured, a local folder (read back on the same machine, mostly from the page
    # cache) is not taken for GCS: with 200 MB/s assumed for it, a 640 MB frame that loads in
    # under a second here was rerun for 3 s instead.
    drive = tmp_path / "MyDrive"
    drive.mkdir()
    monkeypatch.setenv("COLAB_ELASTIC_DRIVE_ROOT", str(drive))
    monkeypatch.delenv("COLAB_ELASTIC_READ_MBPS", raising=False)
    monkeypatch.delenv("COLAB_ELASTIC_WRITE_MBPS", raising=False)
    session = Session({}, _NoRunner())
    local, on_drive = session.bandwidth(str(tmp_path / "ckpt")), session.bandwidth(str(drive / "ckpt"))
    assert local == session.bandwidth(f"file://{tmp_path}/ckpt")
    assert (local.write, local.read) == (400e6, 2000e6)
    for url in (str(drive / "ckpt"), "gs://bucket/ckpt", "https://example.org/ckpt"):
        assert (session.bandwidth(url).write, session.bandwidth(url).read) == (100e6, 200e6), url
    assert on_drive.read < local.read


def test_a_local_disk_reads_back_at_least_as_fast_as_it_was_written(tmp_path, monkeypatch):
    monkeypatch.delenv("COLAB_ELASTIC_READ_MBPS", raising=False)
    session = Session({}, _NoRunner())
    fast = [BlobInfo("b", "d", 3000 * MB, 1.0, started=1.0)]  # 3 GB/s written
    session.measure(str(tmp_path), fast)
    session.measure("gs://bucket/x", fast)
    assert session.bandwidth(str(tmp_path)).read == pytest.approx(3000 * MB)
    assert session.bandwidth("gs://bucket/x").read == 200e6  # a network read is not a write


def test_speeds_set_in_the_environment_hold_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_ELASTIC_WRITE_MBPS", "5")
    monkeypatch.setenv("COLAB_ELASTIC_READ_MBPS", "0.5")
    session = Session({}, _NoRunner())
    for url in (str(tmp_path), "gs://bucket/x"):
        assert (session.bandwidth(url).write, session.bandwidth(url).read) == (5e6, 0.5e6)
