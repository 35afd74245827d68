"""The manifest schema: every field checked on read, names confined to the checkpoint folder,
a newer format refused; hostile manifests (mutated real ones, random bytes) through the real
load, log, restore, export and garbage-collection paths end in one ElasticError line at most,
and write nothing outside their folder."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from colab_elastic import lineage
from colab_elastic.errors import CorruptCheckpointError, ElasticError, StorageError
from colab_elastic.history import HistoryGraph
from colab_elastic.manifest import (BLOB_KEY, FORMAT, Author, BlobRef, Environment, GroupEntry, Manifest, Recorded,
                                    Signature)
from colab_elastic.planner import GroupDecision, Plan
from colab_elastic.pointer import CHECKPOINT_ID, Pointer
from colab_elastic.retention import collect_garbage
from colab_elastic.sharing import export
from colab_elastic.store import Store
from colab_elastic.streams import digest_of


def blob_key(label: str) -> str:
    """A blob name of the shape our writer gives, for a short label."""
    return f"g-{hashlib.md5(label.encode()).hexdigest()}.w"


def example(checkpoint: str, blobs: dict[str, tuple[str, int]] | None = None, *, lineage: str | None = None,
            parent: str | None = None) -> dict[str, Any]:
    """A small valid manifest (as JSON) storing one group per blob (name -> (key, size)); the
    blobs' digests are not those of any bytes: for tests that never read them."""
    decisions, groups = [], []
    for name, (key, size) in (blobs or {}).items():
        decision = GroupDecision((name,), size, "store", "", 0)
        decisions.append(decision)
        groups.append(GroupEntry(decision, {name: Recorded(f"c-{name}", True)},
                                 BlobRef(key, f"xxh3_128:{'0' * 32}", size, None)))
    graph = HistoryGraph()
    graph.adopt(blobs or {})
    manifest = Manifest(checkpoint, "2026-01-01T00:00:00+00:00", "s", Author("a", "ada@host"), "0.1.0", Environment(),
                        graph, Plan(tuple(decisions), (), 0.0, 0.0), tuple(groups), 0, lineage=lineage, parent=parent)
    return manifest.to_json()


def _real_checkpoint(folder: Path, cwd: Path, file_name: str = "data.csv") -> Store:
    """A real checkpoint, taken in process: stored values, a recomputed one, a carried file."""
    from colab_elastic.checkpoint import Inputs, take_checkpoint
    from colab_elastic.files import CellFiles, FileLog, FileRead
    from colab_elastic.planner import Bandwidth
    from colab_elastic.recorder import Recorder

    cwd.mkdir(parents=True, exist_ok=True)
    data = cwd / file_name
    data.write_text("1,2,3\n")
    namespace: dict[str, Any] = {}
    graph = HistoryGraph()
    recorder = Recorder(namespace, graph)
    namespace["numbers"] = list(range(2000))
    graph.record("numbers = list(range(2000))", 5.0, reads=[], writes=["numbers"], imports=25)
    namespace["text"] = data.read_text()
    graph.record("text = open('data.csv').read()", 0.001, reads=[], writes=["text"])
    files = FileLog(cwd=str(cwd))
    stat = data.stat()
    files.cells[2] = CellFiles(reads={str(data): FileRead(str(data), stat.st_size, stat.st_mtime_ns)})
    store = Store(str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        take_checkpoint(Inputs(recorder, graph, Bandwidth(), store.url, "s", {}, {}, "w", files), store)
    return store


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A real checkpoint folder, and its manifest as JSON."""
    root = tmp_path_factory.mktemp("real")
    store = _real_checkpoint(root / "ckpt", root / "work")
    _, name, body = store.latest_files()
    return root / "ckpt", json.loads(body)


def _commit(folder: Path, manifest: Any) -> None:
    """Put `manifest` (JSON, or raw bytes) in `folder` as its newest checkpoint, digest and all."""
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    named = manifest.get("checkpoint") if isinstance(manifest, dict) else None
    checkpoint = named if isinstance(named, str) and CHECKPOINT_ID.fullmatch(named) else "20260101T000000000000-0000000f"
    (folder / "manifests").mkdir(parents=True, exist_ok=True)
    (folder / "manifests" / f"{checkpoint}.json").write_bytes(body)
    (folder / "LATEST").write_bytes(Pointer(f"manifests/{checkpoint}.json", digest_of(body), checkpoint).to_bytes())


# Round trip ----------------------------------------------------------------------------------
def test_a_real_manifest_round_trips_exactly(real):
    _, data = real
    manifest = Manifest.from_json(json.dumps(data).encode())
    assert manifest.format == FORMAT == 3
    assert manifest.to_json() == data
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.files is not None and manifest.files.entries[0].rel == "data.csv"
    assert {b.key for b in manifest.blobs()} <= {p.name for p in (real[0] / "blobs").iterdir()}
    assert all(BLOB_KEY.fullmatch(b.key) for b in manifest.blobs())


def test_a_signature_round_trips_and_is_left_out_of_the_signed_bytes(real):
    manifest = Manifest.from_json(real[1])
    signed = replace(manifest, signature=Signature("key-1", "ab" * 16))
    again = Manifest.from_json(json.loads(json.dumps(signed.to_json())))
    assert again == signed and again.signature == Signature("key-1", "ab" * 16)
    assert signed.canonical_bytes() == manifest.canonical_bytes() == again.canonical_bytes()
    assert b"signature" not in signed.canonical_bytes()
    assert json.loads(signed.canonical_bytes()) == {k: v for k, v in signed.to_json().items() if k != "signature"}
    with pytest.raises(CorruptCheckpointError, match=r"signature\.mac: missing"):
        Manifest.from_json({**real[1], "signature": {"key": "k"}})


def test_format_1_is_still_read(real):
    data = {**copy.deepcopy(real[1]), "format": 1, "added_later": True}
    del data["covers_cell"], data["environment"]
    manifest = Manifest.from_json(data)
    assert manifest.format == 1 and manifest.covers_cell == len(manifest.graph.executions) - 1


def test_format_2_is_still_read_without_the_imports_of_format_3(real):
    data = copy.deepcopy(real[1])
    assert any(e["imports"] for e in data["graph"]["executions"]) and data["plan"]["import_seconds"] > 0
    data["format"] = 2
    for execution in data["graph"]["executions"]:
        del execution["imports"]
    del data["plan"]["import_seconds"]
    manifest = Manifest.from_json(data)
    assert manifest.format == 2 and manifest.plan.import_seconds == 0.0
    assert all(e.imports == 0 for e in manifest.graph.executions)


def test_a_newer_format_is_refused_with_the_upgrade_to_make(real, tmp_path):
    data = {**real[1], "format": FORMAT + 1, "something": "new"}
    with pytest.raises(CorruptCheckpointError, match=rf"written by a newer colab_elastic \(format {FORMAT + 1}\).*"
                                                     r"pip install -U colab-elastic"):
        Manifest.from_json(data)
    _commit(tmp_path, data)
    with pytest.raises(CorruptCheckpointError, match="newer colab_elastic"):
        lineage.choose(Store(str(tmp_path)))


# Bad fields ----------------------------------------------------------------------------------
def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if value is _DELETE:
        del data[last]
    elif isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


_DELETE = object()

BAD_FIELDS = [
    ("checkpoint", 5, "checkpoint: expected a string"),
    ("checkpoint", "../../etc", "checkpoint: '../../etc' is not a checkpoint id"),
    ("parent", "x/../y", "parent: 'x/../y' is not a checkpoint id"),
    ("lineage", "a/b", "lineage: 'a/b' is not a lineage id"),
    ("groups", {}, "groups: expected a list, got an object"),
    ("plan", _DELETE, "plan: missing"),
    ("surprise", 1, "surprise: not a field of this format"),
    ("created", "yesterday", "created: 'yesterday' is not a time stamp"),
    ("author.name", None, "author.name: expected a string, got null"),
    ("environment.packages.numpy", 2, "environment.packages.numpy: expected a string"),
    ("graph.executions.1.index", "1", r"graph.executions\[1\].index: expected an integer"),
    ("graph.executions.1.index", 7, r"graph.executions\[1\].index: 7 is out of sequence"),
    ("graph.executions.1.reads", [["a"]], r"graph.executions\[1\].reads\[0\]: expected \[name, version\]"),
    ("graph.executions.1.runtime", float("nan"), r"graph.executions\[1\].runtime: expected a finite number"),
    ("graph.executions.1.code", "\ud800", r"graph.executions\[1\].code: holds a lone surrogate"),
    ("plan.reruns", [99], r"plan.reruns: cell 99 was never recorded"),
    ("plan.reruns", [0], r"plan.reruns: cell 0"),
    ("plan.groups.0.action", "run", r"plan.groups\[0\].action: 'run' is not one of"),
    ("plan.groups.0.load_after", 50, r"plan.groups\[0\].load_after: cell 50 was never recorded"),
    ("groups.0.decision.size", 1, r"groups\[0\].decision: differs from the plan's"),
    ("groups.0.fingerprints", [], r"groups\[0\].fingerprints: expected an object"),
    ("groups.0.blob.size", -1, r"groups\[0\].blob.size: -1 is not a size in bytes"),
    ("groups.0.blob.size", 2**80, r"groups\[0\].blob.size: \d+ is not a size in bytes"),
    ("graph.executions.1.runtime", 1e300, r"graph.executions\[1\].runtime: 1e\+300 is not a duration"),
    ("graph.executions.1.runtime", -1.0, r"graph.executions\[1\].runtime: -1.0 is not a duration"),
    ("files.entries.0.mtime_ns", 2**70, r"files.entries\[0\].mtime_ns: \d+ is not a time in nanoseconds"),
    ("groups.0.blob.size", True, r"groups\[0\].blob.size: expected an integer, got true/false"),
    ("groups.0.blob.digest", "md5:00", r"groups\[0\].blob.digest: 'md5:00' is not a digest"),
    ("files.log.cells.2.reads", [["x", 1]], r"files.log.cells.2.reads\[0\]: expected \[path, size, mtime_ns\]"),
    ("covers_cell", 9, "covers_cell: cell 9 was never recorded"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_FIELDS, ids=[f"{p}={v!r}" for p, v, _ in BAD_FIELDS])
def test_each_bad_field_is_named_in_one_line(real, path, value, message):
    data = copy.deepcopy(real[1])
    if path in ("parent", "lineage"):
        data[path] = None
    stored = [i for i, g in enumerate(data["groups"]) if "blob" in g]
    if path.startswith("groups.0."):
        path = path.replace("groups.0.", f"groups.{stored[0]}.")
    _set(data, path, value)
    if path.startswith("plan.groups.0."):  # the same change to the group's own copy of the decision
        _set(data, path.replace("plan.groups.0.", "groups.0.decision."), value)
    with pytest.raises(CorruptCheckpointError, match=message) as caught:
        Manifest.from_json(data)
    assert "\n" not in str(caught.value)


def test_not_json_and_not_an_object_are_corrupt():
    for raw in (b"", b"\xff\xfe", b"[1, 2]", b"null", b"[" * 100_000, b'{"format": "2"}', b'{"checkpoint": "x"}'):
        with pytest.raises(CorruptCheckpointError):
            Manifest.from_json(raw)


# Hostile names -------------------------------------------------------------------------------
HOSTILE_NAMES = ["../../outside", "/etc/passwd", "blobs/../x", "g-" + "0" * 32 + "/x", "a\\b", "", ".", "..",
                 "g-" + "0" * 32 + "\x00", "g-" + "0" * 32 + ".w\n", "g-" + "0" * 31, "G-" + "0" * 32]


@pytest.mark.parametrize("key", HOSTILE_NAMES, ids=repr)
def test_hostile_blob_keys_are_refused(real, key):
    data = copy.deepcopy(real[1])
    stored = next(g for g in data["groups"] if "blob" in g)
    stored["blob"]["key"] = key
    with pytest.raises(CorruptCheckpointError, match=r"groups\[\d+\]\.blob\.key"):
        Manifest.from_json(data)
    data = copy.deepcopy(real[1])
    data["files"]["entries"][0]["blob"]["key"] = key
    with pytest.raises(CorruptCheckpointError, match=r"files\.entries\[0\]\.blob\.key"):
        Manifest.from_json(data)


@pytest.mark.parametrize(("field", "name"), [
    ("rel", "../outside.txt"), ("rel", "/etc/passwd"), ("rel", "a/../../b"), ("rel", "a//b"), ("rel", "a\\..\\b"),
    ("rel", "a\x00b"), ("rel", ""), ("rel", "./a"), ("path", "relative/x"), ("path", "/a/../../b"), ("path", "/a//b"),
    ("path", "/a/\x1b[2Kb"), ("path", "")], ids=repr)
def test_hostile_file_names_are_refused(real, field, name):
    data = copy.deepcopy(real[1])
    data["files"]["entries"][0][field] = name
    with pytest.raises(CorruptCheckpointError, match=rf"files\.entries\[0\]\.{field}"):
        Manifest.from_json(data)


@pytest.mark.parametrize("name", ["manifests/../../x.json", "manifests/a/b.json", "manifests/.json", "x.json",
                                  "manifests/a\\b.json", "manifests/a\nb.json"], ids=repr)
def test_latest_names_only_a_manifest_in_its_folder(name):
    with pytest.raises(CorruptCheckpointError, match="names no manifest"):
        Pointer.parse(json.dumps({"manifest": name, "digest": "d"}).encode(), "here")


def test_export_never_writes_a_zip_entry_outside(tmp_path):
    """A committed manifest whose blob key climbs out of blobs/: export refuses it, writing nothing."""
    store = Store(str(tmp_path / "ckpt"))
    (tmp_path / "outside").write_bytes(b"secret")
    (tmp_path / "ckpt" / "blobs").mkdir(parents=True)  # so that blobs/../../outside resolves
    data = example("20260101T000000000000-00000001", {"x": ("../../outside", 6)})
    data["groups"][0]["blob"]["digest"] = digest_of(b"secret")
    store.commit(data)
    with pytest.raises(CorruptCheckpointError, match=r"groups\[0\]\.blob\.key: '\.\./\.\./outside'"):
        export(str(tmp_path / "ckpt"), str(tmp_path / "shared.zip"))
    assert not (tmp_path / "shared.zip").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "outside"]


def test_export_of_a_real_checkpoint_holds_only_names_inside(real, tmp_path):
    export(str(real[0]), str(tmp_path / "shared.zip"))
    with zipfile.ZipFile(tmp_path / "shared.zip") as z:
        names = z.namelist()
    assert names[-1] == "LATEST" and all(n == "LATEST" or n.startswith(("blobs/", "manifests/")) for n in names)
    assert len(names) == len(set(names))


def _age(folder: Path, seconds: float) -> None:
    past = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def test_garbage_collection_never_deletes_through_a_blobs_link(tmp_path):
    """`blobs` is a symlink to another folder holding old files: they all survive."""
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("thesis.tex", blob_key("old")):
        (victim / name).write_text("keep me")
    folder = tmp_path / "ckpt"
    (folder / "blobs").mkdir(parents=True)
    store = Store(str(folder))
    store.commit(example("20260101T000000000000-00000001"))
    (folder / "blobs").rmdir()
    (folder / "blobs").symlink_to(victim)
    _age(victim, 7200)
    with pytest.raises(StorageError, match="link out of the checkpoint folder"):
        collect_garbage(store, keep=1, grace=0)
    assert sorted(p.name for p in victim.iterdir()) == sorted(["thesis.tex", blob_key("old")])

    from colab_elastic.cli import main

    assert main(["gc", str(folder), "--grace", "0"]) == 2
    assert len(list(victim.iterdir())) == 2


def test_garbage_collection_never_deletes_through_a_manifests_link(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "20250101T000000000000-00000001.json").write_text("{}")
    folder = tmp_path / "ckpt"
    store = Store(str(folder))
    store.commit(example("20260101T000000000000-00000001"))
    (victim / "20260101T000000000000-00000001.json").write_bytes(
        (folder / "manifests" / "20260101T000000000000-00000001.json").read_bytes())
    for path in (folder / "manifests").iterdir():
        path.unlink()
    (folder / "manifests").rmdir()
    (folder / "manifests").symlink_to(victim)
    _age(victim, 7200)
    with pytest.raises(StorageError, match="link out of the checkpoint folder"):
        collect_garbage(store, keep=1, grace=0)
    assert len(list(victim.iterdir())) == 2


def test_a_malformed_manifest_is_corrupt_not_a_key_error(real, tmp_path):
    """What used to raise KeyError/TypeError from deep inside a restore or the CLI."""
    from colab_elastic.cli import main
    from colab_elastic.restore import restore

    data = copy.deepcopy(real[1])
    del data["groups"][0]["fingerprints"]
    folder = tmp_path / "ckpt"
    _commit(folder, data)
    with pytest.raises(CorruptCheckpointError, match=r"groups\[0\]\.fingerprints: missing"):
        restore(Store(str(folder)), None, progress=None)  # type: ignore[arg-type]
    assert main(["inspect", str(folder)]) == 2
    assert main(["verify", str(folder)]) == 2
    entry, = lineage.read_log(Store(str(folder))).entries
    assert not entry.intact and "fingerprints: missing" in entry.problem


def test_a_file_whose_name_a_reader_refuses_is_not_carried(tmp_path):
    """The writer never makes a manifest its reader refuses: the cell reading it is not rerun."""
    store = _real_checkpoint(tmp_path / "ckpt", tmp_path / "work", file_name="odd\\name\n.csv")
    manifest = lineage.read_latest(store)
    assert manifest.files is not None and manifest.files.entries == ()
    cell = manifest.graph.executions[2]
    assert not cell.rerunnable and "cannot be carried" in cell.note


# Fuzzing -------------------------------------------------------------------------------------
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


HOSTILE_STRINGS = HOSTILE_NAMES + ["/etc/hostname", "20260101T000000000000-0000000f", "g-" + "0" * 32,
                                   "xxh3_128:" + "0" * 32, "\r\x1b[2K", "manifests/../LATEST", "store", "lost"]
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False),
                        st.text(max_size=12), st.sampled_from(HOSTILE_STRINGS))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=6)


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


ALIKE = {str: st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12)),
         int: st.one_of(st.integers(-2, 40), st.integers(2**53, 2**80)), bool: st.booleans(),
         float: st.one_of(st.floats(0, 1e6), st.floats(1e6, 1e308))}


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    """The real manifest with one to three fields replaced, deleted or added."""
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["alike", "alike", "alike", "replace", "delete", "add"]))
        paths = _paths(data)
        leaves = [p for p in paths if type(_at(data, p)) in ALIKE]
        path = draw(st.sampled_from(leaves if how == "alike" and leaves else paths))
        parent: Any = _at(data, path[:-1])
        old = parent[path[-1]]
        if how == "alike" and type(old) in ALIKE:  # same type, other value: gets past the type checks
            parent[path[-1]] = draw(ALIKE[type(old)])
        elif how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return data


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def _load_everywhere(folder: Path) -> None:
    """Every path that reads a manifest: each ends well or in one ElasticError line."""
    store = Store(str(folder))
    for attempt in (lambda: lineage.choose(store), lambda: lineage.read_log(store),
                    lambda: export(str(folder), str(folder.parent / "out.zip")),
                    lambda: collect_garbage(store, keep=1, grace=0)):
        try:
            attempt()
            event("done")
        except ElasticError as exc:
            assert "\n" not in str(exc) and str(exc)
            event("refused")


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_mutated_manifests_are_read_or_refused_as_corrupt(real, data, tmp_path_factory):
    folder, original = real
    manifest = data.draw(mutated(original))
    try:
        parsed = Manifest.from_json(manifest)
    except CorruptCheckpointError as exc:
        assert str(exc).startswith(("manifest field", "written by a newer")) and "\n" not in str(exc)
        event("refused")
        return
    event("read")
    # Read: then every name in it is one that stays in its folder.
    assert CHECKPOINT_ID.fullmatch(parsed.checkpoint)
    assert all(BLOB_KEY.fullmatch(b.key) for b in parsed.blobs())
    assert all(".." not in (e.rel or "").split("/") for e in (parsed.files.entries if parsed.files else ()))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_hostile_checkpoints_through_the_load_paths(real, data, tmp_path_factory):
    folder, original = real
    sandbox = tmp_path_factory.mktemp("fuzz")
    target = sandbox / "ckpt"
    body = data.draw(st.one_of(st.binary(max_size=200), mutated(original)))
    (target / "blobs").mkdir(parents=True)
    for blob in (folder / "blobs").iterdir():
        (target / "blobs" / blob.name).write_bytes(blob.read_bytes())
    _commit(target, body)
    before = _files(sandbox)
    _load_everywhere(target)
    after = _files(sandbox)
    assert after - before <= {str(sandbox / "out.zip")}  # nothing written but the export itself
    assert {p for p in before - after if not p.startswith(str(target))} == set()  # nothing deleted outside


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_elastic_restore_of_hostile_checkpoints(shell, real, data, tmp_path_factory, monkeypatch):
    """`%elastic restore URL --trust`, in a real shell: restored, or one UsageError line; it
    writes in the working folder (the files reruns read) and nowhere else."""
    from IPython.core.error import UsageError

    folder, original = real
    sandbox = tmp_path_factory.mktemp("restore")
    target, work = sandbox / "ckpt", sandbox / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    manifest = data.draw(mutated(original))
    (target / "blobs").mkdir(parents=True)
    for blob in (folder / "blobs").iterdir():
        (target / "blobs" / blob.name).write_bytes(blob.read_bytes())
    _commit(target, manifest)
    shell.run_line_magic("load_ext", "colab_elastic")
    before = _files(sandbox)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            shell.run_line_magic("elastic", f"restore {target} --trust")
            event("restored")
        except UsageError as exc:
            assert str(exc).startswith("colab_elastic: ") and "\n" not in str(exc)
            event("refused")
    # Files the reruns read are put back under the working folder; nothing goes anywhere else.
    assert all(p.startswith((f"{work}/", f"{target}/")) for p in _files(sandbox) - before)
