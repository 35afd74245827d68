"""Writes the demo notebooks (run `python demos/build.py` after editing the cells here).

Cells tagged `colab-only` (pip install, Drive mount, Google auth) run only in Colab; the
headless test skips them. A markdown cell tagged `disconnect-here` marks where the runtime
is disconnected: the test kills the kernel there and runs the rest in a new one. A cell
tagged `parameters` is replaced by the test (a local folder for Drive, the loopback GCS
server for gs://, a loopback HTTP server for https://).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = "colab-elastic/colab-elastic"
HERE = Path(__file__).parent


def badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPO}/blob/main/demos/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def md(text: str, *tags: str):
    return new_markdown_cell(text.strip(), metadata={"tags": list(tags)} if tags else {})


def code(text: str, *tags: str):
    return new_code_cell(text.strip(), metadata={"tags": list(tags)} if tags else {})


WORKLOAD = [
    md("## A small but real workload\nSynthetic taxi trips: cheap to generate, slower to clean, slow to model."),
    code("""
import time
import numpy as np
import pandas as pd

rng = np.random.default_rng(42)
n = 60_000
trips = pd.DataFrame({
    "distance_km": rng.gamma(2.0, 2.5, n),
    "passengers": rng.integers(1, 5, n),
    "hour": rng.integers(0, 24, n),
})
trips["fare"] = 2.5 + 1.8 * trips["distance_km"] + 0.4 * trips["passengers"] + rng.normal(0, 1.5, n)
"""),
    code("""
# Feature engineering, in place, the way notebooks really do it
trips["rush_hour"] = trips["hour"].isin([7, 8, 9, 16, 17, 18])
trips["log_distance"] = np.log1p(trips["distance_km"])
trips = trips.drop(columns=["hour"])
trips = trips[trips["fare"] > 0]
"""),
    code("""
# The slow part: a model worth not retraining
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import train_test_split

features = ["distance_km", "passengers", "rush_hour", "log_distance"]
X_train, X_test, y_train, y_test = train_test_split(trips[features], trips["fare"], random_state=0)
started = time.time()
model = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(X_train, y_train)
print(f"trained in {time.time() - started:.1f} s, R^2 = {model.score(X_test, y_test):.4f}")
"""),
]

RESUME_CHECK = code("""
# Everything is back: the data, the features, the trained model
print(len(trips), list(trips.columns))
print(f"R^2 = {model.score(X_test, y_test):.4f}")
""")


def quickstart() -> nbformat.NotebookNode:
    name = "01_quickstart_drive.ipynb"
    def setup() -> list:  # what every new runtime needs first (again after the disconnect)
        return [
            code("%pip install -q colab-elastic", "colab-only"),
            code("from google.colab import drive\ndrive.mount('/content/drive')", "colab-only"),
        ]
    return new_notebook(cells=[
        md(f"# colab_elastic quickstart: survive a disconnect\n{badge(name)}\n\n"
           "Record this notebook, checkpoint it to Google Drive, disconnect the runtime, and get every "
           "variable back on a new one without rerunning the slow cells."),
        *setup(),
        md("Load the extension: from now on every cell is recorded (and auto-checkpointed to Drive)."),
        code("%load_ext colab_elastic"),
        *WORKLOAD,
        md("What would a checkpoint store, and what would it recompute?"),
        code("%elastic plan"),
        code("%elastic checkpoint"),
        md("## Now disconnect\n**Runtime > Disconnect and delete runtime**, then reconnect and run the cells below. "
           "(Every variable above is gone from memory.)", "disconnect-here"),
        *setup(),
        code("%load_ext colab_elastic\n%elastic restore"),
        RESUME_CHECK,
    ])


def gcs() -> nbformat.NotebookNode:
    name = "02_gcs.ipynb"
    def setup() -> list:  # what every new runtime needs first (again on the other runtime)
        return [
            code("%pip install -q colab-elastic gcsfs", "colab-only"),
            code("from google.colab import auth\nauth.authenticate_user()", "colab-only"),
            code('URL = "gs://YOUR-BUCKET/colab_elastic/taxi-demo"  # change this\nOPTIONS = {}', "parameters"),
        ]
    return new_notebook(cells=[
        md(f"# Checkpoint to Google Cloud Storage, restore on another runtime\n{badge(name)}\n\n"
           "Use a bucket you can write to. The checkpoint is a folder of immutable files plus one pointer, "
           "so a second runtime (or a teammate with read access) restores from the same URL."),
        *setup(),
        code("%load_ext colab_elastic\nimport colab_elastic"),
        *WORKLOAD,
        code("colab_elastic.checkpoint(URL, **OPTIONS)"),
        md("## On another runtime\nOpen this notebook on a new runtime (or **Disconnect and delete runtime**), "
           "authenticate again, and restore from the bucket.", "disconnect-here"),
        *setup(),
        code("%load_ext colab_elastic\nimport colab_elastic\ncolab_elastic.restore(URL, **OPTIONS)"),
        RESUME_CHECK,
    ])


def share() -> nbformat.NotebookNode:
    name = "03_share.ipynb"
    return new_notebook(cells=[
        md(f"# Restore a collaborator's checkpoint from its URL\n{badge(name)}\n\n"
           "Your collaborator ran `%elastic share` and sent you a URL (a public or signed `https://` "
           "prefix, a `gs://` path you can read, or an exported `.zip`). Restoring it runs their cells and "
           "loads their data, which is running their code: colab_elastic shows what it will run and asks for "
           "`--trust`. Your own checkpoints keep going to your own default location."),
        md("### The author's side (already done by your collaborator)"),
        code('SHARE_TO = "gs://YOUR-BUCKET/shared/taxi"  # a location the collaborator can read', "parameters"),
        code("%load_ext colab_elastic"),
        *WORKLOAD,
        code("%elastic checkpoint $SHARE_TO\n%elastic share $SHARE_TO"),
        md("### Your side, in your own runtime", "disconnect-here"),
        code("%pip install -q colab-elastic", "colab-only"),
        code('SHARED_URL = "https://storage.googleapis.com/YOUR-BUCKET/shared/taxi"  # the URL you were sent',
             "parameters"),
        code("%load_ext colab_elastic\n%elastic restore $SHARED_URL --trust"),
        RESUME_CHECK,
        code("# Your next checkpoints go to your own location, never back to the shared URL\n%elastic status"),
    ])


def main() -> None:
    for name, build in [("01_quickstart_drive.ipynb", quickstart), ("02_gcs.ipynb", gcs), ("03_share.ipynb", share)]:
        nb = build()
        nb.metadata.update({
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "colab": {"name": name, "provenance": []},
            "language_info": {"name": "python"},
        })
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    main()
