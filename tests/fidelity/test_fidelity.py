"""Restored sessions equal their originals, judged by expressions evaluated in both kernels.

For each batch of scenarios (tests/fidelity/scenarios.py): one kernel runs their cells, the
checks are evaluated (in a silent execution, which colab_elastic does not record), the session
is checkpointed, the `after` checks run, the kernel is SIGKILLed; a new kernel in the same cwd
restores and evaluates the same expressions. One test per scenario compares the two answers.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import IPython
import pytest

from colab_elastic.kernel import CellOutput, Kernel
from tests.fidelity.scenarios import DELETED_BEFORE_RESTORE, SCENARIOS, Scenario
from tests.kernels import restore_in_new_kernel

pytestmark = pytest.mark.kernel
T = TypeVar("T")

STACK = "colab" if IPython.version_info[0] < 8 else "latest"
CANON = (Path(__file__).parent / "canon.py").read_text()
ENV = {"COLAB_ELASTIC_AUTO": "off", "MPLBACKEND": "Agg"}
# Rows of the restore report that name variables not back as they were.
PROBLEM_ROWS = ("differs from the original", "aliasing differs", "NOT restored")
BATCH_SECONDS: dict[str, float] = {}  # batch -> seconds for both kernels (the summary prints them)


@dataclass
class BatchRun:
    """One batch across one disconnect: what each kernel said for every expression."""

    original: dict[str, Any] = field(default_factory=dict)
    restored: dict[str, Any] = field(default_factory=dict)
    cell_errors: dict[str, list[str]] = field(default_factory=dict)  # scenario -> unexpected cell outcomes
    restore_text: str = ""


def evaluate(kernel: Kernel, expressions: list[str], out: Path) -> dict[str, Any]:
    """Evaluate in the user namespace without colab_elastic seeing a cell (silent: no events)."""
    source = (CANON + f"\nimport json\nwith open({str(out)!r}, 'w') as fh:\n"
              f"    json.dump(evaluate({expressions!r}, get_ipython().user_ns), fh)\n")
    code = f"exec({source!r}, {{'get_ipython': get_ipython, '__name__': 'fidelity_canon'}})"
    content = kernel.client.execute_interactive(code, silent=True, store_history=False, timeout=120,
                                                output_hook=lambda msg: None)["content"]
    assert content["status"] == "ok", content
    return json.loads(out.read_text())


def start(make: Callable[[], T]) -> T:
    """Start a kernel, once more if it died at birth: with other kernels starting on the machine,
    the port jupyter_client chose can be taken before the kernel binds it (ZMQError: Address in use)."""
    for attempt in (1, 2):
        # colab_elastic.kernel.Kernel does not close its log file when the start fails.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                return make()
            except RuntimeError as exc:
                if attempt == 2 or "Kernel died before replying" not in str(exc):
                    raise
    raise AssertionError("unreachable")


def problem_lines(report: str) -> list[str]:
    return [line for line in report.splitlines() if any(row in line for row in PROBLEM_ROWS)]


def run_batch(batch: str, root: Path) -> BatchRun:
    scenarios = [sc for sc in SCENARIOS if sc.batch == batch]
    checks = [e for sc in scenarios for e in sc.checks]
    after = [e for sc in scenarios for e in sc.after]
    run = BatchRun()
    started = time.perf_counter()
    first = start(lambda: Kernel(cwd=str(root), env=ENV, log=str(root / "kernel1.log")))
    try:
        first.run("%load_ext colab_elastic").raise_for_error()
        for sc in scenarios:
            for i, code in enumerate(sc.cells):
                out: CellOutput = first.run(code)
                if (out.error is not None) != (i in sc.fails):
                    run.cell_errors.setdefault(sc.name, []).append(f"cell {i}: {out.error or 'did not raise'}")
        run.original = evaluate(first, checks, root / "original.json")
        first.run(f"%elastic checkpoint {root / 'ckpt'}").raise_for_error()
        run.original.update(evaluate(first, after, root / "original-after.json"))
    finally:
        first.kill()
    for name in DELETED_BEFORE_RESTORE.get(batch, []):
        (root / name).unlink()
    second, restored = start(lambda: restore_in_new_kernel(root, f"%elastic restore {root / 'ckpt'}", ENV,
                                                           log=str(root / "kernel2.log")))
    try:
        run.restore_text = restored.text
        (root / "restore.txt").write_text(restored.text)
        run.restored = evaluate(second, checks, root / "restored.json")
        run.restored.update(evaluate(second, after, root / "restored-after.json"))
    finally:
        second.close()
    BATCH_SECONDS[batch] = time.perf_counter() - started
    return run


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Each batch runs once, when its first scenario asks for it (a batch that broke, once too)."""
    runs: dict[str, BatchRun | Exception] = {}

    def get(batch: str) -> BatchRun:
        if batch not in runs:
            try:
                runs[batch] = run_batch(batch, tmp_path_factory.mktemp(f"fidelity-{batch}"))
            except (RuntimeError, AssertionError, OSError) as exc:
                runs[batch] = exc
        run = runs[batch]
        if isinstance(run, Exception):
            pytest.fail(f"batch {batch!r} did not run through: {run}")
        return run

    return get


def _param(sc: Scenario):
    marks = []
    if sc.xfail and STACK in sc.xfail_stacks:
        marks.append(pytest.mark.xfail(strict=True, reason=sc.xfail))
    return pytest.param(sc, id=sc.name, marks=marks)


@pytest.mark.parametrize("scenario", [_param(sc) for sc in SCENARIOS])
def test_restored_session_equals_original(scenario: Scenario, batches):
    run = batches(scenario.batch)
    assert not run.cell_errors.get(scenario.name), f"the original cells misbehaved: {run.cell_errors[scenario.name]}"
    expressions = [*scenario.checks, *scenario.after]
    differ = {e: (run.original[e], run.restored[e]) for e in expressions if run.original[e] != run.restored[e]}
    assert not differ, "differs after restore (original, restored):\n" + "\n".join(
        f"  {e}: {a} != {b}" for e, (a, b) in differ.items()) + "\n" + run.restore_text
    flagged = [line for line in problem_lines(run.restore_text) if re.search(rf"\b{scenario.prefix}", line)]
    assert not flagged, f"the restore report flags this scenario although it came back equal: {flagged}"
