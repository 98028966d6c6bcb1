"""What a layer folder holds, by the stamps of its entries: a snapshot, its digest, and what changed between
two snapshots (the import check's before and after its imports: install/import_check.py).

Standard library only: the import check loads this file by its path, on the host and in the build image.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path


def snapshot_fields(info: os.stat_result) -> tuple[int, ...]:
    """What a snapshot keeps of an lstat: mode, size, inode, modification and change times (ns)."""
    return (info.st_mode, info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)


def tree_digest(entries: Iterable[tuple[str, tuple[int, ...]]]) -> str:
    """One sha256 of a snapshot's regular files (relative path, snapshot_fields): the build walks the layer
    while this script runs, and uses its walk only if it gives the digest of the snapshot before any import."""
    digest = hashlib.sha256()
    for relative, fields in sorted(entries):
        if stat.S_ISREG(fields[0]):
            digest.update(relative.encode("utf-8", "surrogateescape") + b"\0" + repr(fields).encode() + b"\n")
    return digest.hexdigest()


def snapshot(site: Path) -> dict[str, tuple[int, ...]]:
    """relative path -> (mode, size, inode, mtime, ctime in ns) of everything under ``site``, links not
    followed. The change time is the kernel's: writing a file in place and putting its modification
    time back still moves it, and no process can set it back, so nothing needs to be read or hashed."""
    found: dict[str, tuple[int, ...]] = {}
    pending = [(str(site), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unreadable (as os.walk, which skips it): its entries count as gone
            continue
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            relative = prefix + entry.name
            found[relative] = snapshot_fields(info)
            if stat.S_ISDIR(info.st_mode):
                pending.append((entry.path, relative + "/"))
    return dict(sorted(found.items()))


def undo_writes(site: Path, before: dict[str, tuple[int, ...]]) -> dict[str, list[str]]:
    """What the imports did to the layer: new entries are removed (Lambda's /opt is read-only, so such a
    write would not happen there, and it would make two builds differ); changed or deleted files, and
    folders replaced by anything else, are reported, since they cannot be put back."""
    import shutil  # here, not above: few imports write anything

    after = snapshot(site)
    new = sorted(set(after) - set(before))
    for relative in reversed(new):  # deepest first, so a new folder is empty when its turn comes
        path = site / relative
        if stat.S_ISDIR(after[relative][0]) and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            path.unlink()
    # A folder's times change with what is written in it and removed again; a folder that is no longer one
    # (an empty folder swapped for a link) is a change: the build's walk may have seen the folder.
    changed = [
        r
        for r in set(before) & set(after)
        if before[r] != after[r] and (not stat.S_ISDIR(before[r][0]) or not stat.S_ISDIR(after[r][0]))
    ]
    return {"removed": new, "changed": sorted(changed), "deleted": sorted(set(before) - set(after))}
