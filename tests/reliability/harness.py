"""The fault-injection harness: one process records a small notebook session in an in-process
IPython shell, then forks a child per fault (a fork costs milliseconds; a kernel, a second).
Each child checkpoints through the real package to a real folder or the loopback GCS server
while a fault hits it; another child then restores into a fresh session and compares every
value, by its own equality, with what the cells compute when run without colab_elastic.

Run by tests/reliability/test_faults.py:  python -m tests.reliability.harness SPEC.json
SPEC: {"scenarios": [method names of Harness], "url": ..., "options": {...}, "points": ...}.
Prints one JSON object: the outcomes, one per fault injected (a racer prints its checkpoints).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from typing import Any

from tests.reliability.notebook import (CELLS_A, CELLS_B, CELLS_C, differences, expected, fork, fresh_session,
                                        make_shell, pick, racer, racer_state, run_cells, spread, user_names)


class Harness:
    """One recorded session (state A, not yet checkpointed) and the scenarios run from it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from tests.reliability import faults

        self.spec = spec
        self.options: dict[str, Any] = {**(spec.get("options") or {}), **(spec.get("more_options") or {})}
        self.base: str = spec["url"]
        self.faults = faults
        faults.install()
        self.shell = make_shell()
        self.shell.run_line_magic("load_ext", "colab_elastic")
        run_cells(self.shell, CELLS_A)
        self.want = {"A": expected(CELLS_A), "B": expected(CELLS_A + CELLS_B), "C": expected(CELLS_A + CELLS_B + CELLS_C)}
        if not self.base.startswith("gs://"):
            faults.INJECTOR.root = self.base
        self.outcomes: list[dict[str, Any]] = []

    # Building blocks (each runs in a forked child) ------------------------------------------
    def new_url(self) -> str:
        return f"{self.base}/{uuid.uuid4().hex[:10]}"

    def checkpoint(self, url: str) -> str:
        import colab_elastic

        return colab_elastic.checkpoint(url, **self.options).checkpoint

    def write_both(self, url: str, *, collect: bool = False) -> int:
        """Checkpoint state A, run the B cells, checkpoint state B (in the calling child); with
        `collect`, then run the C cells, checkpoint C and collect garbage keeping only C.
        Returns the storage operations up to A's commit."""
        self.checkpoint(url)
        committed_a = self.faults.INJECTOR.count
        run_cells(self.shell, CELLS_B)
        self.checkpoint(url)
        if collect:
            from colab_elastic.retention import collect_garbage
            from colab_elastic.store import Store

            run_cells(self.shell, CELLS_C)
            self.checkpoint(url)
            collect_garbage(Store(url, self.options), keep=1, grace=0)
        return committed_a

    def verify(self, url: str) -> dict[str, Any]:
        """Restore `url` into a fresh session: which state came back, or the error's one line.
        (`trust=True`: who wrote a checkpoint is not what these faults are about.)"""
        import colab_elastic
        from colab_elastic.errors import ElasticError

        fresh_session(self.shell)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = colab_elastic.restore(url, trust=True, **self.options)
        except ElasticError as exc:
            return {"restored": None, "error": str(exc), "error_type": type(exc).__name__}
        found = {"restored": None, "fallbacks": sorted(report.fallbacks), "skipped": sorted(report.skipped),
                 "ok": report.ok}
        misses = {}
        for state, want in self.want.items():
            diff = differences(self.shell, want)
            if not diff:
                found["restored"] = state
                break
            misses[state] = diff
        else:
            found["differences"] = misses
        return found

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        outcome = {"kind": kind, **fields}
        self.outcomes.append(outcome)
        return outcome

    # Scenarios -----------------------------------------------------------------------------
    def count_ops(self, collect: bool = False) -> tuple[int, int]:
        """Storage operations of a whole write (A, then B) when nothing goes wrong: (up to A's
        commit, in all)."""
        injector = self.faults.INJECTOR

        def body() -> tuple[int, int]:
            url = self.new_url()
            injector.arm(None, None)
            committed_a = self.write_both(url, collect=collect)
            return committed_a, injector.count

        status, ops = fork(body)
        if status != "done":
            raise RuntimeError(f"a clean checkpoint failed: {ops}")
        return int(ops[0]), int(ops[1])

    def kill(self) -> None:
        """SIGKILL at the N-th storage operation of checkpoints A, B and C, then garbage collection."""
        committed_a, total = self.count_ops(collect=True)
        points = spread(total, self.spec.get("points"))
        injector = self.faults.INJECTOR
        for point in points:
            url = self.new_url()

            def body() -> int:
                injector.arm(point, self.faults.kill)
                self.write_both(url, collect=True)
                return injector.count

            status, _ = fork(body)
            outcome = fork(lambda: self.verify(url))
            self.record("SIGKILL mid-checkpoint", point=point, of=total, first_commit=committed_a, writer=status,
                        verify=outcome, leftovers=fork(lambda: _leftovers(url, self.options)))

    def kill_autosave(self) -> None:
        """SIGKILL at the N-th storage operation while auto-checkpoints upload in the background,
        one after every cell of A and B: the restore must give the state after some cell."""
        injector = self.faults.INJECTOR
        cells = CELLS_A + CELLS_B
        states = {f"after cell {i}": expected(cells[:i]) for i in range(1, len(cells) + 1)}

        def write(url: str, point: int | None) -> int:
            os.environ.update(COLAB_ELASTIC_URL=url, COLAB_ELASTIC_AUTO="on",
                              COLAB_ELASTIC_STORAGE_OPTIONS=json.dumps(self.options))
            from colab_elastic.extension import current

            fresh_session(self.shell)
            injector.arm(point, self.faults.kill if point else None)
            run_cells(self.shell, cells)
            assert current().session.autosave.wait(60)
            return injector.count

        status, total = fork(lambda: write(self.new_url(), None))
        assert status == "done", total
        for point in spread(int(total), self.spec.get("points")):
            url = self.new_url()
            status, _ = fork(lambda: write(url, point))
            self.record("SIGKILL mid-auto-checkpoint", point=point, of=total, writer=status,
                        verify=fork(lambda: self.verify_state(url, states)))

    def interrupt_checkpoint(self) -> None:
        """SIGINT (a kernel interrupt) at the N-th storage operation of checkpoint B; then the
        user runs the C cells and checkpoints again: that checkpoint must be the one restored."""
        injector = self.faults.INJECTOR
        committed_a, total = self.count_ops()
        total -= committed_a  # the operations of checkpoint B
        # The last ones always: an interrupt just after LATEST moved is the one a session must survive.
        for point in sorted(set(spread(total, self.spec.get("points"))) | set(range(max(1, total - 3), total + 1))):
            url = self.new_url()

            def body() -> dict[str, Any]:
                from colab_elastic.errors import ElasticError

                self.checkpoint(url)
                run_cells(self.shell, CELLS_B)
                injector.arm(point, self.faults.interrupt)
                interrupted = error = None
                try:
                    self.checkpoint(url)
                    time.sleep(0.01)  # a signal still on its way lands here
                except KeyboardInterrupt:
                    interrupted = True
                except ElasticError as exc:
                    error = str(exc)
                injector.arm(None, None)
                run_cells(self.shell, CELLS_C)
                self.checkpoint(url)  # must work, and be the one restored, whatever the interrupt left
                return {"interrupted": interrupted, "error": error}

            status, result = fork(body)
            self.record("checkpoint interrupted, taken again", point=point, of=total, writer=status, result=result,
                        verify=fork(lambda: self.verify(url)))

    def enospc(self) -> None:
        """Writes fail with ENOSPC after N bytes during checkpoint B; then space comes back."""
        injector = self.faults.INJECTOR

        def measure() -> int:
            url = self.new_url()
            self.checkpoint(url)
            run_cells(self.shell, CELLS_B)
            injector.written = 0
            self.checkpoint(url)
            return injector.written

        status, total = fork(measure)
        assert status == "done", total
        # From nothing written to nearly all of it; then room to spare (manifests differ by a few bytes).
        count = int(self.spec.get("points", 6))
        for space in [total * i // count for i in range(count)] + [total + 65536]:
            url = self.new_url()

            def body() -> dict[str, Any]:
                from colab_elastic.errors import ElasticError

                self.checkpoint(url)
                run_cells(self.shell, CELLS_B)
                injector.space = space
                error = None
                try:
                    self.checkpoint(url)
                except ElasticError as exc:
                    error = str(exc)
                injector.space = None
                return {"error": error}

            status, first = fork(body)
            during = fork(lambda: self.verify(url))
            self.record("ENOSPC after N bytes", point=space, of=total, writer=status, result=first, verify=during)

    def damage(self) -> None:
        """Blobs truncated, bit-flipped, deleted; manifests truncated or garbage; LATEST naming a
        missing manifest: one at a time, each on its own copy of a two-checkpoint location."""
        for fault, target in _DAMAGE:
            url = self.new_url()
            status, written = fork(lambda: self.write_both(url))
            assert status == "done", written
            status, hurt = fork(lambda: _hurt(url, self.options, fault, target))
            assert status == "done", hurt
            self.record(f"{fault} {target}", names=hurt["names"], writer="done", verify=fork(lambda: self.verify(url)))

    def interrupt_restore(self) -> None:
        """SIGINT (a kernel interrupt) at the N-th storage operation or rerun of a restore; then
        the same restore again."""
        injector = self.faults.INJECTOR
        url = self.new_url()
        status, written = fork(lambda: self.write_both(url))
        assert status == "done", written
        from colab_elastic import extension

        run = extension.ShellRunner.run

        def counted(runner: Any, code: str, rng: str | None = None) -> Any:
            injector.tick()
            rerun_ticks.append(injector.count)
            if injector.fired and injector.count == injector.at and inside_cell:
                # The interrupt arrives while the cell runs: IPython sees it raised by the cell.
                code = "raise KeyboardInterrupt"
            return run(runner, code, rng)

        extension.ShellRunner.run = counted  # type: ignore[method-assign]

        rerun_ticks: list[int] = []

        def count() -> tuple[int, list[int]]:
            injector.arm(None, None)
            self.verify(url)
            return injector.count, rerun_ticks

        status, counted_ops = fork(count)
        assert status == "done", counted_ops
        total, cells = counted_ops
        inside_cell = False
        points = [(p, False) for p in spread(int(total), self.spec.get("points"))]
        reruns = self.spec.get("rerun_points", 3)
        for point, inside_cell in points + [(p, True) for p in pick(cells, reruns)]:
            def body() -> dict[str, Any]:
                import colab_elastic

                fresh_session(self.shell)
                injector.arm(point, (lambda: None) if inside_cell else self.faults.interrupt)
                interrupted = False
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        colab_elastic.restore(url, trust=True, **self.options)
                except KeyboardInterrupt:
                    interrupted = True
                time.sleep(0.01)  # a signal still on its way lands here, not in the next restore
                injector.arm(None, None)
                left = sorted(user_names(self.shell))
                again = self.verify_again(url)
                return {"interrupted": interrupted, "left_behind": left, **again}

            self.record("restore interrupted, run again", point=point, of=total, inside_cell=inside_cell,
                        writer="done", verify=fork(body))

    def verify_again(self, url: str) -> dict[str, Any]:
        """Run the restore again in the same session (no fresh one: that is the point)."""
        import colab_elastic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = colab_elastic.restore(url, trust=True, **self.options)
        diff = differences(self.shell, self.want["B"])
        return {"restored": None if diff else "B", "differences": diff, "ok": report.ok}

    def server_restart(self) -> None:
        """The GCS server stopped at the N-th request of checkpoint B and started again 0.3 s later."""
        from tests.servers import GcsServer

        server = GcsServer(root=self.spec["server_root"])
        server.start()
        server.create_bucket("elastic-restart")
        # Uploads in 256 KiB chunks: the larger blobs go up as resumable uploads the restart loses.
        self.options = {**server.storage_options(), "block_size": 2**18}
        self.base = "gs://elastic-restart/r"
        injector = self.faults.INJECTOR
        _, total = self.count_ops()
        for point in spread(total, self.spec.get("points")):
            url = self.new_url()

            def stop_and_restart() -> None:
                server.stop()
                threading.Timer(0.3, server.start).start()

            def body() -> dict[str, Any]:
                from colab_elastic.errors import ElasticError

                injector.arm(point, stop_and_restart)
                error = None
                try:
                    self.write_both(url)
                except ElasticError as exc:
                    error = str(exc)
                injector.arm(None, None)
                return {"error": error}

            status, result = fork(body)
            _wait_for(server)
            self.record("GCS server restarted mid-upload", point=point, of=total, writer=status, result=result,
                        verify=fork(lambda: self.verify(url)))
        server.stop()


    def race(self) -> None:
        """Two kernels (processes of their own) checkpointing to one URL at once, several times."""
        import subprocess
        import tempfile

        url, steps = self.new_url(), int(self.spec.get("steps", 4))
        start_at = time.time() + 3.0  # both are set up by then, and start together
        racers = {}
        for who in ("k1", "k2"):
            spec = {"racer": who, "url": url, "options": self.options, "steps": steps, "start_at": start_at}
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
                json.dump(spec, file)
            racers[who] = subprocess.Popen([sys.executable, "-m", "tests.reliability.harness", file.name],
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        results = {}
        for who, process in racers.items():
            out, _ = process.communicate(timeout=120)
            results[who] = json.loads(out.strip().splitlines()[-1]) if process.returncode == 0 else {"crashed": out}
        states = {f"{who}@{i}": racer_state(who, i) for who in racers for i in range(1, steps + 1)}
        for who, result in results.items():
            for step, (checkpoint, error) in enumerate(result.get("checkpoints", []), start=1):
                outcome = fork(lambda: self.verify_state(url, states, at=checkpoint)) if checkpoint else None
                self.record("two kernels checkpointing at once", point=f"{who}@{step}", writer="done",
                            result={"error": error, "crashed": result.get("crashed")}, verify=outcome)
        latest = fork(lambda: self.verify_state(url, states))
        committed = sorted(f"{w}@{i}" for w, r in results.items()
                           for i, (c, _) in enumerate(r.get("checkpoints", []), start=1) if c)
        self.record("two kernels checkpointing at once", point="LATEST", writer="done",
                    result={"committed": committed}, verify=latest)

    def verify_state(self, url: str, states: dict[str, dict[str, Any]], at: str | None = None) -> dict[str, Any]:
        from colab_elastic.errors import ElasticError
        from colab_elastic.extension import current

        fresh_session(self.shell)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = current().session.restore(url, self.options, trust=True, at=at)
        except ElasticError as exc:
            return {"restored": None, "error": str(exc), "error_type": type(exc).__name__}
        for name, want in states.items():
            if not differences(self.shell, want):
                return {"restored": name, "ok": report.ok, "fallbacks": sorted(report.fallbacks)}
        return {"restored": None, "differences": sorted(user_names(self.shell))}


def _wait_for(server: Any) -> None:
    """The restart the writer's timer started happened in the (now gone) child: make sure."""
    import urllib.request

    try:
        urllib.request.urlopen(f"{server.endpoint}/storage/v1/b", timeout=2).read()
    except OSError:
        server.process = None
        server.start()


_DAMAGE = [
    ("truncated", "blob"), ("bit-flipped", "blob"), ("deleted", "blob"),
    ("truncated", "manifest"), ("garbage", "manifest"), ("deleted", "manifest named by LATEST"),
    ("garbage", "LATEST"), ("truncated", "every manifest"),
]


def _leftovers(url: str, options: dict[str, Any]) -> list[str]:
    """After garbage collection: every file at `url` that is neither LATEST, nor a manifest, nor
    a blob a kept manifest names (what a killed write left behind and nothing will clean)."""
    from colab_elastic.errors import CorruptCheckpointError
    from colab_elastic.retention import collect_garbage
    from colab_elastic.store import Store

    store = Store(url, options)
    if store.pointer() is None:
        return []  # nothing committed: garbage collection leaves such a location alone
    collect_garbage(store, keep=3, grace=0)
    wanted = {store.path("LATEST")}
    for checkpoint in store.checkpoint_ids() or []:
        wanted.add(store.path("manifests", f"{checkpoint}.json"))
        try:
            manifest = store.manifest(checkpoint)
        except CorruptCheckpointError:
            continue
        entries = list(manifest.get("groups", [])) + list((manifest.get("files") or {}).get("entries", []))
        wanted.update(store.path("blobs", e["blob"]["key"]) for e in entries if isinstance(e.get("blob"), dict))
    try:
        found = store.fs.find(store.root)
    except FileNotFoundError:
        return []
    return sorted(str(p)[len(store.root) + 1:] for p in found if str(p).rstrip("/") not in wanted)


def _hurt(url: str, options: dict[str, Any], fault: str, target: str) -> dict[str, Any]:
    """Damage the newest checkpoint at `url`; returns the names whose blob was hurt."""
    from colab_elastic.store import Store

    store = Store(url, options)
    fs = store.fs
    pointer = json.loads(fs.cat_file(store.path("LATEST")))
    manifest = json.loads(fs.cat_file(store.path(pointer["manifest"])))
    names: list[list[str]] = []
    if target == "blob":
        # The largest blob of the newest checkpoint that an earlier one does not share.
        entries = [g for g in manifest["groups"] if "blob" in g]
        entry = max(entries, key=lambda g: g["blob"]["size"])
        names.append(entry["decision"]["names"])
        paths = [store.path("blobs", entry["blob"]["key"])]
    elif target == "LATEST":
        paths = [store.path("LATEST")]
    elif target == "every manifest":
        paths = [p for p in fs.ls(store.path("manifests"), detail=False)]
    else:
        paths = [store.path(pointer["manifest"])]
    for path in paths:
        data = fs.cat_file(path)
        if fault == "deleted":
            fs.rm_file(path)
            continue
        if fault == "truncated":
            data = data[: len(data) // 2]
        elif fault == "bit-flipped":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1:]
        else:
            data = b"\x00garbage\xff" * 7
        fs.pipe_file(path, data)
    return {"names": names}


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    if "racer" in spec:
        print(json.dumps(racer(spec)))
        return
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a process with threads
        harness = Harness(spec)
        for scenario in spec["scenarios"]:
            getattr(harness, scenario)()
    print(json.dumps({"outcomes": harness.outcomes, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
