"""What is installed in a layer folder: distributions, versions, files and sizes.

Standard library only (importlib.metadata reads each *.dist-info and its RECORD), so
the same code can run inside a build container.
"""

from __future__ import annotations

import csv
import os
import re
import stat
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path

from .errors import VerificationError


def normalize(name: str) -> str:
    """PEP 503 name normalisation (what packaging.utils.canonicalize_name does)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    dist_info: Path
    #: Files of the distribution (from RECORD) that exist under the layer folder.
    files: tuple[Path, ...]
    #: Bytes of those files, measured when the layer was read.
    size: int = 0


def _inside(path: Path, root: Path, *, on_disk: bool = False) -> bool:
    """Inside ``root`` by name (RECORD paths may climb out with '..', e.g. to bin/).

    ``on_disk``: also where the path really leads, so that a folder on the way that is a
    link cannot take a deletion outside the layer. Reading needs only the name check: the
    layer's tree is refused before anything reads it if it holds a link (walk_files).
    """
    try:
        relative = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
        if on_disk:
            real = os.path.relpath(os.path.realpath(Path(path).parent), os.path.realpath(root))
            if _climbs_out(real):
                return False
    except ValueError:  # another drive on Windows
        return False
    return not _climbs_out(relative)


def _climbs_out(relative: str) -> bool:
    return relative == ".." or relative.startswith(".." + os.sep)


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
    followed, and any such entry is an error naming it.
    """
    found: list[tuple[Path, os.stat_result]] = []
    odd: list[str] = []
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        return found
    if not stat.S_ISDIR(top.st_mode):  # os.walk would follow a link given as its root
        odd.append(_describe(root, root.parent, top.st_mode))
    for folder, dirs, names in os.walk(root) if not odd else ():  # never descends into a linked folder
        for name in [*dirs, *names]:
            path = Path(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                found.append((path, info))
            elif not stat.S_ISDIR(info.st_mode):
                odd.append(_describe(path, root, info.st_mode))
    if odd:
        more = f" (and {len(odd) - 10} more)" if len(odd) > 10 else ""
        raise VerificationError(
            f"A layer may hold only regular files and folders, but {root.name}/ has: {'; '.join(odd[:10])}{more}. "
            "Something in the build (a package's build or install step) created them, and a link could "
            "bring a file from outside the layer into it, so nothing was published. Find the package that "
            "ships them and exclude it, or pin another version."
        )
    return found


def record_rows(dist_info: Path) -> list[tuple[str, str]]:
    """(path, hash as written, e.g. ``sha256=…`` or "") of each row of a distribution's RECORD
    (PEP 376 csv); [] when it has none."""
    try:
        with (dist_info / "RECORD").open(newline="", encoding="utf-8", errors="replace") as handle:
            return [(row[0], row[1] if len(row) > 1 else "") for row in csv.reader(handle) if row]
    except OSError:
        return []


def _regular_size(path: str) -> dict[str, int]:
    try:
        info = os.lstat(path)
    except OSError:
        return {}
    return {path: info.st_size} if stat.S_ISREG(info.st_mode) else {}


def installed_packages(site: Path, files: list[tuple[Path, int]] | None = None) -> list[InstalledPackage]:
    """Every distribution in ``site``, sorted by normalised name.

    ``files``: a walk of ``site`` already made (walk_files), so that RECORD entries are matched
    against it instead of asking the file system about each one again.
    """
    root = os.path.normpath(site)
    sizes = {str(path): size for path, size in files} if files is not None else None
    packages = []
    for dist_info in sorted(site.glob("*.dist-info")):
        dist = PathDistribution(dist_info)
        name = dist.metadata["Name"] or dist_info.name.split("-")[0]
        kept: dict[str, int] = {}
        for entry, _hash in record_rows(dist_info):
            # strings, not Paths: a layer's RECORD files list thousands of entries
            full = os.path.normpath(os.path.join(root, entry))  # noqa: PTH118
            if _climbs_out(os.path.relpath(full, root)):
                continue
            if sizes is not None:
                if full in sizes:
                    kept[full] = sizes[full]
            else:
                kept.update(_regular_size(full))
        unique = tuple(Path(p) for p in sorted(kept))
        packages.append(
            InstalledPackage(
                name=name, version=dist.version or "", dist_info=dist_info, files=unique, size=sum(kept.values())
            )
        )
    return sorted(packages, key=lambda p: normalize(p.name))


def tree_size(root: Path) -> int:
    """Bytes of all regular files under ``root`` (what Lambda counts, unzipped)."""
    return sum(size for _path, size in walk_files(root))
