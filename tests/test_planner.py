"""The min-cut planner on small drawn histories.

Each docstring draws the history: `[i] code  (runtime)` is execution i, `x@2` the second
version of x, arrows go from what a cell reads to what it writes. Sizes are in bytes.
"""

from __future__ import annotations

import json
import random

import pytest

from colab_elastic.history import HistoryGraph
from colab_elastic.planner import Bandwidth, GroupInfo, Plan, plan

FAST = Bandwidth(write=1e9, read=1e9, latency=0.001)  # 1 GB/s
SLOW = Bandwidth(write=1e3, read=1e3, latency=0.001)  # 1 KB/s
MB = 1_000_000


def history(*cells: tuple[str, float, list[str], list[str]]) -> HistoryGraph:
    """Record cells given as (code, runtime, reads, writes)."""
    graph = HistoryGraph()
    for code, runtime, reads, writes in cells:
        graph.record(code, runtime, reads=reads, writes=writes)
    return graph


def decision(result: Plan, name: str):
    (found,) = [g for g in result.groups if name in g.names]
    return found


def test_store_or_recompute_flips_with_bandwidth():
    """
    [1] x = slow()  (10 s) ──> x@1   (1 MB)

    At 1 GB/s storing x costs milliseconds: store it, rerun nothing.
    At 1 KB/s it costs ~2000 s: recompute it by rerunning [1].
    """
    graph = history(("x = slow()", 10.0, [], ["x"]))
    groups = [GroupInfo(frozenset({"x"}), MB)]

    fast = plan(graph, groups, FAST)
    assert decision(fast, "x").action == "store"
    assert fast.reruns == ()

    slow = plan(graph, groups, SLOW)
    assert decision(slow, "x").action == "recompute"
    assert decision(slow, "x").cells == (1,)
    assert slow.reruns == (1,)


def test_co_variables_are_stored_or_recomputed_together():
    """
    [1] a = load()   (5 s) ──> a@1 ─┐
    [2] b = view(a)  (1 s) ──> b@1 ─┴─ one group {a, b} (shared objects)

    Recomputing the group reruns both writers; storing it reruns neither.
    """
    graph = history(("a = load()", 5.0, [], ["a"]), ("b = view(a)", 1.0, ["a"], ["b"]))
    groups = [GroupInfo(frozenset({"a", "b"}), MB)]

    stored = plan(graph, groups, FAST)
    assert [(g.names, g.action) for g in stored.groups] == [(("a", "b"), "store")]
    assert stored.reruns == ()

    recomputed = plan(graph, groups, SLOW)
    assert [(g.names, g.action) for g in recomputed.groups] == [(("a", "b"), "recompute")]
    assert recomputed.groups[0].cells == (1, 2)
    assert recomputed.reruns == (1, 2)


def test_unserializable_group_is_recomputed_however_slow():
    """
    [1] gen = make_stream()  (100 s) ──> gen@1   (a generator: cannot be stored)
    """
    graph = history(("gen = make_stream()", 100.0, [], ["gen"]))
    groups = [GroupInfo(frozenset({"gen"}), 100, storable=False, reason="a generator cannot be serialized")]

    result = plan(graph, groups, FAST)
    gen = decision(result, "gen")
    assert gen.action == "recompute"
    assert gen.reason == "a generator cannot be serialized"
    assert result.reruns == (1,)


def test_unserializable_group_written_before_recording_is_lost():
    """
    [0] (before recording) ──> lock@1   (cannot be stored, cannot be rerun)
    [1] n = 1              ──> n@1
    """
    graph = HistoryGraph()
    graph.adopt(["lock"])
    graph.record("n = 1", 0.1, reads=[], writes=["n"])
    groups = [
        GroupInfo(frozenset({"lock"}), 64, storable=False, reason="a lock cannot be serialized"),
        GroupInfo(frozenset({"n"}), 8),
    ]

    result = plan(graph, groups, FAST)
    lock = decision(result, "lock")
    assert lock.action == "lost"
    assert lock.reason.startswith("a lock cannot be serialized")
    assert "cell 0" in lock.reason and "before recording started" in lock.reason
    assert decision(result, "n").action in {"store", "recompute"}  # the rest is still planned
    assert 0 not in result.reruns


def test_unserializable_group_behind_a_cell_that_cannot_be_rerun_is_lost():
    """
    [1] conn = connect()   (rerunnable=False: recorded unfaithfully) ──> conn@1 (socket)
    """
    graph = HistoryGraph()
    graph.record("conn = connect()", 1.0, reads=[], writes=["conn"], rerunnable=False, note="analysis failed")
    groups = [GroupInfo(frozenset({"conn"}), 64, storable=False, reason="a socket cannot be serialized")]

    conn = decision(plan(graph, groups, FAST), "conn")
    assert conn.action == "lost"
    assert "cell 1" in conn.reason and "cannot be rerun: analysis failed" in conn.reason


def test_an_adopted_storable_input_does_not_make_a_recomputed_group_lost():
    """
    [0] (before recording) ──> seed@1 (storable)
    [1] gen = stream(seed)  (1 s) ──> gen@1 (cannot be stored)

    gen is recomputed by rerunning [1] after seed is loaded; [0] is never needed.
    """
    graph = HistoryGraph()
    graph.adopt(["seed"])
    graph.record("gen = stream(seed)", 1.0, reads=["seed"], writes=["gen"])
    groups = [
        GroupInfo(frozenset({"seed"}), 8),
        GroupInfo(frozenset({"gen"}), 64, storable=False, reason="a generator cannot be serialized"),
    ]

    result = plan(graph, groups, SLOW)
    assert decision(result, "seed").action == "store"  # the only way to have it
    assert decision(result, "gen").action == "recompute"
    assert result.reruns == (1,)


def test_rerun_cell_reading_an_old_version_forces_its_writer_to_rerun():
    """
    [1] x = load()     (10 s)  ──> x@1 ──┐
    [2] y = gen(x)     (1 s)   <── x@1   └──> y@1   (y cannot be stored)
    [3] x = small()    (0.1 s) ──> x@2   (x@1 is no longer live)

    Rerunning [2] needs x@1, which no checkpoint holds: [1] must rerun too.
    """
    graph = history(
        ("x = load()", 10.0, [], ["x"]),
        ("y = gen(x)", 1.0, ["x"], ["y"]),
        ("x = small()", 0.1, [], ["x"]),
    )
    groups = [
        GroupInfo(frozenset({"x"}), 8),
        GroupInfo(frozenset({"y"}), 64, storable=False, reason="a generator cannot be serialized"),
    ]

    result = plan(graph, groups, FAST)
    assert decision(result, "y").action == "recompute"
    assert decision(result, "y").cells == (1, 2)
    assert {1, 2} <= set(result.reruns)


def test_live_version_read_by_a_rerun_cell_is_free_when_loaded_before_it():
    """
    [1] x = load()   (100 s) ──> x@1 (stored)
    [2] y = gen(x)   (1 s)   <── x@1, ──> y@1 (cannot be stored)

    x's group is loaded right after [1], before [2] reruns: [1] is not rerun.
    """
    graph = history(("x = load()", 100.0, [], ["x"]), ("y = gen(x)", 1.0, ["x"], ["y"]))
    groups = [
        GroupInfo(frozenset({"x"}), MB),
        GroupInfo(frozenset({"y"}), 64, storable=False, reason="a generator cannot be serialized"),
    ]

    result = plan(graph, groups, FAST)
    assert decision(result, "x").action == "store"
    assert decision(result, "x").load_after == 1
    assert decision(result, "y").cells == (2,)
    assert result.reruns == (2,)


def test_live_version_read_by_a_rerun_cell_is_not_free_when_loaded_after_it():
    """
    [1] x = load()    (100 s) ──> x@1 ─┐
    [2] y = gen(x)    (1 s)   <── x@1  │   ──> y@1 (cannot be stored)
    [3] z = view(x)   (0.1 s) <── x@1  └── z@1: group {x, z}, loaded after [3]

    x@1 is live, but its group is loaded only after [3], too late for [2]: [1] reruns.
    """
    graph = history(
        ("x = load()", 100.0, [], ["x"]),
        ("y = gen(x)", 1.0, ["x"], ["y"]),
        ("z = view(x)", 0.1, ["x"], ["z"]),
    )
    groups = [
        GroupInfo(frozenset({"x", "z"}), MB),
        GroupInfo(frozenset({"y"}), 64, storable=False, reason="a generator cannot be serialized"),
    ]

    result = plan(graph, groups, FAST)
    assert decision(result, "x").load_after == 3
    assert decision(result, "y").cells == (1, 2)
    assert {1, 2} <= set(result.reruns)


def test_already_stored_group_is_nearly_free():
    """
    [1] big = fetch()  (30 s) ──> big@1  (1 GB, writes at 1 MB/s, reads at 1 GB/s)

    Writing 1 GB takes 1000 s, so normally big is recomputed; if an identical blob is
    already at the destination, only loading it (~1 s) is left, and it is kept.
    """
    graph = history(("big = fetch()", 30.0, [], ["big"]))
    bandwidth = Bandwidth(write=1e6, read=1e9, latency=0.001)

    fresh = plan(graph, [GroupInfo(frozenset({"big"}), 1000 * MB)], bandwidth)
    assert decision(fresh, "big").action == "recompute"

    reused = plan(graph, [GroupInfo(frozenset({"big"}), 1000 * MB, already_stored=True)], bandwidth)
    big = decision(reused, "big")
    assert big.action == "store"
    assert big.already_stored
    assert big.store_seconds == 0.0
    assert "already stored" in big.reason
    assert reused.checkpoint_seconds == 0.0
    assert reused.reruns == ()


def test_a_cell_rerun_for_one_group_makes_its_other_outputs_free_to_recompute():
    """
    [1] a, b = split()  (20 s) ──> a@1 (cannot be stored)
                               └─> b@1 (100 MB)

    [1] reruns anyway for a, so b is recomputed rather than stored.
    """
    graph = history(("a, b = split()", 20.0, [], ["a", "b"]))
    groups = [
        GroupInfo(frozenset({"a"}), 64, storable=False, reason="a generator cannot be serialized"),
        GroupInfo(frozenset({"b"}), 100 * MB),
    ]

    result = plan(graph, groups, Bandwidth(write=1e8, read=1e8, latency=0.001))
    b = decision(result, "b")
    assert b.action == "recompute"
    assert "rerun anyway" in b.reason
    assert result.reruns == (1,)
    assert result.checkpoint_seconds == 0.0


def _mixed_plan() -> Plan:
    """
    [0] (before recording) ──> cfg@1
    [1] raw = load(cfg)   (40 s)  ──> raw@1   (50 MB)
    [2] it = iter(raw)    (0.5 s) ──> it@1    (cannot be stored)
    [3] raw.append(0)     (0.2 s) <── raw@1 ──> raw@2
    [4] small = 1         (0.01 s) ──> small@1
    """
    graph = HistoryGraph()
    graph.adopt(["cfg"])
    graph.record("raw = load(cfg)", 40.0, reads=["cfg"], writes=["raw"])
    graph.record("it = iter(raw)", 0.5, reads=["raw"], writes=["it"])
    graph.record("raw.append(0)", 0.2, reads=["raw"], writes=["raw"])
    graph.record("small = 1", 0.01, reads=[], writes=["small"])
    groups = [
        GroupInfo(frozenset({"cfg"}), 100),
        GroupInfo(frozenset({"raw"}), 50 * MB),
        GroupInfo(frozenset({"it"}), 64, storable=False, reason="a list_iterator cannot be serialized"),
        GroupInfo(frozenset({"small"}), 8),
    ]
    return plan(graph, groups, Bandwidth(write=50e6, read=100e6, latency=0.002))


def test_plan_estimates_add_up():
    bandwidth = Bandwidth(write=50e6, read=100e6, latency=0.002)
    result = _mixed_plan()
    stored = result.by_action("store")
    assert stored and result.by_action("recompute")
    assert result.checkpoint_seconds == pytest.approx(sum(g.store_seconds for g in stored))
    assert result.checkpoint_seconds == pytest.approx(sum(bandwidth.store_seconds(g.size) for g in stored))
    assert result.restore_seconds == pytest.approx(
        sum(bandwidth.load_seconds(g.size) for g in stored)
        + sum(result.cell_runtimes[c] + bandwidth.rerun_overhead for c in result.reruns)
    )
    assert set(result.reruns) <= set(result.cell_runtimes) and set(result.cell_lines) == {1, 2, 3, 4}
    assert result.recompute_all_seconds == pytest.approx(40.0 + 0.5 + 0.2 + 0.01)
    # Every recomputed group's cells are rerun, and nothing is lost in this history.
    for group in result.by_action("recompute"):
        assert set(group.cells) <= set(result.reruns)
    assert not result.by_action("lost")


def test_plan_json_round_trip():
    result = _mixed_plan()
    assert Plan.from_json(json.loads(json.dumps(result.to_json()))) == result


# Restores re-plan with every remaining blob already fetched: loading is all but free.
RESTORE = Bandwidth(write=1e12, read=1e12, latency=0.0)


def _rerun_walk_is_exact(graph: HistoryGraph, result: Plan) -> list[str]:
    """Walk `result` as a restore does, with versions for values; what went wrong, if anything.

    Every rerun cell must find exactly the versions it read first time, and every name that is
    not lost must end at its live version."""
    problems = []
    lost = {n for g in result.by_action("lost") for n in g.names}
    loads: dict[int, list[tuple[str, ...]]] = {}
    for g in result.by_action("store"):
        loads.setdefault(g.load_after, []).append(g.names)
    for g in result.by_action("recompute"):
        if not set(g.cells) <= set(result.reruns):
            problems.append(f"{g.names} recomputed, but cells {sorted(set(g.cells) - set(result.reruns))} not rerun")
    cells = {e.index: e for e in graph.executions}
    namespace: dict[str, int] = {}
    for step in sorted(set(result.reruns) | set(loads)):
        if step in result.reruns:
            for name, version in cells[step].reads:
                if namespace.get(name) != version and name not in lost:
                    problems.append(f"cell {step} read {name}@{namespace.get(name)}, not {name}@{version}")
            namespace.update(cells[step].writes)
            for name in cells[step].deletes:
                namespace.pop(name, None)
        for names in loads.get(step, []):
            namespace.update((n, graph.active[n]) for n in names)
    problems += [f"{n} ends at @{namespace.get(n)}, not @{v}" for n, v in graph.active.items()
                 if n not in lost and namespace.get(n) != v]
    return problems


def _seeded_generator_session() -> HistoryGraph:
    # Runtimes as a real session recorded them: the rounding that broke the cut needs them.
    return history(
        ("import pickle, random, time; import numpy as np", 0.11983292100001108, [], ["np", "pickle", "random", "time"]),
        ("np.random.seed(0); a = np.random.rand(100); pick = random.random()", 0.0021383739999691898,
         ["np", "random"], ["a", "pick"]),
        ("rng = np.random.default_rng(42); b = rng.normal(size=10)", 0.003591888999949333, ["np"], ["b", "rng"]),
        ("pass  # colab_elastic magic, not replayed", 0.06486646600001222, [], []),
        ("time.sleep(2); big = np.random.rand(1_000_000)", 2.01063646099999, ["np", "time"], ["big"]),
        ("time.sleep(1); mix = big * rng.random() + np.random.rand(1_000_000) * random.random()", 1.0734138059999623,
         ["big", "np", "random", "rng", "time"], ["mix", "rng"]),
    )


@pytest.mark.parametrize("damaged", ["mix", "rng"])
def test_a_replan_after_a_damaged_blob_reruns_the_writer_of_the_old_version_it_read(damaged):
    """
    [1] import numpy as np ...          (0.1 s)  ──> np@1, pickle@1, random@1, time@1 (stored)
    [2] np.random.seed(0); a = ...      (2 ms)   <── np@1 ──> a@1, pick@1             (recomputed)
    [3] rng = default_rng(42); b = ...  (4 ms)   <── np@1 ──> rng@1, b@1              (b recomputed)
    [5] big = np.random.rand(1e6)       (2 s)    ──> big@1                            (8 MB, stored)
    [6] mix = big * rng.random() + ...  (1.07 s) <── big@1, rng@1 ──> mix@1 (8 MB), rng@2 (stored)

    At restore the blob of mix (or of rng) is damaged: [6] reruns, and it read rng@1, which
    no blob holds (rng is stored at rng@2): [3] reruns before it; big is still loaded.
    Float capacities beside a 1e15 "infinity" made networkx raise here, or return a cut
    through an infinite edge, depending on the hash seed.
    """
    graph = _seeded_generator_session()
    sizes = {"a": 800, "b": 80, "big": 8_000_000, "mix": 8_000_000, "pick": 8, "rng": 473}
    stored = {"big", "mix", "np", "pickle", "random", "rng", "time"}
    groups = [GroupInfo(frozenset({n}), sizes.get(n, 0), storable=n in stored and n != damaged,
                        reason="does not match its digest" if n == damaged else "not stored in this checkpoint",
                        already_stored=True)
              for n in sorted(graph.active)]

    result = plan(graph, groups, RESTORE)
    assert {3, 6} <= set(result.reruns) and 5 not in result.reruns
    assert decision(result, "big").action == "store"
    assert decision(result, damaged).action == "recompute"
    assert _rerun_walk_is_exact(graph, result) == []


def test_every_plan_gives_each_rerun_the_versions_it_read():
    """Random small histories (in-place changes, deletes, cells that cannot be rerun, shared
    groups, unstorable values), planned for a checkpoint and for a restore: every plan, walked
    as a restore walks it, must rerun each cell on exactly the versions it first read."""
    failures = []
    for seed in range(1500):
        rng = random.Random(seed)
        graph = HistoryGraph()
        if rng.random() < 0.3:
            graph.adopt(["pre"])
        for i in range(rng.randint(1, 9)):
            live = sorted(graph.active)
            writes = rng.sample("abcdef", rng.randint(0, 3))
            reads = rng.sample(live, rng.randint(0, min(3, len(live)))) + [w for w in writes if w in live and rng.random() < 0.5]
            graph.record(f"cell {i}", rng.choice([0.0, 0.01, 0.5, 2.0034, 3.0]), reads=reads, writes=writes,
                         deletes=[n for n in live if n not in writes and rng.random() < 0.1], rerunnable=rng.random() > 0.1)
        names = sorted(graph.active)
        rng.shuffle(names)
        at_restore = rng.random() < 0.5
        groups = []
        while names:
            size = rng.randint(1, 2)
            members, names = names[:size], names[size:]
            groups.append(GroupInfo(frozenset(members), rng.choice([10, 481, MB, 8 * MB, 100 * MB]),
                                    storable=rng.random() > 0.3, reason="cannot be serialized", already_stored=at_restore))
        bandwidth = RESTORE if at_restore else Bandwidth(write=rng.choice([1e6, 1e9]), read=1e9)
        try:
            problems = _rerun_walk_is_exact(graph, plan(graph, groups, bandwidth))
        except ValueError as exc:  # networkx's preflow-push on rounded floats
            problems = [f"planning failed: {exc}"]
        failures += [f"seed {seed}: {p}" for p in problems]
    assert failures == []
