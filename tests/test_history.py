"""The history graph: executions, the versions they read and write, and what is live."""

from __future__ import annotations

import json

from colab_elastic.history import CellExecution, HistoryGraph


def test_a_new_graph_holds_only_execution_zero_which_cannot_be_rerun():
    graph = HistoryGraph()
    assert [e.index for e in graph.executions] == [0]
    assert not graph.executions[0].rerunnable
    assert graph.next_index == 1
    assert graph.active == {}


def test_each_write_of_a_name_is_a_new_version():
    """
    [1] x = 1        writes x@1
    [2] x = 2        writes x@2
    [3] y = x + 1    reads x@2, writes y@1
    """
    graph = HistoryGraph()
    first = graph.record("x = 1", 0.1, reads=[], writes=["x"])
    second = graph.record("x = 2", 0.1, reads=[], writes=["x"])
    third = graph.record("y = x + 1", 0.2, reads=["x"], writes=["y"])
    assert [first.index, second.index, third.index] == [1, 2, 3]
    assert first.writes == (("x", 1),)
    assert second.writes == (("x", 2),)
    assert third.reads == (("x", 2),)
    assert third.writes == (("y", 1),)
    assert graph.active == {"x": 2, "y": 1}
    assert graph.writer() == {("x", 1): 1, ("x", 2): 2, ("y", 1): 3}


def test_in_place_modification_reads_the_previous_version_and_writes_the_next():
    """
    [1] data = []           writes data@1
    [2] data.append(1)      reads data@1, writes data@2
    """
    graph = HistoryGraph()
    graph.record("data = []", 0.0, reads=[], writes=["data"])
    append = graph.record("data.append(1)", 0.0, reads=["data"], writes=["data"])
    assert append.reads == (("data", 1),)
    assert append.writes == (("data", 2),)


def test_reads_of_unknown_names_are_not_versions():
    graph = HistoryGraph()
    execution = graph.record("print(undefined_name)", 0.0, reads=["undefined_name"], writes=[])
    assert execution.reads == ()


def test_delete_removes_the_live_version_and_a_new_binding_gets_a_fresh_number():
    """
    [1] tmp = load()    writes tmp@1
    [2] del tmp         reads tmp@1, deletes tmp
    [3] tmp = other()   writes tmp@2 (not tmp@1 again: versions never repeat)
    """
    graph = HistoryGraph()
    graph.record("tmp = load()", 0.0, reads=[], writes=["tmp"])
    deleted = graph.record("del tmp", 0.0, reads=["tmp"], writes=[], deletes=["tmp"])
    assert deleted.deletes == ("tmp",)
    assert deleted.reads == (("tmp", 1),)
    assert "tmp" not in graph.active
    rebound = graph.record("tmp = other()", 0.0, reads=[], writes=["tmp"])
    assert rebound.writes == (("tmp", 2),)
    assert graph.active == {"tmp": 2}


def test_a_name_deleted_and_rebound_in_one_cell_stays_live():
    graph = HistoryGraph()
    graph.record("x = 1", 0.0, reads=[], writes=["x"])
    execution = graph.record("del x\nx = 2", 0.0, reads=["x"], writes=["x"], deletes=["x"])
    assert execution.deletes == ()
    assert graph.active == {"x": 2}


def test_deleting_a_name_that_is_not_live_is_not_recorded():
    graph = HistoryGraph()
    execution = graph.record("del ghost", 0.0, reads=[], writes=[], deletes=["ghost"])
    assert execution.deletes == ()


def test_adopt_assigns_unrecorded_names_to_execution_zero():
    """
    [0] (before recording)  writes a@1, b@1, later c@1
    [1] a = 5               writes a@2
    """
    graph = HistoryGraph()
    graph.adopt(["b", "a"])
    assert graph.executions[0].writes == (("a", 1), ("b", 1))
    assert not graph.executions[0].rerunnable
    graph.record("a = 5", 0.0, reads=[], writes=["a"])
    graph.adopt(["a", "b", "c"])  # a and b are already known: only c is new
    assert graph.executions[0].writes == (("a", 1), ("b", 1), ("c", 1))
    assert graph.active == {"a": 2, "b": 1, "c": 1}
    assert graph.writer()[("c", 1)] == 0
    assert graph.next_index == 2


def test_forget_drops_names_that_vanished_without_a_del():
    graph = HistoryGraph()
    graph.record("x = 1\ny = 2", 0.0, reads=[], writes=["x", "y"])
    graph.forget(["x", "never_existed"])
    assert graph.active == {"y": 1}


def test_json_round_trip_keeps_everything_and_numbering_goes_on():
    graph = HistoryGraph()
    graph.adopt(["seed"])
    graph.record("x = seed * 2", 1.5, reads=["seed"], writes=["x"])
    graph.record("x.append(1)", 0.25, reads=["x"], writes=["x"], error="AttributeError")
    graph.record("del x", 0.0, reads=["x"], writes=[], deletes=["x"], rerunnable=False, note="could not parse")

    restored = HistoryGraph.from_json(json.loads(json.dumps(graph.to_json())))

    assert restored == graph
    assert restored.executions[2].error == "AttributeError"
    assert restored.executions[3].note == "could not parse"
    assert not restored.executions[3].rerunnable
    # The version counter survived: x was deleted at version 2, the next x is version 3.
    assert restored.record("x = 0", 0.0, reads=[], writes=["x"]).writes == (("x", 3),)


def test_cell_execution_json_round_trip():
    execution = CellExecution(
        7, "y = f(x)", 2.5, reads=(("x", 3),), writes=(("y", 1),), deletes=("z",), error=None, rerunnable=True, note=""
    )
    assert CellExecution.from_json(json.loads(json.dumps(execution.to_json()))) == execution
