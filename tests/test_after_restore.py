"""After a restore, recording goes on from what the restore's verification saw: the first cell
to read a restored value does not fingerprint it again (a 1 GB array cost ~0.1 s, a fitted
forest ~60 ms, once per value), and what later cells change is still seen."""

from __future__ import annotations

import json

import pytest

from tests.kernels import Kernel, restore_in_new_kernel

pytestmark = pytest.mark.kernel
pytest.importorskip("pandas")

QUIET = {"COLAB_ELASTIC_AUTO": "off"}
CELLS = [
    "import numpy as np\nimport pandas as pd",
    "X = np.arange(2_000_000, dtype=float)\nsettings = {'lr': 0.1, 'layers': [64, 32]}",
    # A text column of objects (pandas 2's default) past the memo's threshold: the recorder hashes
    # it by its strings' pointers, the verification (portable) by its text: not the recorder's.
    "table = pd.DataFrame({'id': np.arange(150_000), 'note': pd.Series([f'n{i}' for i in range(150_000)], dtype=object)})",
    "def rows(frame):\n    return len(frame)",
]
# In the restoring cell, before the restore: note every value the recorder walks from now on.
COUNT_WALKS = """import colab_elastic.recorder as _recorder
_walked = []
_take = _recorder.Recorder._take
def _counting(self, value, name, *, portable):
    _walked.append(name)
    return _take(self, value, name, portable=portable)
_recorder.Recorder._take = _counting
%elastic restore {url}"""
WRITES = ("print(__import__('json').dumps([sorted(n for n, _ in e.writes) for e in "
          "__import__('colab_elastic.extension', fromlist=['current']).current().session.graph.executions[-{n}:]]))")


def test_a_restored_value_is_not_walked_again_and_its_changes_are_still_seen(tmp_path):
    url = tmp_path / "ckpt"
    first = Kernel(cwd=str(tmp_path), env=QUIET)
    try:
        for code in ["%load_ext colab_elastic", *CELLS]:
            first.run(code).raise_for_error()
        first.run(f"%elastic checkpoint {url}").raise_for_error()
    finally:
        first.kill()
    second, restored = restore_in_new_kernel(tmp_path, COUNT_WALKS.format(url=url), QUIET)
    try:
        for code in ["n = X.shape[0]", "lr = settings['lr']"]:
            second.run(code).raise_for_error()
        walked = second.run("print(_walked.count('X'), _walked.count('settings'))")
        walked.raise_for_error()
        # Before this change: "1 2", X walked before its cell, settings before and after its
        # own (a subscript is not vouched for as a read: it is walked after the cell).
        assert walked.stdout.strip() == "0 1", restored.text

        changes = ["X[0] = -1.0", "settings['layers'].append(16)", "k = rows(table)"]
        for code in changes:
            second.run(code).raise_for_error()
        writes = second.run(WRITES.format(n=len(changes)))
        writes.raise_for_error()
        # The text column was walked anew, by pointers: `rows(table)` did not change it, where a
        # portable fingerprint taken as the recorder's own would have said it did.
        assert json.loads(writes.stdout.strip().splitlines()[-1]) == [["X"], ["settings"], ["k"]]

        values = second.run("print(X[:2].tolist(), float(X.sum()), settings, n, lr, k, table['note'].iloc[-1])")
        values.raise_for_error()
        total = float(sum(range(2_000_000))) - 1.0
        assert values.stdout.strip() == f"[-1.0, 1.0] {total} {{'lr': 0.1, 'layers': [64, 32, 16]}} 2000000 0.1 150000 n149999"
    finally:
        second.close()
