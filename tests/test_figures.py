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
