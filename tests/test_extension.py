"""The extension inside a real (in-process) IPython shell: hooks, magics, API, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError

import colab_elastic
from colab_elastic.errors import NotInIPythonError


def _session(shell):
    from colab_elastic.extension import current

    return current().session


def test_load_registers_and_unload_unregisters_the_same_callbacks(shell):
    before = {e: len(cbs) for e, cbs in shell.events.callbacks.items()}
    shell.run_line_magic("load_ext", "colab_elastic")
    assert len(shell.events.callbacks["pre_run_cell"]) == before["pre_run_cell"] + 1
    assert len(shell.events.callbacks["post_run_cell"]) == before["post_run_cell"] + 1
    assert "elastic" in shell.magics_manager.magics["line"]
    shell.run_line_magic("unload_ext", "colab_elastic")
    assert {e: len(cbs) for e, cbs in shell.events.callbacks.items()} == before
    assert "elastic" not in shell.magics_manager.magics["line"]


def test_reload_never_records_a_cell_twice(shell):
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("reload_ext", "colab_elastic")
    shell.run_cell("x = [1]\nx.append(2)", store_history=True)
    graph = _session(shell).graph
    assert [e.code for e in graph.executions[1:]] == ["x = [1]\nx.append(2)"]


def test_cells_are_recorded_with_reads_writes_and_deletes(shell):
    shell.run_line_magic("load_ext", "colab_elastic")
    for code in ["a = [1, 2]", "b = a\nc = len(a)", "a.append(3)", "del c", "1 / 0"]:
        shell.run_cell(code, store_history=True)
    executions = _session(shell).graph.executions
    assert executions[1].writes == (("a", 1),)
    assert ("a", 1) in executions[2].reads and ("b", 1) in executions[2].writes
    # the append changed a, and b is the same list: both get new versions
    assert {("a", 2), ("b", 2)} <= set(executions[3].writes)
    assert executions[4].deletes == ("c",)
    assert executions[5].error == "ZeroDivisionError"


def test_a_syntax_error_is_not_recorded_and_an_empty_cell_is_tolerated(shell):
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("x = (", store_history=True)
    shell.run_cell("", store_history=True)
    shell.run_cell("y = 2", store_history=True)
    assert [e.code for e in _session(shell).graph.executions[1:]] == ["y = 2"]


def test_values_from_before_loading_belong_to_execution_zero(shell):
    shell.run_cell("early = {'k': 1}")
    shell.run_line_magic("load_ext", "colab_elastic")
    graph = _session(shell).graph
    assert ("early", 1) in graph.executions[0].writes
    assert not graph.executions[0].rerunnable


@pytest.mark.parametrize("line", ["", "frobnicate", "checkpoint a b", "checkpoint x --option novalue"])
def test_bad_magic_arguments_are_one_line_usage_errors(shell, line):
    shell.run_line_magic("load_ext", "colab_elastic")
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("elastic", line)
    assert "\n" not in str(info.value).strip()


def test_restore_from_an_empty_location_is_a_usage_error(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    with pytest.raises(UsageError, match="no checkpoint at"):
        shell.run_line_magic("elastic", f"restore {tmp_path / 'nothing-here'}")


def test_checkpoint_plan_status_and_api_in_process(shell, tmp_path, capsys):
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time\nnums = list(range(1000))\ntime.sleep(0.05)\ntotal = sum(nums)", store_history=True)
    plan = colab_elastic.plan(str(tmp_path / "c"))
    assert {n for g in plan.groups for n in g.names} == {"time", "nums", "total"}
    assert "<table>" in plan._repr_html_() and "variables" in repr(plan)
    result = colab_elastic.checkpoint(str(tmp_path / "c"))
    assert result.checkpoint in repr(result)
    shell.run_line_magic("elastic", "status")
    out = capsys.readouterr().out
    assert result.checkpoint in out and "session" in out
    shell.run_cell("nums.append(5)", store_history=True)
    second = colab_elastic.checkpoint(str(tmp_path / "c"))
    assert second.checkpoint != result.checkpoint


def test_default_location_comes_from_the_environment(shell, tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_ELASTIC_URL", str(tmp_path / "from-env"))
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("v = 1", store_history=True)
    colab_elastic.checkpoint()
    assert (tmp_path / "from-env" / "LATEST").exists()


def test_api_outside_ipython_says_so_in_one_line():
    code = "import colab_elastic\ntry:\n    colab_elastic.checkpoint()\nexcept Exception as e:\n    print(type(e).__name__, e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("NotInIPythonError") and "plain Python" in out


def test_api_before_load_says_how_to_load(shell):
    with pytest.raises(NotInIPythonError, match="%load_ext colab_elastic"):
        colab_elastic.plan()


def test_an_unpicklable_value_found_at_write_time_is_recomputed_with_a_warning(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    # A memoryview hashes fine but does not pickle: only the write finds out.
    shell.run_cell("import time\ntime.sleep(0.2)\nsneaky = [memoryview(b'abc')]", store_history=True)
    with pytest.warns(colab_elastic.ElasticWarning, match="sneaky"):
        result = colab_elastic.checkpoint(str(tmp_path / "c"))
    decision = next(g for g in result.plan.groups if "sneaky" in g.names)
    assert decision.action == "recompute" and "TypeError" in decision.reason


def test_a_value_whose_reduce_raises_is_planned_as_recompute_up_front(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("class Sneaky:\n    def __reduce__(self):\n        raise TypeError('no pickling me')\n"
                   "import time\ntime.sleep(0.2)\nsneaky = [Sneaky()]", store_history=True)
    plan = colab_elastic.plan(str(tmp_path / "c"))
    decision = next(g for g in plan.groups if "sneaky" in g.names)
    assert decision.action == "recompute" and "no pickling me" in decision.reason


def test_with_drive_mounted_checkpoints_go_to_drive_and_say_it_is_not_synced_yet(shell, tmp_path, monkeypatch, capsys):
    drive = tmp_path / "drive" / "MyDrive"
    drive.mkdir(parents=True)
    monkeypatch.delenv("COLAB_ELASTIC_URL")
    monkeypatch.setenv("COLAB_ELASTIC_DRIVE_ROOT", str(drive))
    monkeypatch.setenv("COLAB_ELASTIC_SESSION", "my analysis.ipynb")
    shell.run_line_magic("load_ext", "colab_elastic")
    assert f"{drive}/colab_elastic/my-analysis.ipynb" in capsys.readouterr().out
    shell.run_cell("v = [1, 2]", store_history=True)
    result = colab_elastic.checkpoint()
    assert (drive / "colab_elastic" / "my-analysis.ipynb" / "LATEST").exists()
    assert "not known to be uploaded" in repr(result) and "flush_and_unmount" in repr(result)
    shell.run_line_magic("elastic", "status")
    assert "flush_and_unmount" in capsys.readouterr().out


def test_naming_the_session_moves_its_default_location(shell, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COLAB_ELASTIC_URL")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_line_magic("elastic", "name experiment-7")
    assert str(tmp_path / ".colab_elastic" / "experiment-7") in capsys.readouterr().out


def test_a_name_rebound_to_a_picklable_value_is_stored_again(shell, tmp_path):
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("import time\ntime.sleep(0.2)\nthing = [memoryview(b'abc')]", store_history=True)
    with pytest.warns(colab_elastic.ElasticWarning):
        colab_elastic.checkpoint(str(tmp_path / "c"))
    shell.run_cell("time.sleep(0.2)\nthing = [1, 2, 3]", store_history=True)
    result = colab_elastic.checkpoint(str(tmp_path / "c"))
    assert next(g for g in result.plan.groups if "thing" in g.names).action == "store"


def test_each_value_is_fingerprinted_once_after_a_cell(shell, monkeypatch):
    from colab_elastic import recorder as recorder_module

    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("items = [1, 2]\nalias = items", store_history=True)
    walked = []
    real = recorder_module.fingerprint
    monkeypatch.setattr(recorder_module, "fingerprint", lambda value, **kw: (walked.append(id(value)), real(value, **kw))[1])
    shell.run_cell("items.append(3)\nfresh = 1", store_history=True)
    # before: `items` comes from the cache; after: items, alias (changed through items) and fresh, once each
    assert sorted(walked) == sorted([id(shell.user_ns["items"])] * 2 + [id(1)]), walked
    execution = _session(shell).graph.executions[-1]
    assert {"items", "alias", "fresh"} <= {n for n, _ in execution.writes}


def test_load_ext_imports_no_planner_library(tmp_path):
    """%load_ext must stay fast on Colab's stack: networkx (~0.1 s to import) waits for the
    first plan, which an auto-checkpoint makes in its background thread."""
    import subprocess
    import sys

    code = ("from IPython.testing.globalipapp import start_ipython\n"
            "import sys\nshell = start_ipython()\nshell.run_line_magic('load_ext', 'colab_elastic')\n"
            "print(sorted(m for m in ('networkx', 'pandas', 'torch') if m in sys.modules))")
    env = {**__import__("os").environ, "COLAB_ELASTIC_URL": str(tmp_path / "ckpt")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
