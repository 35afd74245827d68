"""A recorder over a plain namespace, driven one cell at a time: the recorder's own view of a
cell's effects, without IPython (see `Cells`)."""

from __future__ import annotations

import warnings
from typing import Any

from colab_elastic.history import HistoryGraph
from colab_elastic.recorder import Recorder


class Cells:
    """`run` executes one cell between the recorder's two events and returns the names it wrote;
    `walks` counts the fingerprints taken anew, after a cell, of the names in `watched`."""

    def __init__(self, watched: tuple[str, ...], **values: Any) -> None:
        self.ns = dict(values)
        self.recorder = Recorder(self.ns, HistoryGraph())
        self.walks = 0
        original = self.recorder.fingerprint

        def counting(name, *, fresh=False, portable=False):
            if fresh and name in watched:
                self.walks += 1
            return original(name, fresh=fresh, portable=portable)

        self.recorder.fingerprint = counting

    def run(self, code: str) -> set[str]:
        self.recorder.before(code)
        with warnings.catch_warnings():  # what the cell's libraries warn of (pandas: chained, in place)
            warnings.simplefilter("ignore")
            exec(compile(code, "<cell>", "exec"), self.ns)
        return {name for name, _ in self.recorder.after().writes}
