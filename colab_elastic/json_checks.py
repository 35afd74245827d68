"""Checks of JSON fields read from storage, for the manifest's schema (see manifest).

Each check takes the value and where it sits (`groups[3].blob.key`) and returns the value as
JSON gave it (an int stays an int, so a manifest read back gives the very bytes it was written
from), or raises CorruptCheckpointError naming the field, on one line. The path checks say
whether a name that becomes a file path stays where it belongs. Pure: no I/O.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable, TypeVar

from .errors import CorruptCheckpointError

T = TypeVar("T")
Check = Callable[[Any, str], T]

NUMBER_KEY = re.compile(r"0|[1-9][0-9]{0,9}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fail(where: str, problem: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(f"manifest field {where}: {problem}")


def shown(value: Any) -> str:
    text = repr(value)  # control characters escaped: the message stays one line
    return text if len(text) <= 60 else text[:57] + "..."


def field_name(where: str, key: Any) -> str:
    """`where.key`, with a key that is not plain text shown quoted (the message stays one line)."""
    name = key if isinstance(key, str) and key.isprintable() and key and "." not in key else shown(key)
    return f"{where}.{name}" if where else name


def kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise fail(where, f"expected a string, got {kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise fail(where, "holds a lone surrogate (not text)") from None
    return value


def opt_str(value: Any, where: str) -> str | None:
    return None if value is None else string(value, where)


def shaped(pattern: re.Pattern[str], what: str) -> Check[str]:
    def check(value: Any, where: str) -> str:
        if not pattern.fullmatch(string(value, where)):
            raise fail(where, f"{shown(value)} is not {what}")
        return value
    return check


def integer(value: Any, where: str) -> int:
    if type(value) is not int:  # not bool
        raise fail(where, f"expected an integer, got {kind(value)}")
    return value


def count(value: Any, where: str) -> int:
    if integer(value, where) < 0:
        raise fail(where, f"{value} is negative")
    return value


def number(value: Any, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise fail(where, f"expected a finite number, got {shown(value)}")
    return value


# Sizes, times and durations a manifest may hold: far beyond any real one, and small enough
# that the planner's sums of them stay exact finite capacities (see planner.INFINITE).
MAX_SIZE = 2**53  # bytes
MAX_SECONDS = 1e9  # ~30 years
MAX_NS = 2**63 - 1  # a file time in nanoseconds, as os.utime takes it


def size(value: Any, where: str) -> int:
    if not 0 <= integer(value, where) <= MAX_SIZE:
        raise fail(where, f"{value} is not a size in bytes")
    return value


def seconds(value: Any, where: str) -> float:
    if not 0 <= number(value, where) <= MAX_SECONDS:
        raise fail(where, f"{value} is not a duration in seconds")
    return value


def nanoseconds(value: Any, where: str) -> int:
    if not 0 <= integer(value, where) <= MAX_NS:
        raise fail(where, f"{value} is not a time in nanoseconds")
    return value


def boolean(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise fail(where, f"expected true or false, got {kind(value)}")
    return value


def listed(value: Any, where: str, item: Check[T]) -> list[T]:
    if not isinstance(value, list):
        raise fail(where, f"expected a list, got {kind(value)}")
    return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]


def mapping(value: Any, where: str, item: Check[T], key: Check[str] = string) -> dict[str, T]:
    if not isinstance(value, dict):
        raise fail(where, f"expected an object, got {kind(value)}")
    return {key(k, f"{field_name(where, k)} (a key)"): item(v, field_name(where, k)) for k, v in value.items()}


@functools.lru_cache(maxsize=None)
def _spec(fields: str, lenient: str) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]]:
    """`fields` ("a b c?": c optional) as (required, known, lenient): parsed once per shape."""
    names = fields.split()
    return (tuple(n for n in names if not n.endswith("?")), frozenset(n.rstrip("?") for n in names),
            frozenset(lenient.split()))


class JsonObject:
    """One JSON object being read: its required and optional fields, and (from format 2) no others.
    `lenient` fields may be missing from an older format."""

    def __init__(self, value: Any, where: str, fields: str, strict: bool, *, lenient: str = "") -> None:
        if not isinstance(value, dict):
            raise fail(where or "(top)", f"expected an object, got {kind(value)}")
        self.value, self.where = value, where
        required, known, relaxed = _spec(fields, lenient)
        for name in required:
            if name not in value and (strict or name not in relaxed):
                raise fail(self._at(name), "missing")
        if strict and not known.issuperset(value):
            unknown = sorted(str(k) for k in value if k not in known)
            raise fail(field_name(where, unknown[0]), "not a field of this format")

    def _at(self, name: str) -> str:
        # Our own field names: plain words, no quoting needed.
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, check: Check[T], default: Any = None) -> T:
        if name not in self.value:
            return default  # optional, or missing from an older format
        return check(self.value[name], self._at(name))


def version_ref(value: Any, where: str) -> tuple[str, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise fail(where, "expected [name, version]")
    return string(value[0], f"{where}[0]"), count(value[1], f"{where}[1]")


def number_key(value: Any, where: str) -> str:
    if not NUMBER_KEY.fullmatch(string(value, where)):
        raise fail(where, f"{shown(value)} is not a cell number")
    return value


# Names that become paths ---------------------------------------------------------------------
def relative_path_problem(rel: str) -> str:
    """Why `rel` cannot name a file under the working folder ('' when it can)."""
    if CONTROL.search(rel) or "\\" in rel:
        return "holds a control character or a backslash"
    if rel.startswith("/"):
        return "is absolute"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "has an empty, '.' or '..' part"
    return ""


def absolute_path_problem(path: str) -> str:
    """Why `path` is not a plain absolute file path ('' when it is)."""
    if not path.startswith("/"):
        return "is not absolute"
    return relative_path_problem(path[1:])


def path_check(problem: Callable[[str], str]) -> Check[str]:
    def check(value: Any, where: str) -> str:
        why = problem(string(value, where))
        if why:
            raise fail(where, f"{shown(value)} {why}")
        return value
    return check
