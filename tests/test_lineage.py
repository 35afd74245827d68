"""Never lose a session: a new runtime cannot bury it, and an older checkpoint is always reachable.

Each test lives the user's path in real kernels: work, lose the runtime (SIGKILL), start a
new one, do what users do first (mount Drive, import something), then restore. The restored
session is compared with a pickled snapshot of the original, by the values' own equality.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.kernels import SNAPSHOT, WAIT_FOR_UPLOADS, Kernel, compare, run_cells

pytestmark = pytest.mark.kernel

EVERY_CELL = "%elastic auto on --interval 0 --after 0"

WORK = [
    "import numpy as np\nweights = np.arange(100_000, dtype=float)\nnotes = ['cleaned']",
    "weights *= 2\nnotes.append('scaled')\ntotal = float(weights.sum())",
]


def _env(tmp_path: Path, drive_exists: bool) -> dict[str, str]:
    """A Colab-like runtime: checkpoints go to the session's folder on 'Drive' once it is mounted."""
    drive = tmp_path / "drive" / "MyDrive"
    if drive_exists:
        drive.mkdir(parents=True, exist_ok=True)
    return {"COLAB_ELASTIC_DRIVE_ROOT": str(drive), "COLAB_ELASTIC_SESSION": "analysis"}


def _location(tmp_path: Path) -> Path:
    return tmp_path / "drive" / "MyDrive" / "colab_elastic" / "analysis"


def _latest(location: Path) -> str:
    return json.loads((location / "LATEST").read_text())["checkpoint"]


def _first_runtime(tmp_path: Path, cells=WORK) -> tuple[Path, str]:
    """Work with auto-checkpoints on, then lose the runtime. Returns (snapshot, LATEST's id)."""
    runtime = tmp_path / "runtime1"
    runtime.mkdir()
    snapshot = tmp_path / "original.snapshot"
    kernel = Kernel(cwd=str(runtime), env=_env(tmp_path, drive_exists=True))
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        kernel.run(EVERY_CELL).raise_for_error()
        run_cells(kernel, cells)
        kernel.run(WAIT_FOR_UPLOADS).raise_for_error()
        kernel.run(SNAPSHOT.format(path=str(snapshot))).raise_for_error()
    finally:
        kernel.kill()
    return snapshot, _latest(_location(tmp_path))


def _new_runtime(tmp_path: Path) -> Kernel:
    """Another runtime with Drive mounted, in a folder of its own."""
    runtime = tmp_path / "runtime2"
    runtime.mkdir(exist_ok=True)
    return Kernel(cwd=str(runtime), env=_env(tmp_path, drive_exists=True))


def test_a_new_runtime_that_runs_a_cell_before_restoring_gets_the_session_back(tmp_path):
    """The path users walk most: new runtime, `%load_ext`, the Drive mount cell (the default
    location moves to Drive), an import, then `%elastic restore`."""
    snapshot, original = _first_runtime(tmp_path)
    runtime = tmp_path / "runtime2"
    runtime.mkdir()
    drive = tmp_path / "drive"
    os.rename(drive, tmp_path / "unmounted")  # the new runtime has not mounted Drive yet
    kernel = Kernel(cwd=str(runtime), env=_env(tmp_path, drive_exists=False))
    try:
        loaded = kernel.run("%load_ext colab_elastic")
        loaded.raise_for_error()
        kernel.run(EVERY_CELL).raise_for_error()
        os.rename(tmp_path / "unmounted", drive)
        mounted = kernel.run("import os\nmounted = os.path.isdir(os.environ['COLAB_ELASTIC_DRIVE_ROOT'])")
        mounted.raise_for_error()
        # Told once, under the cell that moved the location, what is there and what to do.
        assert "a checkpoint is at this session's location" in mounted.stdout, mounted.text
        assert "4 variables" in mounted.stdout and "%elastic restore" in mounted.stdout
        kernel.run("import math\nradius = 2.0").raise_for_error()
        kernel.run(WAIT_FOR_UPLOADS).raise_for_error()
        assert _latest(_location(tmp_path)) == original, "a new runtime moved LATEST before restoring"
        restored = kernel.run("%elastic restore")
        restored.raise_for_error()
        assert "all variables restored and verified" in restored.text, restored.text
        verdicts = compare(kernel, snapshot)["values"]
        # What the new runtime's own cells made stays, beside the restored session.
        new_here = {"os", "math", "mounted", "radius"}
        assert {n: v for n, v in verdicts.items() if v != "same" and n not in new_here} == {}, restored.text
        # Recording goes on, and now continues the restored lineage: LATEST moves again.
        kernel.run("weights += 1").raise_for_error()
        kernel.run(WAIT_FOR_UPLOADS).raise_for_error()
        newest = json.loads((_location(tmp_path) / "LATEST").read_text())
        assert newest["checkpoint"] != original and newest["parent"] == original
    finally:
        kernel.close()


def test_an_explicit_checkpoint_over_another_session_needs_force(tmp_path):
    _, original = _first_runtime(tmp_path)
    kernel = _new_runtime(tmp_path)
    try:
        loaded = kernel.run("%load_ext colab_elastic")
        assert "a checkpoint is at this session's location" in loaded.stdout, loaded.text
        kernel.run("other = 1").raise_for_error()
        refused = kernel.run("%elastic checkpoint")
        assert "holds another session's checkpoint" in refused.stderr and "--force" in refused.stderr
        assert _latest(_location(tmp_path)) == original
        kernel.run("%elastic checkpoint --force").raise_for_error()
        assert _latest(_location(tmp_path)) != original
        log = kernel.run("%elastic log")
        log.raise_for_error()
        assert original in log.text and "lineage 2" in log.text, log.text
    finally:
        kernel.close()


def test_fresh_starts_a_new_session_and_the_old_one_stays_restorable(tmp_path):
    snapshot, original = _first_runtime(tmp_path)
    kernel = _new_runtime(tmp_path)
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        kernel.run(EVERY_CELL).raise_for_error()
        kernel.run("%elastic fresh").raise_for_error()
        kernel.run("import numpy as np\nweights = np.zeros(3)").raise_for_error()
        kernel.run(WAIT_FOR_UPLOADS).raise_for_error()
        assert _latest(_location(tmp_path)) != original
        # Garbage collection keeps the newest intact checkpoint of every lineage.
        from colab_elastic.retention import collect_garbage
        from colab_elastic.store import Store

        for _ in range(3):
            kernel.run("weights += 1").raise_for_error()
        kernel.run(WAIT_FOR_UPLOADS).raise_for_error()
        for path in _location(tmp_path).rglob("*"):
            os.utime(path, (time.time() - 7200, time.time() - 7200))
        collect_garbage(Store(str(_location(tmp_path))), keep=1)
    finally:
        kernel.kill()
    third = _new_runtime(tmp_path)
    try:
        third.run("%load_ext colab_elastic").raise_for_error()
        restored = third.run(f"%elastic restore --at {original[-8:]}")
        restored.raise_for_error()
        assert "all variables restored and verified" in restored.text, restored.text
        verdicts = compare(third, snapshot)["values"]
        assert {n: v for n, v in verdicts.items() if v != "same"} == {}, restored.text
    finally:
        third.close()


def test_a_damaged_newest_manifest_falls_back_to_the_newest_intact_one(tmp_path):
    """Drive syncs files in no guaranteed order: LATEST can name a manifest that is cut short."""
    location = tmp_path / "ckpt"
    snapshots = []
    kernel = Kernel(cwd=str(tmp_path))
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        for i, code in enumerate(["x = [1]", "x.append(2)\ny = 'two'", "x.append(3)"]):
            kernel.run(code).raise_for_error()
            kernel.run(f"%elastic checkpoint {location}").raise_for_error()
            snapshots.append(tmp_path / f"snap{i}")
            kernel.run(SNAPSHOT.format(path=str(snapshots[-1]))).raise_for_error()
    finally:
        kernel.kill()
    newest = _latest(location)
    manifest = location / "manifests" / f"{newest}.json"
    manifest.write_bytes(manifest.read_bytes()[:200])
    second = Kernel(cwd=str(tmp_path))
    try:
        second.run("%load_ext colab_elastic").raise_for_error()
        log = second.run(f"%elastic log {location}")
        log.raise_for_error()
        assert log.text.count("intact") == 2 and "damaged" in log.text, log.text
        restored = second.run(f"%elastic restore {location}")
        restored.raise_for_error()
        assert "skipped a newer checkpoint" in restored.text and newest in restored.text, restored.text
        assert set(compare(second, snapshots[1])["values"].values()) == {"same"}
    finally:
        second.close()
    # Any older one, on request, in another runtime.
    oldest = sorted(p.stem for p in (location / "manifests").iterdir())[0]
    third = Kernel(cwd=str(tmp_path))
    try:
        third.run("%load_ext colab_elastic").raise_for_error()
        third.run(f"%elastic restore {location} --at {oldest}").raise_for_error()
        assert set(compare(third, snapshots[0])["values"].values()) == {"same"}
    finally:
        third.close()


def test_a_runtime_killed_two_seconds_after_a_quick_cell_comes_back_as_after_that_cell(tmp_path):
    """Default settings, no waiting for uploads: quick cells, and the runtime dies two seconds
    after the last one. The restore must give the state after that last cell."""
    location = tmp_path / "ckpt"
    env = {"COLAB_ELASTIC_URL": str(location)}
    snapshot = tmp_path / "last.snapshot"
    kernel = Kernel(cwd=str(tmp_path), env=env)
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        run_cells(kernel, ["import numpy as np\ncounts = {}", "data = np.arange(50_000)"]
                  + [f"counts['c{i}'] = int(data[{i}])\nlast = {i}" for i in range(8)])
        kernel.run(SNAPSHOT.format(path=str(snapshot))).raise_for_error()
        time.sleep(2.0)
    finally:
        kernel.kill()
    second = Kernel(cwd=str(tmp_path), env=env)
    try:
        second.run("%load_ext colab_elastic").raise_for_error()
        second.run("%elastic restore").raise_for_error()
        assert set(compare(second, snapshot)["values"].values()) == {"same"}
        assert second.run("print(last, len(counts))").stdout.strip() == "7 8"
    finally:
        second.close()


def test_an_interrupt_after_latest_moved_does_not_strand_the_next_checkpoints(shell, tmp_path, monkeypatch):
    # The interrupt lands after the commit moved LATEST and before the kernel noted it as its
    # head: the next checkpoint must still move LATEST (it was kept beside it, and a restore
    # brought back the older state).
    import colab_elastic
    from colab_elastic import session as session_module

    url = str(tmp_path / "ckpt")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("x = 1")
    colab_elastic.checkpoint(url)
    shell.run_cell("x = 2")
    noted = session_module.Session._committed

    def interrupted(self, store, checkpoint, moved):
        monkeypatch.setattr(session_module.Session, "_committed", noted)
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.Session, "_committed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        colab_elastic.checkpoint(url)
    shell.run_cell("x = 3")
    colab_elastic.checkpoint(url)
    shell.run_cell("x = 0")
    colab_elastic.restore(url)
    assert shell.user_ns["x"] == 3
