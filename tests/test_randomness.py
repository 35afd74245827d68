"""Global random state: taken before a cell, kept only if the cell drew, replayed on rerun."""

from __future__ import annotations

import base64
import pickle
import random

import numpy as np

from colab_elastic import randomness
from colab_elastic.history import HistoryGraph
from colab_elastic.recorder import Recorder


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


def _run(recorder: Recorder, code: str) -> None:
    recorder.before(code)
    exec(code, recorder.namespace)
    recorder.after()


def test_the_history_ends_where_the_generators_stand_so_a_restore_can_end_there_too():
    recorder = Recorder({"np": np, "random": random}, HistoryGraph())
    _run(recorder, "np.random.seed(3)\nx = np.random.rand(5)\ny = random.random()")
    kept = recorder.graph.rng
    _run(recorder, "z = 1")  # draws nothing: the state is not encoded again
    assert recorder.graph.rng is kept
    following = (np.random.rand(), random.random())

    # A restore leaves the generators wherever its reruns did; the history says where they were.
    np.random.seed(99)
    random.seed(99)
    randomness.apply(HistoryGraph.from_json(recorder.graph.to_json()).rng)
    assert (np.random.rand(), random.random()) == following


def test_a_history_swapped_in_by_a_restore_gets_the_state_of_this_session_after_the_next_cell():
    recorder = Recorder({"np": np}, HistoryGraph())
    _run(recorder, "x = np.random.rand()")
    restored = HistoryGraph.from_json(recorder.graph.to_json())
    recorder.graph = restored
    np.random.seed(5)  # the session moved on outside any recorded cell
    _run(recorder, "y = 2")
    assert restored.rng is not None and not randomness.changed(
        pickle.loads(base64.b64decode(restored.rng)), randomness.capture())
