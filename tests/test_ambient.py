"""Session settings that are not variables (cwd, os.environ, rcParams, ...) come back with a restore."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from colab_elastic import ambient
from colab_elastic.history import HistoryGraph
from colab_elastic.planner import Bandwidth, GroupInfo, Plan, plan
from colab_elastic.manifest import Author, Environment, GroupEntry, Manifest
from colab_elastic.report import foreign_text, plan_text, restore_text
from colab_elastic.restore import RestoreReport
from colab_elastic.recorder import Recorder
from tests.kernels import roundtrip


def _effect(change) -> ambient.Effect:
    """What `change()` did to the settings, as a recorder would keep it."""
    settings = ambient.Ambient()
    before = settings.capture()
    change()
    return settings.diff(before, settings.capture())


# Pure: capture, diff, encode, apply ------------------------------------------------------------
def test_a_cell_that_changes_nothing_has_no_effect():
    assert _effect(lambda: None) == {}


def test_only_the_changed_environment_keys_are_kept_and_applied(monkeypatch):
    monkeypatch.setenv("ELASTIC_GONE", "1")
    monkeypatch.delenv("ELASTIC_NEW", raising=False)

    def cell():
        os.environ["ELASTIC_NEW"] = "x"
        del os.environ["ELASTIC_GONE"]

    effect = _effect(cell)
    assert effect == {"os.environ": {"set": {"ELASTIC_NEW": "x"}, "unset": ["ELASTIC_GONE"]}}
    encoded, dropped = ambient.encode(effect)
    assert not dropped and ambient.decode(encoded) == effect

    # A new kernel: as before the cell.
    os.environ["ELASTIC_GONE"] = "1"
    del os.environ["ELASTIC_NEW"]
    assert ambient.Ambient().apply(encoded) == {}
    assert os.environ["ELASTIC_NEW"] == "x" and "ELASTIC_GONE" not in os.environ


def test_sys_path_and_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(os.getcwd())
    original_path, original_cwd = list(sys.path), os.getcwd()

    def cell():
        sys.path.append(str(tmp_path))
        os.chdir(tmp_path)

    encoded, _ = ambient.encode(_effect(cell))
    sys.path[:] = original_path
    os.chdir(original_cwd)
    assert ambient.Ambient().apply(encoded) == {}
    assert sys.path[-1] == str(tmp_path) and sys.path[:-1] == original_path
    assert os.getcwd() == str(tmp_path)


def test_warning_filters_come_back_in_order():
    with warnings.catch_warnings():
        def cell():
            warnings.filterwarnings("ignore", message="elastic.*test", category=UserWarning)
            warnings.simplefilter("error", DeprecationWarning)

        encoded, _ = ambient.encode(_effect(cell))
        wanted = list(warnings.filters)
        warnings.resetwarnings()
        assert ambient.Ambient().apply(encoded) == {}
        assert _plain(warnings.filters) == _plain(wanted)
        assert warnings.filters[0][0] == "error" and warnings.filters[1][1].pattern == "elastic.*test"


def _plain(filters):
    return [(a, getattr(m, "pattern", m), c, getattr(mod, "pattern", mod), n) for a, m, c, mod, n in filters]


def test_library_settings_numpy_pandas_matplotlib():
    np_before, rc_before = np.get_printoptions(), dict(matplotlib.rcParams)
    try:
        def cell():
            np.set_printoptions(precision=3)
            pd.set_option("display.max_columns", None)
            matplotlib.rc("axes", labelsize=14)

        effect = _effect(cell)
        assert effect["numpy.printoptions"]["set"] == {"precision": 3}
        assert effect["pandas.options"]["set"] == {"display.max_columns": None}
        assert effect["matplotlib.rcParams"]["set"] == {"axes.labelsize": 14.0}
        encoded, _ = ambient.encode(effect)
        np.set_printoptions(**np_before)
        pd.reset_option("display.max_columns")
        matplotlib.rcParams.update(rc_before)
        assert ambient.Ambient().apply(encoded) == {}
        assert np.get_printoptions()["precision"] == 3
        assert pd.get_option("display.max_columns") is None
        assert matplotlib.rcParams["axes.labelsize"] == 14.0
    finally:
        np.set_printoptions(**np_before)
        pd.reset_option("display.max_columns")
        matplotlib.rcParams.update(rc_before)


def test_a_library_imported_during_the_cell_is_diffed_against_its_defaults():
    """`import pandas as pd; pd.set_option(...)` in one cell: only that option is kept."""
    settings = ambient.Ambient()
    before = {k: v for k, v in settings.capture().items() if k not in ("pandas.options", "matplotlib.rcParams")}
    # As a fresh import leaves them, whatever earlier tests did (`plt.switch_backend` sets one).
    with matplotlib.rc_context({k: v for k, v in matplotlib.rcParamsOrig.items() if k != "backend"}):
        try:
            pd.set_option("display.precision", 2)
            after = settings.capture()
        finally:
            pd.reset_option("display.precision")
    effect = settings.diff(before, after)
    assert effect["pandas.options"] == {"set": {"display.precision": 2}, "unset": []}
    assert "matplotlib.rcParams" not in effect  # as matplotlib left it at import


def test_a_setting_of_a_library_not_imported_yet_imports_it():
    """The cell that set rcParams had imported matplotlib; a restore that loads it instead of
    rerunning it must do that import before applying the setting."""
    encoded, _ = ambient.encode({"matplotlib.rcParams": {"set": {"lines.linewidth": 3.5}, "unset": []}})
    code = ("import sys\nfrom colab_elastic import ambient\nassert 'matplotlib' not in sys.modules\n"
            f"print(ambient.Ambient().apply({encoded!r}), sys.modules['matplotlib'].rcParams['lines.linewidth'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["{}", "3.5"]


def test_a_setting_that_fails_to_apply_is_named_and_the_others_still_apply(tmp_path, monkeypatch):
    monkeypatch.delenv("ELASTIC_OTHER", raising=False)
    missing = tmp_path / "gone"
    missing.mkdir()
    monkeypatch.chdir(os.getcwd())
    here = os.getcwd()

    def cell():
        os.chdir(missing)
        os.environ["ELASTIC_OTHER"] = "yes"

    encoded, _ = ambient.encode(_effect(cell))
    os.chdir(here)
    missing.rmdir()
    del os.environ["ELASTIC_OTHER"]
    failures = ambient.Ambient().apply(encoded)
    assert list(failures) == ["cwd"] and "FileNotFoundError" in failures["cwd"]
    assert os.environ["ELASTIC_OTHER"] == "yes" and os.getcwd() == here
    assert list(ambient.Ambient().apply("not base64 at all!")) == ["settings"]


def test_a_shell_setting_is_applied_first_and_an_unknown_one_is_named():
    seen = []
    shell = ambient.Setting("ipython.matplotlib", lambda: "agg", seen.append)
    encoded, _ = ambient.encode({"ipython.matplotlib": "inline", "ipython.future": 1})
    failures = ambient.Ambient([shell]).apply(encoded)
    assert failures == {"ipython.future": "not a setting this session knows how to apply"}
    assert seen == ["inline"]


def test_the_recorder_keeps_the_settings_a_cell_changed(monkeypatch):
    monkeypatch.delenv("ELASTIC_REC", raising=False)
    recorder = Recorder({"os": os}, HistoryGraph())
    for code in ("x = 1", "os.environ['ELASTIC_REC'] = '5'"):
        recorder.before(code)
        exec(code, recorder.namespace)
        recorder.after()
    quiet, loud = recorder.graph.executions[-2:]
    assert quiet.ambient is None
    assert ambient.decode(loud.ambient) == {"os.environ": {"set": {"ELASTIC_REC": "5"}, "unset": []}}
    again = HistoryGraph.from_json(recorder.graph.to_json())
    assert again.executions[-1].ambient == loud.ambient


def test_the_plan_and_the_restore_report_name_the_cells_whose_settings_are_replayed():
    """
        cell 1: %cd data          (settings only)      -> replayed
        cell 2: big = load()      (slow, settings)     -> loaded, its settings replayed
        cell 3: f = open(...)     (cannot be stored)   -> rerun
    """
    encoded, _ = ambient.encode({"cwd": "/content/data"})
    graph = HistoryGraph()
    graph.record("%cd data", 0.01, reads=(), writes=(), ambient=encoded)
    graph.record("big = load()", 30.0, reads=(), writes=("big",), ambient=encoded)
    graph.record("f = open('x')", 0.01, reads=(), writes=("f",))
    groups = [GroupInfo(frozenset({"big"}), 1000), GroupInfo(frozenset({"f"}), 10, storable=False, reason="a file")]
    result = plan(graph, groups, Bandwidth())
    assert result.reruns == (3,) and result.settings == (1, 2)
    assert Plan.from_json(result.to_json()).settings == (1, 2)
    assert "settings replayed on restore (cells not rerun): 1, 2" in plan_text(result)
    # Someone else's checkpoint says so before it is trusted: settings load extensions, set sys.path.
    manifest = Manifest("20260101T000000000000-00000001", "", "s", Author("", "ada"), "", Environment(), graph, result,
                        tuple(GroupEntry(d, {}) for d in result.groups), 3)
    assert "applies the recorded session settings of cells 1, 2" in foreign_text(manifest)

    report = RestoreReport(url="memory://x", checkpoint="c", reruns=[3], settings=[1, 2],
                           unapplied={"cwd (cell 1)": "FileNotFoundError: /content/data"})
    text = restore_text(report)
    assert "settings replayed (cells not rerun)  1, 2" in text
    assert "setting NOT restored" in text and "cwd (cell 1): FileNotFoundError" in text


def test_per_cell_overhead_is_well_under_a_millisecond():
    """Two snapshots and a diff per cell, with numpy, pandas and matplotlib imported."""
    settings = ambient.Ambient()
    times = []
    for _ in range(50):
        started = time.perf_counter()
        settings.diff(settings.capture(), settings.capture())
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 1e-3


# Real kernels: the cell that changed the settings is loaded, not rerun --------------------------
ORIGINAL = "orig.txt"
PROBES = ("matplotlib.rcParams['axes.labelsize']", "matplotlib.rcParams['axes.facecolor']",
          "warnings.filters[0][:1] + (warnings.filters[0][1].pattern,)", "pd.get_option('display.max_columns')",
          "np.get_printoptions()['precision']", "sys.path[-1]", "os.environ.get('ELASTIC_X')",
          "os.environ.get('ELASTIC_Y')", "matplotlib.get_backend()", "'matplotlib.pyplot' in sys.modules",
          "get_ipython().ast_node_interactivity", "'elastic_ext' in get_ipython().extension_manager.loaded")
SETTINGS_CELLS = [
    "import os, sys, time, warnings\nimport numpy as np, pandas as pd, matplotlib",
    "%matplotlib inline",
    # Slow, with a large-ish result: the plan loads `big` rather than rerunning this cell.
    "time.sleep(0.3)\nbig = np.arange(300_000)\nimport matplotlib.pyplot as plt\nplt.style.use('ggplot')\n"
    "matplotlib.rc('axes', labelsize=14)\nwarnings.filterwarnings('ignore', message='elastic-test')\n"
    "pd.set_option('display.max_columns', None)\nnp.set_printoptions(precision=3)\n"
    "sys.path.append('/tmp/elastic-extra')\nos.environ['ELASTIC_X'] = '1'",
    "%env ELASTIC_Y=2",
    "%config InteractiveShell.ast_node_interactivity = 'last'",
    "%load_ext elastic_ext",
    # Mode "x": if a restore reran this cell it would fail, never overwrite the original's values.
    f"open({ORIGINAL!r}, 'x').write(repr([{', '.join(PROBES)}]))",
]


@pytest.mark.kernel
def test_settings_of_a_loaded_cell_come_back(tmp_path, kernels):
    (tmp_path / "elastic_ext.py").write_text("def load_ipython_extension(ip):\n    pass\n")
    trip = roundtrip(tmp_path, SETTINGS_CELLS, env={"COLAB_ELASTIC_AUTO": "off"})
    try:
        trip.assert_identical()
        restored = trip.value(f"[{', '.join(PROBES)}]")
        original = (tmp_path / ORIGINAL).read_text()
        assert restored == original, f"{restored}\n!=\n{original}\n{trip.restore.text}"
        assert "14.0" in original and "'1', '2'" in original and original.endswith("True]")  # the cells' settings
        # Cell 1 too: importing numpy and pandas adds warning filters.
        assert "settings replayed (cells not rerun)  1, 2, 3, 4, 5, 6" in trip.restore.text, trip.restore.text
        assert "cells rerun" not in trip.restore.text  # the slow cell was loaded, not rerun
    finally:
        trip.kernel.close()


@pytest.mark.kernel
def test_a_rerun_cell_reads_a_relative_path_after_cd(tmp_path, kernels):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.txt").write_text("hello")
    cells = [
        "%cd sub",
        # An open file cannot be stored: this cell is rerun, in `sub` again.
        "handle = open('data.txt')\ntext = handle.read()",
    ]
    trip = roundtrip(tmp_path, cells, env={"COLAB_ELASTIC_AUTO": "off"})
    try:
        assert "cell 2 failed" not in trip.restore.text, trip.restore.text
        assert trip.value("text") == "'hello'"
        assert trip.value("__import__('os').getcwd()") == repr(str(tmp_path / "sub"))
    finally:
        trip.kernel.close()
