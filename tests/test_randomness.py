"""Global random state: taken before a cell, kept only if the cell drew, replayed on rerun."""

from __future__ import annotations

import random

import numpy as np

from colab_elastic import randomness
from colab_elastic.history import HistoryGraph


def test_a_cell_that_draws_changes_the_state_and_replay_gives_the_same_numbers():
    before = randomness.capture()
    assert not randomness.changed(before, randomness.capture())
    first = (random.random(), np.random.rand(3).tolist())
    assert randomness.changed(before, randomness.capture())
    randomness.apply(randomness.encode(before))
    assert (random.random(), np.random.rand(3).tolist()) == first


def test_seeding_counts_as_a_change():
    before = randomness.capture()
    np.random.seed(1234)
    assert randomness.changed(before, randomness.capture())


def test_the_state_travels_with_the_history():
    graph = HistoryGraph()
    encoded = randomness.encode(randomness.capture())
    graph.record("x = np.random.rand()", 0.1, reads=(), writes=("x",), rng=encoded)
    again = HistoryGraph.from_json(graph.to_json())
    assert again.executions[-1].rng == encoded
