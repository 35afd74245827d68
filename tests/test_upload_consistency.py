"""A committed manifest only ever names blobs that are there: after a failed upload, and after
garbage collection deleted what an earlier checkpoint had written."""

from __future__ import annotations

import json
from pathlib import Path

from colab_elastic.errors import StorageError
from colab_elastic.retention import collect_garbage
from colab_elastic.store import Store


def _session():
    from colab_elastic.extension import current

    return current().session


def _blobs_named_by_latest(location: Path) -> list[Path]:
    pointer = json.loads((location / "LATEST").read_text())
    manifest = json.loads((location / pointer["manifest"]).read_text())
    return [location / "blobs" / g["blob"]["key"] for g in manifest["groups"] if "blob" in g]


def test_a_blob_deleted_by_garbage_collection_is_written_again_when_its_value_comes_back(shell, tmp_path):
    location = tmp_path / "ckpt"
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time\ntime.sleep(0.2)\nsettings = {'lr': 0.1, 'name': 'first'}", store_history=True)
    shell.run_line_magic("elastic", f"checkpoint {location}")
    first = set(p.name for p in _blobs_named_by_latest(location))
    for i in range(3):
        shell.run_cell(f"time.sleep(0.2)\nsettings['lr'] = {i}", store_history=True)
        shell.run_line_magic("elastic", f"checkpoint {location}")
    report = collect_garbage(Store(str(location)), keep=1, grace=0)
    assert set(Path(b).name for b in report.removed_blobs) & first, "the first value's blob should be gone"
    shell.run_cell("time.sleep(0.2)\nsettings['lr'] = 0.1", store_history=True)  # the first value again
    shell.run_line_magic("elastic", f"checkpoint {location}")
    missing = [p.name for p in _blobs_named_by_latest(location) if not p.exists()]
    assert missing == [], f"LATEST names blobs garbage collection deleted: {missing}"


def test_a_failed_upload_commits_nothing_and_the_next_checkpoint_writes_the_blob(shell, tmp_path, monkeypatch):
    location = tmp_path / "auto"
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "on")
    monkeypatch.setenv("COLAB_ELASTIC_URL", str(location))
    shell.run_line_magic("load_ext", "colab_elastic")
    autosave = _session().autosave
    shell.run_cell("import time\ntime.sleep(0.2)\nbase = list(range(1000))", store_history=True)
    assert autosave.wait(30)
    committed = json.loads((location / "LATEST").read_text())["checkpoint"]

    original = Store.write_blob

    def failing(self, key, fill, progress=None):
        raise StorageError(f"cannot write blob {key}: the disk is full")

    monkeypatch.setattr(Store, "write_blob", failing)
    shell.run_cell("time.sleep(0.2)\nextra = ['x'] * 1000", store_history=True)
    assert autosave.wait(30)
    assert "disk is full" in (autosave.last_error or "")
    assert json.loads((location / "LATEST").read_text())["checkpoint"] == committed
    monkeypatch.setattr(Store, "write_blob", original)
    shell.run_cell("time.sleep(0.2)\nmore = 1", store_history=True)
    assert autosave.wait(30)
    assert autosave.last_error is None
    missing = [p.name for p in _blobs_named_by_latest(location) if not p.exists()]
    assert missing == []
    names = json.loads((location / "LATEST").read_text())
    manifest = json.loads((location / names["manifest"]).read_text())
    stored = {n for g in manifest["groups"] if "blob" in g for n in g["decision"]["names"]}
    assert "extra" in stored


def test_a_blob_found_damaged_on_restore_is_written_again_by_the_next_checkpoint(shell, tmp_path):
    import pytest

    from colab_elastic.errors import RestoreWarning

    location = tmp_path / "ckpt"
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time\ntime.sleep(0.3)\nkept = list(range(5000))", store_history=True)
    shell.run_line_magic("elastic", f"checkpoint {location}")
    pointer = json.loads((location / "LATEST").read_text())
    manifest = json.loads((location / pointer["manifest"]).read_text())
    (damaged,) = [g["blob"]["key"] for g in manifest["groups"] if "kept" in g["decision"]["names"]]
    (location / "blobs" / damaged).unlink()  # lost between runtimes
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")
    with pytest.warns(RestoreWarning, match="kept"):
        shell.run_line_magic("elastic", f"restore {location}")
    assert shell.user_ns["kept"] == list(range(5000))
    shell.run_line_magic("elastic", f"checkpoint {location}")
    missing = [p.name for p in _blobs_named_by_latest(location) if not p.exists()]
    assert missing == [], f"the new checkpoint names blobs that are gone: {missing}"
