"""Everything that touches Google Colab itself, small and guarded.

`google.colab` exists only inside Colab; nothing here imports it unless it is already
importable, and every call into it degrades to "unknown" rather than failing.

Which notebook is this? Its name is no answer: every new notebook starts as `Untitled0.ipynb`.
Colab keeps each notebook in a Drive file whose id never changes (not even on a rename), and
Colab's own Jupyter server on the runtime lists the notebook sessions with that id
(`GET http://$COLAB_JUPYTER_IP:$KMP_TARGET_PORT/api/sessions`, port 9000, each
`{"path": "fileId=<id>", "name": ..., "kernel": {"id": ...}}`); the kernel finds its own
session by its kernel id.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("colab_elastic.colab")

DRIVE_FLUSH_HINT = (
    "Google Drive uploads files in the background; to be sure this checkpoint has left the runtime, "
    "run `from google.colab import drive; drive.flush_and_unmount()`"
)


def in_colab() -> bool:
    return importlib.util.find_spec("google") is not None and importlib.util.find_spec("google.colab") is not None


def drive_root() -> str:
    """Where Colab mounts "My Drive" (`COLAB_ELASTIC_DRIVE_ROOT` overrides, for tests)."""
    return os.environ.get("COLAB_ELASTIC_DRIVE_ROOT", "/content/drive/MyDrive")


def drive_mounted() -> bool:
    return os.path.isdir(drive_root())


def on_drive(url: str) -> bool:
    """Is this location inside the mounted Drive (whose writes are pushed later by FUSE)?"""
    if "://" in url and not url.startswith("file://"):
        return False
    path = os.path.abspath(url.removeprefix("file://"))
    root = os.path.abspath(drive_root())
    return path == root or path.startswith(root + os.sep)


def on_local_disk(url: str) -> bool:
    """Is this location a folder on this machine's own disk (not a network one, not Drive)?"""
    return ("://" not in url or url.startswith("file://")) and not on_drive(url)


def notebook_name() -> str | None:
    """The open notebook's name as Colab knows it, or None outside Colab (or if Colab won't say)."""
    if not in_colab():
        return None
    if threading.current_thread() is not threading.main_thread():
        # The frontend's reply comes on the kernel's stdin channel, which the main thread reads
        # (for `input()`); a zmq socket must not be used from two threads at once.
        log.debug("not asking Colab for the notebook's name from thread %s", threading.current_thread().name)
        return None
    try:
        from google.colab import _message  # type: ignore[import-not-found]

        reply = _message.blocking_request("get_ipynb", timeout_sec=5)
    except Exception as exc:  # noqa: BLE001 - a third-party frontend call: its MessageError, its
        # import of ipykernel internals, whatever a Colab release raises must not fail %load_ext.
        log.debug("could not read the notebook name from Colab: %r", exc)
        return None
    name = _dig(reply, "ipynb", "metadata", "colab", "name")
    if not isinstance(name, str) or not name:
        log.debug("Colab's get_ipynb reply carries no notebook name: %.200r", reply)
        return None
    return name


def _dig(data: Any, *keys: str) -> Any:
    """`data[k1][k2]...`, or None where a level is not a dict (a frontend's reply is not ours to trust)."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


# The notebook's identity -----------------------------------------------------------------------
SESSIONS_TIMEOUT = 2.0  # seconds, per network operation: %load_ext waits on this at most once
_MAX_LISTING = 1 << 20  # bytes; a runtime's session listing is a few hundred
_DEFAULT_JUPYTER_PORT = "9000"


@dataclass(frozen=True)
class NotebookIdentity:
    """Which notebook this kernel runs: its name as Colab shows it, and the id of its file
    (a Drive file id; None when unknown). Names repeat (every new notebook is Untitled0.ipynb);
    file ids do not, and a rename keeps the id."""

    name: str | None
    file_id: str | None


_identity: NotebookIdentity | None = None
_identity_lock = threading.Lock()


def notebook_identity() -> NotebookIdentity:
    """This notebook's name and file id, looked up once per process (the first answer stays:
    a rename during the process changes no location)."""
    global _identity
    with _identity_lock:
        if _identity is None:
            _identity = _look_up_identity()
        return _identity


def notebook_record() -> dict[str, str | None]:
    """The notebook, as a checkpoint manifest records it: `{"name": ..., "id": ...}`."""
    identity = notebook_identity()
    return {"name": identity.name, "id": identity.file_id}


def _look_up_identity() -> NotebookIdentity:
    # Jupyter servers tell a kernel its session's path in JPY_SESSION_NAME; Colab's path is fileId=<id>.
    file_id = file_id_from_path(os.environ.get("JPY_SESSION_NAME", ""))
    if not in_colab():
        return NotebookIdentity(None, file_id)
    name = notebook_name()
    if name is None or file_id is None:
        listed = listed_identity()
        name, file_id = name or listed.name, file_id or listed.file_id
    return NotebookIdentity(name, file_id)


def file_id_from_path(path: str) -> str | None:
    """The file id in a Colab session path (`fileId=<id>`), or None for any other path."""
    path = urllib.parse.unquote(path).strip()
    if not path.startswith("fileId="):
        return None
    return path[len("fileId="):] or None


def identity_from_sessions(sessions: Any, kernel_id: str | None) -> NotebookIdentity | None:
    """This kernel's notebook in a Jupyter session listing: the session of this kernel, else
    the only session listed (Colab runs one notebook per runtime); None if that is ambiguous."""
    if not isinstance(sessions, list):
        return None
    candidates = [s for s in sessions if isinstance(s, dict)]
    mine = [s for s in candidates if kernel_id and _dig(s, "kernel", "id") == kernel_id]
    if not mine and len(candidates) == 1:
        mine = candidates
    if not mine:
        return None
    chosen = mine[0]
    path, name = chosen.get("path"), chosen.get("name")
    return NotebookIdentity(
        urllib.parse.unquote(name) if isinstance(name, str) and name else None,
        file_id_from_path(path) if isinstance(path, str) else None,
    )


def listed_identity() -> NotebookIdentity:
    """This notebook as Colab's Jupyter server lists it; unknown on any failure."""
    unknown = NotebookIdentity(None, None)
    url = _sessions_url()
    if url is None:
        return unknown
    # No proxy: an HTTP(S)_PROXY the user set must not carry a request meant for this machine's server.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    token = os.environ.get("COLAB_JUPYTER_TOKEN", "")  # empty on Colab's runtimes
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with opener.open(request, timeout=SESSIONS_TIMEOUT) as response:
            sessions = json.loads(response.read(_MAX_LISTING))
    # Refused or timed out, an HTTP error status (HTTPError is an OSError), a broken reply, not
    # JSON (ValueError), absurdly nested JSON: all mean "unknown".
    except (OSError, ValueError, RecursionError, http.client.HTTPException) as exc:
        log.debug("could not list the notebook sessions at %s: %r", url, exc)
        return unknown
    found = identity_from_sessions(sessions, _kernel_id())
    if found is None:
        log.debug("no notebook session of this kernel at %s: %.300r", url, sessions)
    return found or unknown


def _sessions_url() -> str | None:
    """Colab's Jupyter server's session listing, or None where no such server is announced."""
    host = os.environ.get("COLAB_JUPYTER_IP", "")
    if not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    # Colab's runtimes announce the port as KMP_TARGET_PORT (the target of its kernel manager proxy).
    port = os.environ.get("COLAB_JUPYTER_PORT") or os.environ.get("KMP_TARGET_PORT") or _DEFAULT_JUPYTER_PORT
    return f"http://{host}:{port}/api/sessions"


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file (a Jupyter server names it kernel-<id>.json)."""
    if "ipykernel" not in sys.modules:
        return None  # not a kernel: no id
    try:
        from ipykernel.connect import get_connection_file

        connection_file = get_connection_file()
    except (ImportError, RuntimeError, OSError) as exc:
        log.debug("no kernel connection file: %r", exc)
        return None
    found = re.fullmatch(r"kernel-(.+)\.json", os.path.basename(connection_file))
    return found.group(1) if found else None


def cell_id(shell: Any) -> str | None:
    """The id of the cell being run, from the request's metadata (Colab sends it there)."""
    kernel = getattr(shell, "kernel", None)
    parent = None
    if kernel is not None and hasattr(kernel, "get_parent"):
        try:
            parent = kernel.get_parent()
        except TypeError:  # ipykernel 6.17 needs a channel argument
            parent = kernel.get_parent("shell")
    parent = parent or getattr(shell, "parent_header", None) or {}
    metadata = parent.get("metadata") or {}
    found = metadata.get("cellId") or (metadata.get("colab") or {}).get("cell_id")
    return str(found) if found else None


def ephemeral_location_warning(url: str) -> str | None:
    """In Colab, a local folder dies with the runtime: say so, and where to go instead."""
    if not in_colab() or "://" in url or on_drive(url):
        return None
    return ("this folder is on the runtime's own disk and is lost when the runtime is deleted; "
            "mount Google Drive (`from google.colab import drive; drive.mount('/content/drive')`, "
            "later checkpoints then go there) or set COLAB_ELASTIC_URL to a gs:// bucket")
