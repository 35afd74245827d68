"""Garbage collection keeps what restores need and nothing else."""

from __future__ import annotations

import os
import time

from colab_elastic.cli import main
from colab_elastic.retention import collect_garbage
from colab_elastic.store import Store
from tests.test_manifest import blob_key, example


def _checkpoint(store: Store, number: int, labels: list[str]) -> None:
    blobs = {}
    for label in labels:
        info = store.write_blob(blob_key(label), lambda f, label=label: f.write(label.encode() * 10))
        blobs[label] = (info.key, info.size)
    store.commit(example(f"2026010{number}T000000000000-0000000{number}", blobs))


def _blobs(*labels: str) -> list[str]:
    return sorted(blob_key(label) for label in labels)


def _age_everything(folder, seconds: float) -> None:
    past = time.time() - seconds
    for root, _, files in os.walk(folder):
        for name in files:
            os.utime(os.path.join(root, name), (past, past))


def test_keeps_the_newest_checkpoints_and_their_blobs(tmp_path):
    store = Store(str(tmp_path))
    for n, keys in enumerate([["a", "shared"], ["b", "shared"], ["c", "shared"], ["d"]], start=1):
        _checkpoint(store, n, keys)
    _age_everything(tmp_path, 7200)
    report = collect_garbage(store, keep=2)
    assert sorted(os.listdir(tmp_path / "blobs")) == _blobs("c", "d", "shared")
    assert len(os.listdir(tmp_path / "manifests")) == 2
    assert len(report.removed_manifests) == 2 and len(report.removed_blobs) == 2
    assert store.latest()["checkpoint"].startswith("20260104")


def test_young_unreferenced_blobs_are_left_for_checkpoints_in_flight(tmp_path):
    store = Store(str(tmp_path))
    _checkpoint(store, 1, ["a"])
    _age_everything(tmp_path, 7200)
    store.write_blob("in-flight", lambda f: f.write(b"not committed yet"))
    collect_garbage(store, keep=1)
    assert sorted(os.listdir(tmp_path / "blobs")) == sorted(_blobs("a") + ["in-flight"])


def test_cli_gc_dry_run_deletes_nothing(tmp_path, capsys):
    store = Store(str(tmp_path))
    _checkpoint(store, 1, ["a"])
    _checkpoint(store, 2, ["b"])
    _age_everything(tmp_path, 7200)
    assert main(["gc", str(tmp_path), "--keep", "1", "--dry-run"]) == 0
    assert "would have" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "blobs")) == _blobs("a", "b")
    assert main(["gc", str(tmp_path), "--keep", "1"]) == 0
    assert sorted(os.listdir(tmp_path / "blobs")) == _blobs("b")

