"""Sharing checkpoints: who wrote one, one-file exports, what to send, and what looks secret.

Whether a checkpoint is yours (and a restore may go ahead without asking) is `trust`'s to
say; the author recorded here is shown to people, never believed. Before a checkpoint leaves
the machine (`share`, `export`), what in its history looks like a credential is listed
(`secrets_found`): cell number and kind, never the secret.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import logging
import os
import socket
import uuid
import shutil
import tempfile
import zipfile
from typing import Any, Callable

import fsspec

from . import credentials
from .errors import StorageError
from .lineage import parse
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
    """Who writes checkpoints from this process (recorded in every manifest, for display only:
    anyone can copy it; see `trust` for what makes a checkpoint yours)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"id": author_id(), "name": f"{user}@{socket.gethostname()}"}


def secrets_found(manifest: Any) -> list[str]:
    """What in a checkpoint (a `Manifest` or its JSON form) looks like a credential, one line
    each: where (cell number, variable) and what kind, never the secret. Nothing is unpickled
    to find out."""
    if hasattr(manifest, "to_json"):
        manifest = manifest.to_json()
    found = []
    graph = manifest.get("graph") if isinstance(manifest.get("graph"), dict) else {}
    for execution in graph.get("executions") or []:
        if not isinstance(execution, dict):
            continue
        index, code = execution.get("index"), execution.get("code")
        if isinstance(code, str):
            found += [f"cell {index}: {kind} (left out of the stored code)" for kind in credentials.scrubbed_kinds(code)]
            found += [f"cell {index}: {f.kind}, IN THE STORED CODE" for f in credentials.find(code)]
        if isinstance(execution.get("ambient"), str):
            try:  # pickled settings: the strings in them are readable without unpickling
                raw = base64.b64decode(execution["ambient"]).decode("latin-1")
            except (binascii.Error, ValueError):
                raw = ""
            kind = credentials.token_kind(raw)
            if kind:
                found.append(f"cell {index}: a session setting (an environment variable?) holds a {kind}, IN THE CHECKPOINT")
    for entry in manifest.get("groups") or []:
        for name, fp in ((entry.get("fingerprints") or {}) if isinstance(entry, dict) else {}).items():
            if isinstance(fp, dict) and fp.get("content") == "withheld":
                found.append(f"variable {name}: {credentials.WITHHELD.split(':')[0]} (not stored)")
    log_cells = (((manifest.get("files") or {}).get("log") or {}).get("cells") or {})
    for index, cell in (log_cells.items() if isinstance(log_cells, dict) else []):
        for line in (cell.get("installs") or []) if isinstance(cell, dict) else []:
            found += [f"cell {index}: {f.kind} in an install line, IN THE CHECKPOINT" for f in credentials.find(str(line))]
    return found


def secrets_text(found: list[str]) -> str:
    """The warning `share` and `export` give before a checkpoint leaves the machine."""
    shipped = any("IN THE" in line for line in found)
    lines = ["this checkpoint's history holds what looks like credentials (not shown here):"]
    lines += [f"  {line}" for line in found]
    lines.append("whoever gets this checkpoint can read those marked IN THE...: revoke them, or do not share it"
                 if shipped else "their values are not in the checkpoint: whoever restores it sets them again")
    return "\n".join(lines)


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


def export(url: str, path: str, storage_options: dict[str, Any] | None = None,
           notify: Callable[[str], None] = log.warning) -> int:
    """Write the newest checkpoint at `url` into one zip file at `path` (blob by blob, so
    memory stays at one blob). Returns the bytes of the blobs written. What looks like a
    credential in its history is said (`notify`) before anything is written."""
    store = Store(url, storage_options)
    pointer, name, body = store.latest_files()
    # Checked first: every blob key is one name under blobs/, so no zip entry can lead out.
    manifest = parse(parse_manifest(body, name, store.url), store.url)
    found = secrets_found(manifest)
    if found:
        notify(secrets_text(found))
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
    found = secrets_found(store.latest())  # and refuse to share a location with no complete checkpoint
    protocols = store.fs.protocol if isinstance(store.fs.protocol, tuple) else (store.fs.protocol,)
    url = store.url
    lines = [secrets_text(found), ""] if found else []
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
