"""The record of one fingerprint in the remote cache: which blob holds the layer, and what a hit is
held to (the manifest: target, bytecode and import check, image, sizes; the layer format).

A record is a small JSON document written after its blob. It is checked before its blob is even
fetched: a record of another fingerprint, format or target, or naming a blob that is not a sha256,
is never used (the layer is built, and in read-write mode the good record replaces it).
"""

from __future__ import annotations

import re
import time
from typing import Any

from ...core.version import __version__
from ...identity.fingerprint import LAYER_FORMAT_VERSION
from ...target import LambdaTarget

#: Bump when the record's shape changes: a reader ignores records of another format.
RECORD_FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256}.zip"


def record_key(fingerprint: str) -> str:
    return f"records/{fingerprint}.json"


def make_record(
    fingerprint: str, metadata: dict[str, Any], *, sha256: str, size: int, zip_level: int
) -> dict[str, Any]:
    """The record for a layer whose zip (``sha256``, ``size`` bytes, at ``zip_level``) was uploaded."""
    return {
        "format": RECORD_FORMAT,
        "layer_format": LAYER_FORMAT_VERSION,
        "fingerprint": fingerprint,
        "blob": {"sha256": sha256, "size": size, "zip_level": zip_level},
        "manifest": metadata["manifest"],
        "requirements": metadata.get("requirements", ""),
        "uploaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_version": __version__,
    }


def record_problem(record: Any, fingerprint: str, target: LambdaTarget) -> str | None:
    """Why the record cannot be used for this build's fingerprint and target, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("format") != RECORD_FORMAT or record.get("layer_format") != LAYER_FORMAT_VERSION:
        return f"format {record.get('format')}/{record.get('layer_format')}, not {RECORD_FORMAT}/{LAYER_FORMAT_VERSION}"
    if record.get("fingerprint") != fingerprint:
        return "it is the record of another fingerprint"
    blob = record.get("blob")
    if not isinstance(blob, dict) or not _SHA256.fullmatch(str(blob.get("sha256"))):
        return "it names no blob by its sha256"
    if not isinstance(blob.get("size"), int) or blob["size"] <= 0 or not isinstance(blob.get("zip_level"), int):
        return "its blob has no size or zip level"
    manifest = record.get("manifest")
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint:
        return "its manifest is not this layer's"
    found = manifest.get("target") or {}
    if found.get("runtime") != target.runtime_name or found.get("architecture") != target.architecture.value:
        return f"it is a layer for {found.get('runtime')} {found.get('architecture')}"
    if not isinstance(manifest.get("sizes"), dict) or not isinstance(record.get("requirements", ""), str):
        return "its manifest has no sizes"
    return None
