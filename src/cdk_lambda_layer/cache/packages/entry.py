"""One package entry: ``<root>/packages/<key>/{tree/, entry.json, members-<level>-<zlib>.bin}``.

``entry.json`` names the key and its inputs, lists every file of ``tree/`` with its size and sha256,
which of them are executable (the zip keeps that bit), what the bytecode step made of the package, the
ELF audit's facts of its shared libraries (``native``, and ``native_reader``: who read them; a reuse by
the same reader does not parse them again), and
for each zip level the members file: its size, sha256 and where each file's raw deflate stream lies in
it, with the CRC-32s of the file and of the stream. An entry is used only when it is a real folder
holding nothing else, its key and inputs are the ones asked for, it and everything in it are this
user's alone (no other owner, nothing writable by others, no hard link: cache/entry.py), and every
file it hands out matches its listing, with the mode it was stored with (0644, 0755 when listed
executable), as it is copied (store.py); the
members are checked by sha256 as they are read and each stream against its two CRC-32s, the file's
computed from the bytes in the layer (package/archive.py Stream).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ...core.files import read_regular
from ...errors import VerificationError
from ...verify.native.elf import ElfInfo
from ..entry import EntryFolder, load_document, read_own, refusal
from .key import PackageKey

ENTRY_FILE = "entry.json"
TREE = "tree"
_MEMBERS = re.compile(r"members-\d-[0-9A-Za-z.]+\.bin")
_PARTIAL = re.compile(r"\.members-.+\.partial")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def members_file(members_key: str) -> str:
    return f"members-{members_key}.bin"


@dataclass(frozen=True)
class PackageEntry(EntryFolder):
    @property
    def key(self) -> str:
        return self.path.name

    @property
    def tree(self) -> Path:
        return self.path / TREE

    @property
    def complete(self) -> bool:
        return (self.path / ENTRY_FILE).is_file()

    def metadata(self) -> dict[str, Any]:
        return load_document(read_regular(self.path / ENTRY_FILE))

    def checked_metadata(self, key: PackageKey) -> dict[str, Any] | None:
        """The metadata, if this entry is a real folder holding only its own files, made for exactly ``key``;
        None otherwise (damaged, foreign, half-written). The tree is checked as it is copied."""
        try:
            for folder in (os.lstat(self.path), os.lstat(self.tree)):
                if not stat.S_ISDIR(folder.st_mode) or refusal(folder) is not None:
                    return None
            document = load_document(read_own(self.path / ENTRY_FILE))
            if not well_formed(document) or document["key"] != self.key or self.key != key.digest:
                return None
            if document["inputs"] != key.inputs() or not _holds(document["files"], key):
                return None
            named = {m["file"] for m in document["members"].values()}
            for child in (p.name for p in self.path.iterdir()):
                if child in (TREE, ENTRY_FILE, ".lock") or child in named or _PARTIAL.fullmatch(child):
                    continue
                if not _MEMBERS.fullmatch(child):  # a members file no listing names (an add cut short) is ignored
                    return None
            return document
        except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError):
            return None


def _holds(files: dict[str, Any], key: PackageKey) -> bool:
    """The tree is the distribution the key names: one dist-info folder, of that name and version
    (a whole entry of another version, renamed to this key with its inputs edited, is refused)."""
    folders = {name.partition("/")[0] for name in files if name.partition("/")[0].endswith(".dist-info")}
    if len(folders) != 1:
        return False
    name, _, version = folders.pop()[: -len(".dist-info")].rpartition("-")
    return canonicalize_name(name) == canonicalize_name(key.name) and _same_version(version, key.version)


def _same_version(one: str, other: str) -> bool:
    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return one == other


def _listing(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str)
        and isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], int)
        and isinstance(v[1], str)
        and _HEX64.fullmatch(v[1])
        for k, v in value.items()
    )


def _relative(name: str) -> bool:
    """A path inside the tree: relative, no '..', no empty part."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _members(value: Any, files: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return False
    for members_key, item in value.items():
        if not (isinstance(item, dict) and item.get("file") == members_file(members_key)):
            return False
        index = item.get("index")
        if not (isinstance(item.get("size"), int) and isinstance(item.get("sha256"), str) and isinstance(index, dict)):
            return False
        if not set(index) <= set(files) or not all(
            isinstance(s, list) and len(s) == 4 and all(isinstance(n, int) and n >= 0 for n in s)
            for s in index.values()
        ):
            return False
    return True


def _native(value: Any, files: dict[str, Any]) -> bool:
    """The ELF facts of listed files (absent in entries written before they were kept)."""
    if value is None:
        return True
    if not isinstance(value, dict) or not set(value) <= set(files):
        return False
    for facts in value.values():
        if facts is not None:
            ElfInfo.from_json(facts)  # ValueError: not facts this library wrote
    return True


def well_formed(document: Any) -> bool:
    """entry.json has the shape this library writes."""
    if not isinstance(document, dict) or not isinstance(document.get("key"), str):
        return False
    files = document.get("files")
    return (
        isinstance(document.get("inputs"), dict)
        and _listing(files)
        and all(_relative(name) for name in files)
        and _members(document.get("members"), files)
        and isinstance(document.get("executable"), list)
        and all(isinstance(name, str) and name in files for name in document["executable"])
        and isinstance(document.get("bytecode"), dict)
        and _native(document.get("native"), files)
        and isinstance(document.get("native_reader", ""), str)
    )
