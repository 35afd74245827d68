"""Colab-only behaviour, in a real kernel that has a stand-in for Colab's own `google.colab`.

`google.colab` exists only on Colab's runtimes; this stand-in answers the one request we make
(the notebook's name) the way Colab's frontend does, so the code around it really runs. Colab's
own Jupyter server, which lists the notebook sessions of the runtime (`/api/sessions`, each with
`"path": "fileId=<Drive file id>"`), is played by a small HTTP server on loopback; the kernels
are started the way that server starts them, with a connection file named `kernel-<id>.json`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from jupyter_client.manager import KernelManager

from colab_elastic.kernel import LOOPBACK_ENV
from tests.kernels import Kernel

pytestmark = pytest.mark.kernel

ERRORS = '''
class Error(Exception):
    """Base class for all Colab errors."""
'''

# What the frontend answers is chosen per kernel through the environment: the notebook's name,
# or one of the ways Colab's `blocking_request` fails (it raises `MessageError` when the frontend
# answers with an error, and returns None when it does not answer in time).
STAND_IN = '''
import os

from google.colab import errors


class MessageError(errors.Error):
    """Thrown on error response from frontend."""


def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    assert request_type == "get_ipynb"
    answer = os.environ.get("STAND_IN_FRONTEND", "name")
    if answer == "error":
        raise MessageError({"message": "the frontend could not read the notebook"})
    if answer == "silent":
        return None
    if answer == "odd":
        return {"ipynb": ["not", "a", "notebook"]}
    name = os.environ.get("STAND_IN_NOTEBOOK", "Taxi fares (v2).ipynb")
    return {"ipynb": {"metadata": {"colab": {"name": name}}}}
'''

# Two Drive file ids, as Drive makes them (33 characters from [A-Za-z0-9_-]).
FILE_A = "1Qx7Lr0aZbVtq3Kc9nWm2PfYdE5sHgJuO"
FILE_B = "1Zp4Nc8vRt2Lm6Xq0Ws9Bd3Ky7Fh5GjTa"


@pytest.fixture
def colab_runtime(tmp_path: Path) -> dict[str, str]:
    package = tmp_path / "site" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text(ERRORS)
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


# Colab's Jupyter server, on loopback ---------------------------------------------------------
class SessionsServer(ThreadingHTTPServer):
    """Answers `GET /api/sessions` as `mode` says: "ok" (the `sessions` list), "500", "garbage"
    (not JSON), "shape" (JSON, but not a list of sessions) or "hang" (never answers)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SessionsHandler)
        self.sessions: list[dict[str, Any]] = []
        self.mode = "ok"
        self.hits = 0
        self.released = threading.Event()  # ends a "hang"

    @property
    def port(self) -> int:
        return self.server_address[1]

    def listing(self, kernel_id: str, file_id: str, name: str = "Untitled0.ipynb") -> None:
        """A notebook session, the way Jupyter lists one."""
        self.sessions.append({
            "id": str(uuid.uuid4()), "path": f"fileId={file_id}", "name": name, "type": "notebook",
            "kernel": {"id": kernel_id, "name": "python3", "execution_state": "idle", "connections": 1},
            "notebook": {"path": f"fileId={file_id}", "name": name},
        })


class SessionsHandler(BaseHTTPRequestHandler):
    server: SessionsServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        server = self.server
        server.hits += 1
        if self.path != "/api/sessions":
            self.send_error(404)
        elif server.mode == "500":
            self.send_error(500)
        elif server.mode == "hang":
            server.released.wait(30)
        else:
            body = {"garbage": b"<html>Jupyter is restarting</html>",
                    "shape": json.dumps({"sessions": "none"}).encode()}.get(server.mode)
            self._reply(body if body is not None else json.dumps(server.sessions).encode())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, as the tests read stdout
        pass


@pytest.fixture
def jupyter_server() -> Iterator[SessionsServer]:
    server = SessionsServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


class ServerKernel(Kernel):
    """A kernel started as a Jupyter server starts one: its connection file is
    `kernel-<id>.json` in the runtime folder, which is how a kernel knows its own id."""

    def __init__(self, cwd: Path, env: dict[str, str], kernel_id: str, log: str | None = None) -> None:
        runtime = cwd / "runtime"
        runtime.mkdir(exist_ok=True)
        self.kernel_id = kernel_id
        self._log = open(log or os.devnull, "ab")
        self.manager = KernelManager(kernel_name="python3", connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        self.manager.start_kernel(cwd=str(cwd), env={**os.environ, **LOOPBACK_ENV, **env},
                                  stdout=self._log, stderr=self._log)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)


def _env(colab_runtime: dict[str, str], server: SessionsServer, **more: str) -> dict[str, str]:
    return {**colab_runtime, "COLAB_JUPYTER_IP": "127.0.0.1", "KMP_TARGET_PORT": str(server.port), **more}


def _loaded(kernel: Kernel) -> str:
    out = kernel.run("%load_ext colab_elastic")
    out.raise_for_error()
    return out.stdout


RECORD = "import json; from colab_elastic import colab; print(json.dumps(colab.notebook_record()))"


def test_two_untitled_notebooks_get_two_locations_and_a_rename_keeps_its_own(tmp_path, colab_runtime, jupyter_server):
    """Every new notebook is Untitled0.ipynb: the Drive file id, not the name, tells them apart;
    renamed, a notebook keeps its id and so its checkpoints."""
    drive = Path(colab_runtime["COLAB_ELASTIC_DRIVE_ROOT"])
    drive.mkdir(parents=True)
    first, second, renamed = (str(uuid.uuid4()) for _ in range(3))
    # One runtime's server lists its notebooks; each kernel must find its own among them.
    jupyter_server.listing(first, FILE_A)
    jupyter_server.listing(second, FILE_B)
    jupyter_server.listing(renamed, FILE_A, name="Taxi fares.ipynb")
    untitled = _env(colab_runtime, jupyter_server, STAND_IN_NOTEBOOK="Untitled0.ipynb")
    location_a = f"{drive}/colab_elastic/Untitled0-{FILE_A[:12]}"
    location_b = f"{drive}/colab_elastic/Untitled0-{FILE_B[:12]}"

    kernel = ServerKernel(tmp_path, untitled, first)
    try:
        assert f"checkpoints go to {location_a}\n" in _loaded(kernel)
        kernel.run("x = 41 + 1").raise_for_error()
        kernel.run("%elastic checkpoint").raise_for_error()
        assert json.loads(kernel.run(RECORD).stdout) == {"name": "Untitled0.ipynb", "id": FILE_A}
        # Looked up once per process: a reload asks Colab's server nothing new.
        kernel.run("%reload_ext colab_elastic").raise_for_error()
        assert jupyter_server.hits == 1
        # A name the user gives still wins over the notebook's.
        assert f"checkpoints go to {drive}/colab_elastic/mine" in kernel.run("%elastic name mine").stdout
    finally:
        kernel.close()

    kernel = ServerKernel(tmp_path, untitled, second)
    try:
        assert f"checkpoints go to {location_b}\n" in _loaded(kernel)
        assert json.loads(kernel.run(RECORD).stdout) == {"name": "Untitled0.ipynb", "id": FILE_B}
    finally:
        kernel.close()

    # The first notebook, renamed, on a new runtime: same file id, same location, same session.
    kernel = ServerKernel(tmp_path, _env(colab_runtime, jupyter_server, STAND_IN_NOTEBOOK="Taxi fares.ipynb"), renamed)
    try:
        assert f"checkpoints go to {location_a}\n" in _loaded(kernel)
        kernel.run("%elastic restore").raise_for_error()
        assert kernel.run("print(x)").stdout.strip() == "42"
        assert json.loads(kernel.run(RECORD).stdout) == {"name": "Taxi fares.ipynb", "id": FILE_A}
    finally:
        kernel.close()
    assert jupyter_server.hits == 3


@pytest.mark.parametrize("frontend, server, folder", [
    ("error", "500", "default"),  # google.colab._message.MessageError
    ("silent", "garbage", "default"),  # no answer in time: blocking_request returns None
    ("odd", "shape", "default"),
    ("error", "ok", f"Untitled0-{FILE_A[:12]}"),  # the server's listing names the notebook too
])
def test_a_failing_frontend_or_sessions_server_never_stops_load_ext(tmp_path, colab_runtime, jupyter_server,
                                                                    frontend, server, folder):
    kernel_id = str(uuid.uuid4())
    jupyter_server.listing(kernel_id, FILE_A)
    jupyter_server.mode = server
    kernel = ServerKernel(tmp_path, _env(colab_runtime, jupyter_server, STAND_IN_FRONTEND=frontend), kernel_id)
    try:
        assert f"checkpoints go to {tmp_path}/.colab_elastic/{folder}\n" in _loaded(kernel)
        kernel.run("y = 1").raise_for_error()
        kernel.run("%elastic checkpoint").raise_for_error()
    finally:
        kernel.close()


def test_a_sessions_server_that_never_answers_delays_load_ext_by_two_seconds_at_most(tmp_path, colab_runtime,
                                                                                    jupyter_server):
    jupyter_server.mode = "hang"
    kernel = ServerKernel(tmp_path, _env(colab_runtime, jupyter_server), str(uuid.uuid4()))
    try:
        kernel.run("import colab_elastic").raise_for_error()  # imports are not the lookup's time
        started = time.perf_counter()
        assert f"{tmp_path}/.colab_elastic/Taxi-fares-v2\n" in _loaded(kernel)
        # 2 s of waiting, plus loading the extension on a busy machine; without a timeout, 30 s.
        assert time.perf_counter() - started < 6
        assert jupyter_server.hits == 1
    finally:
        kernel.close()


def test_without_a_matching_kernel_the_only_listed_session_is_this_notebook(tmp_path, colab_runtime, jupyter_server):
    jupyter_server.listing("a-kernel-id-colab-did-not-tell-us", FILE_B, name="Taxi fares (v2).ipynb")
    kernel = ServerKernel(tmp_path, _env(colab_runtime, jupyter_server, COLAB_JUPYTER_PORT=str(jupyter_server.port),
                                         KMP_TARGET_PORT="9"), str(uuid.uuid4()))
    try:
        assert f"{tmp_path}/.colab_elastic/Taxi-fares-v2-{FILE_B[:12]}\n" in _loaded(kernel)
    finally:
        kernel.close()


def test_a_file_id_in_jpy_session_name_needs_no_server(tmp_path, colab_runtime, jupyter_server):
    kernel = ServerKernel(tmp_path, _env(colab_runtime, jupyter_server, JPY_SESSION_NAME=f"fileId={FILE_B}"),
                          str(uuid.uuid4()))
    try:
        assert f"{tmp_path}/.colab_elastic/Taxi-fares-v2-{FILE_B[:12]}\n" in _loaded(kernel)
        assert jupyter_server.hits == 0
    finally:
        kernel.close()
