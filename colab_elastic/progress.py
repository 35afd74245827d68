"""Progress bars that end as one line, wherever they are read.

`COLAB_ELASTIC_PROGRESS` = `auto` (default), `text`, `widget` or `off`.

In a kernel (`auto`) a bar is a display, replaced when the bar closes by the finished bar: a
tqdm widget where ipywidgets is installed (Colab ships 7.7.1), else a line of text updated in
place. A frontend without a widget manager (nbclient, a saved or exported notebook, the demo)
shows a display's text form: that is the finished bar, one line, never the `0%` it started as.

Anywhere else, and with `text`, the bar goes to stderr: drawn live on a terminal, written once
as one final line when stderr is a file or a pipe (a log holds no trail of half-drawn bars).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from typing import Any


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
REFRESH_SECONDS = 0.5  # a text display is redrawn at most this often


class _NoProgress:
    """A progress bar that shows nothing (same API, so callers never branch)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Count:
    """What a text bar counts. `update` comes from several threads at once (blobs move in parallel)."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix = ""
        self.closed = False
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def line(self) -> str:
        """The bar as tqdm draws it: `checkpoint: 100%|██████████| 2.09k/2.09k [00:00<00:00, 1.2MB/s]`."""
        from tqdm import std as tqdm_std  # on first use: `%load_ext` need not pay for tqdm

        return tqdm_std.tqdm.format_meter(self.n, self.total, time.monotonic() - self.started, prefix=self.desc,
                                          unit=self.unit, unit_scale=self.unit == "B", postfix=self.postfix or None)

    def _finish(self) -> bool:
        """Mark closed; False if it already was. The final line carries no postfix (the last
        cell's), and a total that was an estimate grows to what was counted."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            self.total = max(self.total, self.n)
        self.postfix = ""
        return True


class _FinalLine(_Count):
    """Nothing while counting, then the finished bar as one line on stderr."""

    def close(self) -> None:
        if self._finish():
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()


class _DisplayedLine(_Count):
    """A line of text in the notebook, updated in place (from the kernel's own thread only: a
    display sent from a worker thread could land under another cell)."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        super().__init__(total, desc, unit)
        from IPython.display import display

        self._handle = display({"text/plain": self.line()}, raw=True, display_id=True)
        self._shown = time.monotonic()

    def _refresh(self) -> None:
        self._handle.update({"text/plain": self.line()}, raw=True)
        self._shown = time.monotonic()

    def update(self, n: int = 1) -> None:
        super().update(n)
        if threading.current_thread() is threading.main_thread() and time.monotonic() - self._shown >= REFRESH_SECONDS:
            self._refresh()

    def set_postfix_str(self, s: str) -> None:
        super().set_postfix_str(s)
        if threading.current_thread() is threading.main_thread():
            self._refresh()

    def close(self) -> None:
        if self._finish():
            self._refresh()


class _Widget:
    """A tqdm widget, displayed by us with a display id so that closing it can replace the
    display's text form (the `0%` snapshot taken when it was shown) by the finished bar. The
    bundle is built here: ipywidgets 7 displays itself without honouring a display id."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        from IPython.display import display
        from tqdm.notebook import tqdm as tqdm_notebook

        self._bar = tqdm_notebook(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=True, display=False)
        self._handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self) -> dict[str, Any]:
        container = self._bar.container
        view = {"version_major": 2, "version_minor": 0, "model_id": container.model_id}
        return {"text/plain": repr(container), WIDGET_VIEW: view}

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix_str(self, s: str) -> None:
        self._bar.set_postfix_str(s)

    def close(self) -> None:
        if self._bar.disable:
            return
        self._bar.set_postfix_str("", refresh=False)
        if self._bar.n > self._bar.total:  # the total was an estimate: end full, not past it
            self._bar.total = self._bar.container.children[0].max = self._bar.n
        self._bar.close()
        self._handle.update(self._bundle(), raw=True)


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A bar over `total` steps, or bytes with `unit="B"` (never created inside captured output)."""
    mode = os.environ.get("COLAB_ELASTIC_PROGRESS", "auto")
    if mode == "off" or total == 0:
        return _NoProgress()
    kernel = mode == "auto" and _in_kernel()
    if mode == "widget" or (kernel and importlib.util.find_spec("ipywidgets") is not None):
        return _Widget(total, desc, unit)
    if kernel:
        return _DisplayedLine(total, desc, unit)
    if _on_terminal():
        from tqdm import std as tqdm_std

        return tqdm_std.tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=True,
                             file=sys.stderr, mininterval=0.2)
    return _FinalLine(total, desc, unit)
