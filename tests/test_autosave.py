"""Auto-checkpoints: a SIGKILL at any moment leaves the session restorable as of a recent cell."""

from __future__ import annotations

import json
import random
import time

import pytest

import colab_elastic
from tests.kernels import SNAPSHOT, WAIT_FOR_UPLOADS, Kernel, compare, restore_in_new_kernel

pytestmark = pytest.mark.kernel

EVERY_CELL = "%elastic auto on --interval 0 --after 0"


def _session():
    from colab_elastic.extension import current

    return current().session


def test_one_small_change_next_to_large_data_writes_only_the_small_change(shell, monkeypatch):
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "on")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "auto on --interval 0 --after 0")
    shell.run_cell("import time\nimport numpy as np\ntime.sleep(0.5)\nbig = np.ones(2_000_000)", store_history=True)
    shell.run_cell("time.sleep(0.3)\nsmall = [1, 2, 3]", store_history=True)
    autosave = _session().autosave
    assert autosave.wait(30)
    first = autosave.last_completed
    assert first is not None and first.covers_cell == 2
    shell.run_cell("small.append(4)", store_history=True)
    assert autosave.wait(30)
    second = autosave.last_completed
    assert second.checkpoint != first.checkpoint and second.covers_cell == 3
    # 16 MB of `big` stayed where it was; only the small list (and its manifest) moved.
    assert 0 < second.bytes_written < 10_000, second
    # and the store decision for big was made, so this is not a trivial recompute-everything plan
    assert any("big" in g.names and g.action == "store" for g in colab_elastic.plan().groups)


def test_auto_checkpoint_can_be_turned_off_and_on(shell, monkeypatch, capsys):
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "on")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "auto off")
    shell.run_cell("x = 1", store_history=True)
    assert _session().autosave.last_completed is None
    shell.run_line_magic("elastic", "auto on --interval 0")
    shell.run_cell("x = 2", store_history=True)
    assert _session().autosave.wait(30)
    assert _session().autosave.last_completed is not None
    shell.run_line_magic("elastic", "status")
    assert "last complete auto-checkpoint" in capsys.readouterr().out


CELLS = [
    "import time\nimport numpy as np\nweights = np.zeros(500_000)\nlog = []\nstep = 0",
    "time.sleep(0.15)\nweights += 1\nlog.append(len(log))\nstep += 1",
    "time.sleep(0.15)\nweights *= 2\nlog.append(len(log))\nstep += 1\nview = weights[:10]",
    "time.sleep(0.15)\nweights -= 0.5\nlog.append(len(log))\nstep += 1",
    "time.sleep(0.15)\ntable = {'w': weights, 'n': len(log)}\nstep += 1",
]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_at_a_random_moment_restores_a_recent_complete_cell(tmp_path, seed):
    """Run cells with auto-checkpoints after each; SIGKILL at a random moment (inside a cell,
    between cells, during an upload); a new kernel's `%elastic restore` (no URL) must give
    exactly the state after one of the recent cells, never a mix of two."""
    _kill_and_restore(tmp_path, seed, env={})


@pytest.mark.gcs
@pytest.mark.parametrize("seed", [5, 6])
def test_sigkill_at_a_random_moment_on_gcs(tmp_path, seed, gcs_url):
    """The same guarantee with the session's location on the loopback GCS server."""
    env = {"COLAB_ELASTIC_URL": gcs_url.url, "COLAB_ELASTIC_STORAGE_OPTIONS": json.dumps(gcs_url.storage_options)}
    _kill_and_restore(tmp_path, seed, env=env)


def _kill_and_restore(tmp_path, seed: int, env: dict[str, str]) -> None:
    rng = random.Random(seed)
    first = Kernel(cwd=str(tmp_path), env=env)
    snapshots = []
    try:
        first.run("%load_ext colab_elastic").raise_for_error()
        first.run(EVERY_CELL).raise_for_error()
        kill_after = rng.randrange(1, len(CELLS))
        for i, code in enumerate(CELLS[:kill_after]):
            first.run(code).raise_for_error()
            path = tmp_path / f"snap-{i}"
            first.run(SNAPSHOT.format(path=str(path))).raise_for_error()
            snapshots.append(path)
        # Let the uploads catch up, so the newest complete point is the last snapshot's (a loaded
        # machine may otherwise lag by a cell or two, which is allowed but not what we test).
        first.run(WAIT_FOR_UPLOADS).raise_for_error()
        first.send(CELLS[kill_after])  # dies inside this cell or during its upload
        time.sleep(rng.uniform(0.0, 0.4))
    finally:
        first.kill()
    second, _ = restore_in_new_kernel(tmp_path, "%elastic restore", env)
    try:
        matches = [i for i, snap in enumerate(snapshots) if set(compare(second, snap)["values"].values()) == {"same"}]
        if not matches:
            # The kill came after the killed cell's own checkpoint committed: then every value
            # must be that cell's, together (step, log and weights move in lockstep).
            expected = {1: (1, 1, 1.0), 2: (2, 2, 2.0), 3: (3, 3, 1.5), 4: (4, 3, 1.5)}[kill_after]
            out = second.run("print((step, len(log), float(weights[0])))")
            assert out.stdout.strip() == repr(expected), out.text
        else:
            assert matches[-1] == len(snapshots) - 1, f"restored an old state: {matches} of {len(snapshots)}"
    finally:
        second.close()


def test_a_polite_shutdown_finishes_or_abandons_cleanly(tmp_path):
    first = Kernel(cwd=str(tmp_path))
    first.run("%load_ext colab_elastic").raise_for_error()
    first.run(EVERY_CELL).raise_for_error()
    first.run("import numpy as np\nimport time\ntime.sleep(0.2)\nkept = np.arange(1_000_000)").raise_for_error()
    first.run(SNAPSHOT.format(path=str(tmp_path / "snap"))).raise_for_error()
    first.send("kept = kept * 3")
    first.manager.shutdown_kernel(now=False)  # like `exit` or Runtime > Restart
    first.close()
    second, _ = restore_in_new_kernel(tmp_path, "%elastic restore")
    try:
        out = second.run("print(int(kept[1]))")
        assert out.stdout.strip() in {"1", "3"}
        if out.stdout.strip() == "1":
            assert set(compare(second, tmp_path / "snap")["values"].values()) == {"same"}
    finally:
        second.close()


def test_a_change_larger_than_the_memory_budget_is_streamed_in_the_foreground(shell, monkeypatch, tmp_path):
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "on")
    monkeypatch.setenv("COLAB_ELASTIC_AUTO_MEMORY_MB", "1")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "auto on --interval 0 --after 0")
    shell.run_cell("import time\nimport numpy as np\ntime.sleep(0.3)\nbig = np.ones(1_000_000)", store_history=True)
    autosave = _session().autosave
    # Written before the cell returned: nothing of it waits in memory for the background thread.
    assert not autosave._pending
    assert autosave.wait(30)
    assert autosave.last_completed.covers_cell == 1
    blobs = list((tmp_path / "default-location" / "blobs").iterdir())
    assert any(p.stat().st_size > 8_000_000 for p in blobs)


@pytest.mark.gcs
def test_checkpoints_due_while_one_uploads_coalesce(shell, monkeypatch, gcs_url):
    """Cells faster than the upload: at most one checkpoint waits behind the one uploading,
    newer ones replace it, and the last cell's state is the one that ends up committed."""
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "on")
    monkeypatch.setenv("COLAB_ELASTIC_URL", gcs_url.url)
    monkeypatch.setenv("COLAB_ELASTIC_STORAGE_OPTIONS", json.dumps(gcs_url.storage_options))
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "auto on --interval 0 --after 0")
    shell.run_cell("import time\nimport numpy as np\ntime.sleep(1.0)\nstate = np.zeros(2_500_000)", store_history=True)
    autosave = _session().autosave
    waiting = []
    for _ in range(6):
        shell.run_cell("state += 1", store_history=True)
        with autosave._lock:
            waiting.append(sum(info.size for info, _ in autosave._pending.values()))
    assert autosave.wait(60)
    last = autosave.last_completed
    assert autosave.last_error is None, autosave.last_error
    assert last.covers_cell == 7  # the newest state won
    commits = {m for m in _session().store(gcs_url.url).fs.ls(f"{gcs_url.url}/manifests")}
    assert len(commits) < 7, "no checkpoint was coalesced"
    # never more than the one uploading plus the one waiting: two 20 MB snapshots
    assert max(waiting) <= 2 * 20_000_000 + 1_000_000
