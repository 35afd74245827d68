"""Sharing checkpoints: who wrote one, whether to trust it, one-file exports, and what to send.

Restoring a checkpoint reruns its cells and unpickles its values: it runs its author's code.
Resuming your own session must never ask; restoring someone else's must show what it will
run and need `--trust`. We tell the two apart like this:

- a checkpoint whose recorded author id is yours is your own (the id lives in
  `~/.config/colab_elastic/author`, or `COLAB_ELASTIC_AUTHOR`);
- the session's own default location is yours (that is where `%elastic restore` with no
  URL looks, and where your auto-checkpoints go);
- otherwise, a location you can write to is yours: your Drive, your bucket, a local folder.
  Whoever can write there can already change what you run, so asking adds no safety;
- anything else is foreign: an `https://` URL, an exported file, a bucket you can only read.

On a fresh Colab runtime the author file is gone, but your checkpoints live where you can
write (Drive, your bucket), so resuming still never asks.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import uuid
import shutil
import tempfile
import zipfile
from typing import Any

import fsspec

from .errors import StorageError
from .lineage import parse
from .manifest import Manifest
from .pointer import parse_manifest
from .store import LATEST, Store

log = logging.getLogger("colab_elastic.sharing")


def author_id() -> str:
    """A stable id for this user: `COLAB_ELASTIC_AUTHOR`, else one made once and kept."""
    explicit = os.environ.get("COLAB_ELASTIC_AUTHOR")
    if explicit:
        return explicit
    path = os.path.join(os.path.expanduser("~"), ".config", "colab_elastic", "author")
    try:
        with open(path, encoding="utf-8") as f:
            found = f.read().strip()
        if found:
            return found
    except FileNotFoundError:
        pass
    made = uuid.uuid4().hex
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(made)
    except OSError as exc:  # a read-only home: the id lasts for this process only
        log.info("cannot keep the author id in %s: %s", path, exc)
    return made


def author() -> dict[str, str]:
    """Who writes checkpoints from this process (recorded in every manifest)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"id": author_id(), "name": f"{user}@{socket.gethostname()}"}


def is_foreign(store: Store, manifest: Manifest, *, own_location: bool = False) -> bool:
    """Was this checkpoint written by someone else, at a place we cannot write to?

    `own_location`: the session's own default location (where its auto-checkpoints go) is
    ours by definition. A local folder is judged by its permissions; a remote one by a
    probe object created and deleted next to the checkpoint (nothing of it is touched).
    """
    if own_location or manifest.author.id == author_id():
        return False
    if store.local:
        return not os.access(store.root, os.W_OK)
    try:
        store.check_writable()
    except StorageError:
        return True
    return False


def zip_url(url: str) -> str:
    """`shared.zip` means the checkpoint inside that file (through fsspec's `zip::` chaining)."""
    if "::" not in url and url.split("?", 1)[0].endswith(".zip"):
        return f"zip::{url}"
    return url


def open_for_restore(url: str, storage_options: dict[str, Any] | None = None) -> Store:
    """The store to restore from: a folder, or a `.zip` export read in place.

    A zip read in place needs a server that answers Range requests; from one that does not,
    the file is downloaded once (streamed, to a temporary file) and read from there.
    """
    target = zip_url(url)
    try:
        return Store(target, storage_options)
    except StorageError as first:
        if not target.startswith("zip::"):
            raise
        inner = target[len("zip::"):]
        log.info("reading %s in place failed (%s); downloading it first", inner, first)
        fd, local = tempfile.mkstemp(prefix="colab-elastic-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as out, fsspec.open(inner, "rb", block_size=0, **(storage_options or {})) as src:
                shutil.copyfileobj(src, out, 8 << 20)
        except OSError as exc:
            os.unlink(local)
            raise StorageError(f"cannot download {inner}: {exc}") from None
        return Store(f"zip::{local}")


def export(url: str, path: str, storage_options: dict[str, Any] | None = None) -> int:
    """Write the newest checkpoint at `url` into one zip file at `path` (blob by blob, so
    memory stays at one blob). Returns the bytes of the blobs written."""
    store = Store(url, storage_options)
    pointer, name, body = store.latest_files()
    # Checked first: every blob key is one name under blobs/, so no zip entry can lead out.
    manifest = parse(parse_manifest(body, name, store.url), store.url)
    total = 0
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as out:
            # Stored values, and the files the reruns need (see `files.carry`).
            for blob in {b.key: b for b in manifest.blobs()}.values():  # groups and files may share one
                data = store.read_blob(blob.key, blob.digest, blob.size)
                out.writestr(f"blobs/{blob.key}", data)
                total += len(data)
            out.writestr(name, body)
            out.writestr(LATEST, pointer)  # last, as in a folder
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return total


def share_text(store: Store) -> str:
    """What to send a collaborator for the checkpoint at `store`, and what they run."""
    store.latest()  # refuse to share a location with no complete checkpoint
    protocols = store.fs.protocol if isinstance(store.fs.protocol, tuple) else (store.fs.protocol,)
    url = store.url
    lines = []
    if store.local:
        lines.append(f"{url} is a folder on this machine; others cannot reach it. Either export it to one file:")
        lines.append(f"    !colab-elastic export {url} checkpoint.zip")
        lines.append("and share checkpoint.zip (a Drive share, an attachment, a web server); the collaborator")
        lines.append("downloads it and restores the file. Or checkpoint to a gs:// bucket they can read.")
        url = "checkpoint.zip"
    elif {"gs", "gcs"} & set(protocols):
        bucket_path = store.root
        lines.append(f"Share this URL (the collaborator needs read access to the bucket): {url}")
        lines.append(f"If the bucket is public, this works too: https://storage.googleapis.com/{bucket_path}")
    else:
        lines.append(f"Share this URL: {url}")
    lines += [
        "A collaborator restores it in their own runtime (their own checkpoints go to their own location):",
        "    %pip install colab-elastic",
        f"    %load_ext colab_elastic\n    %elastic restore {url} --trust",
    ]
    return "\n".join(lines)
