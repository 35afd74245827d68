"""Shared test setup: loopback-only networking, and no leaked IPython callbacks."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports google-auth or gcsfs: no metadata-server probes, no gRPC waits.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
# A gs:// access that forgot its loopback endpoint must fail here, not reach Google.
os.environ.setdefault("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
os.environ.setdefault("COLAB_ELASTIC_PROGRESS", "text")
# Signing keys (see colab_elastic.trust) of this test run, never the user's own; kernels inherit it.
_KEYS = tempfile.mkdtemp(prefix="elastic-keys-")
atexit.register(shutil.rmtree, _KEYS, ignore_errors=True)
os.environ.setdefault("COLAB_ELASTIC_KEY_FILE", os.path.join(_KEYS, "key"))

import pytest  # noqa: E402

pytest_plugins = ["tests.servers"]


@pytest.fixture(scope="session")
def ipython_shell():
    """One in-process IPython shell for the whole run (IPython allows only one)."""
    from IPython.testing.globalipapp import start_ipython

    return start_ipython()


@pytest.fixture
def shell(ipython_shell, tmp_path, monkeypatch):
    """The in-process shell with a clean user namespace; fails a test that leaks a callback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLAB_ELASTIC_URL", str(tmp_path / "default-location"))
    monkeypatch.setenv("COLAB_ELASTIC_AUTO", "off")  # tests of auto-checkpoints turn it on
    events = ipython_shell.events
    before = {name: list(callbacks) for name, callbacks in events.callbacks.items()}
    ipython_shell.reset(new_session=False)
    yield ipython_shell
    ipython_shell.run_line_magic("unload_ext", "colab_elastic")
    ipython_shell.reset(new_session=False)
    after = {name: list(callbacks) for name, callbacks in events.callbacks.items()}
    assert after == before, "a test leaked an IPython event callback"


@pytest.fixture
def kernels():
    """Kernels a test started (append them): closed at the end, whatever happened."""
    started: list = []
    yield started
    for kernel in started:
        kernel.close()
