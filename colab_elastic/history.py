"""The session's history: cell executions and the variable versions they read and wrote.

Pure data: imports neither IPython nor fsspec, and round-trips through JSON so a checkpoint
carries it and a restored session goes on from it.

A variable assigned three times has three versions; a list appended to in place gets a new
version too. Each version has exactly one writer, the execution that produced it; an
execution that changed a value in place also read the version before, since its result
depends on it. Execution 0 stands for "before recording started": it cannot be rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

VersionRef = tuple[str, int]  # (variable name, version number)


@dataclass(frozen=True)
class CellExecution:
    """One run of one cell (a cell run three times is three executions).

    `reads` are the versions the code used, `writes` the versions it produced (created,
    reassigned or changed in place), `deletes` the names it removed. `rerunnable` is False
    for execution 0 and for cells we could not record faithfully: their outputs must be
    loaded, never recomputed.
    """

    index: int
    code: str
    runtime: float
    reads: tuple[VersionRef, ...] = ()
    writes: tuple[VersionRef, ...] = ()
    deletes: tuple[str, ...] = ()
    error: str | None = None
    rerunnable: bool = True
    note: str = ""
    cell_id: str | None = None  # the frontend's id of the cell, when it sends one
    rng: str | None = None  # global random state before the cell, if the cell drew from it
    # The session settings the cell changed (cwd, os.environ, rcParams, ...; see ambient), encoded.
    ambient: str | None = None
    # Modules the cell added to `sys.modules`: a restore that loads its values instead of
    # rerunning it still imports them (the planner's estimate of what a restore waits for).
    imports: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "runtime": self.runtime,
            "reads": [list(r) for r in self.reads],
            "writes": [list(w) for w in self.writes],
            "deletes": list(self.deletes),
            "error": self.error,
            "rerunnable": self.rerunnable,
            "note": self.note,
            "cell_id": self.cell_id,
            "rng": self.rng,
            "ambient": self.ambient,
            "imports": self.imports,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellExecution:
        return cls(
            index=int(data["index"]),
            code=str(data["code"]),
            runtime=float(data["runtime"]),
            reads=tuple((str(n), int(v)) for n, v in data["reads"]),
            writes=tuple((str(n), int(v)) for n, v in data["writes"]),
            deletes=tuple(data["deletes"]),
            error=data.get("error"),
            rerunnable=bool(data.get("rerunnable", True)),
            note=str(data.get("note", "")),
            cell_id=data.get("cell_id"),
            rng=data.get("rng"),
            ambient=data.get("ambient"),
            imports=int(data.get("imports", 0)),
        )


@dataclass
class HistoryGraph:
    """Cell executions <-> variable versions, and which version of each name is live now."""

    executions: list[CellExecution] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)  # name -> live version number
    _last_version: dict[str, int] = field(default_factory=dict)  # ever-increasing per name
    # The global random state after the last recorded cell (see randomness): a restore ends
    # there, whatever its reruns drew, so the next `np.random.rand()` is the one it would have been.
    rng: str | None = None

    def __post_init__(self) -> None:
        if not self.executions:
            self.executions.append(
                CellExecution(0, "# state that existed before recording started", 0.0, rerunnable=False)
            )

    @property
    def next_index(self) -> int:
        return self.executions[-1].index + 1

    def record(
        self,
        code: str,
        runtime: float,
        *,
        reads: Iterable[str],
        writes: Iterable[str],
        deletes: Iterable[str] = (),
        error: str | None = None,
        rerunnable: bool = True,
        note: str = "",
        cell_id: str | None = None,
        rng: str | None = None,
        ambient: str | None = None,
        imports: int = 0,
    ) -> CellExecution:
        """Add one execution; `reads`/`writes`/`deletes` are names, versions are assigned here."""
        read_refs = tuple(sorted((n, self.active[n]) for n in set(reads) if n in self.active))
        write_refs = []
        for name in sorted(set(writes)):
            version = self._last_version.get(name, 0) + 1
            self._last_version[name] = version
            self.active[name] = version
            write_refs.append((name, version))
        gone = tuple(sorted(n for n in set(deletes) if n in self.active and n not in set(writes)))
        for name in gone:
            del self.active[name]
        execution = CellExecution(
            self.next_index, code, runtime, read_refs, tuple(write_refs), gone, error, rerunnable, note, cell_id, rng,
            ambient, imports,
        )
        self.executions.append(execution)
        return execution

    def adopt(self, names: Iterable[str]) -> None:
        """Names found in the namespace without a recorded writer belong to execution 0."""
        new = [n for n in names if n not in self.active]
        if not new:
            return
        first = self.executions[0]
        writes = list(first.writes)
        for name in sorted(new):
            version = self._last_version.get(name, 0) + 1
            self._last_version[name] = version
            self.active[name] = version
            writes.append((name, version))
        self.executions[0] = CellExecution(0, first.code, 0.0, (), tuple(writes), (), None, False, first.note)

    def forget(self, names: Iterable[str]) -> None:
        """Names that vanished without a recorded `del` (e.g. `%reset`) are no longer live."""
        for name in names:
            self.active.pop(name, None)

    def copy(self) -> HistoryGraph:
        """A snapshot that later cells do not change (executions are immutable: a shallow copy)."""
        graph = HistoryGraph(executions=list(self.executions), active=dict(self.active), rng=self.rng)
        graph._last_version = dict(self._last_version)
        return graph

    def writer(self) -> dict[VersionRef, int]:
        """Version -> index of the execution that produced it."""
        return {ref: e.index for e in self.executions for ref in e.writes}

    def to_json(self) -> dict[str, Any]:
        return {
            "executions": [e.to_json() for e in self.executions],
            "active": dict(self.active),
            "last_version": dict(self._last_version),
            "rng": self.rng,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryGraph:
        graph = cls(
            executions=[CellExecution.from_json(e) for e in data["executions"]],
            active={str(k): int(v) for k, v in data["active"].items()},
            rng=data.get("rng"),
        )
        graph._last_version = {str(k): int(v) for k, v in data.get("last_version", {}).items()}
        return graph
