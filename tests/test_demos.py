"""The Colab demo notebooks run here too, headless, so they never rot.

Colab-only cells are skipped; the runtime is disconnected (SIGKILL) where the notebook says
so, and the rest runs in a new kernel. Drive is a local folder, gs:// the loopback GCS
server, https:// a loopback HTTP server.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.kernels import Kernel

pytestmark = pytest.mark.kernel

DEMOS = Path(__file__).parent.parent / "demos"


def _parts(name: str, parameters: list[str]) -> tuple[list[str], list[str]]:
    nb = nbformat.read(DEMOS / name, as_version=4)
    before: list[str] = []
    after: list[str] = []
    current = before
    params = iter(parameters)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "disconnect-here" in tags:
            current = after
        if cell.cell_type != "code" or "colab-only" in tags:
            continue
        current.append(next(params) if "parameters" in tags else cell.source)
    return before, after


def _run_across_a_disconnect(tmp_path: Path, name: str, parameters: list[str], env: dict[str, str],
                             env_after: dict[str, str] | None = None) -> tuple[str, str]:
    before, after = _parts(name, parameters)
    outputs = _run(Kernel(cwd=str(tmp_path), env=env), before, f"{name}, before the disconnect", kill=True)
    resumed = _run(Kernel(cwd=str(tmp_path), env={**env, **(env_after or {})}), after, f"{name}, after it")
    trained = next(o.stdout for o in outputs if "trained in" in o.stdout)
    return trained, "\n".join(o.text for o in resumed)


def _run(kernel: Kernel, cells: list[str], phase: str, kill: bool = False) -> list:
    """Run `cells` in `kernel`, then kill it (a disconnect) or close it; every cell must succeed."""
    try:
        outputs = [kernel.run(code) for code in cells]
    finally:
        kernel.kill() if kill else kernel.close()
    for code, out in zip(cells, outputs):
        assert out.error is None, f"{phase}: cell failed:\n{code}\n{out.error}"
    return outputs


def _r2(text: str) -> str:
    return re.search(r"R\^2 = ([0-9.]+)", text).group(1)


def test_quickstart_restores_from_drive_after_a_disconnect(tmp_path):
    drive = tmp_path / "drive" / "MyDrive"
    drive.mkdir(parents=True)
    env = {"COLAB_ELASTIC_DRIVE_ROOT": str(drive), "COLAB_ELASTIC_SESSION": "quickstart"}
    trained, resumed = _run_across_a_disconnect(tmp_path, "01_quickstart_drive.ipynb", [], env)
    assert (drive / "colab_elastic" / "quickstart" / "LATEST").exists()
    assert "all variables restored and verified" in resumed
    assert _r2(trained) == _r2(resumed)


@pytest.mark.gcs
def test_gcs_demo_restores_on_another_runtime(tmp_path, gcs_url):
    parameters = f"URL = {gcs_url.url!r}\nOPTIONS = {gcs_url.storage_options!r}"
    trained, resumed = _run_across_a_disconnect(tmp_path, "02_gcs.ipynb", [parameters, parameters], {})
    assert "all variables restored and verified" in resumed
    assert _r2(trained) == _r2(resumed)


def test_share_demo_restores_a_collaborators_checkpoint_over_https(tmp_path, http_server):
    base_url, served = http_server
    author = f"SHARE_TO = {str(served / 'shared' / 'taxi')!r}"
    collaborator = f"SHARED_URL = {base_url + '/shared/taxi'!r}"
    # The author and the collaborator are different people: different author ids.
    trained, resumed = _run_across_a_disconnect(
        tmp_path, "03_share.ipynb", [author, collaborator], {}, env_after={"COLAB_ELASTIC_AUTHOR": "collaborator"}
    )
    assert "all variables restored and verified" in resumed
    assert _r2(trained) == _r2(resumed)
    assert str(tmp_path / ".colab_elastic") in resumed  # their own location, not the shared URL
