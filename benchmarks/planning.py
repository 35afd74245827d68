"""Benchmark 4: how long one plan takes on a long session (target: under 150 ms at 2,000 cell
executions and 5,000 live variables).

A synthetic history, the same every run (seeded): each cell reads three live variables at
random and writes three, cycling through 5,000 names, with runtimes up to 0.5 s and values
up to 10 MB. The plan is pure Python (the planner and its min-cut, `colab_elastic.mincut`), so
it runs in this process; the median of a few runs is reported, with the min-cut's share, and
networkx's `minimum_cut` on the same network for comparison. CPU time is printed beside
wall-clock: on a shared 2-core machine, other load inflates wall-clock, not CPU time.
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

    from colab_elastic import mincut, planner

    sizes = [(200, 500), (2000, 5000)] if scale.name == "full" else [(200, 500), (1000, 2500)]
    results: dict[str, Any] = {"rows": []}
    original = mincut.source_side
    for cells, variables in sizes:
        graph, groups = _history(cells, variables)
        totals, cpu, cuts, networks = [], [], [], []

        def timed_cut(n: int, edges: Any, source: int, sink: int) -> Any:
            edges = list(edges)
            networks.append((n, edges, source, sink))
            started = time.perf_counter()
            try:
                return original(n, edges, source, sink)
            finally:
                cuts.append(time.perf_counter() - started)

        mincut.source_side = timed_cut
        try:
            for _ in range(3):
                started, started_cpu = time.perf_counter(), time.process_time()
                planner.plan(graph, groups, planner.Bandwidth())
                totals.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
        finally:
            mincut.source_side = original
        n, edges, source, sink = networks[-1]
        net = nx.DiGraph()
        for u, v, c in edges:
            net.add_edge(u, v, capacity=net.get_edge_data(u, v, {}).get("capacity", 0) + c)
        started = time.perf_counter()
        nx.minimum_cut(net, source, sink)
        results["rows"].append({"cells": cells, "variables": len(groups), "seconds": median(totals), "cpu_seconds": median(cpu),
                                "cut_seconds": median(cuts), "networkx_cut_seconds": time.perf_counter() - started,
                                "nodes": n, "edges": len(edges)})
    return results


def report(scale: Scale, results: dict[str, Any]) -> str:
    rows = [[r["cells"], r["variables"], 1e3 * r["seconds"], 1e3 * r.get("cpu_seconds", float("nan")), 1e3 * r["cut_seconds"],
             1e3 * r["networkx_cut_seconds"] if "networkx_cut_seconds" in r else "-", 1e3 * TARGET_SECONDS]
            for r in results["rows"]]
    return table("4. Planning one checkpoint (synthetic history; median of 3)",
                 ["cells", "variables", "plan ms", "plan CPU ms", "of which min-cut ms", "networkx min-cut ms", "target ms"], rows)
