"""A restore from a local folder asks the operating system to read each streamed blob ahead of
its turn: the next one while the one before it is unpickled (a cold disk, Drive's mount). On a
cold page cache that took pandas-features' four big blobs from 1.8-2.3 s to 1.2-2.0 s."""

from __future__ import annotations

import os
import sys

import pytest

np = pytest.importorskip("numpy")

import colab_elastic  # noqa: E402
from colab_elastic.store import Store  # noqa: E402


def test_each_streamed_blob_is_read_ahead_before_the_one_it_follows_loads(shell, tmp_path, monkeypatch):
    restoring = sys.modules["colab_elastic.restore"]
    shell.run_line_magic("load_ext", "colab_elastic")
    slow = "\ntime.sleep(0.3)"  # slower to rerun than to load: stored
    for code in ["import time\nimport numpy as np", "a = np.arange(300_000.0)" + slow, "b = np.ones(200_000)" + slow,
                 "c = np.zeros(100_000)" + slow]:
        shell.run_cell(code, store_history=True)
    url = str(tmp_path / "ckpt")
    colab_elastic.checkpoint(url)

    events: list[tuple[str, str]] = []
    advise, stream = restoring.will_read, Store.stream_blob

    def will_read(path: str, size: int) -> None:
        events.append(("ahead", os.path.basename(path)))
        advise(path, size)

    def stream_blob(self, key, *args, **kwargs):
        events.append(("read", key))
        return stream(self, key, *args, **kwargs)

    monkeypatch.setattr(restoring, "STREAM_BYTES", 0)  # every blob streamed, as large ones are
    monkeypatch.setattr(restoring, "will_read", will_read)
    monkeypatch.setattr(Store, "stream_blob", stream_blob)
    shell.run_cell("a = b = c = None", store_history=True)
    report = colab_elastic.restore(url)

    assert report.ok, report
    read = [key for kind, key in events if kind == "read"]
    assert len(read) >= 3
    # The first before anything loads; then each blob's successor just before it is read.
    expected = [("ahead", read[0])]
    for i, key in enumerate(read):
        expected += ([("ahead", read[i + 1])] if i + 1 < len(read) else []) + [("read", key)]
    assert events == expected
    values = shell.user_ns
    assert np.array_equal(values["a"], np.arange(300_000.0)) and values["b"].sum() == 200_000 and not values["c"].any()
