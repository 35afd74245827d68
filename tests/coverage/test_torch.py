"""torch across a real disconnect, with real torch (the `coverage-full` extra).

A training notebook seeds torch once and then draws without a seed (`torch.rand`, dropout,
weight init), and slices its data into views (`X_train = X[:800]`). After a restore the views
still share their memory, a rerun cell draws the numbers it drew the first time, torch's
generator ends where the original left it, and the restore says so ("verified") rather than
"differs". Each is checked with torch's own equality and memory pointers in each kernel, not
against what we recorded.
"""

from __future__ import annotations

import ast
import io
import pickle
import subprocess
import sys

import pytest

from colab_elastic import randomness, torch_storage
from colab_elastic.errors import RestoreWarning
from colab_elastic.fingerprint import fingerprint
from colab_elastic.serialize import dump_group, load_group
from tests.kernels import roundtrip

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.coverage_full]

ORIGINAL = "orig.txt"
PROBE = ("[first.tolist(), second.tolist(), third.tolist(), torch.random.get_rng_state().tolist(), "
         "view.tolist(), net.weight.tolist()]")
CELLS = [
    "import time, torch",
    # Slow: the plan loads these rather than rerunning the cell, so the seed is never replayed.
    "time.sleep(0.4)\ntorch.manual_seed(3)\nfirst = torch.rand(2)\nbase = torch.arange(8.0)\nview = base[2:5]\n"
    "net = torch.nn.Linear(3, 2)",
    # Quick and unseeded: rerun, it draws from the state recorded before it, not from a fresh seed.
    "second = torch.rand(3)",
    "third = second * 2 + torch.rand(3)",
    "base[3] = -1.0",  # written through the base, seen through the view
    # Mode "x": if a restore reran this cell it would fail, never overwrite the original's record.
    f"open({ORIGINAL!r}, 'x').write(repr({PROBE}))",
]


def test_the_global_generator_is_captured_and_put_back():
    before = randomness.capture()
    assert isinstance(before["torch"], bytes)
    drawn = torch.rand(4)
    assert randomness.changed(before, randomness.capture())
    randomness.apply(randomness.encode(before))
    assert not randomness.changed(before, randomness.capture())
    assert torch.equal(torch.rand(4), drawn)  # the same draw again, by torch's own reckoning


def test_a_tensor_fingerprints_alike_in_every_process_and_after_a_pickle():
    code = ("import torch; from colab_elastic.fingerprint import fingerprint; torch.manual_seed(1); "
            "print(fingerprint([torch.rand(3, 2), torch.nn.Linear(2, 2)]).content)")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
               for _ in range(2)}
    assert len(digests) == 1, digests
    torch.manual_seed(1)
    value = [torch.rand(3, 2), torch.nn.Linear(2, 2)]
    assert fingerprint(value).content == fingerprint(pickle.loads(pickle.dumps(value))).content == digests.pop()
    value[0][1, 1] = 5.0
    assert fingerprint(value).content not in digests


def test_views_of_one_storage_are_co_variables_and_come_back_sharing_it():
    base = torch.arange(6.0)
    group = {"base": base, "view": base[1:4], "ints": base.view(torch.int32), "other": torch.ones(2)}
    prints = {name: fingerprint(value) for name, value in group.items()}
    assert prints["base"].objects & prints["view"].objects & prints["ints"].objects
    assert not prints["base"].objects & prints["other"].objects
    buffer = io.BytesIO()
    dump_group(group, buffer, {})
    back = load_group(buffer.getvalue(), {})
    assert all(torch.equal(back[name], value) for name, value in group.items())
    back["view"][0] = 42.0
    assert back["base"][1] == 42.0
    assert back["ints"].untyped_storage().data_ptr() == back["base"].untyped_storage().data_ptr()


def test_tensors_stored_on_a_gpu_runtime_load_on_the_cpu_of_one_without(monkeypatch):
    """Colab preempted the GPU; the session resumes on a CPU runtime: the trained weights come
    back, on the CPU, with a warning that says so (not lost with their group)."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    on_gpu = torch_storage.reduce_untyped

    def written_on_a_gpu_runtime(untyped):  # what a CUDA storage writes: its device, its bytes
        rebuild, (_, data) = on_gpu(untyped)
        return rebuild, ("cuda:0", data)

    monkeypatch.setattr(torch_storage, "reduce_untyped", written_on_a_gpu_runtime)
    buffer = io.BytesIO()
    dump_group({"net": net}, buffer, {})
    with pytest.warns(RestoreWarning, match="stored from cuda:0 are loaded on the CPU"):
        back = load_group(buffer.getvalue(), {})["net"]
    assert back.weight.device.type == "cpu" and torch.equal(back.weight, net.weight) and torch.equal(back.bias, net.bias)


@pytest.mark.kernel
def test_a_torch_session_comes_back_equal_sharing_and_verified(tmp_path):
    trip = roundtrip(tmp_path, CELLS, env={"COLAB_ELASTIC_AUTO": "off"})
    try:
        original = (tmp_path / ORIGINAL).read_text()
        text = trip.restore.text
        assert trip.value(PROBE) == original, text
        assert "cells rerun" in text, text  # the unseeded draws were replayed, from their recorded state
        assert trip.value("view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()") == "True", text
        trip.kernel.run("base[2] = 7.0").raise_for_error()
        assert trip.value("view[0].item()") == "7.0"
        assert "restored and verified" in text and "differs" not in text, text
    finally:
        trip.kernel.close()


def test_a_tensor_made_from_a_numpy_array_is_its_co_variable_and_comes_back_sharing_it():
    np = pytest.importorskip("numpy")
    a = np.arange(4, dtype=np.float32)
    group = {"a": a, "t": torch.from_numpy(a), "other": np.ones(3)}
    prints = {name: fingerprint(value) for name, value in group.items()}
    assert prints["a"].objects & prints["t"].objects
    assert not prints["t"].objects & prints["other"].objects
    buffer = io.BytesIO()
    dump_group(group, buffer, {})
    back = load_group(buffer.getvalue(), {})
    assert np.array_equal(back["a"], a) and torch.equal(back["t"], group["t"])
    back["a"][0] = 9.0
    assert back["t"][0].item() == 9.0  # one memory again, as `torch.from_numpy` made it


@pytest.mark.kernel
def test_a_change_through_a_numpy_array_is_seen_in_the_tensor_made_from_it(tmp_path):
    cells = ["import time\nimport numpy as np, torch",
             "time.sleep(0.4)\na = np.zeros(4, dtype=np.float32)\nt = torch.from_numpy(a)",
             "a[0] = 5"]
    trip = roundtrip(tmp_path, cells, env={"COLAB_ELASTIC_AUTO": "off"})
    try:
        text = trip.restore.text
        assert trip.value("t.tolist()") == "[5.0, 0.0, 0.0, 0.0]", text
        trip.kernel.run("a[1] = 7").raise_for_error()
        assert trip.value("t[1].item()") == "7.0", text
        writes = ast.literal_eval(trip.value("[sorted({n for n, _ in e.writes}) for e in "
                                             "__import__('colab_elastic.extension').extension.current().session.graph.executions]"))
        assert writes[3] == ["a", "t"], writes  # `a[0] = 5` changed both, as recorded before the kill
        assert ["a", "t"] in writes[4:], writes  # and `a[1] = 7` after the restore, by the restored session
        assert "restored and verified" in text and "differs" not in text, text
    finally:
        trip.kernel.close()
