"""Whose checkpoint is this? Manifest signatures, and the rule that decides when a restore asks.

Restoring a checkpoint reruns its cells and unpickles its values: it runs its author's code.
Resuming your own session must never ask; restoring anyone else's must show what it would
run and need `--trust`. A checkpoint is yours when

- its manifest carries a valid signature made with your key: an HMAC-SHA256 over the
  manifest's canonical bytes, with a random key that never leaves your machine
  (`~/.config/colab_elastic/key`, mode 0600, or the file `COLAB_ELASTIC_KEY_FILE` names) or,
  on Colab with Drive mounted, your Drive (`My Drive/.colab_elastic_key`, beside the folder
  of checkpoints, so the next runtime of the same user finds it). Copying a signed manifest elsewhere keeps it
  yours; changing anything in it (a cell, a digest) breaks the signature; or
- it is at a location only you can change: a local folder owned by you and writable by
  nobody else (checked with `os.stat`, nothing written); your Drive; a bucket where you hold
  `storage.objects.create`, asked through IAM `testIamPermissions` (nothing written).

Everything else is foreign: a URL served over HTTP(S), an exported file, a bucket you can
only read, a folder someone else owns or others can write to (a shared `/tmp`). The author
id in a manifest is only shown: anyone holding a checkpoint of yours can copy it.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from . import colab
from .storage_errors import backend_errors

log = logging.getLogger("colab_elastic.trust")

KEY_FILE_ENV = "COLAB_ELASTIC_KEY_FILE"
_KEY_BYTES = 32
# In My Drive itself, beside the `colab_elastic` folder of checkpoints, not in it: sharing that
# folder with a collaborator must not share the key.
_DRIVE_KEY = ".colab_elastic_key"

_keys: dict[str, bytes] = {}  # key file -> key, read or made once per process
_lock = threading.Lock()


# Keys ---------------------------------------------------------------------------------------
def local_key_file() -> str:
    """This machine's key file: `COLAB_ELASTIC_KEY_FILE`, else `~/.config/colab_elastic/key`."""
    return os.environ.get(KEY_FILE_ENV) or os.path.join(os.path.expanduser("~"), ".config", "colab_elastic", "key")


def drive_key_file() -> str | None:
    """On a mounted Drive, the key kept beside the default checkpoint location (None when no
    Drive is mounted, or the key file is set explicitly)."""
    if os.environ.get(KEY_FILE_ENV) or not colab.drive_mounted():
        return None
    return os.path.join(colab.drive_root(), _DRIVE_KEY)


def key_id(key: bytes) -> str:
    """The public name of a key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _read_key(path: str, *, check_owner: bool) -> bytes | None:
    """The key in `path`, None if there is none. A key file someone else owns, or that others
    could read, is not a secret: refused (and a readable one of ours is closed to others)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the signing key %s: %s", path, exc.strerror or exc)
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if check_owner:
            if info.st_uid != os.getuid():
                log.warning("the signing key %s belongs to another user: not used", path)
                return None
            if info.st_mode & 0o077:
                os.fchmod(f.fileno(), 0o600)
        text = f.read(4 * _KEY_BYTES).decode("ascii", "replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        log.warning("the signing key %s is damaged: not used", path)
        return None
    return key


def _write_key(path: str, key: bytes, *, check_owner: bool) -> bytes:
    """Create the key file (0600), unless one appeared meanwhile: then that one is the key
    (if it is fit to be: else `key` serves this process only)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # create-if-absent, whole: two kernels starting at once get one key
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK):
                raise
            if not os.path.exists(path):  # a filesystem without hard links (Drive's FUSE mount)
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    found = _read_key(path, check_owner=check_owner)
    return found if found is not None else key


def _key_at(path: str, *, create: bool, local: bool, seed: bytes | None = None) -> bytes | None:
    with _lock:
        if path in _keys:
            return _keys[path]
        key = _read_key(path, check_owner=local)
        if key is None and create:
            try:
                key = _write_key(path, seed or secrets.token_bytes(_KEY_BYTES), check_owner=local)
            except OSError as exc:  # a read-only home: the key lasts for this process only
                log.warning("cannot keep a signing key in %s (%s): checkpoints signed now are recognised "
                            "as yours only in this process", path, exc.strerror or exc)
                key = seed or secrets.token_bytes(_KEY_BYTES)
        if key is not None:
            _keys[path] = key
        return key


def signing_key() -> bytes:
    """The key new manifests are signed with: the Drive's when Drive is mounted (it outlives the
    runtime; made from this machine's key if the Drive has none yet), else this machine's."""
    drive = drive_key_file()
    if drive is not None:
        key = _key_at(drive, create=False, local=False)
        if key is None:
            key = _key_at(drive, create=True, local=False, seed=_key_at(local_key_file(), create=False, local=True))
        if key is not None:
            return key
    key = _key_at(local_key_file(), create=True, local=True)
    assert key is not None  # created, or made for this process
    return key


def own_keys() -> dict[str, bytes]:
    """Every key of yours this process can find, by key id (the signing one, and this
    machine's when the Drive holds another)."""
    keys = [signing_key(), _key_at(local_key_file(), create=False, local=True)]
    return {key_id(k): k for k in keys if k is not None}


# Signatures ---------------------------------------------------------------------------------
def canonical_bytes(manifest: dict[str, Any]) -> bytes:
    """What a signature covers: the manifest without its signature, as compact sorted JSON.

    Through one JSON round trip first, so a manifest about to be written (int keys, tuples)
    and the same manifest read back give the same bytes."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    plain = json.loads(json.dumps(body))
    return json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()


def _mac(key: bytes, manifest: dict[str, Any]) -> str:
    return hmac.new(key, canonical_bytes(manifest), hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any]) -> dict[str, str]:
    """Sign `manifest` in place with this user's key (last, once every other field is set)."""
    key = signing_key()
    signature = {"key": key_id(key), "mac": _mac(key, manifest)}
    manifest["signature"] = signature
    return signature


def verify(manifest: dict[str, Any]) -> bool:
    """Is `manifest` signed with one of this user's keys, and unchanged since?"""
    signature = manifest.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("mac"), str):
        return False
    key = own_keys().get(str(signature.get("key")))
    if key is None:
        return False
    try:
        return hmac.compare_digest(_mac(key, manifest), signature["mac"])
    except (TypeError, ValueError, RecursionError):  # not JSON, or a non-ASCII mac
        return False


# Locations ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """Whether a checkpoint is yours, and why (said in the refusal when it is not)."""

    yours: bool
    why: str


def owned_folder(path: str) -> str | None:
    """None when the folder at `path` (or, if it does not exist yet, its nearest existing
    parent) is owned by you and nobody else can write to it; else why not. Only `os.stat`."""
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return _owned(path)


def _owned(path: str) -> str | None:
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if info.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} can be written by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def _local_verdict(root: str, manifest: dict[str, Any]) -> Verdict:
    if colab.on_drive(root):
        return Verdict(True, "it is on your Google Drive")
    problem = owned_folder(root)
    if problem is None:
        # What decides what runs: the pointer, the manifest, and the folders holding them.
        names = ["LATEST", "manifests", "blobs", f"manifests/{manifest.get('checkpoint')}.json"]
        for name in names:
            path = os.path.join(root, name)
            if os.path.lexists(path):
                problem = _owned(path)
                if problem:
                    break
    if problem:
        return Verdict(False, f"it is not signed with your key, and {problem}")
    return Verdict(True, "it is in a folder only you can write to")


# The permission that lets a user put checkpoints in a bucket.
_WRITE_PERMISSION = "storage.objects.create"


def granted(answer: Any) -> bool:
    """Does a `testIamPermissions` answer grant the write permission?"""
    return isinstance(answer, dict) and _WRITE_PERMISSION in (answer.get("permissions") or [])


def _bucket_verdict(fs: Any, bucket: str) -> Verdict:
    """Ask the bucket, through the store's own credentials, whether we may write to it.
    A server that cannot answer (an emulator, a network error) means foreign: never a probe."""
    try:
        answer = fs.call("GET", "b/{}/iam/testPermissions", bucket, permissions=[_WRITE_PERMISSION], json_out=True)
    except (*backend_errors(), ValueError, RuntimeError) as exc:
        log.info("cannot ask bucket %s for its permissions: %r", bucket, exc)
        return Verdict(False, f"it is not signed with your key, and bucket {bucket!r} did not say whether you may write to it")
    if granted(answer):
        return Verdict(True, f"you may write to bucket {bucket!r}")
    return Verdict(False, f"it is not signed with your key, and you cannot write to bucket {bucket!r}")


def judge(store: Any, manifest: Any) -> Verdict:
    """Is the checkpoint `manifest` (a `Manifest`, or its JSON form), read from `store`, yours
    (see the module docstring)? Nothing is written anywhere to find out."""
    if hasattr(manifest, "to_json"):
        manifest = manifest.to_json()  # exactly the JSON it was read from (see manifest)
    if verify(manifest):
        return Verdict(True, "it is signed with your key")
    if store.read_only:
        return Verdict(False, "it is not signed with your key, and it comes from a web server or an exported file")
    if store.local:
        return _local_verdict(store.root, manifest)
    gcsfs = sys.modules.get("gcsfs")
    if gcsfs is not None and isinstance(store.fs, gcsfs.GCSFileSystem):
        return _bucket_verdict(store.fs, store.root.split("/", 1)[0])
    return Verdict(False, f"it is not signed with your key, and colab_elastic cannot tell who may write to {store.url}")
