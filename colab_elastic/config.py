"""Settings, with defaults overridable by `COLAB_ELASTIC_<SETTING>` environment variables."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from . import colab

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"COLAB_ELASTIC_{name}", default)


def _mbps(name: str) -> float | None:
    """A speed set in the environment in MB/s, as bytes/s; None when not set."""
    value = _env(name, "")
    return float(value) * 1e6 if value else None


def session_name_from_environment() -> str:
    """A stable name for this notebook: the user's choice; else the notebook's name (Colab's, or
    Jupyter's session path) and, when Colab tells its file id, the key of that id (names repeat:
    every new notebook is Untitled0.ipynb; ids do not); else 'default'."""
    explicit = _env("SESSION", "")
    if explicit:
        return safe_name(explicit)
    identity = colab.notebook_identity()
    stem = _stem(identity.name) or _stem(_jupyter_session_file())
    if identity.file_id:
        return f"{stem or 'notebook'}-{notebook_key(identity.file_id)}"
    return stem or "default"


def notebook_key_from_environment() -> str | None:
    """The key of this notebook's file id, if Colab tells it (see `notebook_key`)."""
    file_id = colab.notebook_identity().file_id
    return notebook_key(file_id) if file_id else None


_DRIVE_ID = re.compile(r"[A-Za-z0-9_-]{12,}")


def notebook_key(file_id: str) -> str:
    """Twelve characters that tell notebooks apart: the start of a Drive file id (random
    characters, path-safe), or a hash of any other id (Colab also opens notebooks from GitHub)."""
    if _DRIVE_ID.fullmatch(file_id):
        return file_id[:12]
    return hashlib.sha256(file_id.encode()).hexdigest()[:12]


def _jupyter_session_file() -> str | None:
    """The notebook file Jupyter named this kernel's session after (not Colab's `fileId=...`)."""
    jupyter = os.environ.get("JPY_SESSION_NAME", "")
    if not jupyter or colab.file_id_from_path(jupyter):
        return None
    return os.path.basename(jupyter.rstrip("/"))


def _stem(name: str | None) -> str | None:
    """A notebook's file name as a session name: without `.ipynb`, path-safe; None if empty."""
    if not name:
        return None
    return _clean(name[: -len(".ipynb")] if name.endswith(".ipynb") else name) or None


def safe_name(text: str) -> str:
    """A name usable as one path segment on every backend."""
    return _clean(text) or "default"


def _clean(text: str) -> str:
    return _SAFE.sub("-", text).strip("-.")


def default_url(session: str, cwd: str | None = None, key: str | None = None) -> str:
    """Where checkpoints go when no URL is given.

    `COLAB_ELASTIC_URL` wins; else Google Drive when it is mounted in Colab (it outlives the
    runtime); else a folder next to the notebook. `key` (the notebook's file-id key, see
    `existing_folder`) lets a renamed notebook find the folder it already has.
    """
    explicit = _env("URL", "")
    if explicit:
        return explicit
    if colab.drive_mounted():
        base = f"{colab.drive_root()}/colab_elastic"
        return f"{base}/{existing_folder(base, session, key)}"
    base = os.path.join(cwd or os.getcwd(), ".colab_elastic")
    return os.path.join(base, existing_folder(base, session, key))


def existing_folder(base: str, session: str, key: str | None) -> str:
    """The folder under `base` that holds this session's checkpoints.

    Why folders are found by key: a notebook's default session is `<name>-<key>`, readable
    in Drive, unique per notebook (the key comes from its Drive file id). A rename changes
    the name but not the id, so a session whose own folder does not exist yet takes the
    folder its key already has, and the renamed notebook restores its checkpoints. (A folder
    named by the id alone would survive renames too, but nobody could tell in Drive whose it is.)
    """
    if not key or os.path.isdir(os.path.join(base, session)):
        return session
    try:
        with os.scandir(base) as entries:
            mine = [e for e in entries if e.name.endswith(f"-{key}") and e.is_dir()]
    except OSError:  # no folder there yet: nothing to find
        return session
    if not mine:
        return session
    return max(mine, key=lambda entry: (_modified(entry), entry.name)).name


def _modified(entry: os.DirEntry) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:  # removed while we looked
        return 0.0


@dataclass
class Settings:
    """The knobs of one session."""

    session: str = field(default_factory=session_name_from_environment)
    url: str | None = None  # None: `default_url(session)` at the time of use
    # Assumed speeds in bytes/s until measured; None: by the kind of destination (see speeds.py).
    write_bandwidth: float | None = field(default_factory=lambda: _mbps("WRITE_MBPS"))
    read_bandwidth: float | None = field(default_factory=lambda: _mbps("READ_MBPS"))
    # What a second of checkpointing weighs against a second of restore (the paper's alpha):
    # checkpoints are incremental and mostly in the background; a restore is waited for.
    checkpoint_weight: float = field(default_factory=lambda: float(_env("CHECKPOINT_WEIGHT", "0.25")))
    # fsspec options for the default location, e.g. {"token": "..."}; JSON in the environment
    storage_options: dict = field(default_factory=lambda: json.loads(_env("STORAGE_OPTIONS", "{}")))
    # The key of the notebook's file id (None: unknown); see `existing_folder`.
    notebook_key: str | None = field(default_factory=notebook_key_from_environment)

    def resolved_url(self) -> str:
        return self.url or default_url(self.session, key=self._folder_key())

    def _folder_key(self) -> str | None:
        # Only a session named after this notebook (`<name>-<key>`) follows its file id: one the
        # user named (COLAB_ELASTIC_SESSION, `%elastic name`) goes exactly where its name says.
        key = self.notebook_key
        if key and self.session.endswith(f"-{key}"):
            return key
        return None
