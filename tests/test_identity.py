"""Which notebook this is, and where its checkpoints go by default: plain data, no kernel.

(tests/test_colab.py runs the same through real kernels and a stand-in for Colab's server.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from colab_elastic import colab
from colab_elastic.config import Settings, notebook_key, safe_name

FILE_A = "1Qx7Lr0aZbVtq3Kc9nWm2PfYdE5sHgJuO"


def _session(kernel_id, path="fileId=" + FILE_A, name="Untitled0.ipynb"):
    return {"id": "s", "path": path, "name": name, "type": "notebook", "kernel": {"id": kernel_id, "name": "python3"}}


def test_the_session_of_this_kernel_is_picked_among_the_runtimes_notebooks():
    listing = [_session("k1", "fileId=other"), _session("k2")]
    assert colab.identity_from_sessions(listing, "k2") == colab.NotebookIdentity("Untitled0.ipynb", FILE_A)


def test_with_no_session_of_this_kernel_only_a_lone_session_is_taken():
    assert colab.identity_from_sessions([_session("k1")], "k9") == colab.NotebookIdentity("Untitled0.ipynb", FILE_A)
    assert colab.identity_from_sessions([_session("k1")], None).file_id == FILE_A
    assert colab.identity_from_sessions([_session("k1"), _session("k2", "fileId=other")], "k9") is None


@pytest.mark.parametrize("listing", [
    None, {"sessions": []}, [], ["junk", 3], [{"path": 7, "name": None, "kernel": "k"}],
    [{"path": "fileId=", "name": "", "kernel": {"id": "k"}}],
])
def test_odd_listings_mean_unknown(listing):
    found = colab.identity_from_sessions(listing, "k")
    assert found is None or found == colab.NotebookIdentity(None, None)


def test_the_file_id_comes_from_the_session_path():
    assert colab.file_id_from_path(f"fileId={FILE_A}") == FILE_A
    assert colab.file_id_from_path(f"fileId%3D{FILE_A}") == FILE_A  # a server that quotes the path
    assert colab.file_id_from_path("notebooks/analysis.ipynb") is None
    assert colab.file_id_from_path("fileId=") is None
    # Jupyter's own names are URL-quoted in some versions; Colab's listing carries them so.
    assert colab.identity_from_sessions([_session("k", name="Taxi%20fares.ipynb")], "k").name == "Taxi fares.ipynb"


def test_outside_colab_the_record_knows_no_notebook():
    # This test process has no google.colab: nothing is asked of any frontend or server.
    record = colab.notebook_record()
    assert set(record) == {"name", "id"} and record["name"] is None


def test_a_drive_file_id_keys_by_its_first_characters_any_other_id_by_a_hash():
    assert notebook_key(FILE_A) == FILE_A[:12]
    github = "https://github.com/owner/repo/blob/main/notebooks/Untitled0.ipynb"
    key = notebook_key(github)
    assert len(key) == 12 and safe_name(key) == key and key == notebook_key(github)
    assert notebook_key("/v2/external/notebooks/intro.ipynb") != key


@pytest.fixture
def drive(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "drive" / "MyDrive"
    (root / "colab_elastic").mkdir(parents=True)
    monkeypatch.setenv("COLAB_ELASTIC_DRIVE_ROOT", str(root))
    monkeypatch.delenv("COLAB_ELASTIC_URL", raising=False)
    return root / "colab_elastic"


def test_a_renamed_notebook_keeps_the_folder_its_file_id_already_has(drive):
    key = FILE_A[:12]
    (drive / f"Untitled0-{key}").mkdir()
    (drive / "Untitled0-1Zp4Nc8vRt2L").mkdir()  # another notebook, also once Untitled0
    assert Settings(session=f"Taxi-fares-{key}", notebook_key=key).resolved_url() == f"{drive}/Untitled0-{key}"
    assert Settings(session=f"Untitled0-{key}", notebook_key=key).resolved_url() == f"{drive}/Untitled0-{key}"


def test_a_new_notebook_gets_a_folder_named_after_it(drive):
    key = FILE_A[:12]
    assert Settings(session=f"Untitled0-{key}", notebook_key=key).resolved_url() == f"{drive}/Untitled0-{key}"
    assert not (drive / f"Untitled0-{key}").exists()  # made by the first checkpoint, not by asking


def test_a_session_named_by_the_user_goes_where_its_name_says(drive):
    key = FILE_A[:12]
    (drive / f"Untitled0-{key}").mkdir()
    assert Settings(session="mine", notebook_key=key).resolved_url() == f"{drive}/mine"
    assert Settings(session=f"Taxi-fares-{key}", notebook_key=None).resolved_url() == f"{drive}/Taxi-fares-{key}"


def test_the_load_line_names_a_checkpoint_of_another_notebook(monkeypatch):
    from colab_elastic.lineage import CheckpointEntry
    from colab_elastic.session import _waiting_text

    entry = CheckpointEntry("20260101T000000000000-00000001", created="2026-01-01T00:00:00", cells=3, variables=2,
                            notebook="Untitled0.ipynb", notebook_id="other-file")
    monkeypatch.setattr(colab, "notebook_record", lambda: {"name": "Untitled0.ipynb", "id": FILE_A})
    text = _waiting_text("/drive/colab_elastic/x", entry, True)
    assert "another notebook (file id other-file)" in text and "%elastic name NEW" in text
    monkeypatch.setattr(colab, "notebook_record", lambda: {"name": "Untitled0.ipynb", "id": "other-file"})
    assert "another notebook" not in _waiting_text("/drive/colab_elastic/x", entry, True)
    monkeypatch.setattr(colab, "notebook_record", lambda: {"name": "Untitled0.ipynb", "id": None})
    assert "Notebooks of the same name share this location" in _waiting_text("/x", entry, True)
