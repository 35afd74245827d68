"""How a Store fails: real full disks, stopped servers, missing buckets and credentials, racing kernels.

Every failure is one StorageError line, and the previous checkpoint is still the one restored.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from colab_elastic.errors import CheckpointNotFoundError, StorageError
from colab_elastic.store import Store
from tests.servers import GcsServer, free_port
from tests.test_store import fill_with, manifest

# Every connection and name lookup while `_outbound` is a list; an audit hook cannot be removed,
# so it stays installed and records only while a test asks it to.
_outbound: list[str] | None = None
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _outbound is None:
        return
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in _LOOPBACK:
        _outbound.append(f"connect {args[1]}")
    elif event == "socket.getaddrinfo" and args[0] not in _LOOPBACK and args[0] is not None:
        _outbound.append(f"lookup {args[0]}")


sys.addaudithook(_audit)


@pytest.fixture
def no_egress() -> Iterator[None]:
    """Fail the test if anything tried to leave loopback."""
    global _outbound
    _outbound = []
    try:
        yield
        assert _outbound == [], f"traffic left loopback: {_outbound}"
    finally:
        _outbound = None


# A full disk --------------------------------------------------------------------------------
_DISK_FULL_CHILD = textwrap.dedent("""
    import json, os, sys
    from colab_elastic.errors import StorageError
    from colab_elastic.store import Store
    store = Store(sys.argv[1])
    small = store.write_blob("g-small", lambda f: f.write(b"s" * 1000))
    store.commit({"format": 1, "checkpoint": "c1", "blob": small.digest})
    try:
        store.write_blob("g-big", lambda f: [f.write(b"b" * 65536) for _ in range(8)])
        error = None
    except StorageError as exc:
        error = str(exc)
    print(json.dumps({"error": error, "latest": store.latest(),
                      "files": sorted(os.listdir(os.path.join(sys.argv[1], "blobs")))}))
""")


def test_full_disk_says_so_and_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    """A real 64 KiB tmpfs, mounted in a private user and mount namespace (no root needed)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs util-linux unshare")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" -c "$3" "$1/ckpt"'
    run = subprocess.run([unshare, "-rm", "sh", "-c", script, "sh", str(mount_point), sys.executable,
                          _DISK_FULL_CHILD], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    if run.returncode != 0 and "mount" in run.stderr + run.stdout and "Traceback" not in run.stderr:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    import json

    outcome = json.loads(run.stdout)
    assert outcome["error"].startswith("the disk is full: cannot write blob g-big at ")
    assert outcome["error"].endswith("; the previous checkpoint is intact")
    assert "\n" not in outcome["error"]
    assert outcome["latest"]["checkpoint"] == "c1"
    assert outcome["files"] == ["g-small"], "the half-written blob must be gone"


# A server that goes away ----------------------------------------------------------------------
def test_server_stopped_mid_upload_keeps_the_previous_checkpoint(restartable_gcs_server: GcsServer) -> None:
    server = restartable_gcs_server
    options = {**server.storage_options(), "block_size": 2**18}  # upload in 256 KiB chunks
    store = Store("gs://elastic-restart/ckpt", options)
    first = store.write_blob("g-1", fill_with(b"first value"))
    store.commit(manifest("c1", blob=first.digest))

    restarted = threading.Event()

    def fill(f: Any) -> None:
        f.write(b"a" * 300_000)  # the first chunk is uploaded: the upload has begun
        server.stop()
        # Back before gcsfs's first retry (1-2 s), but the upload in flight is lost with the process.
        timer = threading.Timer(0.3, lambda: (server.start(), restarted.set()))
        timer.start()
        f.write(b"b" * 300_000)

    with pytest.raises(StorageError) as failure:
        store.write_blob("g-2", fill)
    assert restarted.wait(10)
    message = str(failure.value)
    assert message.startswith("cannot write blob g-2 at gs://elastic-restart/ckpt: the server lost the upload")
    assert message.endswith("; the previous checkpoint is intact") and "\n" not in message

    after = Store("gs://elastic-restart/ckpt", server.storage_options())
    assert after.latest() == manifest("c1", blob=first.digest)
    assert after.read_blob("g-1", first.digest, first.size) == b"first value"
    assert not after.has_blob("g-2")


def test_connection_refused_says_the_server_could_not_be_reached() -> None:
    store = Store(f"http://127.0.0.1:{free_port()}/shared")
    refused = r"^could not reach the server for http://127\.0\.0\.1:\d+/shared \(connection refused\)$"
    with pytest.raises(StorageError, match=refused):
        store.latest()
    data, errors = store.read_blobs([("g-1", "xxh3_128:0", 1)])
    assert data == {} and str(errors["g-1"]).startswith("could not reach the server")


def test_http_checkpoint_from_a_server_that_ignores_range(http_server_no_range: Any) -> None:
    """`python -m http.server` answers every Range request with the whole file: sizes still check out."""
    base_url, directory = http_server_no_range
    name = uuid.uuid4().hex[:8]
    writer = Store(str(directory / name))
    big = bytes(range(256)) * 40_000  # 10 MB, bigger than fsspec's 5 MB HTTP block
    info = writer.write_blob("g-big", fill_with(big))
    writer.commit(manifest("c1", blob=info.digest))
    reader = Store(f"{base_url}/{name}")
    assert reader.latest()["blob"] == info.digest
    assert reader.read_blob("g-big", info.digest, info.size) == big


# Refusing up front -------------------------------------------------------------------------
def test_check_writable_names_a_missing_bucket(gcs_url: Any, no_egress: None) -> None:
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    store = Store(f"gs://{bucket}/ckpt", gcs_url.storage_options)
    with pytest.raises(StorageError, match=f"^cannot write a probe file at gs://{bucket}/ckpt: "
                                           f"bucket '{bucket}' does not exist"):
        store.check_writable()


def test_check_writable_explains_missing_credentials(gcs_url: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     no_egress: None) -> None:
    """gcsfs with no token and no Application Default Credentials; no request leaves loopback."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("HOME", str(tmp_path))
    store = Store(gcs_url.url, {"endpoint_url": gcs_url.server.endpoint})
    with pytest.raises(StorageError) as failure:
        store.check_writable()
    message = str(failure.value)
    assert message.startswith(f"no Google Cloud credentials for {gcs_url.url}: ")
    assert "from google.colab import auth; auth.authenticate_user()" in message
    assert "Application Default Credentials" in message and "--option token=" in message


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder even root cannot write into (chattr +i), or a plain chmod for other users."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a filesystem without immutable folders")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_check_writable_says_permission_denied(read_only_folder: Path) -> None:
    store = Store(str(read_only_folder))
    with pytest.raises(StorageError, match=f"^permission denied: cannot write a probe file at {read_only_folder}$"):
        store.check_writable()


def test_missing_backend_package_says_what_to_install() -> None:
    pytest.importorskip("fsspec")
    if "s3fs" in sys.modules or _importable("s3fs"):
        pytest.skip("s3fs is installed here")
    with pytest.raises(StorageError, match=r"^cannot open s3://bucket/ckpt: .*pip install s3fs$"):
        Store("s3://bucket/ckpt")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# Racing kernels ---------------------------------------------------------------------------
def _commit_many(url: str, options: dict[str, Any], prefix: str, count: int) -> None:
    """Runs in a spawned process: a second kernel committing to the same place."""
    store = Store(url, options)
    for i in range(count):
        store.commit(manifest(f"{prefix}-{i}", payload=prefix * (500 * i)))


@pytest.fixture(params=["local", "gcs"])
def shared_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "local":
        return str(tmp_path / "shared"), {}
    gcs = request.getfixturevalue("gcs_url")
    return gcs.url, gcs.storage_options


def test_concurrent_commits_from_processes_never_tear_the_pointer(shared_location: tuple[str, dict[str, Any]]) -> None:
    url, options = shared_location
    count = 15
    context = multiprocessing.get_context("spawn")  # gcsfs is not fork-safe
    workers = [context.Process(target=_commit_many, args=(url, options, p, count)) for p in "ab"]
    for w in workers:
        w.start()
    reader = Store(url, options)
    while any(w.is_alive() for w in workers):
        try:
            latest = reader.latest()  # raises CorruptCheckpointError on a torn pointer or manifest
        except CheckpointNotFoundError:
            continue
        prefix, i = latest["checkpoint"].split("-")
        assert latest == manifest(latest["checkpoint"], payload=prefix * (500 * int(i)))
    for w in workers:
        w.join()
        assert w.exitcode == 0
    assert reader.latest()["checkpoint"] in {f"a-{count - 1}", f"b-{count - 1}"}
