"""colab_elastic: a notebook session that survives its runtime.

`%load_ext colab_elastic` records every cell; `%elastic checkpoint` stores what is slow to
recompute; `%elastic restore` brings the session back on a new runtime.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .checkpoint import CheckpointResult
from .errors import ElasticError, ElasticWarning
from .planner import Plan
from .restore import RestoreReport


def load_ipython_extension(ipython: Any) -> None:
    """Called by `%load_ext colab_elastic`: start recording this shell."""
    from .extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by `%unload_ext colab_elastic` (and `%reload_ext`): stop recording."""
    from .extension import unload

    unload(ipython)


def _current() -> Any:
    """The extension loaded in the running IPython shell (a one-line error in plain Python,
    where IPython need not even be installed: it is not one of our requirements)."""
    import importlib.util

    from .errors import NotInIPythonError

    if importlib.util.find_spec("IPython") is None:
        raise NotInIPythonError("colab_elastic needs an IPython or Jupyter session (IPython is not installed here)")
    from .extension import current

    return current()


def _location(value: Any, what: str = "url", optional: bool = True) -> str | None:
    """A location or file given as text or a path object, else a one-line ElasticError."""
    import os

    if value is None and optional:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise ElasticError(f"{what} must be text or a path, not {type(value).__name__}")


def checkpoint(url: str | None = None, **storage_options: Any) -> CheckpointResult:
    """Checkpoint the running session to `url` (default: the session's location)."""
    return _current().session.checkpoint(_location(url), storage_options)


def restore(url: str | None = None, *, trust: bool = False, strict: bool = False,
            **storage_options: Any) -> RestoreReport:
    """Restore the newest checkpoint at `url` into the running session. A checkpoint neither
    signed with your key nor at a place only you can write runs someone else's code: pass
    `trust=True` to accept it (see README, Security).
    `strict=True` raises RestoreVerificationError (its `report` is the restore) when anything
    is not back as it was."""
    return _current().session.restore(_location(url), storage_options, trust=trust, strict=strict)


def export(path: str, url: str | None = None, **storage_options: Any) -> int:
    """Write the newest checkpoint at `url` (default: this session's) into one .zip file."""
    return _current().session.export(_location(path, "path", optional=False), _location(url), storage_options)


def plan(url: str | None = None, **storage_options: Any) -> Plan:
    """What a checkpoint to `url` would store and recompute (nothing is written)."""
    return _current().session.plan(_location(url), storage_options)


__all__ = [
    "CheckpointResult",
    "ElasticError",
    "ElasticWarning",
    "Plan",
    "RestoreReport",
    "__version__",
    "checkpoint",
    "export",
    "load_ipython_extension",
    "plan",
    "restore",
    "unload_ipython_extension",
]
