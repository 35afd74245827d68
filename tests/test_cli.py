"""The `colab-elastic` command on real checkpoints."""

from __future__ import annotations

from colab_elastic.cli import main
from colab_elastic.store import Store


def test_cli_inspect_and_verify_read_a_folder_and_an_export(tmp_path, capsys):
    from colab_elastic.checkpoint import Inputs, take_checkpoint
    from colab_elastic.history import HistoryGraph
    from colab_elastic.planner import Bandwidth
    from colab_elastic.recorder import Recorder

    namespace = {"numbers": list(range(1000))}
    graph = HistoryGraph()
    recorder = Recorder(namespace, graph)
    store = Store(str(tmp_path / "ckpt"))
    take_checkpoint(Inputs(recorder, graph, Bandwidth(), store.url, "s", {}, {}), store)
    assert main(["inspect", str(tmp_path / "ckpt")]) == 0
    assert "numbers" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "ckpt")]) == 0
    assert main(["export", str(tmp_path / "ckpt"), str(tmp_path / "one.zip")]) == 0
    assert main(["verify", str(tmp_path / "one.zip")]) == 0
    assert "all blobs verified" in capsys.readouterr().out
    assert main(["log", str(tmp_path / "one.zip")]) == 0
    assert "1 checkpoint at" in capsys.readouterr().out
    blob = next((tmp_path / "ckpt" / "blobs").iterdir())
    blob.write_bytes(blob.read_bytes()[:-1])
    assert main(["verify", str(tmp_path / "ckpt")]) == 1
    capsys.readouterr()
    assert main(["log", str(tmp_path / "ckpt")]) == 0
    out = capsys.readouterr().out
    assert "LATEST, damaged: 1 of 1 stored values missing or cut short" in out, out
    assert main(["log", str(tmp_path / "nothing")]) == 0
    assert "no checkpoints at" in capsys.readouterr().out
