"""Run coverage cases in real kernels, one kernel pair per group of cases.

For a group: the first kernel runs every case's cells (its imports, the cells that create the
value, the cells that change it in place, and a cell that only looks at it), then, in silent
executions that colab_elastic does not record, reports what the recorder wrote for each cell,
compares each value with one rebuilt from its cells (the case must be deterministic), measures
which serializers round-trip it, and checkpoints. The kernel is SIGKILLed; a new one restores
and compares each restored value with one rebuilt from its cells there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colab_elastic.kernel import Kernel
from tests.coverage.cases import Case
from tests.fidelity.test_fidelity import start
from tests.kernels import restore_in_new_kernel

PROBE = (Path(__file__).parent / "probe.py").read_text()
ENV = {"COLAB_ELASTIC_AUTO": "off", "MPLBACKEND": "Agg"}
# Long enough that storing the value is cheaper than rerunning its cell (the planner's latency
# per blob is 5 ms each way): a value the plan recomputes is then one it could not store.
SLOW = "__import__('time').sleep(0.03)\n"

BY_DESIGN = "a class defined in the notebook is recreated by its cell"
SUPPORTED, CONSERVATIVE, RECOMPUTED, FAILING = "supported", "too conservative", "recomputed", "failing"


@dataclass
class Outcome:
    """What happened to one case across one disconnect."""

    case: Case
    detected: bool | None = None  # the change cell recorded as writing the variable (None: no change cell)
    spurious: bool = False  # the cell that only looks at it recorded as writing it
    action: str = ""  # the plan's: store, recompute or lost
    reason: str = ""  # the plan's reason
    serializer: str = ""  # colab_elastic's path for this value: pickle, dill, or why it fails
    trips: dict[str, str] = field(default_factory=dict)  # independent serializer -> equal / differs / error
    sane: bool | None = None  # the original equals a rebuilt value (the case is deterministic)
    equal: bool | None = None  # the restored value equals a rebuilt one
    flagged: bool = False  # the restore's own verification said it differs from the original
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if (not self.sane or self.equal is not True or self.detected is False or self.flagged
                or self.action not in ("store", "recompute")):
            return FAILING
        if self.action == "recompute" and BY_DESIGN in self.reason and not self.spurious:
            return SUPPORTED  # a notebook class is never stored: its cell is cheap and recreates it
        if self.action == "recompute" and not any(v == "equal" for v in self.trips.values()):
            return CONSERVATIVE if self.spurious else RECOMPUTED
        if self.action == "recompute" or self.spurious:
            return CONSERVATIVE
        return SUPPORTED

    def why(self) -> str:
        """The notes a reader needs for this outcome."""
        notes = list(self.notes)
        if self.sane is False:
            notes.append("the case is not deterministic: the original differs from its own rebuild")
        if self.detected is False:
            notes.append("in-place change not detected")
        if self.spurious:
            notes.append("a cell that only reads it is recorded as changing it")
        if self.action == "recompute":
            stores = [k for k, v in self.trips.items() if v == "equal"]
            notes.append(f"recomputed ({self.reason})" + (f"; {', '.join(stores)} round-trips it" if stores else ""))
        if self.action == "lost":
            notes.append(f"lost: {self.reason}")
        if self.action == "store" and self.equal is False:
            notes.append("restored value differs")
        if self.flagged:
            notes.append("the restore said it differs from the original" + (" (a false alarm)" if self.equal else ""))
        return "; ".join(dict.fromkeys(notes))


def _silent(kernel: Kernel, body: str, out: Path, args: Any) -> Any:
    """Run the probe plus `body` (which reads ARGS and sets RESULT) where colab_elastic sees no cell."""
    (out.parent / f"{out.stem}.args.json").write_text(json.dumps(args))
    source = (PROBE + f"\nimport json\nARGS = json.load(open({str(out.parent / f'{out.stem}.args.json')!r}))\n"
              f"NS = get_ipython().user_ns\n{body}\nwith open({str(out)!r}, 'w') as fh:\n    json.dump(RESULT, fh)\n")
    code = f"exec({source!r}, {{'get_ipython': get_ipython, '__name__': 'coverage_probe'}})"
    content = kernel.client.execute_interactive(code, silent=True, store_history=False, timeout=300,
                                                output_hook=lambda msg: None)["content"]
    if content["status"] != "ok":
        raise RuntimeError(f"probe failed: {content.get('ename')}: {content.get('evalue')}")
    return json.loads(out.read_text())


EXECUTIONS = """
from colab_elastic.extension import current
RESULT = [[e.code.strip(), sorted({n for n, _ in e.writes})] for e in current().session.graph.executions]
"""

MEASURE = """
RESULT = {}
for name, cells, state in ARGS:
    value = NS[name]
    sane, note = compare(value, cells, name, state, NS)
    RESULT[name] = {"sane": sane, "note": note, "trips": round_trips(value, state, NS),
                    "serializer": stored_by(value, name, NS)}
"""

CHECKPOINT = """
import warnings
from colab_elastic.extension import current
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # an unpicklable value warns: the plan says it too
    result = current().session.checkpoint(ARGS)
RESULT = [d.to_json() for d in result.plan.groups]
"""

COMPARE = """
from colab_elastic.extension import current
differs = current().session.last_restore.differs  # what our own verification said
RESULT = {}
for name, cells, state in ARGS:
    if name not in NS:
        RESULT[name] = [None, "not restored", False]
    else:
        RESULT[name] = [*compare(NS[name], cells, name, state, NS), name in differs]
"""


def run_group(cases: list[Case], root: Path) -> tuple[list[Outcome], float]:
    """Run the cases of one group across one disconnect; returns their outcomes and the seconds taken."""
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    outcomes = {c.var: Outcome(c) for c in cases}
    ran: dict[str, dict[str, str]] = {}  # var -> role -> stripped code of the cell run for it
    url = str(root / "ckpt")
    first = start(lambda: Kernel(cwd=str(root), env=ENV, log=str(root / "kernel1.log")))
    try:
        first.run("%load_ext colab_elastic").raise_for_error()
        for case in cases:
            cells = [("import", case.imports)] if case.imports else []
            cells += [("create", code) for code in case.create[:-1]] + [("create", SLOW + case.create[-1])]
            cells += [("change", code) for code in case.change] + [("look", case.look)]
            ran[case.var] = {}
            for role, code in cells:
                out = first.run(code)
                ran[case.var][role] = code.strip()
                if out.error is not None:
                    outcomes[case.var].notes.append(f"{role} cell raised {out.error[0]}: {out.error[1][:160]}")
        executions = _silent(first, EXECUTIONS, root / "executions.json", None)
        writes = {code: set(names) for code, names in executions}  # cells are unique per case
        for case in cases:
            outcome, roles = outcomes[case.var], ran[case.var]
            if case.change:
                outcome.detected = case.var in writes.get(roles["change"], set())
            outcome.spurious = case.var in writes.get(roles["look"], set())
        decisions = _silent(first, CHECKPOINT, root / "plan.json", url)
        for decision in decisions:
            for name in decision["names"]:
                if name in outcomes:
                    outcomes[name].action, outcomes[name].reason = decision["action"], decision["reason"]
        # After the checkpoint: a `state` may consume the value (an iterator's remaining items).
        args = [[c.var, c.rebuild, c.state] for c in cases]
        measured = _silent(first, MEASURE, root / "measure.json", args)
        for case in cases:
            found = measured[case.var]
            outcome = outcomes[case.var]
            outcome.sane, outcome.trips, outcome.serializer = found["sane"], found["trips"], found["serializer"]
            if found["note"]:
                outcome.notes.append(f"comparing the original: {found['note']}")
    finally:
        first.kill()
    second, restored = start(lambda: restore_in_new_kernel(root, f"%elastic restore {url}", ENV,
                                                           log=str(root / "kernel2.log")))
    try:
        (root / "restore.txt").write_text(restored.text)
        compared = _silent(second, COMPARE, root / "restored.json", args)
    finally:
        second.close()
    for case in cases:
        equal, note, outcomes[case.var].flagged = compared[case.var]
        outcomes[case.var].equal = equal
        if note:
            outcomes[case.var].notes.append(f"after the restore: {note}")
    return list(outcomes.values()), time.perf_counter() - started
