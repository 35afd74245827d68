"""The fault tally: every test here adds what it injected, and the end of the run prints it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class Counts:
    injected: int = 0
    equal: int = 0  # restores that came back complete and equal to a committed state
    recomputed: int = 0  # ... of which a damaged group was recomputed, and named
    errors: int = 0  # a clear one-line error where nothing could be restored
    seconds: float = 0.0


@dataclass
class Tally:
    """Faults by backend and kind."""

    kinds: dict[str, dict[str, Counts]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counts)))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, backend: str, kind: str, *, equal: bool = False, recomputed: bool = False,
            error: bool = False) -> None:
        counts = self.kinds[backend][kind]
        counts.injected += 1
        counts.equal += equal
        counts.recomputed += recomputed
        counts.errors += error

    def lines(self) -> list[str]:
        out = []
        for backend, kinds in sorted(self.kinds.items()):
            total = Counts()
            out.append(f"{backend} ({self.seconds[backend]:.1f} s):")
            for kind, c in sorted(kinds.items()):
                out.append(f"  {kind:<40} {c.injected:>5} injected  {c.equal:>5} restored equal"
                           f"  {c.recomputed:>3} recomputed+named  {c.errors:>3} one-line errors")
                total.injected += c.injected
                total.equal += c.equal
                total.recomputed += c.recomputed
                total.errors += c.errors
            out.append(f"  {'all':<40} {total.injected:>5} injected  {total.equal:>5} restored equal"
                       f"  {total.recomputed:>3} recomputed+named  {total.errors:>3} one-line errors")
        return out


_TALLY = Tally()


@pytest.fixture(scope="session")
def fault_tally() -> Tally:
    return _TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TALLY.kinds:
        terminalreporter.write_sep("=", "faults injected")
        for line in _TALLY.lines():
            terminalreporter.write_line(line)
