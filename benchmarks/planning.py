"""Benchmark 4: how long one plan takes on a long session (target: under 150 ms at 2,000 cell
executions and 5,000 live variables).

A synthetic history, the same every run (seeded): each cell reads three live variables at
random and writes three, cycling through 5,000 names, with runtimes up to 0.5 s and values
up to 10 MB. The plan is pure Python (the planner and networkx's min-cut), so it runs in this
process; the median of a few runs is reported, with the min-cut's share.
"""

from __future__ import annotations

import random
import time
from typing import Any

from .common import Scale, median, table

TARGET_SECONDS = 0.150


def _history(cells: int, variables: int) -> tuple[Any, list[Any]]:
    from colab_elastic.history import HistoryGraph
    from colab_elastic.planner import GroupInfo

    rng = random.Random(0)
    graph = HistoryGraph()
    names = [f"v{i}" for i in range(variables)]
    for c in range(cells):
        live = list(graph.active)
        reads = rng.sample(live, min(len(live), 3))
        writes = [names[(c * 3 + k) % variables] for k in range(3)]
        graph.record(f"cell{c}", rng.random() * 0.5, reads=reads, writes=writes)
    groups = [GroupInfo(frozenset([n]), rng.randint(10, 10**7)) for n in graph.active]
    return graph, groups


def measure(scale: Scale) -> dict[str, Any]:
    import networkx as nx

    from colab_elastic import planner

    sizes = [(200, 500), (2000, 5000)] if scale.name == "full" else [(200, 500), (1000, 2500)]
    results: dict[str, Any] = {"rows": []}
    original = nx.minimum_cut
    for cells, variables in sizes:
        graph, groups = _history(cells, variables)
        totals, cuts = [], []

        def timed_cut(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                cuts.append(time.perf_counter() - started)

        nx.minimum_cut = timed_cut
        try:
            for _ in range(3):
                started = time.perf_counter()
                planner.plan(graph, groups, planner.Bandwidth())
                totals.append(time.perf_counter() - started)
        finally:
            nx.minimum_cut = original
        results["rows"].append({"cells": cells, "variables": len(groups), "seconds": median(totals),
                                "cut_seconds": median(cuts)})
    return results


def report(scale: Scale, results: dict[str, Any]) -> str:
    rows = [[r["cells"], r["variables"], 1e3 * r["seconds"], 1e3 * r["cut_seconds"], 1e3 * TARGET_SECONDS]
            for r in results["rows"]]
    return table("4. Planning one checkpoint (synthetic history; median of 3)",
                 ["cells", "variables", "plan ms", "of which min-cut ms", "target ms"], rows)
