"""A summary table of the fidelity scenarios at the end of the run."""

from __future__ import annotations

from collections import Counter

_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if "test_fidelity.py::" not in report.nodeid:
        return
    if report.when == "call" or report.outcome != "passed":
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        if report.when == "call" or report.outcome == "failed":
            _OUTCOMES.setdefault(report.nodeid, outcome)
        elif report.skipped:
            _OUTCOMES.setdefault(report.nodeid, outcome)


def pytest_terminal_summary(terminalreporter):
    if not _OUTCOMES:
        return
    counts = Counter(_OUTCOMES.values())
    tr = terminalreporter
    tr.section("fidelity scenarios")
    tr.write_line(f"{'scenarios':>10} {'equal':>6} {'xfailed':>8} {'failing':>8} {'other':>6}")
    other = len(_OUTCOMES) - counts["passed"] - counts["xfailed"] - counts["failed"]
    tr.write_line(f"{len(_OUTCOMES):>10} {counts['passed']:>6} {counts['xfailed']:>8} {counts['failed']:>8} {other:>6}")
    failing = sorted(node.split("[", 1)[-1].rstrip("]") for node, o in _OUTCOMES.items() if o == "failed")
    if failing:
        tr.write_line("failing: " + ", ".join(failing))
