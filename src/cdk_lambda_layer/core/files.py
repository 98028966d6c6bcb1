"""Reading a layer's tree safely: regular files only, never through a link, never blocking on a fifo.

Standard library only, so the in-container step reads trees with the very same rules.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import VerificationError


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return word
    return "device file" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "special file"


def _describe(path: Path, root: Path, mode: int) -> str:
    shown = path.relative_to(root).as_posix()
    if stat.S_ISLNK(mode):
        return f"{shown} -> {path.readlink()} (symlink)"
    return f"{shown} ({_kind(mode)})"


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def open_regular(path: Path | str, *, dir_fd: int | None = None) -> int:
    """A read descriptor of ``path``, refusing anything that is not (or no longer) a regular file.

    Opened without following a link and without blocking (a fifo planted there would hang the
    reader); what was opened is checked to be a regular file before a byte is read. A file that
    cannot be opened at all is refused the same way: the fault is the file's.
    """
    try:
        fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise VerificationError(f"{path} cannot be read as a regular file ({exc.strerror})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise VerificationError(f"{path} is not a regular file: a layer holds only regular files and folders")
    return fd


def read_regular(path: Path) -> bytes:
    """A regular file's bytes (see open_regular)."""
    with os.fdopen(open_regular(path), "rb") as handle:
        return handle.read()


def walk_files(root: Path) -> list[tuple[Path, int]]:
    """Every regular file under ``root`` with its size, in one pass; nothing else is accepted (see walk_stats)."""
    return [(path, info.st_size) for path, info in walk_stats(root)]


def walk_stats(root: Path) -> list[tuple[Path, os.stat_result]]:
    """Every regular file under ``root`` with its lstat, in one pass; nothing else is accepted.

    A layer holds only regular files and folders. A symlink would make the zip, the cache
    check or a copy read a file outside the layer (a host file, when code run in a build
    container planted the link), and a fifo would hang the reader; so links are never
    followed, and any such entry is an error naming it. Paths are spelled as ``root`` is.
    """
    return [(root / relative, info) for relative, info in walk_relative(root)]


def walk_relative(root: Path) -> list[tuple[str, os.stat_result]]:
    """walk_stats with each file named by its path relative to ``root`` (``pkg/mod.py``): strings, for the
    callers that key files by name (copies, listings), where a Path per file costs more than its lstat."""
    found: list[tuple[str, os.stat_result]] = []
    odd: list[str] = []
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return found
    if not stat.S_ISDIR(top.st_mode):  # os.walk would follow a link given as its root
        odd.append(_describe(root, root.parent, top.st_mode))
    base = os.fspath(root)
    pending = [] if odd else [""]
    while pending:  # top-down, a folder's files before its subfolders' (as os.walk); never through a link
        relative = pending.pop()
        prefix = f"{relative}/" if relative else ""
        try:
            entries = list(os.scandir(f"{base}/{relative}" if relative else base))
        except OSError:  # unreadable, or gone (as os.walk, which skips it)
            continue
        subfolders = []
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                found.append((prefix + entry.name, info))
            elif stat.S_ISDIR(info.st_mode):
                subfolders.append(prefix + entry.name)
            else:
                odd.append(_describe(root / prefix / entry.name, root, info.st_mode))
        pending.extend(reversed(subfolders))
    if odd:
        more = f" (and {len(odd) - 10} more)" if len(odd) > 10 else ""
        raise VerificationError(
            f"A layer may hold only regular files and folders, but {root.name}/ has: {'; '.join(odd[:10])}{more}. "
            "Something in the build (a package's build or install step) created them, and a link could "
            "bring a file from outside the layer into it, so nothing was published. Find the package that "
            "ships them and exclude it, or pin another version."
        )
    return found


def tree_size(root: Path) -> int:
    """Bytes of all regular files under ``root`` (what Lambda counts, unzipped)."""
    return sum(size for _path, size in walk_files(root))
