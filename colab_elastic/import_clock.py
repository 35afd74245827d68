"""How long a restore spends importing modules: the part of its time that neither storage
speed nor the plan changes (a loaded DataFrame imports pandas as surely as the cell that made
it). Timed where a restore imports: the classes and modules a blob names, and the libraries
a replayed setting needs. Pure: no IPython, no fsspec.
"""

from __future__ import annotations

import importlib
import sys
import time
from types import ModuleType
from typing import Callable, TypeVar

T = TypeVar("T")


class ImportClock:
    """Seconds spent in calls that added modules to `sys.modules`, and how many they added.
    Not reentrant: the calls it times do not call back into it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.modules = 0

    def timed(self, call: Callable[..., T], *args: object) -> T:
        """`call(*args)`, its time counted if it imported anything."""
        before = len(sys.modules)
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            added = len(sys.modules) - before
            if added > 0:
                self.seconds += time.perf_counter() - started
                self.modules += added

    def import_module(self, name: str, package: str | None = None) -> ModuleType:
        """`importlib.import_module`, timed (what a pickled module reference calls)."""
        found = sys.modules.get(name) if package is None else None
        return found if found is not None else self.timed(importlib.import_module, name, package)
