"""Verification after a restore fails only for a reason: equal values are not reported as
differing, real differences (values and aliasing) are, and `--strict` turns them into an error."""

from __future__ import annotations

import os

import pytest

from tests.kernels import WAIT_FOR_UPLOADS, roundtrip

pytestmark = pytest.mark.kernel

OFF = {"COLAB_ELASTIC_AUTO": "off"}


def test_a_stored_sklearn_bunch_is_verified(tmp_path, kernels):
    # Bunch keeps `_deprecated_key_to_warnings` in its __dict__ and its __setstate__ drops it:
    # what pickle stores is not what it gives back, but the value (a dict) is equal.
    cells = ["from sklearn.datasets import load_iris\niris = load_iris()"]
    trip = roundtrip(tmp_path, cells, env=OFF)
    kernels.append(trip.kernel)
    assert "iris" in trip.restore.text and "loaded" in trip.restore.text
    assert "differs" not in trip.restore.text, trip.restore.text
    assert "all variables restored and verified" in trip.restore.text


def test_a_refitted_count_vectorizer_is_verified(tmp_path, kernels):
    # The lock makes the group unpicklable, so the vectorizer is refitted by a rerun; its
    # `_stop_words_id` is `id(self.stop_words)`, an address that differs in every process.
    cells = ["import threading\nfrom sklearn.feature_extraction.text import CountVectorizer\n"
             "cv = CountVectorizer(stop_words='english').fit(['the cat sat', 'a dog ran far'])\n"
             "holder = [cv, threading.Lock()]"]
    trip = roundtrip(tmp_path, cells, env=OFF)
    kernels.append(trip.kernel)
    assert "recomputed" in trip.restore.text and "cv" in trip.restore.text
    assert "differs" not in trip.restore.text, trip.restore.text
    # cv is verified; the list holding a lock cannot be compared, and the report says so.
    assert "all variables restored, verified but 1 that cannot be compared" in trip.restore.text
    assert "holder (part of it is opaque to a fingerprint)" in trip.restore.text
    assert trip.value("holder[0] is cv") == "True"


def _outside(tmp_path, name: str, text: str | None = None):
    """A file outside the working folder and older than the session (a dataset under /data):
    a new runtime is assumed to have it, so it does not travel with the checkpoint."""
    path = tmp_path.parent / f"{tmp_path.name}-{name}"
    if text is not None:
        path.write_text(text)
        os.utime(path, (1_000_000_000, 1_000_000_000))
    return path


def test_a_real_difference_is_reported_and_strict_fails(tmp_path, kernels):
    data = _outside(tmp_path, "data.txt", "one two three")
    cells = [f"import threading\nrows = open({str(data)!r}).read().split()\nguard = [rows, threading.Lock()]"]
    url = str(tmp_path / "ckpt")
    trip = roundtrip(tmp_path, cells, env=OFF, url=url, between=lambda _: _outside(tmp_path, "data.txt", "four five six"))
    kernels.append(trip.kernel)
    assert trip.value("rows") == "['four', 'five', 'six']"
    assert "differs from the original" in trip.restore.text and "rows" in trip.restore.text
    assert "restored with problems" in trip.restore.text

    strict = trip.kernel.run(f"%elastic restore {url} --strict")
    assert "differs from the original" in strict.text  # the report is shown first
    assert strict.error is not None, strict.text
    ename, evalue, _ = strict.error
    # RestoreVerificationError, shown as one line (a UsageError) after the report
    assert ename == "UsageError" and "strict restore" in evalue and "rows" in evalue and "\n" not in evalue


def test_strict_passes_when_everything_is_verified(tmp_path, kernels):
    cells = ["items = [1, 2]\nalias = items\nother = [1, 2]"]
    trip = roundtrip(tmp_path, cells, env=OFF, restore_args="--strict")
    kernels.append(trip.kernel)
    assert "all variables restored and verified" in trip.restore.text
    assert trip.value("alias is items and other is not items") == "True"


def test_aliasing_that_changed_is_reported_by_name(tmp_path, kernels):
    # `view` is `base` when the notebook ran; the rerun, reading a changed file, makes a copy:
    # equal values, but a change through one name no longer shows through the other.
    mode = _outside(tmp_path, "mode.txt", "share")
    cells = [f"import threading\nbase = [1, 2]\nmode = open({str(mode)!r}).read()\n"
             "view = base if mode == 'share' else list(base)\nguard = [base, threading.Lock()]"]
    trip = roundtrip(tmp_path, cells, env=OFF, between=lambda _: _outside(tmp_path, "mode.txt", "copy"))
    kernels.append(trip.kernel)
    assert trip.value("view == base and view is not base") == "True"
    text = trip.restore.text
    assert "aliasing differs from the original" in text, text
    assert "view: shared objects with base, guard, now with nothing" in text
    assert "base: shared objects with guard, view, now with guard" in text
    assert "restored with problems" in text


def test_pure_report_rows_and_strict_message():
    from colab_elastic.report import restore_text
    from colab_elastic.restore import RestoreReport

    report = RestoreReport(url="/tmp/x", checkpoint="ck", differs=["rows"], missing={"conn": "a socket"},
                           aliasing={"view": "shared objects with base, now with nothing"})
    assert not report.ok
    text = restore_text(report)
    assert "aliasing differs from the original" in text and "view: shared objects with base, now with nothing" in text
    assert report.problem_summary() == ("not restored: conn; differ from the original: rows; "
                                        "share objects differently: view")
    assert RestoreReport(url="/tmp/x", checkpoint="ck").problem_summary() == ""


def test_an_attribute_holding_an_address_is_hashed_as_a_reference():
    import copy

    from colab_elastic.fingerprint import fingerprint

    class Estimator:
        def __init__(self, words):
            self.words = words
            self.words_id = id(words)
            self.count = 3

        def __getstate__(self):
            return dict(self.__dict__)

    one = Estimator(["a", "b"])
    other = copy.deepcopy(one)  # another address, as in another process
    other.words_id = id(other.words)
    assert fingerprint(one).content == fingerprint(other).content
    other.count = 4  # a real change is still seen
    assert fingerprint(one).content != fingerprint(other).content
    other.count = 3
    other.words_id = 12345  # no longer an address of its words: a change
    assert fingerprint(one).content != fingerprint(other).content


def test_a_value_changed_by_a_thread_is_not_verified_against_a_stale_fingerprint(tmp_path, kernels):
    """Cell 2's thread changes `box` after the cell; cell 3 cannot reach `box`. The
    auto-checkpoint after cell 3 must see the new content: stored as it is now, or, if
    recomputed (back to `{'n': 0}`), reported as differing. Never the old value, verified."""
    from colab_elastic.kernel import Kernel
    from tests.kernels import restore_in_new_kernel

    first = Kernel(cwd=str(tmp_path), log=str(tmp_path / "kernel1.log"))
    try:
        for code in ["%load_ext colab_elastic", "%elastic auto on --interval 0 --after 0",
                     "box = {'n': 0}\nsize = 1",
                     "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.3), "
                     "globals()['box'].update(n=1), time.sleep(60)), daemon=True).start()",
                     "time.sleep(0.8)\ny = 1",
                     WAIT_FOR_UPLOADS]:
            first.run(code).raise_for_error()
        assert first.run("print(box)").stdout.strip() == "{'n': 1}"
    finally:
        first.kill()
    second, restored = restore_in_new_kernel(tmp_path, "%elastic restore", log=str(tmp_path / "kernel2.log"))
    kernels.append(second)
    box = second.run("print(box)").stdout.strip()
    assert box == "{'n': 1}" or ("differs from the original" in restored.text and "box" in restored.text), \
        (box, restored.text)


def test_which_cached_fingerprints_are_refreshed():
    from colab_elastic.fingerprint import Fingerprint
    from colab_elastic.freshness import to_refresh

    def fp(size, shared=True):
        return Fingerprint("c", frozenset({size}) if shared else frozenset(), size)

    fps = {"touched": fp(10), "number": fp(8, shared=False), "small": fp(100), "medium": fp(3000), "big": fp(10**9)}
    # A busy kernel (a thread of the user's): everything not proven is fingerprinted again.
    assert to_refresh(fps, {"touched"}, quiet=False) == ["big", "medium", "small"]
    # A quiet one: the small values (a callback's state), within the budget, smallest first.
    assert to_refresh(fps, {"touched"}, quiet=True, small_bytes=4000) == ["small", "medium"]
    assert to_refresh(fps, {"touched"}, quiet=True, small_bytes=1000) == ["small"]


def test_plotly_figures_stored_and_recomputed_are_verified(tmp_path, kernels):
    # A figure pickles through `to_dict()`: the one loaded back lacks the caches it had.
    pytest.importorskip("plotly")
    cells = ["import threading\nimport plotly.graph_objects as go\n"
             "fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 6], name='a'))\nfig.update_layout(title='t')",
             "redrawn = go.Figure(go.Bar(x=['a', 'b'], y=[1, 2]))\nguard = [redrawn, threading.Lock()]"]
    trip = roundtrip(tmp_path, cells, env=OFF)
    kernels.append(trip.kernel)
    text = trip.restore.text
    assert "differs" not in text, text
    assert "all variables restored, verified but 1 that cannot be compared" in text  # the lock's guard
    assert "guard (part of it is opaque to a fingerprint)" in text
    assert trip.value("fig == go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 6], name='a'), layout={'title': 't'})") == "True"


def test_a_loaded_figure_is_not_walked_again_only_to_go_uncompared(shell, tmp_path, monkeypatch):
    # A figure's fingerprint cannot be compared (drawing changes it), and a group loaded from
    # one blob keeps its sharing: walking it again cost ~0.1 s a figure on every restore.
    import sys

    import colab_elastic

    restore_module = sys.modules["colab_elastic.restore"]  # the package exports a function of that name

    shell.run_line_magic("load_ext", "colab_elastic")
    # matplotlib.figure, not pyplot: pyplot would hook the shared test shell's events.
    for code in ["import time\nfrom matplotlib.figure import Figure",
                 "time.sleep(0.2)\nfig = Figure()\nax = fig.subplots()\nline, = ax.plot([1, 2, 3])\nvalues = [1, 2, 3]"]:
        assert shell.run_cell(code, store_history=True).success
    url = str(tmp_path / "ckpt")
    result = colab_elastic.checkpoint(url)
    assert {n for d in result.plan.by_action("store") for n in d.names} >= {"fig", "ax", "line", "values"}
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")
    walked: list[str] = []
    real = restore_module.fingerprint

    def counting(value, **kwargs):
        walked.append(type(value).__name__)
        return real(value, **kwargs)

    monkeypatch.setattr(restore_module, "fingerprint", counting)
    report = colab_elastic.restore(url)
    ns = shell.user_ns
    assert ns["ax"].figure is ns["fig"] and ns["line"].axes is ns["ax"] and ns["values"] == [1, 2, 3]
    assert {"fig", "ax", "line"} <= set(report.unverified), report.unverified
    assert "values" not in report.unverified and not report.differs
    assert "Figure" not in walked and "Axes" not in walked and "list" in walked, walked


def test_a_checkpoint_fingerprinted_by_another_release_is_restored_not_called_different(shell, tmp_path, monkeypatch):
    # A new runtime installs the newest release; when it hashes values differently, the old
    # checkpoint's values are restored and named as not compared, never reported as changed.
    import sys

    import colab_elastic

    url = str(tmp_path / "ckpt")
    _checkpoint_then_new_runtime(shell, ["import time\nimport numpy as np", "labels = {'a': [1, 2]}",
                                         "time.sleep(0.2)\ngrid = np.asfortranarray(np.arange(12.0).reshape(3, 4))"], url)
    for module in ("colab_elastic.fingerprint", "colab_elastic.restore"):
        monkeypatch.setattr(sys.modules[module], "SCHEME", "f999:")
    report = colab_elastic.restore(url)
    assert shell.user_ns["labels"] == {"a": [1, 2]} and shell.user_ns["grid"].flags.f_contiguous
    assert not report.differs and not report.aliasing, report
    assert report.unverified["grid"] == report.unverified["labels"] == "fingerprinted by another version of colab_elastic"


def test_a_restore_hashes_no_stored_text_and_the_next_cell_not_again(shell, tmp_path, monkeypatch):
    # The checkpoint hashed the text of its large text columns; their blobs carry those
    # digests, so the verification of what it loaded hashes no text again (pickle gives str
    # back exactly, and the blob's own digest was checked). The memo is the recorder's: the
    # next cell and checkpoint hash nothing either. The values are compared independently.
    import colab_elastic
    import colab_elastic.fingerprint_arrays as arrays

    pd = pytest.importorskip("pandas")
    url = str(tmp_path / "ckpt")
    _checkpoint_then_new_runtime(shell, [
        "import time\nimport pandas as pd",
        "time.sleep(0.3)\nevents = pd.DataFrame({'note': pd.Series([f'order {i}' for i in range(120_000)], "
        "dtype=object), 'k': [i % 7 for i in range(120_000)]})\n"
        "table = events.merge(pd.DataFrame({'k': range(7), 'w': range(7)}), on='k', how='left')"], url)
    hashed = []
    real = arrays._digest_strings

    def counting(*args):
        if args[1].size >= 100_000:
            hashed.append(args[1].size)
        return real(*args)

    monkeypatch.setattr(arrays, "_digest_strings", counting)
    report = colab_elastic.restore(url)
    assert {"events", "table"} <= set(report.loaded)
    assert "events" not in report.unverified and "table" not in report.unverified and not report.differs, report
    ns = shell.user_ns
    expected = pd.DataFrame({"note": pd.Series([f"order {i}" for i in range(120_000)], dtype=object),
                             "k": [i % 7 for i in range(120_000)]})
    pd.testing.assert_frame_equal(ns["events"], expected)
    pd.testing.assert_frame_equal(ns["table"][["note", "k"]], expected)
    assert ns["events"]["note"].dtype == object
    assert hashed == []
    assert shell.run_cell("n = table['note'].str.len().sum() + len(events)", store_history=True).success
    colab_elastic.checkpoint(str(tmp_path / "again"))
    assert hashed == []  # neither the cell nor the next checkpoint


def _checkpoint_then_new_runtime(shell, cells: list[str], url: str) -> None:
    """Record `cells` in the in-process shell, checkpoint to `url`, then start over as a new
    runtime would: no extension, an empty namespace, the extension loaded again."""
    import colab_elastic

    shell.run_line_magic("load_ext", "colab_elastic")
    for code in cells:
        assert shell.run_cell(code, store_history=True).success
    colab_elastic.checkpoint(url)
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "colab_elastic")
