"""A matplotlib figure displays after a restore as it did before: an image, not `<Figure size ...>`.

The inline backend is the kernel's default (ipykernel sets it) unless the environment chose
another one. A cell that imported pyplot under the inline default and is rerun on restore comes
back under the restoring kernel's default, so the restore gives the session the backend the
checkpoint recorded.
"""

from __future__ import annotations

import pytest

from tests.kernels import Kernel, restore_in_new_kernel

pytestmark = pytest.mark.kernel

QUIET = {"COLAB_ELASTIC_AUTO": "off"}
LOADED = ["import matplotlib.pyplot as plt", "fig, ax = plt.subplots()\nax.plot([1, 2, 3])"]
# A generator in the same cell: the cell is rerun on restore, and the figure with it.
RERUN = ["import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3])\nrows = (i for i in range(3))"]


def _shows_image(kernel: Kernel) -> bool:
    out = kernel.run("fig")
    out.raise_for_error()
    return any("image/png" in bundle for bundle in out.data)


@pytest.mark.parametrize("cells, restoring_backend", [
    (RERUN, "agg"),  # another default there: the rerun cell's pyplot import picks it up
    (["%matplotlib inline", *LOADED], "agg"),  # the figure is loaded; the magic's setting replayed
], ids=["rerun-under-agg", "magic-under-agg"])
def test_a_figure_displays_after_a_restore(tmp_path, cells, restoring_backend):
    url = tmp_path / "ckpt"
    first = Kernel(cwd=str(tmp_path), env=QUIET)
    try:
        for code in ["%load_ext colab_elastic", *cells]:
            first.run(code).raise_for_error()
        assert _shows_image(first)
        first.run(f"%elastic checkpoint {url}").raise_for_error()
    finally:
        first.kill()
    env = {**QUIET, **({"MPLBACKEND": restoring_backend} if restoring_backend else {})}
    second, restored = restore_in_new_kernel(tmp_path, f"%elastic restore {url}", env)
    try:
        assert _shows_image(second), restored.text
    finally:
        second.close()


# matplotlib >= 3.9 reports the inline backend by the name `%matplotlib` gave it: one backend.
PROBE = ("(matplotlib.is_interactive(), matplotlib.get_backend().lower()"
         ".replace('module://matplotlib_inline.backend_inline', 'inline'))")


@pytest.mark.parametrize("cells", [
    ["import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt", *LOADED[1:]],
    ["import matplotlib", *LOADED],
    ["import matplotlib", "%matplotlib inline", *LOADED],
], ids=["use-agg", "inline-default", "magic-inline"])
def test_interactive_mode_and_backend_come_back_as_they_were(tmp_path, cells):
    """`%matplotlib agg`, which the restore runs for a session that chose agg with
    `matplotlib.use`, would also turn interactive mode on: every later cell redraws every open
    figure (+43 ms a cell with one confusion matrix), where the original drew none."""
    url = tmp_path / "ckpt"
    first = Kernel(cwd=str(tmp_path), env=QUIET)
    try:
        for code in ["%load_ext colab_elastic", *cells]:
            first.run(code).raise_for_error()
        original = first.run(f"print({PROBE})")
        original.raise_for_error()
        first.run(f"%elastic checkpoint {url}").raise_for_error()
    finally:
        first.kill()
    second, restored = restore_in_new_kernel(tmp_path, f"%elastic restore {url}", QUIET)
    try:
        assert "settings replayed" in restored.text, restored.text
        now = second.run(f"import matplotlib\nprint({PROBE})")
        now.raise_for_error()
        assert now.stdout == original.stdout, restored.text
    finally:
        second.close()
