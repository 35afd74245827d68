"""A clean guest in Colab: installing colab_elastic into Colab's package set adds and changes
nothing but colab_elastic, and the command line works in a venv with no Jupyter at all.

Both venvs are built (once, and again when pyproject.toml or .ci/colab-freeze.txt change) by
.ci/run: `.venvs/colab-freeze` holds a pinned subset of Colab's published freeze on Python 3.13,
without jedi as in Colab; `.venvs/plain` holds only colab_elastic's own requirements. pip
resolves against PyPI (a dry run: nothing is installed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FREEZE = ROOT / ".venvs" / "colab-freeze" / "bin" / "python"
PLAIN = ROOT / ".venvs" / "plain" / "bin" / "python"
QUIET_PIP = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _venv(python: Path) -> Path:
    if not python.exists():
        pytest.skip(f"{python.parents[1]} is built by .ci/run")
    # What these tests check does not depend on the stack running pytest: once per suite, on
    # the stack with the venv's Python (the colab one).
    stamp = python.parents[1] / "stamp"
    here = ".".join(map(str, sys.version_info[:3]))
    if stamp.exists() and stamp.read_text().split()[0] != here:
        pytest.skip(f"runs on the stack of {python.parents[1]}'s Python (this is {here})")
    return python


def _dry_run(python: Path, requirement: str) -> subprocess.Popen:
    return subprocess.Popen([str(python), "-m", "pip", "install", "--quiet", "--no-build-isolation", "--dry-run",
                             "--report", "-", requirement],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **QUIET_PIP})


def test_installing_into_colabs_package_set_adds_and_changes_nothing_else():
    python = _venv(FREEZE)
    assert subprocess.run([str(python), "-c", "import jedi"], capture_output=True).returncode != 0, \
        "the Colab venv must not hold jedi (Colab leaves it out)"
    # `%pip install colab-elastic`, and with the extras the README names for gs:// and https://.
    runs = {req: _dry_run(python, req) for req in (str(ROOT), f"{ROOT}[gcs,http]")}
    for requirement, run in runs.items():
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        installed = {(item["metadata"]["name"], item["metadata"]["version"]) for item in json.loads(out)["install"]}
        # An upgrade or a downgrade of a package Colab ships would be listed here too.
        assert {name for name, _ in installed} == {"colab-elastic"}, f"pip install {requirement} into Colab's set: {installed}"


def test_the_command_line_works_without_jupyter(tmp_path):
    python = _venv(PLAIN)
    from colab_elastic.checkpoint import Inputs, take_checkpoint
    from colab_elastic.history import HistoryGraph
    from colab_elastic.planner import Bandwidth
    from colab_elastic.recorder import Recorder
    from colab_elastic.store import Store

    namespace = {"numbers": list(range(1000))}
    graph = HistoryGraph()
    store = Store(str(tmp_path / "ckpt"))
    take_checkpoint(Inputs(Recorder(namespace, graph), graph, Bandwidth(), store.url, "s", {}, {}), store)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    assert run("-c", "import IPython").returncode != 0, "the plain venv must not hold IPython"
    for command, says in (("inspect", "numbers"), ("verify", "all blobs verified"), ("log", "1 checkpoint at")):
        done = run("-m", "colab_elastic.cli", command, str(tmp_path / "ckpt"))
        assert done.returncode == 0 and says in done.stdout and not done.stderr, done
    demo = run("-m", "colab_elastic.cli", "demo")
    assert demo.returncode == 2 and demo.stderr.strip().splitlines() == [
        "colab-elastic: the demo needs jupyter_client, ipykernel, numpy, which are not installed: "
        "pip install 'colab-elastic[demo]'"], demo.stderr
    api = run("-c", "import colab_elastic; colab_elastic.checkpoint()")
    assert api.stderr.strip().splitlines()[-1] == (
        "colab_elastic.errors.NotInIPythonError: colab_elastic needs an IPython or Jupyter session "
        "(IPython is not installed here)"), api.stderr


def test_the_extension_runs_on_colabs_pinned_versions(tmp_path):
    """Checkpoint, disconnect, restore, in kernels of the Colab venv (its fsspec, tqdm,
    xxhash, traitlets, jupyter_client and ipywidgets, not the newest ones the colab stack has)."""
    python = _venv(FREEZE)
    script = f"""
from colab_elastic.kernel import Kernel
url = {str(tmp_path / "ckpt")!r}
env = {{"COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_PROGRESS": "auto"}}
first = Kernel(cwd={str(tmp_path)!r}, env=env)
try:
    for code in ["%load_ext colab_elastic", "squares = {{i: i * i for i in range(1000)}}", "%elastic checkpoint " + url]:
        first.run(code).raise_for_error()
finally:
    first.kill()
with Kernel(cwd={str(tmp_path)!r}, env=env) as second:
    second.run("%load_ext colab_elastic").raise_for_error()
    restored = second.run("%elastic restore " + url)
    restored.raise_for_error()
    print(restored.text)
    print(second.run("print(squares[999])").stdout)
"""
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all variables restored and verified" in run.stdout and "998001" in run.stdout, run.stdout
