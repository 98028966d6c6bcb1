"""The sha256 of files a build wrote itself, so that a check of the assembled layer need not read them again.

A file copied out of the package cache is hashed as its bytes pass (core/copy.py) and that hash is
checked against the entry's listing. Its RECORD hash is then the same bytes' hash, as long as the file
is still the one written: same device, inode, size, mode, modification and change times (what git's
index trusts). Any write, truncation, chmod, rename onto it or replacement moves the change time
(which no unprivileged process can set back), so a file touched after the copy is hashed again.
The only window is a write within the same clock tick as the copy, into the build's own private
folder, by another process: one that could as well change the file after every check ran. (A tick is
a few milliseconds, or nanoseconds where the kernel gives fine-grained times once they were read, as
the copy's fstat does; up to a second or two on file systems that keep whole seconds: FAT, exFAT,
HFS+, some NFS.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def stamp(info: os.stat_result) -> tuple[int, ...]:
    """What must not change for a file to still hold the bytes that were hashed."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mode, info.st_mtime_ns, info.st_ctime_ns)


class KnownDigests:
    """sha256 (hex) and CRC-32 of files by path, each valid only while the file keeps the stamp it had when
    hashed (the CRC-32 is what a zip member records: package/archive.py need not read the file again)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, ...], str, int | None]] = {}
        self._lock = threading.Lock()

    def note(self, path: Path | str, info: os.stat_result, sha256: str, crc: int | None = None) -> None:
        """``path`` (its fstat taken after the last byte was written) holds bytes whose sha256 is ``sha256``
        (and CRC-32 ``crc``)."""
        with self._lock:
            self._known[os.fspath(path)] = (stamp(info), sha256, crc)

    def update(self, other: KnownDigests) -> None:
        with self._lock, other._lock:
            self._known.update(other._known)

    def get(self, path: Path, info: os.stat_result) -> str | None:
        """The sha256 of ``path`` if ``info`` (a fresh lstat of it) shows it unchanged since it was noted."""
        known = self._known.get(os.fspath(path))
        return known[1] if known is not None and known[0] == stamp(info) else None

    def crc(self, path: Path, info: os.stat_result) -> int | None:
        """The CRC-32 of ``path`` if it was noted and ``info`` shows it unchanged since."""
        known = self._known.get(os.fspath(path))
        return known[2] if known is not None and known[0] == stamp(info) else None

    def __len__(self) -> int:
        return len(self._known)
