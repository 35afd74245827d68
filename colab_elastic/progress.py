"""Progress bars: tqdm widgets where they render, plain text bars elsewhere.

`COLAB_ELASTIC_PROGRESS` = `auto` (default), `text`, `widget` or `off`. `auto` draws a
widget only inside a kernel with ipywidgets installed (Colab ships 7.7.1); anywhere else it
draws a text bar on stderr, which every frontend shows.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from tqdm import std as tqdm_std


class _NoProgress:
    """A progress bar that shows nothing (same API, so callers never branch)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A bar over `total` steps, or bytes with `unit="B"` (never created inside captured output)."""
    mode = os.environ.get("COLAB_ELASTIC_PROGRESS", "auto")
    if mode == "off" or total == 0:
        return _NoProgress()
    widgets = importlib.util.find_spec("ipywidgets") is not None
    if mode == "widget" or (mode == "auto" and widgets and _in_kernel()):
        from tqdm.notebook import tqdm as tqdm_notebook

        return tqdm_notebook(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=True)
    return tqdm_std.tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=True,
                         file=sys.stderr, mininterval=0.2)
