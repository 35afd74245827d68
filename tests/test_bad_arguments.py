"""A bad argument anywhere is one clear line, never a traceback: every `colab-elastic` subcommand
(run as a separate process, as a user runs it) and every `%elastic` magic (in a real kernel)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from colab_elastic.demo import DemoError, prepare_folder
from colab_elastic.kernel import Kernel

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Forbidden(BaseHTTPRequestHandler):
    """A GCS endpoint that refuses everything (403): gcsfs logs such a failure with a traceback."""

    def _refuse(self) -> None:
        body = json.dumps({"error": {"code": 403, "message": "Forbidden: no access to this bucket"}}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def forbidding_gcs():
    """The endpoint URL of a loopback GCS server answering 403 to every request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _lines(text: str) -> list[str]:
    return [line for line in ANSI.sub("", text).splitlines() if line.strip()]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("not a checkpoint folder\n")
    return tmp_path


CLI_CASES = [
    (["inspect", "missing-folder"], "no checkpoint at missing-folder"),
    (["verify", "afile"], "afile"),
    (["log", "nosuch://x"], "Protocol not known: nosuch"),
    (["inspect", "gs://bkt/x"], "permission denied"),
    (["export", "missing-folder", "out.zip"], "no checkpoint at missing-folder"),
    (["gc", ".", "--keep", "0"], "--keep: must be at least 1"),
    (["gc", ".", "--grace", "-5"], "--grace: must be at least 0"),
    (["demo", "--dir", "missing/deeper"], "its parent folder"),
    (["demo", "--dir", "afile"], "is a file, not a folder"),
    (["bogus"], "invalid choice: 'bogus'"),
]


@pytest.mark.parametrize("argv, says", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_bad_argument_is_one_line(workdir, forbidding_gcs, argv, says):
    env = {**os.environ, "STORAGE_EMULATOR_HOST": forbidding_gcs}
    run = subprocess.run([sys.executable, "-m", "colab_elastic.cli", *argv], cwd=workdir, capture_output=True,
                         text=True, timeout=120, env=env)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert "Traceback" not in out, out
    # argparse's own errors come under its usage line, as every command line tool's do.
    lines = [line for line in _lines(out) if not line.startswith("usage:") and not line.startswith(" ")]
    assert len(lines) == 1 and says in lines[0], out


def test_demo_creates_a_missing_folder_whose_parent_exists(tmp_path):
    assert prepare_folder(str(tmp_path / "new")) == str(tmp_path / "new")
    assert (tmp_path / "new").is_dir()
    (tmp_path / "new" / "checkpoint").mkdir()
    with pytest.raises(DemoError, match="already holds a demo's checkpoint"):
        prepare_folder(str(tmp_path / "new"))


MAGIC_CASES = [
    ("%elastic bogus", "invalid choice: 'bogus'"),
    ("%elastic checkpoint --bogus", "unrecognized arguments: --bogus"),
    ("%elastic checkpoint nosuch://x", "Protocol not known: nosuch"),
    ("%elastic checkpoint afile", "it is a file, not a folder"),
    ("%elastic restore missing-folder", "no checkpoint at missing-folder"),
    ("%elastic restore afile", "afile"),
    ("%elastic restore --at zzz", "no checkpoint 'zzz'"),
    ("%elastic restore --at", "--at: expected one argument"),
    ("%elastic restore gs://bkt/x -o token=anon -o endpoint_url={gcs}", "permission denied"),
    ("%elastic checkpoint -o token=anon -o endpoint_url={gcs} gs://bkt/x", "permission denied"),
    ("%elastic restore http://127.0.0.1:9/x", "could not reach the server"),
    ("%elastic plan -o", "expected one argument"),
    ("%elastic log -o novalue", "--option expects key=value"),
    ("%elastic auto on --interval abc", "invalid float value: 'abc'"),
    ("%elastic auto on --interval -5", "never negative"),
    ("%elastic auto maybe", "takes on or off"),
    ("%elastic status extra", "takes no argument"),
    ("%elastic name", "needs a NAME"),
    ("%elastic export", "needs a FILE"),
]


@pytest.fixture(scope="module")
def magic_kernel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("magics")
    (folder / "afile").write_text("not a checkpoint folder\n")
    kernel = Kernel(cwd=str(folder), env={"COLAB_ELASTIC_URL": str(folder / "default"), "COLAB_ELASTIC_AUTO": "off"})
    try:
        kernel.run("%load_ext colab_elastic").raise_for_error()
        kernel.run("x = 1").raise_for_error()
        yield kernel
    finally:
        kernel.close()


@pytest.mark.kernel
@pytest.mark.parametrize("line, says", MAGIC_CASES, ids=[line for line, _ in MAGIC_CASES])
def test_magic_bad_argument_is_one_line(magic_kernel, forbidding_gcs, line, says):
    out = magic_kernel.run(line.format(gcs=forbidding_gcs))
    shown = "\n".join([out.stdout, out.stderr, *(out.error[2] if out.error else [])])
    assert out.status == "error", shown
    assert "Traceback" not in shown, shown
    lines = _lines(shown)
    assert len(lines) == 1 and says in lines[0], shown


API_CASES = ["colab_elastic.checkpoint(123)", "colab_elastic.restore(['x'])", "colab_elastic.plan(3.5)",
             "colab_elastic.export(None)"]


@pytest.mark.kernel
@pytest.mark.parametrize("call", API_CASES)
def test_python_api_wrong_type_is_our_error(magic_kernel, call):
    out = magic_kernel.run(f"import colab_elastic\n{call}")
    assert out.error is not None and out.error[0] == "ElasticError", out.error
    assert "must be text or a path, not" in out.error[1] and "\n" not in out.error[1]
