"""Colab-only behaviour, in a real kernel that has a stand-in for Colab's own `google.colab`.

`google.colab` exists only on Colab's runtimes; this stand-in answers the one request we make
(the notebook's name) the way Colab's frontend does, so the code around it really runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kernels import Kernel

pytestmark = pytest.mark.kernel

STAND_IN = '''
def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    assert request_type == "get_ipynb"
    return {"ipynb": {"metadata": {"colab": {"name": "Taxi fares (v2).ipynb"}}}}
'''


@pytest.fixture
def colab_runtime(tmp_path: Path) -> dict[str, str]:
    package = tmp_path / "site" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_message.py").write_text(STAND_IN)
    return {"PYTHONPATH": str(tmp_path / "site"), "COLAB_ELASTIC_DRIVE_ROOT": str(tmp_path / "drive" / "MyDrive")}


def test_in_colab_without_drive_the_load_line_warns_and_names_the_notebook(tmp_path, colab_runtime):
    kernel = Kernel(cwd=str(tmp_path), env=colab_runtime)
    try:
        out = kernel.run("%load_ext colab_elastic")
        out.raise_for_error()
        assert ".colab_elastic/Taxi-fares-v2" in out.stdout
        assert "lost when the runtime is deleted" in out.stdout and "drive.mount" in out.stdout
        # Mounting Drive afterwards moves the default location there.
        Path(colab_runtime["COLAB_ELASTIC_DRIVE_ROOT"]).mkdir(parents=True)
        status = kernel.run("%elastic status")
        assert f"{colab_runtime['COLAB_ELASTIC_DRIVE_ROOT']}/colab_elastic/Taxi-fares-v2" in status.text
    finally:
        kernel.close()


def test_in_colab_with_drive_mounted_the_load_line_does_not_warn(tmp_path, colab_runtime):
    Path(colab_runtime["COLAB_ELASTIC_DRIVE_ROOT"]).mkdir(parents=True)
    kernel = Kernel(cwd=str(tmp_path), env=colab_runtime)
    try:
        out = kernel.run("%load_ext colab_elastic")
        out.raise_for_error()
        assert "colab_elastic/Taxi-fares-v2" in out.stdout and "lost when" not in out.stdout
    finally:
        kernel.close()
