"""The planner's promises, over random histories (hypothesis).

Histories are recorded through HistoryGraph.record exactly as the recorder does (a cell reads
the live version of what it reads), so they are ones a notebook could produce. Each plan is
checked by replaying it, independently of the planner's own code: walk the history, rerun the
planned cells (each must find the very versions it read), load each stored group after its
last writer, and compare the namespace with the live versions. Its cost is compared with an
exhaustive search over every choice of stored groups on small histories.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dataclasses

from colab_elastic import planner
from colab_elastic.history import HistoryGraph
from colab_elastic.planner import Bandwidth, GroupInfo, Plan, plan

NAMES = "abcdefg"
RUNTIMES = [0.0, 0.0005, 0.01, 0.4, 3.0, 30.0]


@st.composite
def histories(draw: Any, max_cells: int = 7) -> tuple[HistoryGraph, list[GroupInfo], Bandwidth]:
    graph = HistoryGraph()
    adopted = draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True))
    graph.adopt(adopted)  # names that existed before recording started (cell 0, never rerun)
    for _ in range(draw(st.integers(1, max_cells))):
        live = sorted(graph.active)
        reads = draw(st.lists(st.sampled_from(live), unique=True, max_size=3)) if live else []
        writes = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
        deletes = draw(st.lists(st.sampled_from(live), unique=True, max_size=1)) if live else []
        graph.record("cell", draw(st.sampled_from(RUNTIMES)), reads=reads, writes=writes,
                     deletes=[d for d in deletes if d not in writes],
                     rerunnable=draw(st.sampled_from([True] * 7 + [False])))
    names = sorted(graph.active)
    # Co-variable groups: a random partition of the live names.
    labels = draw(st.lists(st.integers(0, 3), min_size=len(names), max_size=len(names)))
    groups = []
    for label in sorted(set(labels)):
        members = frozenset(n for n, lab in zip(names, labels) if lab == label)
        storable = draw(st.sampled_from([True] * 5 + [False]))
        groups.append(GroupInfo(members, draw(st.sampled_from([10, 10_000, 1_000_000, 100_000_000])), storable,
                                "" if storable else "cannot be pickled", draw(st.sampled_from([False] * 4 + [True]))))
    speeds = {"write": draw(st.sampled_from([1e3, 1e6, 1e9])), "read": draw(st.sampled_from([1e4, 1e6, 1e9])),
              "latency": draw(st.sampled_from([0.0, 0.005, 0.2]))}
    if "checkpoint_weight" in {f.name for f in dataclasses.fields(Bandwidth)}:
        speeds["checkpoint_weight"] = draw(st.sampled_from([1.0, 0.25]))
    return graph, groups, Bandwidth(**speeds)


def _rerun_overhead(bandwidth: Bandwidth) -> float:
    """What one rerun costs beyond its runtime, in the planner's objective."""
    return getattr(bandwidth, "rerun_overhead", getattr(planner, "RERUN_OVERHEAD", 0.0))


def _move_seconds(bandwidth: Bandwidth, group: GroupInfo) -> float:
    """What storing and loading a group costs in the planner's objective (checkpoint seconds
    weighed against restore seconds, where the planner has such a weight)."""
    weight = getattr(bandwidth, "checkpoint_weight", 1.0)
    return weight * bandwidth.store_seconds(group.size, group.already_stored) + bandwidth.load_seconds(group.size)


# An independent model of what a restore needs ----------------------------------------------
def _writer(graph: HistoryGraph) -> dict[tuple[str, int], int]:
    return {ref: e.index for e in graph.executions for ref in e.writes}


def _load_after(graph: HistoryGraph, group: GroupInfo) -> int:
    writer = _writer(graph)
    return max((writer[(n, graph.active[n])] for n in group.names), default=0)


def _needed(graph: HistoryGraph, groups: list[GroupInfo], stored: set[int], targets: set[int]) -> set[int]:
    """Every cell a restore must rerun to rebuild the groups in `targets` when `stored` are loaded."""
    writer = _writer(graph)
    cells = {e.index: e for e in graph.executions}
    group_of = {n: i for i, g in enumerate(groups) for n in g.names}
    todo = [writer[(n, graph.active[n])] for i in targets for n in groups[i].names]
    needed: set[int] = set()
    while todo:
        index = todo.pop()
        if index in needed:
            continue
        needed.add(index)
        for name, version in cells[index].reads:
            group = group_of.get(name)
            free = (group in stored and graph.active.get(name) == version
                    and _load_after(graph, groups[group]) < index)
            if not free:
                todo.append(writer.get((name, version), 0))
    return needed


def _cost(graph: HistoryGraph, groups: list[GroupInfo], bandwidth: Bandwidth, stored: set[int],
          rebuilt: set[int]) -> float | None:
    """Seconds to store and load `stored` and rerun what rebuilds `rebuilt`; None if impossible."""
    runtime = {e.index: e.runtime for e in graph.executions}
    rerunnable = {e.index: e.rerunnable for e in graph.executions}
    reruns = _needed(graph, groups, stored, rebuilt)
    if not all(rerunnable[c] for c in reruns):
        return None
    move = sum(_move_seconds(bandwidth, groups[i]) for i in stored)
    return move + sum(runtime[c] + _rerun_overhead(bandwidth) for c in reruns)


def _lost(graph: HistoryGraph, groups: list[GroupInfo]) -> set[int]:
    """Unstorable groups whose cells cannot be rerun even with everything else loaded."""
    storable = {i for i, g in enumerate(groups) if g.storable}
    cells = {e.index: e for e in graph.executions}
    return {i for i, g in enumerate(groups) if not g.storable
            and not all(cells[c].rerunnable for c in _needed(graph, groups, storable, {i}))}


def _replay(graph: HistoryGraph, groups: list[GroupInfo], result: Plan) -> dict[str, int]:
    """Run the plan as a restore does, on versions: returns name -> version at the end.
    Fails if a rerun cell would not find the version it originally read."""
    stored = [i for i, d in enumerate(result.groups) if d.action == "store"]
    loads: dict[int, list[int]] = {}
    for i in stored:
        loads.setdefault(result.groups[i].load_after, []).append(i)
    cells = {e.index: e for e in graph.executions}
    namespace: dict[str, int] = {}
    for step in sorted(set(result.reruns) | set(loads)):
        if step in result.reruns:
            cell = cells[step]
            assert cell.rerunnable, f"plan reruns cell {step}, which cannot be rerun"
            for name, version in cell.reads:
                assert namespace.get(name) == version, f"cell {step} would read {name}@{namespace.get(name)}, not @{version}"
            for name in cell.deletes:
                namespace.pop(name, None)
            namespace.update(dict(cell.writes))
        for i in loads.get(step, []):
            namespace.update({n: graph.active[n] for n in groups[i].names})
    return namespace


def _plan_cost(groups: list[GroupInfo], bandwidth: Bandwidth, graph: HistoryGraph, result: Plan) -> float:
    runtime = {e.index: e.runtime for e in graph.executions}
    stored = [i for i, d in enumerate(result.groups) if d.action == "store"]
    return (sum(_move_seconds(bandwidth, groups[i]) for i in stored)
            + sum(runtime[c] + _rerun_overhead(bandwidth) for c in result.reruns))


# Properties ------------------------------------------------------------------------------------
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOLERANCE = 1e-5  # the planner rounds each cost up to a whole microsecond


@SETTINGS
@given(histories())
def test_every_live_variable_is_restorable_and_co_variables_stay_together(case: Any) -> None:
    graph, groups, bandwidth = case
    result = plan(graph, groups, bandwidth)
    # One decision per group, naming exactly its members: a group is stored or recomputed whole.
    assert [frozenset(d.names) for d in result.groups] == [g.names for g in groups]
    lost = _lost(graph, groups)
    assert {i for i, d in enumerate(result.groups) if d.action == "lost"} == lost
    namespace = _replay(graph, groups, result)
    for i, group in enumerate(groups):
        if i in lost:
            continue
        for name in group.names:
            assert namespace.get(name) == graph.active[name], f"{name} is not back at its live version"


@SETTINGS
@given(histories())
def test_an_unpicklable_value_is_never_stored(case: Any) -> None:
    graph, groups, bandwidth = case
    result = plan(graph, groups, bandwidth)
    for group, decision in zip(groups, result.groups):
        if not group.storable:
            assert decision.action != "store"


@SETTINGS
@given(histories(max_cells=12))
def test_cost_is_never_above_storing_everything_or_recomputing_everything(case: Any) -> None:
    graph, groups, bandwidth = case
    result = plan(graph, groups, bandwidth)
    lost = _lost(graph, groups)
    candidates = [i for i, g in enumerate(groups) if g.storable]
    rebuild_all = {i for i in range(len(groups)) if i not in lost}
    store_all = _cost(graph, groups, bandwidth, set(candidates), rebuild_all - set(candidates))
    recompute_all = _cost(graph, groups, bandwidth, set(), rebuild_all)
    cost = _plan_cost(groups, bandwidth, graph, result)
    for bound in (store_all, recompute_all):
        if bound is not None:
            assert cost <= bound + TOLERANCE


@SETTINGS
@given(histories(max_cells=6))
def test_cost_equals_brute_force_on_small_histories(case: Any) -> None:
    graph, groups, bandwidth = case
    result = plan(graph, groups, bandwidth)
    lost = _lost(graph, groups)
    candidates = [i for i, g in enumerate(groups) if g.storable]
    rebuild = {i for i in range(len(groups)) if i not in lost}
    best = None
    for k in range(len(candidates) + 1):
        for chosen in combinations(candidates, k):
            cost = _cost(graph, groups, bandwidth, set(chosen), rebuild - set(chosen))
            if cost is not None and (best is None or cost < best):
                best = cost
    assert best is not None, "some plan is always possible: store every storable group"
    cost = _plan_cost(groups, bandwidth, graph, result)
    assert best - TOLERANCE <= cost <= best + TOLERANCE, (cost, best)
