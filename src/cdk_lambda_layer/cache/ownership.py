"""Proof that a folder is this library's layer cache, before anything in it is used or deleted.

The root carries ``CACHEDIR.TAG`` (https://bford.info/cachedir/: marks the folder as ours and tells
backup tools to skip it) with this library's words in it; another tool's tag is not ours. A folder
that is not empty and has no marker is never used, unless everything in it is a finished entry of
this cache made before the marker existed: a name alone (``.tmp-…``, a 64-hex folder) proves nothing.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path
from typing import Any

from ..core.files import read_regular
from ..errors import CacheFolderError, VerificationError
from .entry import ENTRY_FILE, load_document

MARKER = "CACHEDIR.TAG"


MARKER_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder is a cache of AWS Lambda layers made by cdk-lambda-layer.\n"
    "# Every entry can be rebuilt; `cdk-lambda-layer cache prune` manages it.\n"
)


_TMP_PREFIX = ".tmp-"


#: A cache folder this library creates: writable by its owner only, whatever the umask (under umask 000 a
#: plain mkdir makes it 0777, and any user could then rename or delete the entries in it).
FOLDER_MODE = 0o755


_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _still_at(handle: Any, path: Path) -> bool:
    """The open file ``handle`` is still the file at ``path`` (not unlinked or replaced meanwhile)."""
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _is_our_marker(path: Path) -> bool:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
            return False
        text = read_regular(path).decode(errors="replace")
    except (OSError, VerificationError):
        return False
    return text.startswith(MARKER_TEXT.splitlines()[0]) and "cdk-lambda-layer" in text


def _proven_ours(path: Path) -> bool:
    """What a cache made before the marker existed holds: finished entries and their lock files; and what
    another build claiming the same new folder at this moment leaves on the way: its marker's partial
    file, or a name gone again (renamed into the marker)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if stat.S_ISREG(info.st_mode) and re.fullmatch(rf"\.{re.escape(MARKER)}\.[0-9a-f]{{8}}", path.name):
        return True
    if stat.S_ISDIR(info.st_mode) and _FINGERPRINT.fullmatch(path.name):
        try:
            return load_document(read_regular(path / ENTRY_FILE)).get("fingerprint") == path.name
        except (OSError, ValueError, AttributeError, VerificationError):
            return False
    return stat.S_ISREG(info.st_mode) and bool(re.fullmatch(r"\.[0-9a-f]{64}\.lock", path.name))


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        partial.write_text(text)
        partial.chmod(0o644)  # whatever the umask: a cache file writable by others is not used
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def claim(root: Path) -> None:
    """Make sure the root is this library's cache (create it with its marker), or raise.

    A folder with content but without this library's marker is refused, unless everything in
    it is a finished entry of this cache (one made before the marker existed): a name alone
    (``.tmp-…``, a 64-hex folder) proves nothing, and another tool's CACHEDIR.TAG is not ours.
    """
    if is_ours(root):
        return
    if os.path.lexists(root) and not root.is_dir():
        raise CacheFolderError(f"The layer cache {root} is a file, not a folder: pick another folder.")
    root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    foreign = [p.name for p in root.iterdir() if not _proven_ours(p)]
    if foreign and is_ours(root):  # another build claimed the new folder meanwhile (its marker's partial file)
        return
    if foreign:
        shown = ", ".join(sorted(foreign)[:5])
        raise CacheFolderError(
            f"{root} is not a cdk-lambda-layer cache: it holds other files ({shown}) and not this "
            f"library's {MARKER}. Point the cache at a new or empty folder (--cache-dir / cache_dir= / "
            "CDK_LAYER_CACHE_DIR); nothing in this folder was changed."
        )
    _write_atomically(root / MARKER, MARKER_TEXT)


def is_ours(root: Path) -> bool:
    """The root holds this library's marker (a regular file saying so; another tool's tag is not it)."""
    return _is_our_marker(root / MARKER)
