"""The whole story on this machine: record a notebook in a real kernel, checkpoint, kill the
kernel, restore in a new one, and compare the two sessions value by value.

Run with `colab-elastic demo`. No network, no cloud: the checkpoint goes to a local folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
from typing import Callable

from .errors import ElasticError

# What the demo's kernels need beyond colab_elastic's own requirements (the `demo` extra).
DEMO_PACKAGES = {"jupyter_client": "jupyter_client", "ipykernel": "ipykernel", "numpy": "numpy"}

DEMO_CELLS = [
    "%load_ext colab_elastic",
    "import time\nimport numpy as np\nrng = np.random.default_rng(0)",
    "# a large table that is quick to rebuild: cheaper to rerun than to move\n"
    "data = rng.normal(size=(400_000, 8))\ntarget = data @ np.arange(1.0, 9.0) + rng.normal(scale=0.1, size=len(data))",
    "# a slow 'training' loop: far cheaper to store than to rerun\n"
    "weights = np.zeros(8)\nlosses = []\nfor step in range(60):\n"
    "    grad = data.T @ (data @ weights - target) / len(data)\n"
    "    weights -= 0.1 * grad\n    losses.append(float(np.mean((data @ weights - target) ** 2)))\n    time.sleep(0.02)",
    "def predict(x):\n    return x @ weights\nsample = data[:5]\nscores = predict(sample)",
    "best = losses\nlosses.append(min(losses))  # best and losses are the same list",
    "rows = (r for r in data[:3])  # a generator cannot be stored: it is recomputed\nnext(rows)",
    "print('final loss', losses[-1])",
]


class DemoError(ElasticError):
    """The demo cannot start here (a missing package, an unusable folder)."""


def check_requirements() -> None:
    """A one-line error naming what is missing, before any kernel starts."""
    missing = [package for module, package in DEMO_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise DemoError(f"the demo needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                        "installed: pip install 'colab-elastic[demo]'")


def prepare_folder(folder: str | None) -> str:
    """The demo's folder: a new temporary one, or `folder`, created if missing (its parent must
    exist: a mistyped path is not turned into a tree of new folders)."""
    if folder is None:
        return tempfile.mkdtemp(prefix="colab-elastic-demo-")
    folder = os.path.abspath(os.path.expanduser(folder))
    if os.path.isdir(folder):
        if os.path.exists(os.path.join(folder, "checkpoint")):
            raise DemoError(f"--dir {folder} already holds a demo's checkpoint: pass a new or empty folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DemoError(f"--dir {folder}: permission denied (the demo writes its checkpoint there)")
        return folder
    if os.path.exists(folder):
        raise DemoError(f"--dir {folder} is a file, not a folder")
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        raise DemoError(f"--dir {folder}: its parent folder {parent} does not exist")
    try:
        os.mkdir(folder)
    except OSError as exc:
        raise DemoError(f"--dir {folder}: cannot create it ({exc.strerror or exc})") from None
    return folder


def run_demo(folder: str | None = None, echo: Callable[[str], None] = print) -> bool:
    """Run the demo; returns True when the restored session equals the original."""
    check_requirements()
    folder = prepare_folder(folder)
    from .kernel import Kernel
    url = os.path.join(folder, "checkpoint")
    snap = os.path.join(folder, "original.snapshot")
    echo(f"colab_elastic demo in {folder}")

    echo("\n1. A kernel runs a notebook with the extension loaded")
    started = time.perf_counter()
    first = Kernel(cwd=folder)
    try:
        for i, code in enumerate(DEMO_CELLS, 1):
            t = time.perf_counter()
            first.run(code).raise_for_error()
            echo(f"   [{i}] {code.splitlines()[0][:60]:<60} {time.perf_counter() - t:6.2f} s")
        built = time.perf_counter() - started
        echo(f"   notebook ran in {built:.1f} s")

        echo(f"\n2. %elastic plan {url}   (dry run: what to store, what to recompute)")
        plan = first.run("%elastic plan " + url)
        plan.raise_for_error()
        echo(_indent(plan.text))
        echo(f"\n   %elastic checkpoint {url}")
        out = first.run(f"%elastic checkpoint {url}")
        out.raise_for_error()
        echo(_indent(out.text))
        first.run(f"__import__('colab_elastic.compare', fromlist=['snapshot']).snapshot({snap!r})").raise_for_error()

        echo("\n3. The runtime dies: SIGKILL to the kernel process")
        first.kill()
    except BaseException:
        first.close()
        raise

    echo("\n4. A new kernel: %load_ext colab_elastic, %elastic restore")
    second = Kernel(cwd=folder)
    try:
        second.run("%load_ext colab_elastic").raise_for_error()
        t = time.perf_counter()
        restored = second.run(f"%elastic restore {url}")
        restored.raise_for_error()
        echo(_indent(restored.text))
        echo(f"   restore took {time.perf_counter() - t:.2f} s; the notebook took {built:.1f} s to run")

        echo("\n5. Value-by-value comparison with the original session")
        out = second.run(
            f"print(__import__('json').dumps(__import__('colab_elastic.compare', fromlist=['compare']).compare({snap!r})))"
        )
        out.raise_for_error()
        result = json.loads(out.stdout.strip().splitlines()[-1])
        for name, verdict in sorted(result["values"].items()):
            echo(f"   {name:<10} {verdict}")
        echo(f"   aliasing   {'same' if result['aliasing']['same'] else 'DIFFERS'} {result['aliasing']['restored']}")
        ok = all(v == "same" for v in result["values"].values()) and result["aliasing"]["same"]

        echo("\n6. Recording goes on: a new cell, then another checkpoint")
        second.run("weights = weights * 2").raise_for_error()
        again = second.run(f"%elastic checkpoint {url}")
        again.raise_for_error()
        echo(_indent(again.text))
    finally:
        second.close()
    echo("\n" + ("OK: the restored session equals the original" if ok else "FAILED: the sessions differ"))
    return ok


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
