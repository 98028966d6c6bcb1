"""A layer-cache entry taken out into a build: checked as it is copied or unpacked, never half used.

A tree entry is copied file by file against its listing (one read per file); a zip-form entry's zip is
copied out with its sha256 checked and unpacked from that copy. Anything that is not exactly what
entry.json names leaves the destination empty and no zip behind, and the caller removes the entry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.copy import copy_file, copy_tree, is_fresh_folder
from ..errors import VerificationError
from ..package.unpack import unpack_layer_zip
from .entry import ZIP_FILE, CacheEntry, is_zip_form, refusal, refuse_changed


@dataclass(frozen=True)
class Restored:
    """What a cache hit gives back: the entry's metadata, and whether layer.zip was copied too."""

    metadata: dict[str, Any]
    zipped: bool


def take_out(
    entry: CacheEntry,
    destination: Path,
    *,
    zip_to: Path | None = None,
    zip_level: int | None = None,
    scratch: Path | None = None,
) -> Restored | None:
    """The entry's python/ tree into ``destination`` (new or empty), and its layer.zip to ``zip_to`` when
    asked and cached at ``zip_level``; None if the entry is damaged (nothing of it left behind)."""
    _check_destination(destination, zip_to)
    document = entry.checked_metadata(zip_too=False)
    cached_zip = (document or {}).get("zip") or {}
    zipped = zip_to is not None and cached_zip.get("level") == zip_level
    if document is not None and is_zip_form(document):
        intact = _unpack_checked(entry.layer_zip, destination, document, zip_to if zipped else None, scratch)
    else:
        # Checked while copied (one read per file); the zip only when it is used (is_intact checks all).
        intact = document is not None and _copy_checked(entry.python, destination, document)
        if intact and zipped and not _copy_zip_checked(entry.layer_zip, zip_to, cached_zip):  # type: ignore[arg-type]
            intact = False
            empty(destination)  # the tree alone must not stay: a rebuild would install on top of it
    return Restored(metadata=document, zipped=zipped) if intact and document is not None else None


def _copy_checked(source: Path, destination: Path, document: dict[str, Any]) -> bool:
    """Copy a cached tree out, checking it on the way; False if it is not exactly what ``document``
    (entry.json) lists, executable bits included.

    One read per file instead of a check pass and a copy pass. On False (a changed, extra, missing
    or unreadable file, a link, a special file, a changed mode) the destination is emptied again.
    """
    try:
        copy_tree(source, destination, document["files"], refuse=refuse_changed(document["executables"]))
        return True
    except VerificationError:  # damaged (errors writing the destination are the disk's: they propagate)
        empty(destination)
        return False


def _copy_zip_checked(source: Path, target: Path, expected: dict[str, Any]) -> bool:
    """Copy the cached layer.zip out, hashing it on the way; False (nothing left behind) if it differs."""
    done = False
    try:
        seen = os.lstat(source)
        done = refusal(seen) is None and copy_file(source, target, seen) == [expected["size"], expected["sha256"]]
    except FileExistsError:
        raise  # not ours to remove
    except (VerificationError, FileNotFoundError):
        pass
    finally:
        if not done:
            target.unlink(missing_ok=True)
    return done


def _unpack_checked(
    source: Path, destination: Path, document: dict[str, Any], zip_to: Path | None, scratch: Path | None
) -> bool:
    """A zip-form entry restored: its layer.zip copied out (to ``zip_to``, else to a private folder in
    ``scratch``, the build's own, so a killed build leaves it where the build's sweep finds it and a small
    system temp folder costs no hit), hashed on the way, and unpacked from that copy (never from the
    cache, which could change between the check and the read), to no more bytes than the layer recorded;
    False (the destination emptied, no zip left behind) if it is not exactly the zip entry.json names."""
    sizes = (document.get("manifest") or {}).get("sizes")
    limit = sizes.get("unzipped_bytes") if isinstance(sizes, dict) else None  # not a dict: damage, not a crash
    with tempfile.TemporaryDirectory(prefix="cdk-layer-restore-", dir=scratch) as private:
        copy = zip_to if zip_to is not None else Path(private) / ZIP_FILE
        if not isinstance(limit, int) or not _copy_zip_checked(source, copy, document["zip"]):
            return False
        try:
            unpack_layer_zip(copy, destination, max_bytes=limit, listed=False)
            return True
        except VerificationError:
            empty(destination)
            if zip_to is not None:
                zip_to.unlink(missing_ok=True)
            return False


def empty(folder: Path) -> None:
    """Leave the restore's destination (a fresh folder of the build, never a link) empty."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def _check_destination(folder: Path, zip_to: Path | None) -> None:
    if not is_fresh_folder(folder):
        raise ValueError(f"restore needs a new or empty folder, not {folder}")
    if zip_to is not None and os.path.lexists(zip_to):
        raise ValueError(f"restore writes a new layer.zip, and {zip_to} exists")
