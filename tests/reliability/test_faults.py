"""Faults injected into real checkpoints, on a local folder and on the loopback GCS server.

Each test runs tests/reliability/harness.py in a process of its own: it records a notebook
session in an in-process IPython shell and forks a child per fault, so hundreds of kill
points cost seconds, not a kernel each. Expected every time: the newest intact checkpoint
restores complete and equal (compared by the values' own equality, never by our
fingerprints), a damaged group is recomputed and named, or one clear line says why nothing
can be restored. The short variants run by default; `-m long` runs every point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import Tally

ROOT = Path(__file__).resolve().parents[2]
ONE_LINE_ERRORS = ("ElasticError", "StorageError", "CheckpointNotFoundError", "CorruptCheckpointError")


@pytest.fixture(params=["local", "gcs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, dict[str, Any]]:
    if request.param == "local":
        return "local", str(tmp_path / "ckpt"), {}
    gcs = request.getfixturevalue("gcs_url")
    return "gcs", gcs.url, gcs.storage_options


def run_harness(tally: Tally, backend: tuple[str, str, dict[str, Any]], tmp_path: Path, scenarios: list[str],
                **spec: Any) -> list[dict[str, Any]]:
    name, url, options = backend
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"url": url, "options": options, "scenarios": scenarios,
                                     "server_root": str(tmp_path / "gcs-root"), **spec}))
    (tmp_path / "gcs-root").mkdir(exist_ok=True)
    env = {**os.environ, "COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_PROGRESS": "off",
           "COLAB_ELASTIC_URL": str(tmp_path / "default"), "COLAB_ELASTIC_WORKERS": str(spec.get("workers", 4)),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "tests.reliability.harness", str(spec_file)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    tally.seconds[name] += time.perf_counter() - started
    assert run.returncode == 0, run.stderr[-4000:]
    outcomes = json.loads(run.stdout.strip().splitlines()[-1])["outcomes"]
    assert outcomes, "the harness injected nothing"
    for outcome in outcomes:
        check(tally, name, outcome)
    return outcomes


def _one_line_error(found: dict[str, Any]) -> bool:
    return found.get("error_type") in ONE_LINE_ERRORS and "\n" not in found["error"] and "Traceback" not in found["error"]


def check(tally: Tally, backend: str, outcome: dict[str, Any]) -> None:
    """Assert what each fault must leave behind, and count it."""
    kind = outcome["kind"]
    status, found = outcome["verify"] if outcome.get("verify") else ("done", None)
    where = json.dumps(outcome)[:1500]
    assert status == "done", f"the restore crashed: {where}"
    assert outcome["writer"] in {"done", "killed"}, where
    restored = found.get("restored") if found else None
    if kind == "SIGKILL mid-checkpoint":
        # Before the first commit there may be nothing to restore; after it, always A or B, whole.
        if restored is None:
            assert _one_line_error(found) and found["error_type"] == "CheckpointNotFoundError", where
            assert outcome["point"] <= outcome["first_commit"], where
        else:
            assert restored in {"A", "B", "C"} and found["ok"] and not found["fallbacks"], where
            # Garbage collection afterwards leaves nothing the killed write began.
            assert outcome["leftovers"] == ["done", []], where
    elif kind == "SIGKILL mid-auto-checkpoint":
        if restored is None:
            assert _one_line_error(found) and found["error_type"] == "CheckpointNotFoundError", where
        else:
            assert restored.startswith("after cell ") and found["ok"] and not found["fallbacks"], where
    elif kind == "checkpoint interrupted, taken again":
        assert outcome["writer"] == "done", f"checkpointing again after an interrupt failed: {where}"
        assert restored == "C" and found["ok"] and not found["fallbacks"], where
    elif kind == "ENOSPC after N bytes" or kind == "GCS server restarted mid-upload":
        error = outcome["result"]["error"]
        if error is not None:
            assert "\n" not in error and error.endswith("; the previous checkpoint is intact"), where
        if kind.startswith("ENOSPC") and error is not None:
            assert error.startswith("the disk is full: "), where
        assert restored == ("A" if error and kind.startswith("ENOSPC") else "B") or (error and restored == "A"), where
        assert found["ok"] and not found["fallbacks"], where
    elif kind.endswith(" blob"):
        # The damaged group is recomputed by rerunning its cells, and named.
        assert restored == "B" and found["ok"], where
        assert found["fallbacks"] == [", ".join(outcome["names"][0])], where
    elif kind in {"truncated manifest", "garbage manifest", "deleted manifest named by LATEST"}:
        assert restored == "A" and found["ok"] and found["skipped"], where  # the newest intact one
    elif kind == "garbage LATEST":
        assert restored == "B" and found["ok"] and found["skipped"] == ["LATEST"], where
    elif kind == "truncated every manifest":
        assert restored is None and _one_line_error(found) and found["error"].startswith("no intact checkpoint"), where
    elif kind == "restore interrupted, run again":
        assert found["interrupted"], f"the restore went on after the interrupt: {where}"
        assert found["left_behind"] == [], f"an interrupted restore left a half-restored session: {where}"
        assert restored == "B" and found["ok"], where
    elif kind == "two kernels checkpointing at once":
        error = outcome["result"].get("error")
        assert not outcome["result"].get("crashed"), where
        if outcome["point"] == "LATEST":
            assert restored in outcome["result"]["committed"] and found["ok"], where
        elif error is not None:
            assert "\n" not in error, where
        else:
            assert restored == outcome["point"] and found["ok"], where  # every committed checkpoint is whole
    else:
        raise AssertionError(f"unknown fault {kind}")
    refused = bool(found and found.get("error")) or bool((outcome.get("result") or {}).get("error"))
    tally.add(backend, kind, equal=restored is not None, recomputed=bool(found and found.get("fallbacks")),
              error=refused)


# Short variants: a few points of each, both backends, by default --------------------------
def test_kills_and_full_disks_mid_checkpoint(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    run_harness(fault_tally, backend, tmp_path, ["kill", "enospc", "kill_autosave"], points=6)


def test_damaged_blobs_manifests_and_pointer(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    outcomes = run_harness(fault_tally, backend, tmp_path, ["damage"])
    assert len(outcomes) == 8


def test_interrupted_restore_runs_again(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    run_harness(fault_tally, backend, tmp_path, ["interrupt_restore", "interrupt_checkpoint"], points=3,
                rerun_points=2)


def test_two_kernels_checkpointing_to_one_url(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    run_harness(fault_tally, backend, tmp_path, ["race"], steps=3)


@pytest.mark.gcs
def test_gcs_server_restarted_mid_upload(fault_tally: Tally, tmp_path: Path) -> None:
    run_harness(fault_tally, ("gcs", "gs://unused/x", {}), tmp_path, ["server_restart"], points=4)


# Long variants: every point -------------------------------------------------------------------
@pytest.mark.long
@pytest.mark.parametrize("workers", [1, 4])
def test_kill_at_every_point_of_the_write_path(fault_tally: Tally, backend: Any, tmp_path: Path, workers: int) -> None:
    """Every storage operation of checkpoints A, B and C and garbage collection, one at a
    time; with one upload at a time (a fixed order) and with four (the default)."""
    run_harness(fault_tally, backend, tmp_path, ["kill"], points="all", workers=workers)


@pytest.mark.long
@pytest.mark.gcs
@pytest.mark.parametrize("workers", [1, 4])
def test_kill_at_every_request_of_chunked_uploads(fault_tally: Tally, gcs_url: Any, tmp_path: Path,
                                                  workers: int) -> None:
    """The same on GCS with 256 KiB upload chunks: the larger blobs go up as resumable uploads
    of several requests, each one a kill point."""
    run_harness(fault_tally, ("gcs", gcs_url.url, gcs_url.storage_options), tmp_path, ["kill"], points="all",
                workers=workers, more_options={"block_size": 2**18})


@pytest.mark.long
def test_every_fault_at_many_points(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    run_harness(fault_tally, backend, tmp_path, ["enospc", "interrupt_restore", "interrupt_checkpoint", "race"],
                points=20, rerun_points=10, steps=8)


@pytest.mark.long
def test_kill_at_every_point_of_auto_checkpoints(fault_tally: Tally, backend: Any, tmp_path: Path) -> None:
    run_harness(fault_tally, backend, tmp_path, ["kill_autosave"], points="all")


@pytest.mark.long
@pytest.mark.gcs
def test_gcs_server_restarted_at_every_request(fault_tally: Tally, tmp_path: Path) -> None:
    run_harness(fault_tally, ("gcs", "gs://unused/x", {}), tmp_path, ["server_restart"], points="all")
