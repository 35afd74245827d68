"""Files and installs: what a new runtime will not have.

A restore reruns cells in a new runtime, which has neither the files nor the packages of the
old one. So each recorded cell notes the files it opened, the install lines it ran, and at
checkpoint time the files its rerun would need travel with the checkpoint.

How files are seen: a `sys.addaudithook` hook on `open`, `os.remove` and `os.rename` (see
`install_hook`), active only on the kernel's thread while a recorded cell runs. Audit hooks
cannot be removed: unloaded, the hook finds no active log and returns at once.

What a rerun needs: a file a cell read, unless it wrote it first itself, that a new runtime
will not have. We cannot see what `!wget` or `%%bash` writes, so instead of tracking shell
lines we judge each file read, conservatively:

- written by a recorded cell, or inside the working folder, or changed after recording
  started (its mtime): the new runtime will not have it;
- older than recording and outside the working folder (`/usr/share/...`): assumed present;
- the Python installation, site-packages, /proc, /dev, /sys, IPython's own files and our
  checkpoint folder are never recorded; the temp dir only when a recorded cell wrote there.

At checkpoint (`carry`): each needed file is stored as a content-keyed blob when at most
`FILE_LIMIT` bytes (`COLAB_ELASTIC_FILE_LIMIT_MB`, default 50) and unchanged since the cell
read it, and put back in place before any rerun (`put_back`). Otherwise the reading cell is
marked not rerunnable, so the plan stores its outputs instead, and the checkpoint says why.

Pure of IPython and fsspec: blobs go through the checkpoint's sink, and come from a `Store`.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import logging
import os
import platform
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Callable, Iterable

import xxhash

from . import credentials
from .errors import StorageError, describe
from .history import HistoryGraph
from .manifest import FileEntry, absolute_path_problem, relative_path_problem

log = logging.getLogger("colab_elastic.files")

FILE_LIMIT = int(float(os.environ.get("COLAB_ELASTIC_FILE_LIMIT_MB", "50")) * 1e6)

# `%pip install x`, `!pip3 install x`, `!python -m pip install x`, `!apt-get install -y x`,
# `%conda install x`, `!uv pip install x`: lines a new runtime must run again.
_INSTALL = re.compile(
    r"^\s*[!%]+\s*(sudo\s+)?((python3?\s+-m\s+)?pip3?|uv\s+pip|apt(-get)?|conda|mamba)\s+install\b")
_SHELL = re.compile(r"^\s*(!|%%(bash|sh|script|system)\b|%(system|sx)\b)", re.M)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass(frozen=True)
class FileRead:
    """A file as a cell found it when it opened it for reading."""

    path: str  # absolute
    size: int
    mtime_ns: int


@dataclass
class CellFiles:
    """What one execution did on disk: files read (as found), files written, install lines."""

    reads: dict[str, FileRead] = field(default_factory=dict)
    writes: set[str] = field(default_factory=set)
    installs: tuple[str, ...] = ()
    shell: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"reads": [[r.path, r.size, r.mtime_ns] for r in self.reads.values()],
                "writes": sorted(self.writes), "installs": list(self.installs), "shell": self.shell}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellFiles:
        reads = {str(p): FileRead(str(p), int(s), int(m)) for p, s, m in data.get("reads", [])}
        return cls(reads, set(data.get("writes", [])), tuple(data.get("installs", [])), bool(data.get("shell")))


def install_lines(code: str) -> tuple[str, ...]:
    """The lines of a cell that install packages, as written; never one holding a credential
    (`pip install git+https://user:TOKEN@...`): it would travel with the checkpoint."""
    return tuple(line.strip() for line in code.splitlines() if _INSTALL.match(line) and not credentials.find(line))


def _ignored_prefixes() -> tuple[str, ...]:
    import site  # here, not at import: site.getsitepackages is not free

    places = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, "/proc", "/dev", "/sys",
              os.path.expanduser("~/.ipython"), os.environ.get("IPYTHONDIR", ""), os.path.dirname(os.__file__)}
    places.update(getattr(site, "getsitepackages", lambda: [])())
    places.add(getattr(site, "USER_SITE", "") or "")
    return tuple(sorted(os.path.join(os.path.realpath(p), "") for p in places if p))


class FileLog:
    """Per execution index, what each recorded cell did on disk (see the module docstring)."""

    def __init__(self, cwd: str | None = None) -> None:
        self.cwd = os.path.join(os.path.realpath(cwd or os.getcwd()), "")
        self.started_ns = time.time_ns()
        self.cells: dict[int, CellFiles] = {}
        self.written: set[str] = set()  # every path a recorded cell wrote
        self.ignored = _ignored_prefixes()
        self.tmp = os.path.join(os.path.realpath(tempfile.gettempdir()), "")
        self.thread = threading.get_ident()
        self._current: CellFiles | None = None
        self._closed: CellFiles | None = None  # the cell's, after `close` and before `end`
        self.paused = False  # while we checkpoint or restore: our own reads are not the cell's
        self._digests: dict[tuple[str, int, int], str] = {}

    def ignore(self, path: str) -> None:
        """Never record files under `path` (our checkpoint folder)."""
        self.ignored += (os.path.join(os.path.realpath(path), ""),)

    # Recording -----------------------------------------------------------------------------
    def begin(self, code: str) -> None:
        self._current = CellFiles(installs=install_lines(code), shell=bool(_SHELL.search(code)))

    def close(self) -> None:
        """The cell's own code is done: what is opened from here on (our post-cell work, a
        module of ours imported on first use) is not the cell's."""
        self._closed, self._current = self._current, None

    def end(self, index: int | None) -> None:
        """The cell was recorded as execution `index` (None: it was not recorded)."""
        current = self._current if self._current is not None else self._closed
        self._current = self._closed = None
        if current is None or index is None:
            return
        if current.reads or current.writes or current.installs or current.shell:
            self.cells[index] = current
        self.written |= current.writes

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook's work, for `open`, `os.remove` and `os.rename` events."""
        current = self._current
        if current is None or self.paused or threading.get_ident() != self.thread:
            return  # between cells, our own work, or a background upload
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            if isinstance(mode, str):
                writes, reads = any(c in mode for c in "wax+"), "r" in mode or "+" in mode
            else:
                writes, reads = bool(flags & _WRITE_FLAGS), not flags & os.O_WRONLY
            self._note(current, path, reads, writes)
        else:  # os.remove(path, dir_fd), os.rename(src, dst, src_dir_fd, dst_dir_fd)
            for path in args[:2] if event == "os.rename" else args[:1]:
                self._note(current, path, False, True)

    def _note(self, current: CellFiles, path: Any, reads: bool, writes: bool) -> None:
        if isinstance(path, int) or path is None:
            return  # a file descriptor: opened (and recorded) already
        if isinstance(path, str) and path.startswith(self.ignored):
            return  # imports: absolute paths into the installation, skipped before realpath's syscalls
        path = os.path.realpath(os.fsdecode(path))
        if path.startswith(self.ignored) or _opened_by_us():
            return
        if reads and path not in current.writes and path not in current.reads:
            try:
                st = os.stat(path)
            except OSError:
                st = None  # opening will fail, or create it
            if st is not None:
                current.reads[path] = FileRead(path, st.st_size, st.st_mtime_ns)
        if writes:
            current.writes.add(path)

    # Planning ------------------------------------------------------------------------------
    def needs(self, index: int) -> list[FileRead]:
        """Files a rerun of execution `index` needs that a new runtime will not have."""
        cell = self.cells.get(index)
        if cell is None:
            return []
        shell_before = any(c.shell for i, c in self.cells.items() if i < index)
        found = []
        for read in cell.reads.values():
            if read.path in self.written or read.path.startswith(self.cwd):
                found.append(read)
            elif read.mtime_ns < self.started_ns:
                continue  # older than recording, outside the working folder: assumed present
            elif not read.path.startswith(self.tmp) or shell_before:
                # The temp dir holds libraries' caches: only files a cell may have written
                # (a shell line, whose writes we cannot see, ran before this cell).
                found.append(read)
        return found

    def installs(self) -> list[tuple[int, str]]:
        """Every recorded install line, in order, with its execution index."""
        return [(i, line) for i in sorted(self.cells) for line in self.cells[i].installs]

    @staticmethod
    def installs_of(record: dict[str, Any]) -> list[tuple[int, str]]:
        """The install lines in a saved record (`to_json`), in order."""
        cells = record.get("cells", {})
        return [(int(i), str(line)) for i in sorted(cells, key=int) for line in cells[i].get("installs", [])]

    def digest(self, path: str, size: int, mtime_ns: int) -> str:
        key = (path, size, mtime_ns)
        if key not in self._digests:
            h = xxhash.xxh3_128()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._digests[key] = h.hexdigest()
        return self._digests[key]

    def to_json(self) -> dict[str, Any]:
        return {"cwd": self.cwd, "started_ns": self.started_ns,
                "cells": {str(i): c.to_json() for i, c in self.cells.items()}}

    def load(self, data: dict[str, Any]) -> None:
        """Go on from a restored session's record: paths in its working folder move to ours
        (where `put_back` put its files, with their recorded mtimes)."""
        old = str(data.get("cwd") or self.cwd)

        def here(path: str) -> str:
            return self.cwd + path[len(old):] if path.startswith(old) else path

        self.cells = {}
        for i, c in data.get("cells", {}).items():
            cell = CellFiles.from_json(c)
            cell.reads = {here(p): replace(r, path=here(p)) for p, r in cell.reads.items()}
            cell.writes = {here(p) for p in cell.writes}
            self.cells[int(i)] = cell
        self.written = {p for c in self.cells.values() for p in c.writes}
        self.started_ns = min(self.started_ns, int(data.get("started_ns", self.started_ns)))


# The audit hook ----------------------------------------------------------------------------
_active: FileLog | None = None
_installed = False
_EVENTS = frozenset({"open", "os.remove", "os.rename"})


def _opened_by_us() -> bool:
    """Is the code that opened the file colab_elastic's own (a snapshot `compare` writes, say)?
    Only asked for files that passed the cheap filters: a few frames up, not on every open."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # our own hook's frames
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("colab_elastic.")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event in the process: the first test must be the cheapest.
    if event in _EVENTS and _active is not None:
        try:
            _active.audit(event, args)
        except Exception as exc:  # noqa: BLE001 - an audit hook that raises breaks the user's open()
            log.debug("file recording failed for %s: %s", event, describe(exc))


def install_hook(file_log: FileLog | None) -> None:
    """Make `file_log` the one the audit hook feeds (None: the hook does nothing). The hook
    is added once per process: audit hooks cannot be removed."""
    global _active, _installed
    if not _installed and file_log is not None:
        sys.addaudithook(_hook)
        _installed = True
    _active = file_log


# Checkpoint and restore --------------------------------------------------------------------
Fill = Callable[[Any], None]


@dataclass
class Carried:
    """What `carry` decided: the graph to plan on, the manifest's `files` entries, the blobs
    they reference (by content key), and one line per decision for the checkpoint's note."""

    graph: HistoryGraph
    record: dict[str, Any] = field(default_factory=dict)  # the FileLog, for the next session
    entries: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _copy_file(path: str) -> Fill:
    def fill(f: Any) -> None:
        with open(path, "rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                f.write(chunk)
    return fill


def carry(graph: HistoryGraph, file_log: FileLog, sink: Any, known: dict[str, Any], *, writer: str = "w",
          limit: int = FILE_LIMIT) -> Carried:
    """Store the files rerunnable cells need (through `sink`, None for a dry run); mark the
    cells whose files cannot travel (too large, changed or gone since read) not rerunnable."""
    users: dict[str, list[tuple[int, FileRead]]] = {}
    for execution in graph.executions:
        if execution.rerunnable:
            for read in file_log.needs(execution.index):
                users.setdefault(read.path, []).append((execution.index, read))
    carried = Carried(graph, file_log.to_json())
    if not users:
        return carried
    blocked: dict[int, str] = {}
    batch: list[tuple[str, str, Fill, int]] = []
    by_content: dict[str, list[dict[str, Any]]] = {}
    for path, readers in sorted(users.items()):
        name = _shown(path, file_log.cwd)
        rel = os.path.relpath(path, file_log.cwd) if path.startswith(file_log.cwd) else None
        odd = absolute_path_problem(path) or (relative_path_problem(rel) if rel else "")
        if odd:  # a reader refuses such a name (see manifest): the cell's outputs are stored instead
            for i, _ in readers:
                blocked[i] = f"reads {name!r}, whose name cannot be carried (it {odd})"
            continue
        try:
            st = os.stat(path)
        except OSError:
            st = None
        stale = [i for i, r in readers if st is None or (r.size, r.mtime_ns) != (st.st_size, st.st_mtime_ns)]
        if st is not None and st.st_size > limit:
            why = f"reads {name} ({st.st_size / 1e6:.1f} MB, over the {limit / 1e6:g} MB file limit)"
            stale = [i for i, _ in readers]
        else:
            why = f"reads {name}, which is gone or changed since" if stale else ""
        for i in stale:
            blocked[i] = why
        if len(stale) == len(readers) or st is None:
            continue
        try:
            content = f"f-{file_log.digest(path, st.st_size, st.st_mtime_ns)}"
        except OSError as exc:
            for i, _ in readers:
                blocked[i] = f"reads {name}, which cannot be read ({describe(exc)})"
            continue
        entry = {"path": path, "rel": rel,
                 "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                 "cells": sorted(i for i, _ in readers if i not in stale)}
        carried.entries.append(entry)
        carried.notes.append(f"carries {name} ({st.st_size / 1e6:.2f} MB) for cell {', '.join(map(str, entry['cells']))}")
        if content in known:
            entry["blob"] = _blob(known[content], content)
            carried.blobs[content] = known[content]
        elif content not in by_content:
            by_content[content] = [entry]
            batch.append((content, f"{content}.{writer}", _copy_file(path), st.st_size))
        else:
            by_content[content].append(entry)
    if sink is not None and batch:
        done, failures = sink.put_many(batch)
        for content, info in done.items():
            carried.blobs[content] = info
            for entry in by_content[content]:
                entry["blob"] = _blob(info, content)
        for content, exc in failures.items():
            if isinstance(exc, StorageError):
                raise exc
            for entry in by_content[content]:
                for i in entry["cells"]:
                    blocked[i] = f"reads {_shown(entry['path'], file_log.cwd)}, which cannot be stored ({describe(exc)})"
    carried.entries = [e for e in carried.entries if sink is None or "blob" in e]
    if blocked:
        graph = graph.copy()
        for k, execution in enumerate(graph.executions):
            if execution.index in blocked:
                note = f"{blocked[execution.index]}: its outputs are stored instead"
                graph.executions[k] = replace(execution, rerunnable=False, note=note)
                carried.notes.append(f"cell {execution.index} {note}")
        carried.graph = graph
    return carried


def _blob(info: Any, content: str) -> dict[str, Any]:
    return {"key": info.key, "digest": info.digest, "size": info.size, "content": content}


def _shown(path: str, cwd: str) -> str:
    return os.path.relpath(path, cwd) if path.startswith(cwd) else path


def put_back(store: Any, entries: Iterable[FileEntry], cwd: str | None = None) -> list[str]:
    """Write the checkpoint's files where the reruns will look for them: under this runtime's
    working folder when they were under the old one's, else at their old path. A file already
    there is left alone. Returns one line per file."""
    cwd = cwd or os.getcwd()
    lines = []
    for entry in entries:
        # `rel` has no '..' part and `path` is a plain absolute path (the manifest checks both).
        target = os.path.join(cwd, entry.rel) if entry.rel else entry.path
        shown = entry.rel or entry.path
        if os.path.lexists(target):
            continue
        blob = entry.blob
        try:
            data = store.read_blob(blob.key, blob.digest, blob.size)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as f:
                f.write(data)
            if entry.mtime_ns:  # as the cells read it: the next checkpoint finds it unchanged
                os.utime(tmp, ns=(entry.mtime_ns, entry.mtime_ns))
            os.replace(tmp, target)
        except (StorageError, OSError) as exc:
            lines.append(f"could not put back {shown}: {describe(exc)}")
            continue
        lines.append(f"put back {shown} ({len(data) / 1e6:.2f} MB)")
    return lines


# Packages ----------------------------------------------------------------------------------
def imported_packages() -> dict[str, dict[str, Any]]:
    """Top-level packages this process imported from outside the standard library, with their
    version when they say it, and the folder they came from."""
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    found = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name.startswith("_") or name in stdlib or name in sys.builtin_module_names:
            continue
        attributes = _own_attributes(module)
        origin = getattr(attributes.get("__spec__"), "origin", None)
        if not isinstance(origin, str) or origin in ("built-in", "frozen"):
            continue
        version = module_version(module)
        folder = os.path.dirname(os.path.dirname(origin) if origin.endswith("__init__.py") else origin)
        found[name] = {"version": version if isinstance(version, str) else None, "dir": folder}
    return found


def _own_attributes(module: Any) -> dict[str, Any]:
    # A module's own namespace, read without `getattr`: a module-level `__getattr__` may warn
    # (jsonschema deprecates its `__version__`) or import things; sys.modules may hold stand-ins.
    try:
        found = object.__getattribute__(module, "__dict__")
    except (AttributeError, TypeError):
        return {}
    return found if isinstance(found, dict) else {}


def module_version(module: Any) -> str | None:
    """The `__version__` a loaded module sets itself, if it is a string."""
    version = _own_attributes(module).get("__version__")
    return version if isinstance(version, str) else None


def missing_packages(imported: dict[str, dict[str, Any]]) -> list[str]:
    """The recorded packages this runtime cannot import, neither from sys.path nor from the
    folder they came from (a cell may put that folder on sys.path itself)."""
    missing = []
    for name, info in sorted(imported.items()):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None  # a broken package is as good as missing
        if spec is not None:
            continue
        if info.get("dir") and importlib.machinery.PathFinder.find_spec(name, [info["dir"]]) is not None:
            continue
        missing.append(f"{name} {info['version']}" if info.get("version") else name)
    return missing


# Distribution name -> the module whose loaded version the manifest records.
_REPORTED_PACKAGES = {"numpy": "numpy", "pandas": "pandas", "scikit-learn": "sklearn", "torch": "torch",
                      "ipython": "IPython", "ipykernel": "ipykernel", "cloudpickle": "cloudpickle"}


@functools.lru_cache(maxsize=None)
def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """The runtime a checkpoint was taken on, for its manifest. Versions of the reported packages this process has loaded (what the values were made
    with), else installed. From `__version__` when loaded: importlib.metadata costs ~2 ms a
    package, and this runs after every auto-checkpointed cell."""
    packages = {}
    for name, module_name in _REPORTED_PACKAGES.items():
        version = module_version(sys.modules[module_name]) if module_name in sys.modules else None
        if version is None:
            version = _installed_version(name)
        if version is not None:
            packages[name] = version
    # Every third-party package the session imported: a restore names those it cannot find.
    return {"python": platform.python_version(), "platform": sys.platform, "packages": packages,
            "imported": imported_packages()}
