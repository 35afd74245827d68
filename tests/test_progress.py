"""Progress bars end as one line wherever they are read: a notebook saved by nbclient (no widget
manager), the outputs a jupyter_client reader collects (the demo), and a non-terminal stderr.
Where ipywidgets is installed (the Colab stack) the bar is also a widget, for frontends that draw one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from colab_elastic.kernel import Kernel
from colab_elastic.progress import WIDGET_VIEW

BARS = ("checkpoint:", "fetch:", "restore:")
CELLS = ["%load_ext colab_elastic", "import time\nnumbers = list(range(50_000))\ntime.sleep(0.3)",
         "later = numbers[:10]", "%elastic checkpoint {url}", "%elastic restore {url}"]


def _bar_outputs(texts: list[str]) -> dict[str, str]:
    found = {}
    for text in texts:
        for bar in BARS:
            if text.startswith(bar):
                assert bar not in found, f"two displays of the {bar} bar: {texts}"
                found[bar] = text
    return found


def _assert_final(bars: dict[str, str], everything: str) -> None:
    assert set(bars) == set(BARS), everything
    for bar, text in bars.items():
        assert "\n" not in text.strip() and "100%" in text, f"{bar} shows {text!r}"
    assert " 0%|" not in everything, everything


@pytest.mark.kernel
def test_a_saved_notebook_shows_each_bar_once_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_ELASTIC_PROGRESS", "auto")
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "off")
    url = str(tmp_path / "ckpt")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.format(url=url)) for c in CELLS])
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    texts = [o.get("data", {}).get("text/plain", "") or o.get("text", "") for o in outputs]
    _assert_final(_bar_outputs(texts), "\n".join(texts))
    widgets = [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    assert len(widgets) == (len(BARS) if importlib.util.find_spec("ipywidgets") else 0), outputs


@pytest.mark.kernel
def test_a_jupyter_client_reader_sees_the_finished_bar(tmp_path):
    with Kernel(cwd=str(tmp_path), env={"COLAB_ELASTIC_PROGRESS": "auto", "COLAB_ELASTIC_AUTO": "off"}) as kernel:
        outs = [kernel.run(c.format(url=tmp_path / "ckpt")) for c in CELLS]
    for out in outs:
        out.raise_for_error()
    texts = [d.get("text/plain", "") for out in outs for d in out.data]
    everything = "\n".join(out.text + out.stderr for out in outs)
    _assert_final(_bar_outputs(texts), everything)


@pytest.mark.parametrize("mode", ["auto", "text"])
def test_a_bar_on_a_non_terminal_stderr_is_one_final_line(mode):
    script = """
import threading
from colab_elastic.progress import progress_bar
bar = progress_bar(4_000_000, "checkpoint", "B")
workers = [threading.Thread(target=lambda: [bar.update(1000) for _ in range(1000)]) for _ in range(4)]
for w in workers: w.start()
for w in workers: w.join()
bar.set_postfix_str("cell 3")
bar.close()
bar.close()
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLAB_ELASTIC_PROGRESS": mode})
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("\n") == 1 and "\r" not in run.stderr, repr(run.stderr)
    assert run.stderr.startswith("checkpoint: 100%|") and "4.00M/4.00M" in run.stderr, run.stderr
