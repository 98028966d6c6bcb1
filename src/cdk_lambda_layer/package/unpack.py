"""A layer.zip read back into a python/ tree, refusing anything a layer.zip of this library never holds.

A zip from elsewhere (the remote cache) decides what lands on disk, so every member is checked before
a byte is written: under ``python/``, every part of its name a plain name (no absolute path, no empty
part as in ``python//etc``, no ``.`` or ``..``, no backslash), no link or special file (the mode in its
external attributes), no encrypted or patched member, no name twice, no file where another member needs
a folder, nothing before the first member or after the last (a self-extracting stub, a comment), a size
within the caller's limit; each file is created exclusively (never through a link) with 0644 or 0755, as
the zip writer (archive.py) sets them, and hashed as it is written, so the caller gets the tree's listing
for free.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import VerificationError
from .archive import layer_mode

#: At most this many members: a layer of 250 MB holds tens of thousands of files, not millions.
MAX_MEMBERS = 500_000
_BLOCK = 1 << 20
#: General-purpose flags a layer.zip never sets: encrypted, patched data, strong encryption (zipfile
#: raises RuntimeError or NotImplementedError on them, which no caller expects of a bad zip).
_UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40


def _member_problem(info: zipfile.ZipInfo, seen: set[str]) -> str | None:
    name = info.filename
    parts = name.removesuffix("/").split("/") if info.is_dir() else name.split("/")
    kind = stat.S_IFMT(info.external_attr >> 16)
    plain = parts[0] == "python" and (len(parts) > 1 or info.is_dir()) and "\\" not in name
    if not plain or any(p in ("", ".", "..") for p in parts[1:]):
        return f"{name!r} is outside python/ or not a plain path"
    if name.removesuffix("/") in seen:
        return f"{name!r} is in it twice"
    if info.is_dir():
        return None
    if kind not in (0, stat.S_IFREG):
        return f"{name!r} is not a regular file (mode {oct(info.external_attr >> 16)})"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"{name!r} uses a compression a layer.zip never uses"
    if info.flag_bits & _UNREADABLE_FLAGS:
        return f"{name!r} is encrypted or patched (flags {info.flag_bits:#x})"
    return None


def check_members(archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The members to extract (files only), or a VerificationError naming the first one that is wrong."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise VerificationError(f"the layer.zip has {len(infos)} members, more than a layer holds")
    seen: set[str] = set()
    for info in infos:
        problem = _member_problem(info, seen)
        if problem:
            raise VerificationError(f"the layer.zip is not one this library writes: {problem}")
        seen.add(info.filename.removesuffix("/"))
    files = [i for i in infos if not i.is_dir()]
    problem = _layout_problem(archive, infos, {i.filename for i in files})
    if problem:
        raise VerificationError(f"the layer.zip is not one this library writes: {problem}")
    total = sum(i.file_size for i in files)
    if total > max_bytes:
        raise VerificationError(
            f"the layer.zip unpacks to {total} bytes ({total / 1e6:.1f} MB), above the {max_bytes} allowed"
        )
    return files


def _layout_problem(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], files: set[str]) -> str | None:
    """A file that another member puts things under, or bytes around the members (a stub, a comment)."""
    for info in infos:
        parent = PurePosixPath(info.filename.removesuffix("/")).parent
        while parent.as_posix() != ".":
            if parent.as_posix() in files:
                return f"{parent.as_posix()!r} is a file, and {info.filename!r} is under it"
            parent = parent.parent
    if archive.comment or (infos and min(i.header_offset for i in infos) != 0):
        return "it has a comment or data before its first member"
    return None


def unpack_layer_zip(zip_path: Path, destination: Path, *, max_bytes: int, listed: bool = True) -> dict[str, list[Any]]:
    """Extract the layer.zip's python/ tree into ``destination`` (new or empty); its listing: relative
    path -> [size, sha256], as the layer cache keeps it. ``listed=False`` skips the hashing and returns
    an empty listing, for a caller that has checked the whole zip's sha256 (a layer cache entry kept as
    its zip): each member's CRC-32 and size are still checked. Anything wrong is a VerificationError.

    Serial on purpose: extracting on threads was measured no faster (zipfile reads members under one
    lock, and most members are small)."""
    destination.mkdir(parents=True, exist_ok=True)
    listing: dict[str, list[Any]] = {}
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in check_members(archive, max_bytes):
                relative = info.filename.removeprefix("python/")
                target = destination.joinpath(*relative.split("/"))  # plain parts (checked): always inside
                target.parent.mkdir(parents=True, exist_ok=True)
                listing[relative] = _extract(archive, info, target, listed)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, zlib.error) as exc:
        raise VerificationError(f"the layer.zip cannot be read ({exc})") from exc
    return dict(sorted(listing.items())) if listed else {}


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, listed: bool = True) -> list[Any]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    out = os.open(target, flags, 0o600)
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(info) as member:  # checks the CRC and the size at the end
            while block := member.read(_BLOCK):
                if listed:
                    digest.update(block)
                size += len(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(out, view) :]
        os.fchmod(out, layer_mode(info.external_attr >> 16))
    finally:
        os.close(out)
    if size != info.file_size:
        raise VerificationError(f"{info.filename!r} in the layer.zip is not the size its entry names")
    return [size, digest.hexdigest() if listed else ""]
