"""What to store and what to recompute: the min-cut of ElasticNotebook (VLDB 2024).

Pure: a function of the history graph, the co-variable groups and the destination's speed.

The flow network (SOURCE side = recomputed / rerun, SINK side = stored / not rerun)::

    SOURCE --store cost--> group          cut when the group is stored
    group  --inf--> cell                  recomputing a group reruns every writer of its versions
    cell   --runtime--> SINK              cut when the cell is rerun
    cell   --inf--> old version --inf--> its writer
                                          a rerun cell needs the versions it read; a version
                                          that is not live (or not loaded yet) must be rebuilt

A live version read by a rerun cell is free if its group is stored and loaded before that
cell runs; loads happen right after the last writer of the group. Unstorable groups have
no SOURCE edge capacity short of infinity; cells that cannot be rerun have infinite runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence


from . import mincut
from .history import CellExecution, HistoryGraph, VersionRef

SOURCE = "SOURCE"
SINK = "SINK"
# Capacities are whole microseconds: a max-flow is exact on integers only. On float seconds
# beside a huge stand-in for infinity, networkx's (used before `mincut`) rounded, and could
# return a cut through an infinite edge (a group recomputed while its writers are not rerun, a
# rerun cell without the writer of the old version it read) or fail (networkx #4972, #7775).
TICKS_PER_SECOND = 1_000_000
INFINITE = 10**21  # ticks: more than all finite capacities together, so an infinite edge is never cut
# What importing one module takes, until a restore in this runtime measures it: at most this,
# less if a cell that imported many modules (an import cell) took less per module. On the 2-core
# benchmark VM, numpy + pandas + scikit-learn (~1,400 modules) import in 0.7-1.2 s.
IMPORT_SECONDS = 1e-3
MIN_MODULES_TIMED = 20  # fewer, and a cell's own work outweighs its imports


def _ticks(seconds: float) -> int:
    """A cost as a capacity, rounded up: a cost that is not zero never becomes free."""
    return math.ceil(seconds * TICKS_PER_SECOND)


@dataclass(frozen=True)
class GroupInfo:
    """A co-variable group as the planner sees it: stored or recomputed as one."""

    names: frozenset[str]
    size: int
    storable: bool = True
    reason: str = ""  # why it cannot be stored
    already_stored: bool = False  # an identical blob is already at the destination


@dataclass(frozen=True)
class Bandwidth:
    """What a plan's costs are made of: the measured (or assumed) speed of a destination in
    bytes per second and its per-blob latency; what rerunning one cell costs beyond its own
    runtime in this runtime (`rerun_overhead`, measured by restores); and what a second of
    checkpointing weighs against a second of restore (`checkpoint_weight`, the paper's alpha).

    The plan minimises restore seconds + checkpoint_weight x checkpoint seconds: with a weight
    below 1, a value is stored when its upload, mostly in the background, costs up to
    1/weight times what the restore saves by loading instead of rerunning.
    """

    write: float = 100e6
    read: float = 200e6
    latency: float = 0.005
    rerun_overhead: float = 1e-3
    checkpoint_weight: float = 1.0
    import_seconds: float | None = None  # per module imported, as a restore here measured it

    def store_seconds(self, size: int, already_stored: bool = False) -> float:
        return 0.0 if already_stored else self.latency + size / self.write

    def load_seconds(self, size: int) -> float:
        return self.latency + size / self.read


@dataclass(frozen=True)
class GroupDecision:
    """The plan for one group: `store`, `recompute` or `lost` (cannot be restored), and why."""

    names: tuple[str, ...]
    size: int
    action: str
    reason: str
    load_after: int  # execution after which a stored group is loaded
    cells: tuple[int, ...] = ()  # executions its recomputation needs
    store_seconds: float = 0.0
    already_stored: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "size": self.size,
            "action": self.action,
            "reason": self.reason,
            "load_after": self.load_after,
            "cells": list(self.cells),
            "store_seconds": self.store_seconds,
            "already_stored": self.already_stored,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupDecision:
        return cls(
            names=tuple(data["names"]),
            size=int(data["size"]),
            action=str(data["action"]),
            reason=str(data["reason"]),
            load_after=int(data["load_after"]),
            cells=tuple(int(c) for c in data.get("cells", ())),
            store_seconds=float(data.get("store_seconds", 0.0)),
            already_stored=bool(data.get("already_stored", False)),
        )


@dataclass(frozen=True)
class Plan:
    """Which groups to store, which to recompute, and which cells a restore reruns."""

    groups: tuple[GroupDecision, ...]
    reruns: tuple[int, ...]
    checkpoint_seconds: float
    restore_seconds: float
    recompute_all_seconds: float = 0.0
    cell_runtimes: dict[int, float] = field(default_factory=dict)
    cell_lines: dict[int, str] = field(default_factory=dict)  # every recorded cell's first line
    settings: tuple[int, ...] = ()  # cells not rerun whose recorded settings a restore applies (see ambient)
    # Of restore_seconds: importing the modules of cells that are not rerun (their values load
    # instead, and loading them imports what they need); the same either way, so no choice hangs on it.
    import_seconds: float = 0.0

    def by_action(self, action: str) -> list[GroupDecision]:
        return [g for g in self.groups if g.action == action]

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": [g.to_json() for g in self.groups],
            "reruns": list(self.reruns),
            "checkpoint_seconds": self.checkpoint_seconds,
            "restore_seconds": self.restore_seconds,
            "recompute_all_seconds": self.recompute_all_seconds,
            "cell_runtimes": {str(k): v for k, v in self.cell_runtimes.items()},
            "cell_lines": {str(k): v for k, v in self.cell_lines.items()},
            "settings": list(self.settings),
            "import_seconds": self.import_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            groups=tuple(GroupDecision.from_json(g) for g in data["groups"]),
            reruns=tuple(int(c) for c in data["reruns"]),
            checkpoint_seconds=float(data["checkpoint_seconds"]),
            restore_seconds=float(data["restore_seconds"]),
            recompute_all_seconds=float(data.get("recompute_all_seconds", 0.0)),
            cell_runtimes={int(k): float(v) for k, v in data.get("cell_runtimes", {}).items()},
            cell_lines={int(k): str(v) for k, v in data.get("cell_lines", {}).items()},
            settings=tuple(int(c) for c in data.get("settings", ())),
            import_seconds=float(data.get("import_seconds", 0.0)),
        )

    def __repr__(self) -> str:
        from .report import plan_text

        return plan_text(self)

    def _repr_html_(self) -> str:
        from .report import plan_html

        return plan_html(self)


class _Problem:
    """Derived facts about the history that every part of the planning needs."""

    def __init__(self, graph: HistoryGraph, groups: Sequence[GroupInfo]) -> None:
        self.graph = graph
        self.groups = list(groups)
        self.cells = {e.index: e for e in graph.executions}
        self.writer = graph.writer()
        self.group_of: dict[str, int] = {}
        for i, group in enumerate(self.groups):
            for name in group.names:
                self.group_of[name] = i
        self.live: dict[int, list[VersionRef]] = {
            i: [(n, graph.active[n]) for n in sorted(g.names) if n in graph.active] for i, g in enumerate(self.groups)
        }
        self.load_after = {i: max((self.writer.get(ref, 0) for ref in refs), default=0) for i, refs in self.live.items()}
        self._writers: dict[int, set[int]] = {}

    def free_read(self, ref: VersionRef, reader: int, storable: set[int]) -> bool:
        """Can a rerun of `reader` use `ref` without recomputing it (a stored group, loaded already)?"""
        name, version = ref
        if self.graph.active.get(name) != version or name not in self.group_of:
            return False
        group = self.group_of[name]
        return group in storable and self.load_after[group] < reader

    def writers(self, group: int) -> set[int]:
        if group not in self._writers:
            self._writers[group] = {self.writer.get(ref, 0) for ref in self.live[group]}
        return self._writers[group]

    def closures(self, storable: set[int]) -> dict[int, int]:
        """Per cell, the cells its rerun needs (itself included) as a bit mask, when every
        group in `storable` is loaded. One pass in history order: a version is always
        written by an earlier cell than the ones that read it."""
        masks: dict[int, int] = {}
        for index in sorted(self.cells):
            mask = 1 << index
            for ref in self.cells[index].reads:
                if not self.free_read(ref, index, storable):
                    producer = self.writer.get(ref, 0)
                    mask |= masks.get(producer, 1 << producer)
            masks[index] = mask
        return masks


_BITS = [tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256)]


def _cells_of(mask: int) -> list[int]:
    """The cell indices set in a bit mask, in order (a byte at a time: a closure of a long
    history has thousands of bits, and peeling them off one by one is quadratic)."""
    found: list[int] = []
    for position, byte in enumerate(mask.to_bytes((mask.bit_length() + 7) // 8, "little")):
        if byte:
            base = position * 8
            found.extend(base + bit for bit in _BITS[byte])
    return found


def _closure(masks: dict[int, int], start: Iterable[int]) -> list[int]:
    mask = 0
    for cell in start:
        mask |= masks[cell]
    return _cells_of(mask)


def plan(graph: HistoryGraph, groups: Sequence[GroupInfo], bandwidth: Bandwidth) -> Plan:
    """The cheapest restorable plan: minimise store seconds + load seconds + rerun seconds."""
    problem = _Problem(graph, groups)
    storable = {i for i, g in enumerate(problem.groups) if g.storable}

    # Groups that can be neither stored nor recomputed are named now, not discovered later.
    lost: dict[int, str] = {}
    before_cut = problem.closures(storable)
    for i, group in enumerate(problem.groups):
        if group.storable:
            continue
        blocked = [c for c in _closure(before_cut, problem.writers(i)) if not problem.cells[c].rerunnable]
        if blocked:
            first = problem.cells[blocked[0]]
            why = "ran before recording started" if blocked[0] == 0 else "was not recorded faithfully"
            if blocked[0] and first.note:
                why = f"cannot be rerun: {first.note}"
            lost[i] = f"{group.reason}, and recomputing it needs cell {blocked[0]}, which {why}"

    nodes: dict[Any, int] = {SOURCE: 0, SINK: 1}
    edges: list[tuple[int, int, int]] = []

    def edge(u: Any, v: Any, capacity: int) -> None:
        edges.append((nodes.setdefault(u, len(nodes)), nodes.setdefault(v, len(nodes)), capacity))

    for cell in problem.cells.values():
        cost = _ticks(cell.runtime + bandwidth.rerun_overhead) if cell.rerunnable else INFINITE
        edge(("cell", cell.index), SINK, cost)
        for ref in cell.reads:
            # Conservatively assume the read is not free; free reads are handled per group
            # below because "free" depends on whether that group ends up stored.
            name, _ = ref
            producer = problem.writer.get(ref, 0)
            group = problem.group_of.get(name)
            live_and_loaded_before = (
                group is not None
                and graph.active.get(name) == ref[1]
                and problem.load_after[group] < cell.index
                and group not in lost
            )
            if live_and_loaded_before:
                # Free if the group is stored (SINK side); if the group is recomputed its
                # writers rerun anyway. Either way no edge is needed.
                continue
            edge(("cell", cell.index), ("cell", producer), INFINITE)
    # A group with one writer needs no node of its own: SOURCE -c-> group -inf-> writer cuts
    # exactly like SOURCE -c-> writer (stored iff its writer is not rerun), and the groups of
    # one writer add up. Most groups have one writer: the network shrinks to about the cells.
    node_of: dict[int, Any] = {}
    direct: dict[int, int] = {}
    for i, group in enumerate(problem.groups):
        if i in lost:
            continue
        cost = (bandwidth.checkpoint_weight * bandwidth.store_seconds(group.size, group.already_stored)
                + bandwidth.load_seconds(group.size))
        capacity = _ticks(cost) if group.storable else INFINITE
        writers = problem.writers(i)
        if len(writers) == 1:
            (writer,) = writers
            node_of[i] = ("cell", writer)
            direct[writer] = min(INFINITE, direct.get(writer, 0) + capacity)
            continue
        node_of[i] = ("group", i)
        edge(SOURCE, node_of[i], capacity)
        for cell in writers:
            edge(node_of[i], ("cell", cell), INFINITE)
    for writer, capacity in direct.items():
        edge(SOURCE, ("cell", writer), capacity)

    side = mincut.source_side(len(nodes), edges, nodes[SOURCE], nodes[SINK])
    source_side = {node for node, index in nodes.items() if index in side}
    stored = {i for i in range(len(problem.groups)) if i not in lost and node_of[i] not in source_side}
    cut = {node[1] for node in source_side if isinstance(node, tuple) and node[0] == "cell"}
    # An exact cut already reruns everything below; closing over it anyway makes "no rerun
    # without its inputs, no recomputed group without its writers" a property of the plan
    # rather than of the solver.
    recomputed = {c for i in range(len(problem.groups)) if i not in lost and i not in stored for c in problem.writers(i)}
    after_cut = problem.closures(stored)
    reruns = [c for c in _closure(after_cut, cut | recomputed) if problem.cells[c].rerunnable]
    # Per writer cell: what rerunning it and what it needs takes, and whether all of it can be rerun.
    rerun_of: dict[int, tuple[float, bool]] = {}

    def rerun_cost(cells: Iterable[int]) -> tuple[float, bool]:
        chosen = [problem.cells[c] for c in cells]
        return sum(c.runtime for c in chosen), all(c.rerunnable for c in chosen)

    decisions = []
    for i, group in enumerate(problem.groups):
        names = tuple(sorted(group.names))
        store_s = bandwidth.store_seconds(group.size, group.already_stored)
        move_s = bandwidth.checkpoint_weight * store_s + bandwidth.load_seconds(group.size)
        move = ("store+load" if bandwidth.checkpoint_weight == 1
                else f"load + {bandwidth.checkpoint_weight:g} x store")
        if i in lost:
            decisions.append(GroupDecision(names, group.size, "lost", lost[i], problem.load_after[i]))
            continue
        writers = problem.writers(i)
        if i in stored and len(writers) == 1:
            # Only the reason's figure needs its closure: one sum per writer cell, kept.
            (writer,) = writers
            if writer not in rerun_of:
                rerun_of[writer] = rerun_cost(_cells_of(after_cut[writer]))
            cells: tuple[int, ...] = ()
            rerun_s, rerunnable = rerun_of[writer]
        else:
            cells = tuple(_closure(after_cut, writers))
            rerun_s, rerunnable = rerun_cost(cells)
        if i in stored:
            if not rerunnable:
                why = "its cells cannot be rerun"
            elif group.already_stored:
                why = f"already stored by an earlier checkpoint; rerunning would take {rerun_s:.3g} s"
            else:
                why = f"{move} {move_s:.3g} s < rerun {rerun_s:.3g} s"
            decisions.append(GroupDecision(names, group.size, "store", why, problem.load_after[i], cells, store_s, group.already_stored))
        else:
            if not group.storable:
                why = group.reason
            elif rerun_s <= move_s:
                why = f"rerun {rerun_s:.3g} s < {move} {move_s:.3g} s"
            else:
                why = f"its cells ({', '.join(map(str, cells))}) are rerun anyway for other variables"
            decisions.append(GroupDecision(names, group.size, "recompute", why, problem.load_after[i], cells))

    runtimes = {c.index: c.runtime for c in problem.cells.values()}
    stored_decisions = [d for d in decisions if d.action == "store"]
    rerun = set(reruns)
    imports = import_seconds(problem.cells.values(), bandwidth.import_seconds) * sum(
        c.imports for c in problem.cells.values() if c.index not in rerun)
    return Plan(
        groups=tuple(decisions),
        reruns=tuple(reruns),
        checkpoint_seconds=sum(d.store_seconds for d in stored_decisions),
        restore_seconds=(sum(bandwidth.load_seconds(d.size) for d in stored_decisions)
                         + sum(runtimes[c] + bandwidth.rerun_overhead for c in reruns) + imports),
        recompute_all_seconds=sum(c.runtime for c in problem.cells.values() if c.rerunnable),
        cell_runtimes=runtimes,
        cell_lines={c.index: _first_line(c.code) for c in problem.cells.values() if c.index},
        settings=tuple(sorted(c.index for c in problem.cells.values() if c.ambient and c.index not in rerun)),
        import_seconds=imports,
    )


def import_seconds(cells: Iterable[CellExecution], measured: float | None) -> float:
    """What importing one module takes here: as a restore measured it, else the least per
    module of the cells that imported many (their runtime bounds it), at most IMPORT_SECONDS."""
    if measured is not None:
        return measured
    return min([IMPORT_SECONDS, *(c.runtime / c.imports for c in cells if c.imports >= MIN_MODULES_TIMED)])


def _first_line(code: str) -> str:
    lines = [line for line in code.strip().splitlines() if line.strip()] or [""]
    return lines[0][:60] + (" …" if len(lines) > 1 or len(lines[0]) > 60 else "")
