"""Every coverage case across a real disconnect: the change is seen, the value comes back equal.

One kernel pair per group of cases (tests/coverage/cases.py, run by tests/coverage/runner.py).
A case passes when it is supported, too conservative (equal, but recomputed or stored more
than needed) or recomputed (it cannot be serialized, and its cells were rerun correctly); it
fails when the change went unseen, the value came back different, or it could not be restored.
The light set runs always; the full set (`coverage-full` extra) under `-m coverage_full`.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.coverage.cases import CASES, Case
from tests.coverage.known import KNOWN_FAILING
from tests.coverage.runner import FAILING, Outcome, run_group

pytestmark = pytest.mark.kernel
MODULES = {"scikit-learn": "sklearn", "pillow": "PIL", "beautifulsoup4": "bs4", "python-dateutil": "dateutil",
           "PyYAML": "yaml", "more-itertools": "more_itertools", "python": "sys"}


def importable(case: Case) -> bool:
    name = MODULES.get(case.library, case.library)
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each group runs once, when its first case asks for it, with the cases that can run here."""
    runs: dict[str, dict[str, Outcome] | Exception] = {}

    def get(case: Case) -> Outcome:
        if case.group not in runs:
            cases = [c for c in CASES if c.group == case.group and importable(c)]
            try:
                found, _ = run_group(cases, tmp_path_factory.mktemp(f"coverage-{case.group}"))
                runs[case.group] = {o.case.id: o for o in found}
            except (RuntimeError, AssertionError, OSError) as exc:
                runs[case.group] = exc
        run = runs[case.group]
        if isinstance(run, Exception):
            pytest.fail(f"group {case.group!r} did not run through: {run}")
        return run[case.id]

    return get


def _param(case: Case):
    marks = [pytest.mark.coverage_full] if case.full else []
    if case.id in KNOWN_FAILING:
        marks.append(pytest.mark.xfail(reason=KNOWN_FAILING[case.id], strict=False))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case_survives_a_disconnect(case: Case, outcomes):
    if not importable(case):
        pytest.skip(f"{case.library} is not installed (the coverage extras install it)")
    outcome = outcomes(case)
    assert outcome.status != FAILING, f"{case.library} {case.cls}: {outcome.why()}"
