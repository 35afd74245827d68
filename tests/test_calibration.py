"""What plans are made of is measured: parallel uploads count as parallel, a restore's reruns
teach what a rerun costs beyond its runtime, and the checkpoint weight trades bytes for restore."""

from __future__ import annotations

import re

import pytest

from colab_elastic.history import HistoryGraph
from colab_elastic.planner import IMPORT_SECONDS, Bandwidth, GroupInfo, plan
from colab_elastic.session import Session
from colab_elastic.store import BlobInfo
from tests.kernels import roundtrip

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


def _imports_then_work(work_seconds: float, size: int) -> tuple[HistoryGraph, list[GroupInfo]]:
    """`import pandas`-like: 400 modules in 0.2 s; then a cell making `x` from it."""
    graph = HistoryGraph()
    graph.record("import pkg", 0.2, reads=(), writes={"pkg"}, imports=400)
    graph.record("x = pkg.make()", work_seconds, reads={"pkg"}, writes={"x"}, imports=3)
    return graph, [GroupInfo(frozenset({"pkg"}), 0), GroupInfo(frozenset({"x"}), size)]


def test_a_restore_that_loads_instead_of_rerunning_still_waits_for_the_imports():
    # Loading x imports what it needs all the same: 403 modules at the import cell's pace.
    graph, groups = _imports_then_work(5.0, 10**6)
    speeds = Bandwidth(write=1e9, read=1e9, latency=0.0, rerun_overhead=0.0)
    loaded = plan(graph, groups, speeds)
    assert not loaded.reruns and loaded.import_seconds == pytest.approx(403 * 0.2 / 400)
    assert loaded.restore_seconds == pytest.approx(0.001 + loaded.import_seconds)
    # A rerun cell imports inside its own runtime, already counted: only the import cell's
    # modules are added (loading `pkg` imports them).
    graph, groups = _imports_then_work(0.001, 10**10)
    rerun = plan(graph, groups, speeds)
    assert rerun.reruns == (2,) and rerun.import_seconds == pytest.approx(0.2)
    assert rerun.restore_seconds == pytest.approx(0.001 + 0.2)


def test_import_pace_comes_from_a_restore_when_one_measured_it():
    graph, groups = _imports_then_work(5.0, 10**6)
    measured = plan(graph, groups, Bandwidth(write=1e9, read=1e9, latency=0.0, import_seconds=0.004))
    assert measured.import_seconds == pytest.approx(403 * 0.004)
    # Without an import cell to bound it, a module is taken to cost IMPORT_SECONDS.
    graph = HistoryGraph()
    graph.record("import pkg\nx = pkg.train()", 30.0, reads=(), writes={"pkg", "x"}, imports=500)
    guessed = plan(graph, [GroupInfo(frozenset({"pkg", "x"}), 10**6)], Bandwidth(write=1e9, read=1e9, latency=0.0))
    assert guessed.import_seconds == pytest.approx(500 * IMPORT_SECONDS)


def test_a_restore_teaches_the_import_pace(session):
    assert session.bandwidth("file:///x").import_seconds is None
    session.measure("file:///x", import_seconds=0.003)
    assert session.bandwidth("gs://bucket/y").import_seconds == 0.003  # a property of the runtime


@pytest.mark.kernel
def test_a_restore_says_what_importing_took_and_the_next_plan_counts_it(tmp_path, kernels):
    # A package of 61 modules, 5 ms each to import, whose class the stored value is an instance of.
    package = tmp_path / "slowpkg"
    package.mkdir()
    (package / "__init__.py").write_text("".join(f"from . import m{i}\n" for i in range(60)) + "from .m0 import Thing\n")
    for i in range(60):
        (package / f"m{i}.py").write_text("import time\ntime.sleep(0.005)\n"
                                         + ("class Thing:\n    def __init__(self, n):\n        self.n = n\n" if i == 0 else ""))
    trip = roundtrip(tmp_path, ["import slowpkg", "thing = slowpkg.Thing(3)"])
    kernels.append(trip.kernel)
    trip.assert_identical()
    # Before any restore: at most IMPORT_SECONDS a module (the import cell took more).
    assert re.search(r"restore \d+ ms with 61 ms of imports", trip.checkpoint.text), trip.checkpoint.text
    imported = re.search(r"(\d+) ms importing (\d+) modules", trip.restore.text)
    assert imported is not None and int(imported[2]) >= 61 and int(imported[1]) >= 300, trip.restore.text
    # The restore measured 5 ms a module: the next plan here counts that.
    planned = trip.kernel.run("print(__import__('colab_elastic.extension', fromlist=['current'])"
                              ".current().session.plan().import_seconds)")
    planned.raise_for_error()
    assert float(planned.stdout) >= 0.3
