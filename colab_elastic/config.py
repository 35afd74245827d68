"""Settings, with defaults overridable by `COLAB_ELASTIC_<SETTING>` environment variables."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from . import colab

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"COLAB_ELASTIC_{name}", default)


def session_name_from_environment() -> str:
    """A stable name for this notebook: the user's choice, the notebook's name (Colab's, or
    Jupyter's session path), or 'default'."""
    explicit = _env("SESSION", "")
    if explicit:
        return safe_name(explicit)
    in_colab = colab.notebook_name()
    if in_colab:
        return safe_name(in_colab[: -len(".ipynb")] if in_colab.endswith(".ipynb") else in_colab)
    jupyter = os.environ.get("JPY_SESSION_NAME", "")
    if jupyter:
        base = os.path.basename(jupyter.rstrip("/"))
        base = base[: -len(".ipynb")] if base.endswith(".ipynb") else base
        if base:
            return safe_name(base)
    return "default"


def safe_name(text: str) -> str:
    """A name usable as one path segment on every backend."""
    cleaned = _SAFE.sub("-", text).strip("-.")
    return cleaned or "default"


def default_url(session: str, cwd: str | None = None) -> str:
    """Where checkpoints go when no URL is given.

    `COLAB_ELASTIC_URL` wins; else Google Drive when it is mounted in Colab (it outlives the
    runtime); else a folder next to the notebook.
    """
    explicit = _env("URL", "")
    if explicit:
        return explicit
    if colab.drive_mounted():
        return f"{colab.drive_root()}/colab_elastic/{session}"
    return os.path.join(cwd or os.getcwd(), ".colab_elastic", session)


@dataclass
class Settings:
    """The knobs of one session."""

    session: str = field(default_factory=session_name_from_environment)
    url: str | None = None  # None: `default_url(session)` at the time of use
    write_bandwidth: float = field(default_factory=lambda: float(_env("WRITE_MBPS", "100")) * 1e6)
    read_bandwidth: float = field(default_factory=lambda: float(_env("READ_MBPS", "200")) * 1e6)
    # fsspec options for the default location, e.g. {"token": "..."}; JSON in the environment
    storage_options: dict = field(default_factory=lambda: json.loads(_env("STORAGE_OPTIONS", "{}")))

    def resolved_url(self) -> str:
        return self.url or default_url(self.session)
