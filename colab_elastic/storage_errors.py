"""Storage failures, said in one line: what went wrong, where, and that nothing was lost.

Backends fail in their own ways (OSError with an errno, aiohttp and google-auth exceptions,
gcsfs HTTP errors, ImportError for a missing package); these functions turn each into the
sentence a notebook user needs. Pure text: nothing here touches storage.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import sys
from typing import Iterator

import fsspec
from fsspec.registry import known_implementations

# I/O failures raised by backends that are not OSError, looked up only if already imported.
BACKEND_ERRORS = (
    ("aiohttp", "ClientError"),
    ("gcsfs.retry", "HttpError"),
    ("google.auth.exceptions", "GoogleAuthError"),
    ("google.api_core.exceptions", "GoogleAPIError"),
    ("requests", "RequestException"),
)
UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNRESET)
INTACT = "; the previous checkpoint is intact"
CREDENTIALS_HINT = (
    "in Colab run `from google.colab import auth; auth.authenticate_user()`, elsewhere set "
    "Application Default Credentials (`gcloud auth application-default login`) or pass --option token=..."
)


def backend_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the storage failed" for the backends loaded so far."""
    found: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    for module_name, name in BACKEND_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, name, None), type):
            found.append(getattr(module, name))
    return tuple(found)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it was raised from (aiohttp keeps the socket error aside)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "os_error", None)]


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def explain(exc: BaseException, url: str, doing: str, what: str = "", *, writing: bool = False,
            missing: str = "") -> str:
    """One line for the user: what went wrong with `url`, and, for writes, that nothing was lost."""
    where = f"{what} at {url}" if what else url
    intact = INTACT if writing else ""
    causes = list(chain(exc))
    codes = {getattr(c, "errno", None) for c in causes}
    status = {getattr(c, "code", None) for c in causes} | {getattr(c, "status", None) for c in causes}
    aiohttp = sys.modules.get("aiohttp")
    auth = sys.modules.get("google.auth.exceptions")
    disconnected = (ConnectionError,) + ((aiohttp.ClientConnectionError,) if aiohttp is not None else ())
    if codes & {errno.ENOSPC, errno.EDQUOT}:
        return f"the disk is full: cannot write {where}{INTACT}"
    if codes & set(UNREACHABLE) or any(isinstance(c, disconnected) for c in causes):
        reason = next((os.strerror(code).lower() for code in UNREACHABLE if code in codes), one_line(exc))
        return f"could not reach the server for {url} ({reason}){intact}"
    if any(isinstance(c, (TimeoutError, asyncio.TimeoutError)) for c in causes):
        return f"the server for {url} did not answer in time{intact}"
    if 401 in status or (auth is not None and any(isinstance(c, auth.GoogleAuthError) for c in causes)):
        return f"no valid credentials for {url}: {CREDENTIALS_HINT}"
    if (codes & {errno.EACCES, errno.EPERM} or 403 in status
            or any(isinstance(c, PermissionError) or str(c).startswith("Forbidden") for c in causes)):
        return f"permission denied: cannot {doing} {where}{intact}"
    if isinstance(exc, FileNotFoundError) and missing:
        return f"cannot {doing} {where}: {missing}{intact}"
    return f"cannot {doing} {where}: {one_line(exc)}{intact}"


def missing_backend(url: str, exc: ImportError) -> str:
    """'cannot open gs://...: the gcsfs package is missing; install it: pip install gcsfs'."""
    protocol = fsspec.core.split_protocol(url)[0] or "file"
    known = known_implementations.get(protocol, {})
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    package = cause.name or known.get("class", "").split(".")[0]
    if not package or package == "fsspec":
        return f"cannot open {url}: {one_line(exc)}"
    return f"cannot open {url}: the {package} package is missing; install it: pip install {package}"

_RERAISED = r"(out of retries on exception|non-retriable exception): "


class _ReraisedFailures(logging.Filter):
    """gcsfs logs a failed request ('out of retries', 'non-retriable exception') at ERROR with a
    60-line traceback and then raises that same exception, which its caller (we, or the user's
    own code) sees anyway: the record becomes DEBUG, so a kernel without logging configured no
    longer prints the traceback above our one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and re.search(_RERAISED, str(record.msg)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("gcsfs").addFilter(_ReraisedFailures())  # whether or not gcsfs is ever imported
