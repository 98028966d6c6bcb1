"""One cache entry: ``<root>/<fingerprint>/{python/, layer.zip, entry.json}``, where entry.json lists
every file with its size and sha256, so an entry that does not match it (a partial copy, an edited
or truncated file, an added link) is detected and never served.

An entry of a build that made a zip is that zip alone (``"form": "zip"``, no python/ folder, no listing):
storing it writes one file, not the tree's thousands, and the zip's sha256 in entry.json covers every
file of the tree it unpacks to. Its ``files`` is null, not an empty listing: an older version of this
library, which knows no ``form``, then reads it as damaged and rebuilds it, instead of failing to copy a
python/ folder that is not there (its cache "cannot be used", on every build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import open_regular, walk_files, walk_stats
from ..errors import VerificationError

ENTRY_FILE = "entry.json"


ZIP_FILE = "layer.zip"

#: entry.json's ``form`` for an entry kept as its layer.zip alone (no python/ tree).
ZIP_FORM = "zip"


def load_document(data: bytes | str) -> Any:
    """An entry.json's document. A ValueError for anything no entry of ours holds, JSON nested deeper than
    Python parses included (its RecursionError would otherwise crash every build that looks the entry up,
    instead of the entry being damaged and built again)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested deeper than any entry this library writes") from None


def is_zip_form(document: dict[str, Any]) -> bool:
    """The entry is its layer.zip alone: a restore unpacks it."""
    return document.get("form") == ZIP_FORM


def file_sha256(path: Path) -> str:
    """sha256 of a regular file; a link or fifo swapped in meanwhile is refused, never followed or waited on."""
    with os.fdopen(open_regular(path), "rb") as handle:
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refusal(info: os.stat_result) -> str | None:
    """Why a file or folder of an entry is not this user's alone (None when it is): another user's, writable
    by others (a file: by anyone else; a folder: by others than its group), or a file with another name
    elsewhere (a hard link). This library writes entries 0644/0755, one link each, as the user it runs as."""
    folder = stat.S_ISDIR(info.st_mode)
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        return f"owned by another user (uid {info.st_uid})"
    if info.st_mode & (stat.S_IWOTH if folder else stat.S_IWGRP | stat.S_IWOTH):
        return "writable by other users"
    if not folder and info.st_nlink != 1:
        return "a hard link (it has other names)"
    return None


#: An entry's folders: readable by all, writable by this user only (a folder writable by others is refused).
FOLDER_MODE = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def private_folders(folder: Path) -> None:
    """An entry's folders 0755 (``folder`` and every folder in it), whatever the umask: an entry writable
    by others is never used (``refusal``)."""
    for path in [folder, *(Path(parent, name) for parent, dirs, _names in os.walk(folder) for name in dirs)]:
        path.chmod(FOLDER_MODE)


def executables(tree: Path) -> list[str]:
    """The relative paths of ``tree``'s files its owner may execute: a tree entry lists them, since its
    listing of sizes and hashes says nothing of modes, and a ``chmod +x`` in the cache must not reach a
    layer."""
    return sorted(path.relative_to(tree).as_posix() for path, info in walk_stats(tree) if info.st_mode & stat.S_IXUSR)


def refuse_changed(listed: list[str]) -> Callable[[str, os.stat_result], str | None]:
    """copy_tree's ``refuse`` for a cached tree (a layer entry's, a package entry's): ``refusal``, and a
    file whose mode is not the one the entry was stored with: 0755 if listed, else 0644 (both caches
    write their trees with the modes the zip gives them).
    Every bit counts, not the owner's execute bit alone: a copy keeps the mode it finds, and a 0600 or
    0655 file in the cache would reach the asset as it is."""
    wanted = frozenset(listed)

    def refuse(name: str, info: os.stat_result) -> str | None:
        stored = 0o755 if name in wanted else 0o644
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) != stored:
            return f"mode {stat.S_IMODE(info.st_mode):o}, not the {stored:o} it was stored with"
        return refusal(info)

    return refuse


def read_own(path: Path) -> bytes:
    """A regular file's bytes (see open_regular), refused (VerificationError) unless it is this user's
    alone (``refusal``)."""
    with os.fdopen(open_regular(path), "rb") as handle:
        reason = refusal(os.fstat(handle.fileno()))
        if reason is not None:
            raise VerificationError(f"{path} is {reason}")
        return handle.read()


def tree_listing(root: Path) -> dict[str, list[Any]]:
    """relative path -> [size, sha256] for every file under ``root`` (a link or special file raises)."""
    return {p.relative_to(root).as_posix(): [size, file_sha256(p)] for p, size in sorted(walk_files(root))}


@dataclass(frozen=True)
class EntryFolder:
    """A folder of the cache holding one entry (a layer, or a package) and its ``entry.json``: what
    listing, pruning and removal need of either kind."""

    path: Path

    def remove(self) -> None:
        """Delete the entry; one that is a link loses the link only, never what it points at, and anything
        else in its place that is not a folder (a file, a fifo: rmtree would open it, and wait on a fifo
        forever) is unlinked, so a store can put the entry there."""
        try:
            folder = stat.S_ISDIR(os.lstat(self.path).st_mode)
        except FileNotFoundError:
            return
        if folder:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)

    @property
    def size(self) -> int:
        try:
            return sum(size for _p, size in walk_files(self.path))
        except (OSError, VerificationError):
            return 0

    @property
    def last_used(self) -> float:
        try:
            return (self.path / ENTRY_FILE).stat().st_mtime
        except OSError:
            return 0.0


@dataclass(frozen=True)
class CacheEntry(EntryFolder):
    @property
    def fingerprint(self) -> str:
        return self.path.name

    @property
    def python(self) -> Path:
        return self.path / "python"

    @property
    def layer_zip(self) -> Path:
        return self.path / ZIP_FILE

    @property
    def complete(self) -> bool:
        return (self.path / ENTRY_FILE).is_file()

    def metadata(self) -> dict[str, Any]:
        return load_document(read_own(self.path / ENTRY_FILE))

    def is_intact(self) -> bool:
        """Every listed file is there with its size and content, nothing else, and no link anywhere
        (the entry's own folder included)."""
        try:
            document = self.checked_metadata()
            if document is not None and is_zip_form(document):
                return not os.path.lexists(self.python)
            if document is None or tree_listing(self.python) != document["files"]:
                return False
            # the listed executables are files of the listing (_well_formed): exact modes say the rest
            refuse = refuse_changed(document["executables"])
            return not any(
                refuse(path.relative_to(self.python).as_posix(), info) for path, info in walk_stats(self.python)
            )
        except (OSError, ValueError, KeyError, TypeError, VerificationError):
            return False

    def checked_metadata(self, *, zip_too: bool = True) -> dict[str, Any] | None:
        """The metadata, if the entry is a real folder holding only its own files (and, with
        ``zip_too``, an intact zip); None otherwise. The python/ tree is checked against ``files``
        by whoever reads it."""
        try:
            info = os.lstat(self.path)
            if not stat.S_ISDIR(info.st_mode) or refusal(info) is not None:  # others could swap its files
                return None
            document = self.metadata()
            kept = {ENTRY_FILE, ZIP_FILE, ".lock"} | (set() if is_zip_form(document) else {"python"})
            extra = {p.name for p in self.path.iterdir()} - kept
            if extra or not _well_formed(document) or (zip_too and not self.zip_intact(document)):
                return None
            return document
        except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError):
            return None

    def zip_intact(self, document: dict[str, Any]) -> bool:
        """The entry's layer.zip is the one its metadata describes (or absent, when it names none)."""
        expected = document.get("zip")
        try:
            if expected is None:
                return not os.path.lexists(self.layer_zip)
            info = self.layer_zip.lstat()
            regular = stat.S_ISREG(info.st_mode)
            return regular and [info.st_size, file_sha256(self.layer_zip)] == [expected["size"], expected["sha256"]]
        except (OSError, KeyError, TypeError, VerificationError):
            return False


def _well_formed(document: Any) -> bool:
    """entry.json has the shape this library writes: a listing of [size, sha256] (none for the zip form)
    and a zip or none."""
    if not isinstance(document, dict):
        return False
    zip_form, files = is_zip_form(document), document.get("files")
    if not (files is None if zip_form else isinstance(files, dict)):
        return False
    runnable = document.get("executables")  # a tree's modes (none in the zip form: the zip has them)
    if not zip_form and not (
        isinstance(runnable, list)
        and all(isinstance(n, str) for n in runnable)
        and runnable == sorted(set(runnable))  # as ``executables`` writes it: what is_intact compares
        and set(runnable) <= files.keys()
    ):
        return False
    listed = all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], str)
        for v in (files or {}).values()
    )
    zip_info = document.get("zip")
    zip_ok = zip_info is None or (
        isinstance(zip_info, dict) and isinstance(zip_info.get("size"), int) and isinstance(zip_info.get("sha256"), str)
    )
    form_ok = document.get("form") is None or (zip_form and isinstance(zip_info, dict))
    return listed and zip_ok and form_ok and isinstance(document.get("manifest", {}), dict)
