"""The checkpoint manifest: one typed, versioned record of everything a restore reads.

    Manifest (format 3; formats 1 and 2 are read too)
    ├── checkpoint, created, session, colab_elastic, covers_cell
    ├── author        Author {id, name}
    ├── environment   Environment {python, platform, packages, imported}
    ├── graph         HistoryGraph: every cell's code and the variable versions it read and wrote
    ├── plan          Plan: per group store / recompute / lost, and the cells a restore reruns
    ├── groups        [GroupEntry {decision (= plan.groups[i]), fingerprints, blob?: BlobRef}]
    ├── files?        Files {entries: [FileEntry {path, rel, size, mtime_ns, cells, blob}], log}
    ├── lineage?, parent?, notebook?: Notebook {name, id}
    └── signature?    Signature {key, mac}: over `canonical_bytes()`, the manifest without it

`Manifest.from_json` checks every field before anything reads it: its type, the cell numbers
it refers to, and that every name which becomes a path (blob keys, file names, checkpoint ids)
has the shape our writer gives it, so none leads out of the checkpoint folder. Whatever is
wrong is one CorruptCheckpointError naming the field. A manifest of a newer format is refused
with the upgrade to make. Pure data: no IPython, no fsspec.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import CorruptCheckpointError, describe
from .history import CellExecution, HistoryGraph
from .json_checks import (JsonObject, absolute_path_problem, boolean, count, fail, integer, kind, listed, mapping,
                          nanoseconds, number_key, opt_str, path_check, relative_path_problem, seconds, shaped, shown,
                          size, string, version_ref)
from .planner import GroupDecision, Plan
from .pointer import CHECKPOINT_ID

# 3: each cell's `imports` and the plan's `import_seconds` (what a restore spends importing),
# optional: a format-2 manifest, without them, is read as it is.
FORMAT = 3
OLDEST_FORMAT = 1  # format 1: the same shapes; fields added later may be missing, unknown ones are ignored

# The shapes our writer gives names (see checkpoint._serialize and files.carry): `g-` a group's
# content key, `u-` a group whose content is not fully known, `f-` a file; `.writer` keeps two
# kernels from writing one name. One path component each, never `..`, `/` or `\`.
BLOB_KEY = re.compile(r"[guf]-[0-9a-f]{32}(\.[0-9a-z]{1,32})?")
CONTENT_KEY = re.compile(r"[gf]-[0-9a-f]{32}")
DIGEST = re.compile(r"xxh3_128:[0-9a-f]{32}")
LINEAGE = re.compile(r"[0-9A-Za-z_-]{1,64}")
ACTIONS = frozenset({"store", "recompute", "lost"})


def upgrade_message(found: int) -> str:
    return (f"written by a newer colab_elastic (format {found}); this one reads formats up to {FORMAT}; "
            "upgrade: pip install -U colab-elastic")


# The parts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Author:
    """Who wrote the checkpoint: a stable id and a name to show (user@host)."""

    id: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    @classmethod
    def from_json(cls, value: Any, where: str = "author", strict: bool = True) -> Author:
        o = JsonObject(value, where, "id name", strict, lenient="id name")
        return cls(o.get("id", string, ""), o.get("name", string, ""))


@dataclass(frozen=True)
class BlobRef:
    """A blob a checkpoint needs: its name under `blobs/`, digest, size, and content key (None
    for a group whose content was not fully known: such a blob is never reused)."""

    key: str
    digest: str
    size: int
    content: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "digest": self.digest, "size": self.size, "content": self.content}

    @classmethod
    def from_json(cls, value: Any, where: str, strict: bool = True) -> BlobRef:
        o = JsonObject(value, where, "key digest size content", strict, lenient="content")
        content = o.get("content", lambda v, w: None if v is None else shaped(CONTENT_KEY, "a content key")(v, w))
        return cls(o.get("key", shaped(BLOB_KEY, "a blob name")), o.get("digest", shaped(DIGEST, "a digest")),
                   o.get("size", size), content)


@dataclass(frozen=True)
class Recorded:
    """A value's content fingerprint at checkpoint time, what a restore verifies against;
    `reloaded`: its fingerprint after a pickle round trip, when that differs."""

    content: str
    complete: bool
    reloaded: str | None = None
    # False for a value a draw changes (a matplotlib figure): restored, but not compared.
    comparable: bool = True

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"content": self.content, "complete": self.complete}
        if not self.comparable:
            entry["comparable"] = False
        if self.reloaded is not None:
            entry["reloaded"] = self.reloaded
        return entry

    @classmethod
    def from_json(cls, value: Any, where: str, strict: bool = True) -> Recorded:
        o = JsonObject(value, where, "content complete reloaded? comparable?", strict)
        return cls(o.get("content", string), o.get("complete", boolean), o.get("reloaded", opt_str),
                   o.get("comparable", boolean, True))


@dataclass(frozen=True)
class GroupEntry:
    """One co-variable group: the plan's decision for it, its values' fingerprints, its blob if stored."""

    decision: GroupDecision
    fingerprints: dict[str, Recorded]
    blob: BlobRef | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"decision": self.decision.to_json(),
                                 "fingerprints": {n: r.to_json() for n, r in self.fingerprints.items()}}
        if self.blob is not None:
            entry["blob"] = self.blob.to_json()
        return entry

    @classmethod
    def from_json(cls, value: Any, where: str, strict: bool = True) -> GroupEntry:
        o = JsonObject(value, where, "decision fingerprints blob?", strict)
        return cls(o.get("decision", lambda v, w: _decision(v, w, strict)),
                   o.get("fingerprints", lambda v, w: mapping(v, w, lambda r, x: Recorded.from_json(r, x, strict))),
                   o.get("blob", lambda v, w: BlobRef.from_json(v, w, strict)))


@dataclass(frozen=True)
class FileEntry:
    """A file rerun cells read, carried in a blob: put back at `rel` under the working folder
    when it was under the old one, else at its old absolute `path`."""

    path: str
    rel: str | None
    size: int
    mtime_ns: int
    cells: tuple[int, ...]
    blob: BlobRef

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "rel": self.rel, "size": self.size, "mtime_ns": self.mtime_ns,
                "cells": list(self.cells), "blob": self.blob.to_json()}

    @classmethod
    def from_json(cls, value: Any, where: str, strict: bool = True) -> FileEntry:
        o = JsonObject(value, where, "path rel size mtime_ns cells blob", strict, lenient="rel mtime_ns cells")
        rel = o.get("rel", lambda v, w: None if v is None else path_check(relative_path_problem)(v, w))
        return cls(o.get("path", path_check(absolute_path_problem)), rel, o.get("size", size),
                   o.get("mtime_ns", nanoseconds, 0), tuple(o.get("cells", lambda v, w: listed(v, w, count), [])),
                   o.get("blob", lambda v, w: BlobRef.from_json(v, w, strict)))


@dataclass(frozen=True)
class Files:
    """The files the reruns need, and the session's file record (`FileLog.to_json`: what each
    cell read, wrote and installed) for the session that goes on from this checkpoint."""

    entries: tuple[FileEntry, ...] = ()
    log: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"entries": [e.to_json() for e in self.entries], "log": self.log}

    @classmethod
    def from_json(cls, value: Any, where: str = "files", strict: bool = True) -> Files:
        o = JsonObject(value, where, "entries log", strict, lenient="log")
        entries = o.get("entries", lambda v, w: listed(v, w, lambda e, x: FileEntry.from_json(e, x, strict)))
        return cls(tuple(entries), o.get("log", lambda v, w: _file_log(v, w, strict), {}))


def _file_log(value: Any, where: str, strict: bool) -> dict[str, Any]:
    o = JsonObject(value, where, "cwd started_ns cells", strict, lenient="cwd started_ns cells")
    o.get("cwd", string)
    o.get("started_ns", nanoseconds)

    def cell(v: Any, w: str) -> Any:
        c = JsonObject(v, w, "reads writes installs shell", strict, lenient="reads writes installs shell")
        c.get("reads", lambda r, x: listed(r, x, _file_read))
        c.get("writes", lambda r, x: listed(r, x, string))
        c.get("installs", lambda r, x: listed(r, x, string))
        c.get("shell", boolean)
        return v

    o.get("cells", lambda v, w: mapping(v, w, cell, key=number_key))
    return value


def _file_read(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != 3:
        raise fail(where, "expected [path, size, mtime_ns]")
    return [string(value[0], f"{where}[0]"), size(value[1], f"{where}[1]"), nanoseconds(value[2], f"{where}[2]")]


@dataclass(frozen=True)
class Environment:
    """The runtime a checkpoint was taken on: Python, platform, reported package versions, and
    every third-party package the session imported (name -> {"version", "dir"})."""

    python: str = ""
    platform: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    imported: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"python": self.python, "platform": self.platform, "packages": self.packages, "imported": self.imported}

    @classmethod
    def from_json(cls, value: Any, where: str = "environment", strict: bool = True) -> Environment:
        o = JsonObject(value, where, "python platform packages imported", strict, lenient="python platform packages imported")

        def package(v: Any, w: str) -> dict[str, str | None]:
            p = JsonObject(v, w, "version dir", strict, lenient="version dir")
            p.get("version", opt_str)
            p.get("dir", string)
            return v

        return cls(o.get("python", string, ""), o.get("platform", string, ""),
                   o.get("packages", lambda v, w: mapping(v, w, string), {}),
                   o.get("imported", lambda v, w: mapping(v, w, package), {}))


@dataclass(frozen=True)
class Notebook:
    """The notebook that wrote the checkpoint, as far as it is known (see colab.notebook_record)."""

    name: str | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id}

    @classmethod
    def from_json(cls, value: Any, where: str = "notebook", strict: bool = True) -> Notebook:
        o = JsonObject(value, where, "name? id?", strict)
        return cls(o.get("name", opt_str), o.get("id", opt_str))


@dataclass(frozen=True)
class Signature:
    """A MAC over `Manifest.canonical_bytes()` with the key named `key` (see sharing)."""

    key: str
    mac: str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "mac": self.mac}

    @classmethod
    def from_json(cls, value: Any, where: str = "signature", strict: bool = True) -> Signature:
        o = JsonObject(value, where, "key mac", True)
        return cls(o.get("key", string), o.get("mac", string))


def _decision(value: Any, where: str, strict: bool) -> GroupDecision:
    o = JsonObject(value, where, "names size action reason load_after cells store_seconds already_stored", strict,
                lenient="cells store_seconds already_stored")
    action = o.get("action", string)
    if action not in ACTIONS:
        raise fail(f"{where}.action", f"{shown(action)} is not one of {', '.join(sorted(ACTIONS))}")
    return GroupDecision(tuple(o.get("names", lambda v, w: listed(v, w, string))), o.get("size", size), action,
                         o.get("reason", string), o.get("load_after", count),
                         tuple(o.get("cells", lambda v, w: listed(v, w, count), [])),
                         o.get("store_seconds", seconds, 0.0), o.get("already_stored", boolean, False))


def _plan(value: Any, where: str, strict: bool) -> Plan:
    o = JsonObject(value, where, "groups reruns checkpoint_seconds restore_seconds recompute_all_seconds cell_runtimes "
                "cell_lines settings import_seconds?", strict,
                lenient="recompute_all_seconds cell_runtimes cell_lines settings")
    return Plan(tuple(o.get("groups", lambda v, w: listed(v, w, lambda g, x: _decision(g, x, strict)))),
                tuple(o.get("reruns", lambda v, w: listed(v, w, count))),
                o.get("checkpoint_seconds", seconds), o.get("restore_seconds", seconds),
                o.get("recompute_all_seconds", seconds, 0.0),
                {int(k): v for k, v in o.get("cell_runtimes", lambda v, w: mapping(v, w, seconds, number_key), {}).items()},
                {int(k): v for k, v in o.get("cell_lines", lambda v, w: mapping(v, w, string, number_key), {}).items()},
                tuple(o.get("settings", lambda v, w: listed(v, w, count), [])),
                o.get("import_seconds", seconds, 0.0))


def _execution(value: Any, where: str, strict: bool) -> CellExecution:
    o = JsonObject(value, where, "index code runtime reads writes deletes error rerunnable note cell_id rng ambient imports?",
                strict, lenient="error rerunnable note cell_id rng ambient")
    refs = lambda v, w: tuple(listed(v, w, version_ref))  # noqa: E731
    return CellExecution(o.get("index", count), o.get("code", string), o.get("runtime", seconds),
                         o.get("reads", refs), o.get("writes", refs),
                         tuple(o.get("deletes", lambda v, w: listed(v, w, string))), o.get("error", opt_str),
                         o.get("rerunnable", boolean, True), o.get("note", string, ""), o.get("cell_id", opt_str),
                         o.get("rng", opt_str), o.get("ambient", opt_str), o.get("imports", count, 0))


def _graph(value: Any, where: str, strict: bool) -> HistoryGraph:
    o = JsonObject(value, where, "executions active last_version rng", strict, lenient="last_version rng")
    executions = o.get("executions", lambda v, w: listed(v, w, lambda e, x: _execution(e, x, strict)))
    for i, execution in enumerate(executions):
        if execution.index != i:  # the writer numbers them 0, 1, 2, ...: a cell number is a position
            raise fail(f"{where}.executions[{i}].index", f"{execution.index} is out of sequence")
    if not executions:
        raise fail(f"{where}.executions", "is empty (execution 0 stands for the state before recording)")
    graph = HistoryGraph(executions=executions, active=o.get("active", lambda v, w: mapping(v, w, count)),
                         rng=o.get("rng", opt_str))
    graph._last_version = o.get("last_version", lambda v, w: mapping(v, w, count), {})
    return graph


def _created(value: Any, where: str) -> str:
    try:
        datetime.datetime.fromisoformat(string(value, where))
    except ValueError:
        raise fail(where, f"{shown(value)} is not a time stamp") from None
    return value


# The manifest ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """Everything needed to restore one checkpoint (see the module docstring for its parts).

    `graph` is the checkpoint's own: copy it before changing it."""

    checkpoint: str
    created: str
    session: str
    author: Author
    colab_elastic: str
    environment: Environment
    graph: HistoryGraph
    plan: Plan
    groups: tuple[GroupEntry, ...]
    covers_cell: int
    files: Files | None = None
    lineage: str | None = None
    parent: str | None = None
    notebook: Notebook | None = None
    signature: Signature | None = None
    format: int = FORMAT

    def blobs(self) -> list[BlobRef]:
        """Every blob it needs: its stored groups', then its files'."""
        found = [g.blob for g in self.groups if g.blob is not None]
        return found + [e.blob for e in (self.files.entries if self.files else ())]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": self.format, "checkpoint": self.checkpoint, "created": self.created, "session": self.session,
            "author": self.author.to_json(), "colab_elastic": self.colab_elastic,
            "environment": self.environment.to_json(), "graph": self.graph.to_json(), "plan": self.plan.to_json(),
            "groups": [g.to_json() for g in self.groups], "covers_cell": self.covers_cell,
        }
        optional = {"files": self.files, "lineage": self.lineage, "parent": self.parent, "notebook": self.notebook,
                    "signature": self.signature}
        for key, value in optional.items():
            if value is not None:
                data[key] = value if isinstance(value, str) else value.to_json()
        return data

    def canonical_bytes(self) -> bytes:
        """The bytes a signature covers: the manifest without `signature`, keys sorted, compact."""
        data = self.to_json()
        data.pop("signature", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_json(cls, source: bytes | str | dict[str, Any]) -> Manifest:
        """The manifest in `source` (its JSON text, or the parsed object), every field checked.

        Raises CorruptCheckpointError naming the first field that is wrong, or the format when
        a newer colab_elastic wrote it."""
        data: Any = source
        if isinstance(source, (bytes, bytearray, str)):
            try:
                data = json.loads(source)
            except (ValueError, RecursionError) as exc:
                raise CorruptCheckpointError(f"manifest is not JSON ({describe(exc)})") from None
        if not isinstance(data, dict):
            raise fail("(top)", f"expected an object, got {kind(data)}")
        if "format" not in data:
            raise fail("format", "missing")
        found = integer(data["format"], "format")
        if found > FORMAT:
            raise CorruptCheckpointError(upgrade_message(found))
        if found < OLDEST_FORMAT:
            raise fail("format", f"{found} is not a format colab_elastic ever wrote")
        strict = found >= 2
        o = JsonObject(data, "", "format checkpoint created session author colab_elastic environment graph plan groups "
                    "covers_cell files? lineage? parent? notebook? signature?", strict,
                    lenient="created session author colab_elastic environment covers_cell")
        graph = o.get("graph", lambda v, w: _graph(v, w, strict))
        plan = o.get("plan", lambda v, w: _plan(v, w, strict))
        groups = tuple(o.get("groups", lambda v, w: listed(v, w, lambda g, x: GroupEntry.from_json(g, x, strict))))
        checkpoint_id = shaped(CHECKPOINT_ID, "a checkpoint id")
        manifest = cls(
            checkpoint=o.get("checkpoint", checkpoint_id),
            created=o.get("created", _created, ""),
            session=o.get("session", string, ""),
            author=o.get("author", lambda v, w: Author.from_json(v, w, strict), Author("", "")),
            colab_elastic=o.get("colab_elastic", string, ""),
            environment=o.get("environment", lambda v, w: Environment.from_json(v, w, strict), Environment()),
            graph=graph,
            plan=plan,
            groups=groups,
            covers_cell=o.get("covers_cell", count, graph.executions[-1].index),
            files=o.get("files", lambda v, w: None if v is None else Files.from_json(v, w, strict)),
            lineage=o.get("lineage", lambda v, w: None if v is None else shaped(LINEAGE, "a lineage id")(v, w)),
            parent=o.get("parent", lambda v, w: None if v is None else checkpoint_id(v, w)),
            notebook=o.get("notebook", lambda v, w: None if v is None else Notebook.from_json(v, w, strict)),
            signature=o.get("signature", lambda v, w: None if v is None else Signature.from_json(v, w, strict)),
            format=found,
        )
        manifest._check_references()
        return manifest

    def _check_references(self) -> None:
        """Every cell number names a recorded execution; every group entry is its plan's decision."""
        cells = len(self.graph.executions)

        def cell(index: int, where: str) -> None:
            if index >= cells:
                raise fail(where, f"cell {index} was never recorded ({cells - 1} cells)")

        if len(self.groups) != len(self.plan.groups):
            raise fail("groups", f"{len(self.groups)} entries for the plan's {len(self.plan.groups)} groups")
        for i, (entry, decision) in enumerate(zip(self.groups, self.plan.groups)):
            if entry.decision != decision:
                raise fail(f"groups[{i}].decision", "differs from the plan's")
            cell(decision.load_after, f"plan.groups[{i}].load_after")
            for c in decision.cells:
                cell(c, f"plan.groups[{i}].cells")
        for label, numbers in (("reruns", self.plan.reruns), ("settings", self.plan.settings)):
            for c in numbers:
                cell(c, f"plan.{label}")
        if 0 in self.plan.reruns:
            raise fail("plan.reruns", "cell 0 (the state before recording) cannot be rerun")
        cell(self.covers_cell, "covers_cell")
        for i, entry in enumerate(self.files.entries if self.files else ()):
            for c in entry.cells:
                cell(c, f"files.entries[{i}].cells")
