"""A summary table of the fidelity scenarios at the end of the run."""

from __future__ import annotations

import sys
from collections import Counter

_OUTCOMES: dict[str, str] = {}  # scenario -> passed | xfailed | failed | skipped


def pytest_runtest_logreport(report):
    if "test_fidelity.py::" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        scenario = report.nodeid.split("[", 1)[-1].rstrip("]")
        _OUTCOMES[scenario] = "xfailed" if report.skipped and hasattr(report, "wasxfail") else report.outcome


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    module = sys.modules.get("tests.fidelity.test_fidelity")
    counts = Counter(_OUTCOMES.values())
    write = terminalreporter.write_line
    terminalreporter.section(f"fidelity scenarios ({getattr(module, 'STACK', '?')} stack)")
    write(f"{'scenarios':>9}  {'equal':>5}  {'xfailed (known bugs)':>20}  {'failing':>7}  {'skipped':>7}")
    write(f"{len(_OUTCOMES):>9}  {counts['passed']:>5}  {counts['xfailed']:>20}  {counts['failed']:>7}  {counts['skipped']:>7}")
    failing = sorted(name for name, outcome in _OUTCOMES.items() if outcome == "failed")
    if failing:
        write("failing: " + ", ".join(failing))
    seconds = getattr(module, "BATCH_SECONDS", {})
    if seconds:
        write("batches (s): " + ", ".join(f"{batch} {s:.1f}" for batch, s in seconds.items()))
