"""The record of one fingerprint in the remote cache: which blob holds the layer, and what a hit is
held to (the manifest: target, bytecode and import check, image, sizes; the layer format).

A record is a small JSON document written after its blob. It is checked before its blob is even
fetched: a record of another fingerprint, format or target, naming a blob that is not a sha256, or
whose manifest is not shaped as this library writes it (every field a hit reads, of its type), is
never used (the layer is built, and in read-write mode the good record replaces it). A record of a
newer format is another version's to read: not used, and not replaced (``is_newer``).
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


def is_newer(record: Any) -> bool:
    """A record written by a newer version of this library (a later record format): not ours to replace."""
    found = record.get("format") if isinstance(record, dict) else None
    return isinstance(found, int) and not isinstance(found, bool) and found > RECORD_FORMAT


#: The manifest's fields that a hit reads, and the types they must have (None: the field may be null).
_MANIFEST_FIELDS: dict[str, tuple[type, ...]] = {
    "target": (dict,),
    "sizes": (dict,),
    "packages": (list,),
    "local_packages": (list,),
    "warnings": (list,),
    "project": (str,),
    "tool": (dict,),
    "installer": (dict,),
    "builder": (dict,),
    "lock": (str, type(None)),
    "bytecode": (dict, type(None)),
    "import_check": (dict, type(None)),
    "image": (dict, type(None)),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """Why the manifest is not shaped as this library writes one, or None."""
    for name, types in _MANIFEST_FIELDS.items():
        if name in manifest and not isinstance(manifest[name], types):
            return f"its manifest's {name} is a {type(manifest[name]).__name__}"
    sizes = manifest.get("sizes") or {}
    if not _is_int(sizes.get("unzipped_bytes")) or not (
        sizes.get("zipped_bytes") is None or _is_int(sizes.get("zipped_bytes"))
    ):
        return "its manifest has no sizes"
    packages = manifest.get("packages", [])
    if not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("version"), str) for p in packages
    ):
        return "its manifest's packages are not names and versions"
    if not all(isinstance(w, str) for w in manifest.get("warnings", [])):
        return "its manifest's warnings are not text"
    return None


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
    if not _is_int(blob.get("size")) or blob["size"] <= 0 or not _is_int(blob.get("zip_level")):
        return "its blob has no size or zip level"
    manifest = record.get("manifest")
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint:
        return "its manifest is not this layer's"
    shape = manifest_problem(manifest)
    if shape:
        return shape
    found = manifest.get("target") or {}
    if found.get("runtime") != target.runtime_name or found.get("architecture") != target.architecture.value:
        return f"it is a layer for {found.get('runtime')} {found.get('architecture')}"
    if not isinstance(record.get("requirements", ""), str):
        return "its requirements are not text"
    return None
