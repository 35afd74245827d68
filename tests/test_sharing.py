"""Sharing a checkpoint: a collaborator restores it in their own runtime, from gs://, https or one file."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from colab_elastic.cli import main as cli
from tests.kernels import SNAPSHOT, Kernel, compare, restore_in_new_kernel, run_cells

pytestmark = pytest.mark.kernel

NOTEBOOK = [
    "import time\nimport numpy as np\ntime.sleep(0.3)\nweights = np.linspace(0, 1, 50_000)",
    "notes = {'author': 'ada', 'weights_sum': float(weights.sum())}\nview = weights[::2]",
    "def score(x):\n    return float(x @ weights[: len(x)])",
]


def _author(tmp_path: Path, url: str, options: str = "", env: dict[str, str] | None = None) -> Path:
    """The author's runtime: run the notebook, checkpoint to `url`, snapshot, die."""
    folder = tmp_path / "author"
    folder.mkdir()
    kernel = Kernel(cwd=str(folder), env={"COLAB_ELASTIC_AUTHOR": "ada",
                                          "COLAB_ELASTIC_KEY_FILE": str(tmp_path / "ada.key"), **(env or {})})
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        run_cells(kernel, NOTEBOOK)
        kernel.run(f"%elastic checkpoint {url} {options}").raise_for_error()
        kernel.run(SNAPSHOT.format(path=str(tmp_path / "author.snapshot"))).raise_for_error()
    finally:
        kernel.kill()
    return tmp_path / "author.snapshot"


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def _collaborator(tmp_path: Path, url: str, snapshot: Path, options: str = "", foreign: bool = True) -> Kernel:
    """Another person's runtime: a foreign checkpoint is refused, shown, then trusted."""
    folder = tmp_path / "collaborator"
    folder.mkdir()
    kernel = Kernel(cwd=str(folder), env={"COLAB_ELASTIC_AUTHOR": "grace",
                                          "COLAB_ELASTIC_KEY_FILE": str(tmp_path / "grace.key")})
    try:
        _restore_as_collaborator(kernel, url, snapshot, options, foreign)
    except BaseException:
        kernel.close()
        raise
    return kernel


def _restore_as_collaborator(kernel: Kernel, url: str, snapshot: Path, options: str, foreign: bool) -> None:
    kernel.run("%load_ext colab_elastic").raise_for_error()
    if foreign:
        refused = kernel.run(f"%elastic restore {url} {options}")
        assert refused.error is not None, "a foreign checkpoint was restored without --trust"
        assert "--trust" in refused.error[1] and "\n" not in refused.error[1].strip()
        assert "it runs" in refused.stdout and "loads (unpickles)" in refused.stdout and "score" in refused.stdout
        assert "author id ada" in refused.stdout and "not yours" in refused.error[1]
        assert kernel.run("print('weights' in globals())").stdout.strip() == "False"
        kernel.run(f"%elastic restore {url} {options} --trust").raise_for_error()
    else:
        kernel.run(f"%elastic restore {url} {options}").raise_for_error()
    result = compare(kernel, snapshot)
    assert set(result["values"].values()) == {"same"}, result
    assert result["aliasing"]["same"]


def test_collaborator_restores_over_http_and_never_writes_to_it(tmp_path, http_server):
    base_url, served = http_server
    snapshot = _author(tmp_path, str(served / "shared"))
    before = _listing(served)
    kernel = _collaborator(tmp_path, f"{base_url}/shared", snapshot)
    try:
        assert kernel.run("print(score(np.ones(2)) == float(weights[0] + weights[1]))").stdout.strip() == "True"
        # their own checkpoints go to their own default location, not back to the share
        kernel.run("extra = 1").raise_for_error()
        kernel.run("%elastic checkpoint").raise_for_error()
        assert (tmp_path / "collaborator" / ".colab_elastic" / "default" / "LATEST").exists()
    finally:
        kernel.close()
    assert _listing(served) == before


@pytest.mark.gcs
def test_a_teammates_checkpoint_in_a_bucket_is_asked_about_unless_the_bucket_says_you_may_write(tmp_path, gcs_url):
    # Real GCS answers testIamPermissions for the caller; fake-gcs-server cannot (no IAM), and
    # a bucket that does not say is not assumed yours (see test_trust for the no-write check).
    options = " ".join(f"-o {k}={v}" for k, v in gcs_url.storage_options.items())
    snapshot = _author(tmp_path, gcs_url.url, options)
    kernel = _collaborator(tmp_path, gcs_url.url, snapshot, options, foreign=True)
    kernel.close()


@pytest.mark.parametrize("server", ["http_server", "http_server_no_range"])
def test_an_exported_file_restores_locally_and_over_http(tmp_path, request, server):
    base_url, served = request.getfixturevalue(server)
    snapshot = _author(tmp_path, str(tmp_path / "ckpt"))
    assert cli(["export", str(tmp_path / "ckpt"), str(served / "shared.zip")]) == 0
    kernel = _collaborator(tmp_path, f"{base_url}/shared.zip", snapshot)
    kernel.close()
    local = tmp_path / "copy.zip"
    local.write_bytes((served / "shared.zip").read_bytes())
    os.rename(tmp_path / "collaborator", tmp_path / "collaborator-http")
    kernel = _collaborator(tmp_path, str(local), snapshot)
    kernel.close()


@pytest.mark.gcs
def test_share_says_what_to_send(tmp_path, gcs_url):
    folder = tmp_path / "k"
    folder.mkdir()
    kernel = Kernel(cwd=str(folder))
    try:
        kernel.run("%load_ext colab_elastic\nx = [1]").raise_for_error()
        options = " ".join(f"-o {k}={v}" for k, v in gcs_url.storage_options.items())
        kernel.run(f"%elastic checkpoint {gcs_url.url} {options}").raise_for_error()
        out = kernel.run(f"%elastic share {gcs_url.url} {options}")
        out.raise_for_error()
        assert f"%elastic restore {gcs_url.url} --trust" in out.stdout
        assert "storage.googleapis.com" in out.stdout
        local = kernel.run(f"%elastic share {tmp_path / 'nothing'}")
        assert local.error is not None and "no checkpoint" in local.error[1]
        kernel.run(f"%elastic checkpoint {tmp_path / 'here'}").raise_for_error()
        out = kernel.run(f"%elastic share {tmp_path / 'here'}")
        assert "colab-elastic export" in out.stdout
    finally:
        kernel.close()


def test_your_own_checkpoint_never_asks_wherever_it_is(shell, tmp_path, http_server, monkeypatch):
    """Even read-only and written under another author id: a checkpoint signed with your key
    is yours (on a new Colab runtime the author file is gone; the key is on Drive)."""
    base_url, served = http_server
    monkeypatch.setenv("COLAB_ELASTIC_AUTHOR", "me-on-the-old-runtime")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("kept = {'a': 1}", store_history=True)
    shell.run_line_magic("elastic", f"checkpoint {served / 'mine'}")
    own_key = os.environ["COLAB_ELASTIC_KEY_FILE"]
    monkeypatch.setenv("COLAB_ELASTIC_KEY_FILE", str(tmp_path / "someone-else.key"))
    shell.run_line_magic("elastic", f"checkpoint {served / 'theirs'}")
    monkeypatch.setenv("COLAB_ELASTIC_KEY_FILE", own_key)
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    monkeypatch.setenv("COLAB_ELASTIC_AUTHOR", "me-on-a-new-runtime")
    monkeypatch.setenv("COLAB_ELASTIC_URL", f"{base_url}/mine")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "restore")
    assert shell.user_ns["kept"] == {"a": 1}
    # A checkpoint signed with another key, on a web server, is someone else's: it asks.
    with pytest.raises(UsageError, match="--trust"):
        shell.run_line_magic("elastic", f"restore {base_url}/theirs")


OPENAI = "sk-proj-" + "Zy9Xw8Vu7T" * 3
GITHUB = "ghp_" + "A1b2C3d4E5" * 4
HF = "hf_" + "QwErTyUiOp" * 4
SECRETS = (OPENAI, GITHUB, HF)


def _stored_bytes(folder: Path) -> bytes:
    """Every byte of a checkpoint folder or export, with the base64 settings records decoded."""
    files = [p.read_bytes() for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    if folder.suffix == ".zip":
        with zipfile.ZipFile(folder) as z:
            files = [z.read(name) for name in z.namelist()]
    decoded = []
    for data in files:
        try:
            manifest = json.loads(data)
        except ValueError:
            continue
        for execution in (manifest.get("graph") or {}).get("executions", []) if isinstance(manifest, dict) else []:
            decoded += [base64.b64decode(execution[k]) for k in ("ambient", "rng") if execution.get(k)]
    return b"".join(files + decoded)


def test_credentials_never_reach_a_checkpoint_and_are_named(tmp_path, capsys):
    """Keys typed into cells are scrubbed from the stored code, a variable holding one and the
    environment variables set to them are not stored; share and export say so first, and
    the restore names what to set again."""
    ckpt = tmp_path / "ckpt"
    kernel = Kernel(cwd=str(tmp_path))
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        run_cells(kernel, [
            f'import os\nos.environ["OPENAI_API_KEY"] = "{OPENAI}"\ntoken = "{GITHUB}"\nsize = len(token)',
            f"%env HF_TOKEN={HF}",
            "numbers = [1, 2, 3]",
        ])
        kernel.run(f"%elastic checkpoint {ckpt}").raise_for_error()
        shared = kernel.run(f"%elastic share {ckpt}")
        exported = kernel.run(f"%elastic export {tmp_path / 'out.zip'} --source {ckpt}")
    finally:
        kernel.kill()
    for said in (shared, exported):
        said.raise_for_error()
        assert "cell 1: OpenAI key" in said.stdout and "cell 1: GitHub token" in said.stdout, said.stdout
        assert "cell 2: Hugging Face token" in said.stdout and "variable token" in said.stdout
        assert not any(secret in said.stdout for secret in SECRETS)
    for stored in (ckpt, tmp_path / "out.zip"):
        data = _stored_bytes(stored)
        assert b"numbers" in data and not any(secret.encode() in data for secret in SECRETS), stored
    assert cli(["export", str(ckpt), str(tmp_path / "cli.zip")]) == 0
    assert "cell 1: GitHub token" in capsys.readouterr().err

    kernel, restored = restore_in_new_kernel(tmp_path, f"%elastic restore {ckpt}")
    try:
        text = restored.text
        assert "token: token: looks like a credential: set it again" in text, text
        assert "os.environ['OPENAI_API_KEY'] (cell 1): looks like a credential: set it again" in text
        assert "os.environ['HF_TOKEN'] (cell 2): looks like a credential: set it again" in text
        out = kernel.run("print(numbers, size, 'token' in globals(), os.environ.get('OPENAI_API_KEY'))")
        assert out.stdout.strip() == "[1, 2, 3] 44 False None"
    finally:
        kernel.close()
