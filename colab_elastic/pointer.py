"""What a checkpoint folder says about itself: the LATEST pointer and the shape of a manifest.

Pure data, shared by the store (which writes and reads them) and the lineage (which follows
them); no fsspec here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import CorruptCheckpointError, describe

# Checkpoint ids are made by `checkpoint.prepare_checkpoint`: a UTC time stamp and a random suffix.
CHECKPOINT_ID = re.compile(r"[0-9]{8}T[0-9]{12}-[0-9a-f]{8}")
# What LATEST may name: one file in manifests/ (no '..', no '/', no '\\', no control character).
MANIFEST_NAME = re.compile(r"manifests/[0-9A-Za-z_-][0-9A-Za-z_.-]{0,199}\.json")


@dataclass(frozen=True)
class Pointer:
    """What LATEST holds: the newest checkpoint's manifest name and digest, and its lineage."""

    manifest: str
    digest: str
    checkpoint: str
    lineage: str | None = None
    parent: str | None = None
    created: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps({"manifest": self.manifest, "digest": self.digest, "checkpoint": self.checkpoint,
                           "lineage": self.lineage, "parent": self.parent, "created": self.created}).encode()

    @classmethod
    def parse(cls, raw: bytes, url: str) -> Pointer:
        try:
            fields = json.loads(raw)
            name, digest = fields["manifest"], fields["digest"]
            checkpoint = fields.get("checkpoint") or name[len("manifests/"):-len(".json")]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise CorruptCheckpointError(f"the checkpoint pointer at {url} is unreadable: {describe(exc)}") from None
        if not isinstance(name, str) or not MANIFEST_NAME.fullmatch(name) or ".." in name or not isinstance(digest, str):
            raise CorruptCheckpointError(f"the checkpoint pointer at {url} names no manifest")
        optional = {k: fields.get(k) if isinstance(fields.get(k), str) else None for k in ("lineage", "parent", "created")}
        return cls(name, digest, str(checkpoint), **optional)


def parse_manifest(body: bytes, name: str, url: str) -> dict[str, Any]:
    """A manifest's JSON object (CorruptCheckpointError if it is not one, or names no checkpoint).

    The store only moves manifests; what their other fields must hold is checked by their readers."""
    try:
        manifest = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise CorruptCheckpointError(f"manifest {name} at {url} is unreadable: {describe(exc)}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("checkpoint"), str):
        raise CorruptCheckpointError(f"manifest {name} at {url} is incomplete")
    return manifest
