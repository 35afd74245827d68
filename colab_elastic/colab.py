"""Everything that touches Google Colab itself, small and guarded.

`google.colab` exists only inside Colab; nothing here imports it unless it is already
importable, and every call into it degrades to "unknown" rather than failing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
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


def notebook_name() -> str | None:
    """The open notebook's name as Colab knows it, or None outside Colab (or if Colab won't say)."""
    if not in_colab():
        return None
    try:
        from google.colab import _message  # type: ignore[import-not-found]

        reply = _message.blocking_request("get_ipynb", timeout_sec=5)
        name = reply["ipynb"]["metadata"]["colab"]["name"]
    except (ImportError, KeyError, TypeError, AttributeError, OSError) as exc:
        log.debug("could not read the notebook name from Colab: %r", exc)
        return None
    return str(name) if name else None


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
