"""Errors and warnings raised by colab_elastic.

One base class for errors, one family of warnings on stdlib categories::

    ElasticError                     a request we could not carry out (one clear line)
    ├── NotInIPythonError            the API was called outside an IPython session
    ├── StorageError                 the checkpoint location cannot be read or written
    │   ├── CheckpointNotFoundError  no complete checkpoint at that location
    │   └── CorruptCheckpointError   a manifest or blob is unreadable, truncated or altered
    ├── RestoreError                 a restore could not bring the session back
    │   └── RestoreVerificationError --strict: restored, but not verified equal to the original
    └── UntrustedCheckpointError     restoring it would run someone else's code: needs --trust

    ElasticWarning (UserWarning)     something was degraded, never lost silently
    ├── RecordingWarning             our recording of a cell failed; the user's cell did not
    ├── UnpicklableWarning           a value cannot be stored and will be recomputed
    └── RestoreWarning               a value was recomputed instead of loaded, or is missing

`describe(exc)` says any exception, ours or the user's, in one line.
"""

from __future__ import annotations


class ElasticError(Exception):
    """Base of every error colab_elastic raises on purpose."""


class NotInIPythonError(ElasticError):
    """The API needs a running IPython shell with the extension loaded."""


class StorageError(ElasticError):
    """A checkpoint location could not be read or written."""


class CheckpointNotFoundError(StorageError):
    """There is no complete checkpoint at the location."""


class CorruptCheckpointError(StorageError):
    """A manifest or blob did not match its recorded digest or could not be parsed."""


class RestoreError(ElasticError):
    """A restore could not bring the session back."""


class RestoreVerificationError(RestoreError):
    """A strict restore finished, but some names are not back as they were (they differ, their
    sharing differs, they are missing or their cell failed). `report` is the whole restore."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class UntrustedCheckpointError(ElasticError):
    """Restoring this checkpoint would run someone else's code; it needs `--trust`.
    `summary` says what it would run."""

    def __init__(self, message: str, summary: str = "") -> None:
        super().__init__(message)
        self.summary = summary


class ElasticWarning(UserWarning):
    """Base of every warning colab_elastic emits."""


class RecordingWarning(ElasticWarning):
    """Recording a cell failed; the cell ran normally and is treated conservatively."""


class UnpicklableWarning(ElasticWarning):
    """A value could not be serialized and will be recomputed instead."""


class RestoreWarning(ElasticWarning):
    """A restore degraded: a value was recomputed instead of loaded, or could not be restored."""


def describe(exc: BaseException) -> str:
    """`Type: message` on one short line, for a plan or a warning. Never raises: the user's
    exception may come with a `__str__` that does."""
    try:
        text = " ".join(str(exc).split())
    except Exception:  # noqa: BLE001 - a broken __str__ still leaves the type's name
        text = ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
