"""The planner's min-cut against networkx's on random networks shaped like planning problems
and on arbitrary ones: the same cut value, and a source side that is a real cut."""

from __future__ import annotations

import random

import networkx as nx
import pytest

from colab_elastic.mincut import source_side

INF = 10**21


def _cut_value(edges, side):
    return sum(c for u, v, c in edges if u in side and v not in side)


def _random_network(rng: random.Random, n: int, shaped: bool):
    edges = []
    if shaped:  # SOURCE=0 -> cells (store costs), cells -> SINK=1 (runtimes), later -> earlier cells (inf)
        for cell in range(2, n):
            if rng.random() < 0.8:
                edges.append((0, cell, rng.randint(0, 10**7)))
            edges.append((cell, 1, rng.choice([rng.randint(0, 10**7), INF])))
            for _ in range(rng.randint(0, 3)):
                if cell > 2:
                    edges.append((cell, rng.randint(2, cell - 1), INF))
    else:
        for _ in range(rng.randint(1, 4 * n)):
            u, v = rng.randrange(n), rng.randrange(n)
            if u != v:
                edges.append((u, v, rng.randint(0, 50)))
    return edges


@pytest.mark.parametrize("seed", range(60))
def test_the_cut_equals_networkx_max_flow(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 60)
    edges = _random_network(rng, n, shaped=seed % 2 == 0)
    net = nx.DiGraph()
    net.add_nodes_from(range(n))
    merged: dict[tuple[int, int], int] = {}
    for u, v, c in edges:  # networkx keeps one edge per pair: add parallel capacities up
        merged[(u, v)] = merged.get((u, v), 0) + c
    for (u, v), c in merged.items():
        net.add_edge(u, v, capacity=c)
    expected = nx.maximum_flow_value(net, 0, 1)
    side = source_side(n, edges, 0, 1)
    assert 0 in side and 1 not in side
    assert _cut_value(edges, side) == expected


def test_a_long_chain_deeper_than_the_recursion_limit():
    n = 5000
    edges = [(i, i + 1, 10) for i in range(2, n - 1)] + [(0, 2, 7), (n - 1, 1, 9)]
    side = source_side(n, edges, 0, 1)
    assert _cut_value(edges, side) == 7
