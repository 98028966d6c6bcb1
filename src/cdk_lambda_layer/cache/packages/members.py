"""A package entry's zip members: each file's raw deflate stream at one zlib level and zlib version,
in one members file per level (``members-<level>-<zlib>.bin``), listed in entry.json with its size,
sha256 and, for each stream, where it lies and the CRC-32s of its file and of itself. Each stream is
inflated against its file's CRC once, when it is stored; read back, the members file is checked by
sha256 and each stream by its two CRC-32s (the zip writer compares the file's, package/archive.py
Stream), which costs a fraction of inflating every stream of every reused package again; added to
an entry that lacks a level under its lock, written beside it first and renamed in, so an add cut
short leaves a file no listing names, which is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...core.files import open_regular
from ...errors import VerificationError
from ...package.archive import Stream, inflated
from ..entry import refusal
from ..ownership import _write_atomically
from .entry import ENTRY_FILE, PackageEntry, members_file

logger = logging.getLogger(__name__)

_BLOCK = 1 << 20


def read_members(entry: PackageEntry, document: dict[str, Any], members_key: str) -> dict[str, Stream] | None:
    """The entry's raw deflate streams at ``members_key`` (relative path -> bytes), or None when it has
    none or its members file is not the one listed (then it is dropped from the entry)."""
    listed = document["members"].get(members_key)
    if listed is None:
        return None
    try:
        blob = _read_checked(entry.path / listed["file"], listed["size"], listed["sha256"])
    except VerificationError:
        blob = None
    if blob is None:
        logger.warning("the zip members of package cache entry %s are damaged; compressing again", entry.key[:12])
        drop_members(entry, members_key)
        return None
    return {name: _stream(blob, where) for name, where in listed["index"].items()}


def _stream(blob: bytes, where: list[int]) -> Stream:
    """One stream of a members file: [offset, length, file CRC, stream CRC] (entry.py checked the shape)."""
    start, length, crc, blob_crc = where
    return Stream(memoryview(blob)[start : start + length], crc, blob_crc)  # a view: no copy of each stream


def add_members(
    entry: PackageEntry,
    document: dict[str, Any],
    members_key: str,
    layer_zip: Path,
    spans: Mapping[str, tuple[int, int, int]],
) -> None:
    """Keep the zip members at a level the entry (``document``: its checked metadata) had none for."""
    if members_key in document["members"]:
        return
    partial = entry.path / f".members-{uuid.uuid4().hex[:8]}.partial"
    partial.mkdir()
    try:
        listed = write_members(partial, members_key, layer_zip, spans, list(document["files"]))
        (partial / listed["file"]).replace(entry.path / listed["file"])
        document["members"][members_key] = listed
        _write_atomically(entry.path / ENTRY_FILE, json.dumps(document, sort_keys=True))
    finally:
        with contextlib.suppress(OSError):
            for child in partial.iterdir():
                child.unlink()
            partial.rmdir()


def drop_members(entry: PackageEntry, members_key: str) -> None:
    with contextlib.suppress(OSError, ValueError, KeyError, VerificationError):
        document = entry.metadata()
        listed = document["members"].pop(members_key)
        _write_atomically(entry.path / ENTRY_FILE, json.dumps(document, sort_keys=True))
        (entry.path / listed["file"]).unlink(missing_ok=True)


def write_members(
    folder: Path, members_key: str, layer_zip: Path, spans: Mapping[str, tuple[int, int, int]], files: Sequence[str]
) -> dict[str, Any]:
    """Copy each file's raw deflate stream out of layer.zip into one members file; its listing. Each stream
    is inflated once here and must give its file's CRC-32 (what the zip's directory says)."""
    name = members_file(members_key)
    digest, index, offset = hashlib.sha256(), {}, 0
    fd = open_regular(layer_zip)
    try:
        with (folder / name).open("xb") as out:
            for relative in sorted(files):
                if relative not in spans:
                    continue
                start, length, crc = spans[relative]
                blob = os.pread(fd, length, start)
                if len(blob) != length:
                    raise VerificationError(f"{layer_zip} ends inside the member {relative}")
                if (data := inflated(blob)) is None or zlib.crc32(data) != crc:
                    raise VerificationError(f"the member {relative} of {layer_zip} does not inflate to its CRC")
                out.write(blob)
                digest.update(blob)
                index[relative] = [offset, length, crc, zlib.crc32(blob)]
                offset += length
    finally:
        os.close(fd)
    (folder / name).chmod(0o644)
    return {"file": name, "size": offset, "sha256": digest.hexdigest(), "index": index}


def _read_checked(path: Path, size: int, sha256: str) -> bytes | None:
    """The file's bytes if it is a regular file of this user's alone (cache/entry.py) of exactly that size
    and sha256, else None."""
    fd = open_regular(path)
    try:
        if refusal(os.fstat(fd)) is not None:
            return None
        chunks, total = [], 0
        while block := os.read(fd, _BLOCK):
            chunks.append(block)
            total += len(block)
            if total > size:
                return None
    finally:
        os.close(fd)
    blob = b"".join(chunks)
    return blob if len(blob) == size and hashlib.sha256(blob).hexdigest() == sha256 else None
