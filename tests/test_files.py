"""Files and installs: a new runtime has neither the files nor the packages of the old one."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import time
from pathlib import Path

from colab_elastic import files
from colab_elastic.files import FileLog, carry, install_lines, missing_packages
from colab_elastic.history import HistoryGraph
from colab_elastic.kernel import Kernel
from colab_elastic.store import BlobInfo

from .kernels import WAIT_FOR_UPLOADS, restore_in_new_kernel, run_cells

# Storing is made very slow, so the plan reruns every cell it can: what these tests are about.
ENV = {"COLAB_ELASTIC_AUTO": "off", "COLAB_ELASTIC_WRITE_MBPS": "0.0001"}


class _Sink:
    """Collects blobs in memory, as a checkpoint's sink would write them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put_many(self, items):
        done = {}
        for content, name, fill, _ in items:
            buffer = io.BytesIO()
            fill(buffer)
            self.blobs[name] = buffer.getvalue()
            done[content] = BlobInfo(name, "d", len(buffer.getvalue()), 0.0)
        return done, {}


def _read_cell(log: FileLog, graph: HistoryGraph, path: Path, code: str = "df = read('data.csv')") -> int:
    log.begin(code)
    log.audit("open", (str(path), "r", 0))
    execution = graph.record(code, 0.01, reads=(), writes=["df"])
    log.end(execution.index)
    return execution.index


# Pure ------------------------------------------------------------------------------------------
def test_install_lines_are_recognised():
    code = "%pip install pandas==2.0\n!pip3 install -q x\n!apt-get install -y graphviz\nprint('pip install')\n" \
           "%conda install y\n!python -m pip install z\n!ls"
    assert install_lines(code) == ("%pip install pandas==2.0", "!pip3 install -q x", "!apt-get install -y graphviz",
                                   "%conda install y", "!python -m pip install z")


def test_a_file_written_in_the_working_folder_is_carried(tmp_path):
    """
    cell 1: open('data.csv', 'w')      (writes data.csv)
    cell 2: read('data.csv') -> df     (needs data.csv on rerun: carried)
    """
    log, graph = FileLog(str(tmp_path)), HistoryGraph()
    data = tmp_path / "data.csv"
    log.begin("open('data.csv', 'w')")
    data.write_text("a,b\n1,2\n")
    log.audit("open", (str(data), "w", 0))
    log.end(graph.record("open('data.csv', 'w')", 0.01, reads=(), writes=()).index)
    reader = _read_cell(log, graph, data)
    assert [r.path for r in log.needs(reader)] == [str(data)]
    sink = _Sink()
    carried = carry(graph, log, sink, {})
    assert carried.graph is graph  # nothing blocked
    [entry] = carried.entries
    assert entry["rel"] == "data.csv" and entry["cells"] == [reader]
    assert sink.blobs[entry["blob"]["key"]] == b"a,b\n1,2\n"


def test_a_file_too_large_marks_its_reader_not_rerunnable(tmp_path):
    log, graph = FileLog(str(tmp_path)), HistoryGraph()
    data = tmp_path / "big.bin"
    data.write_bytes(b"x" * 1000)
    reader = _read_cell(log, graph, data)
    carried = carry(graph, log, _Sink(), {}, limit=100)
    assert carried.entries == []
    cell = carried.graph.executions[reader]
    assert not cell.rerunnable and "big.bin" in cell.note and "outputs are stored" in cell.note
    assert graph.executions[reader].rerunnable  # the session's own history is untouched
    assert any("file limit" in n for n in carried.notes)


def test_a_file_changed_since_read_marks_its_reader_not_rerunnable(tmp_path):
    log, graph = FileLog(str(tmp_path)), HistoryGraph()
    data = tmp_path / "data.csv"
    data.write_text("old")
    reader = _read_cell(log, graph, data)
    time.sleep(0.01)
    data.write_text("newer")
    assert not carry(graph, log, _Sink(), {}).graph.executions[reader].rerunnable


def test_old_files_outside_the_working_folder_are_assumed_present(tmp_path):
    outside = tmp_path / "usr-share" / "words"
    outside.parent.mkdir()
    outside.write_text("words")
    os.utime(outside, ns=(0, 0))  # older than recording
    work = tmp_path / "work"
    work.mkdir()
    log, graph = FileLog(str(work)), HistoryGraph()
    reader = _read_cell(log, graph, outside)
    assert log.needs(reader) == []


def test_a_fresh_temp_file_counts_only_after_a_shell_line(tmp_path):
    """
    cell 1: !curl -o /tmp/x.csv ...   (a shell line: its writes are unseen)
    cell 2: read('/tmp/x.csv')        (needed: a shell line ran before it)
    without cell 1 the temp file is a library's cache, not the notebook's
    """
    work = tmp_path / "work"
    work.mkdir()
    log, graph = FileLog(str(work)), HistoryGraph()
    fresh = Path(files.tempfile.gettempdir()) / f"colab-elastic-test-{os.getpid()}.csv"
    fresh.write_text("a")  # after recording started
    try:
        quiet = _read_cell(log, graph, fresh)
        assert log.needs(quiet) == []
        log.begin("!curl -o x.csv http://example")
        log.end(graph.record("!curl", 0.1, reads=(), writes=()).index)
        assert [r.path for r in log.needs(_read_cell(log, graph, fresh))] == [os.path.realpath(fresh)]
    finally:
        fresh.unlink()


def test_the_python_installation_is_never_recorded(tmp_path):
    log = FileLog(str(tmp_path))
    log.begin("import json")
    log.audit("open", (json.__file__, "rb", 0))
    log.audit("open", ("/proc/self/status", "r", 0))
    log.end(1)
    assert 1 not in log.cells


def test_a_missing_package_is_named(tmp_path):
    (tmp_path / "here_pkg_zz.py").write_text("")
    imported = {"here_pkg_zz": {"version": None, "dir": str(tmp_path)}, "json": {"version": None, "dir": ""},
                "gone_pkg_zz": {"version": "1.2", "dir": str(tmp_path / "nowhere")}}
    assert missing_packages(imported) == ["gone_pkg_zz 1.2"]


def test_the_hook_is_silent_when_unloaded(tmp_path):
    log = FileLog(str(tmp_path))
    files.install_hook(log)
    files.install_hook(None)
    log.begin("x")
    open(tmp_path / "f.txt", "w").close()
    log.end(1)
    assert 1 not in log.cells


def test_what_our_own_work_after_a_cell_opens_is_not_the_cells(shell, tmp_path, monkeypatch):
    """Recording in a shell whose working folder holds two modules: the one the user's cell
    imports is a file the cell read (a new runtime may lack it); the one our own work after
    the cell imports (colab_elastic run from a checkout in the working folder, importing a
    module of its own on first use) is not, though the audit hook sees it on the same thread."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    modules = ("users_mod_zz", "ours_mod_zz")
    for name in modules:
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    shell.run_line_magic("load_ext", "colab_elastic")
    from colab_elastic.extension import current

    session = current().session
    after = session.recorder.after

    def after_importing(error):  # our post-cell work, importing a module on first use
        importlib.import_module("ours_mod_zz")
        return after(error)

    monkeypatch.setattr(session.recorder, "after", after_importing)
    try:
        assert shell.run_cell("import users_mod_zz", store_history=True).success
        assert "ours_mod_zz" in sys.modules
        index = session.graph.executions[-1].index
        assert {os.path.basename(p) for p in session.files.cells[index].reads} == {"users_mod_zz.py"}
    finally:
        for name in modules:
            sys.modules.pop(name, None)


# Real kernels ----------------------------------------------------------------------------------
def _working_kernel(tmp_path: Path, kernels: list, cells: list[str], env: dict[str, str]) -> tuple[Path, Kernel]:
    """A kernel in the working folder `tmp_path/a` that has run `cells` after `%load_ext`."""
    old = tmp_path / "a"
    old.mkdir()
    first = Kernel(cwd=str(old), env=env, log=str(tmp_path / "kernel1.log"))
    kernels.append(first)
    first.run("%load_ext colab_elastic").raise_for_error()
    run_cells(first, cells)
    return old, first


def _first_kernel(tmp_path: Path, kernels: list, cells: list[str], env: dict[str, str] = ENV) -> tuple[Path, str]:
    """Run `cells` in a kernel whose working folder is `tmp_path/a`, checkpoint, kill it.
    Returns the folder and what the checkpoint said."""
    old, first = _working_kernel(tmp_path, kernels, cells, env)
    for _ in range(2):  # the second reads the first's manifest: not a file of the notebook's
        checkpoint = first.run(f"%elastic checkpoint {tmp_path / 'ckpt'}")
        checkpoint.raise_for_error()
    first.kill()
    return old, checkpoint.text


def _restore(tmp_path: Path, kernels: list, args: str = "", env: dict[str, str] = ENV):
    """A new runtime: another working folder, without the old one's files."""
    new = tmp_path / "b"
    new.mkdir()
    kernel, out = restore_in_new_kernel(new, f"%elastic restore {tmp_path / 'ckpt'} {args}".strip(), env,
                                        log=str(tmp_path / "kernel2.log"))
    kernels.append(kernel)
    return kernel, out, new


DATA_CELLS = [
    "open('data.csv', 'w').write('a,b\\n1,2\\n3,4\\n')",  # leaves no variable: never rerun
    "import pandas as pd\ndf = pd.read_csv('data.csv')\ntotal = int(df['b'].sum())",
]


def test_a_file_written_by_a_cell_comes_back_before_its_reader_reruns(tmp_path, kernels):
    old, said = _first_kernel(tmp_path, kernels, DATA_CELLS)
    assert said.endswith("note: carries data.csv (0.00 MB) for cell 2"), said
    (old / "data.csv").unlink()
    kernel, out, new = _restore(tmp_path, kernels)
    assert "put back data.csv" in out.text, out.text
    assert (new / "data.csv").read_text() == "a,b\n1,2\n3,4\n"
    check = kernel.run("print(df.shape, total)")
    check.raise_for_error()
    assert check.stdout.strip() == "(2, 2) 6"
    # The restored session goes on: its next checkpoint still carries the file it put back.
    again = kernel.run(f"%elastic checkpoint {tmp_path / 'ckpt'}")
    again.raise_for_error()
    assert again.text.endswith("note: carries data.csv (0.00 MB) for cell 2"), again.text


def test_a_file_over_the_limit_stores_its_readers_outputs(tmp_path, kernels):
    env = {**ENV, "COLAB_ELASTIC_FILE_LIMIT_MB": "0.000001"}
    old, said = _first_kernel(tmp_path, kernels, DATA_CELLS, env)
    assert "cell 2 reads data.csv" in said and "outputs are stored instead" in said, said
    (old / "data.csv").unlink()
    kernel, out, new = _restore(tmp_path, kernels, env=env)
    assert not (new / "data.csv").exists()
    check = kernel.run("print(df.shape, total)")
    check.raise_for_error()
    assert check.stdout.strip() == "(2, 2) 6", out.text


def test_a_missing_package_is_named_before_any_rerun(tmp_path, kernels):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "tinymod_zz.py").write_text("VALUE = 41\n")
    cells = [f"import sys\nsys.path.insert(0, {str(mods)!r})\nimport tinymod_zz\nv = tinymod_zz.VALUE + 1"]
    _first_kernel(tmp_path, kernels, cells)
    (mods / "tinymod_zz.py").unlink()
    _, out, _ = _restore(tmp_path, kernels)
    assert "lacks tinymod_zz" in out.stdout, out.text
    assert out.stdout.index("lacks tinymod_zz") < out.text.index("cells rerun"), out.text
    assert "missing packages: tinymod_zz" in out.text


def test_install_lines_are_recorded_and_replayed_with_install(tmp_path, kernels):
    marker = tmp_path / "installed.marker"
    line = f"!pip install --no-index --no-deps not-a-package-zz >/dev/null 2>&1; touch {marker}"
    _first_kernel(tmp_path, kernels, [line, "x = 1"])
    assert marker.exists()
    marker.unlink()
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "ckpt").rglob("*") if p.is_file()
                 and p.read_bytes()[:1] == b"{" and b'"files"' in p.read_bytes()]
    assert [line] == [i for m in manifests[:1] for c in m["files"]["log"]["cells"].values() for i in c["installs"]]
    _, out, _ = _restore(tmp_path, kernels, "--install")
    assert marker.exists(), out.text
    assert "ran '!pip install" in out.text


def test_install_lines_are_not_replayed_without_install(tmp_path, kernels):
    marker = tmp_path / "installed.marker"
    _first_kernel(tmp_path, kernels, [f"!pip install --no-index nothing-zz >/dev/null 2>&1; touch {marker}"])
    marker.unlink()
    _restore(tmp_path, kernels)
    assert not marker.exists()


def test_hook_overhead_is_small(tmp_path):
    """Not a benchmark: a guard that the hook stays cheap for cells that open nothing."""
    log = FileLog(str(tmp_path))
    files.install_hook(log)
    try:
        log.begin("x")
        started = time.perf_counter()
        for _ in range(10_000):
            sys.audit("compile", None, None)
        per_event = (time.perf_counter() - started) / 10_000
        log.end(None)
    finally:
        files.install_hook(None)
    assert per_event < 20e-6


def test_a_file_a_shell_line_wrote_comes_back(tmp_path, kernels):
    """The audit hook cannot see `!` lines write: the file is in the working folder, so it travels."""
    cells = ["!printf 'a,b\\n1,2\\n' > data.csv", "import pandas as pd\ndf = pd.read_csv('data.csv')"]
    old, said = _first_kernel(tmp_path, kernels, cells)
    assert "carries data.csv" in said, said
    (old / "data.csv").unlink()
    kernel, out, _ = _restore(tmp_path, kernels)
    check = kernel.run("print(df.shape)")
    check.raise_for_error()
    assert check.stdout.strip() == "(1, 2)", out.text


def test_an_auto_checkpoint_carries_the_file_too(tmp_path, kernels):
    """The background path (`prepare_deferred`, a memory sink) carries files as `%elastic checkpoint` does."""
    env = {**ENV, "COLAB_ELASTIC_AUTO": "on", "COLAB_ELASTIC_URL": str(tmp_path / "ckpt")}
    old, first = _working_kernel(tmp_path, kernels, DATA_CELLS, env)
    waited = first.run(f"print({WAIT_FOR_UPLOADS})")
    waited.raise_for_error()
    assert waited.stdout.strip() == "True"
    first.kill()
    (old / "data.csv").unlink()
    kernel, out, new = _restore(tmp_path, kernels, env=env)
    assert (new / "data.csv").exists(), out.text
    check = kernel.run("print(total)")
    check.raise_for_error()
    assert check.stdout.strip() == "6"
