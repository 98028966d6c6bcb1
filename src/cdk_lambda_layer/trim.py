"""Trimming: drop what a layer never needs, and the packages the user excluded.

Removed: __pycache__ folders and *.pyc (Lambda compiles on import; stale bytecode for
another interpreter only costs space), console scripts in bin/ (their shebangs name the
build host's Python and /opt/python/bin is not on PATH), the installer's own files
(uv's .lock in the target folder), and every file of an excluded
distribution, found through its RECORD. Kept: *.dist-info, which importlib.metadata
needs at run time. Only paths inside the layer folder are ever deleted.

Standard library only, so the container build can run the very same step.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .inventory import _inside, installed_packages, normalize


@dataclass(frozen=True)
class TrimReport:
    removed_packages: tuple[str, ...]
    removed_bytes: int


def _remove(path: Path, site: Path) -> int:
    """Delete a file or folder of the layer and return the bytes freed.

    Never follows a link and never acts outside ``site`` (a RECORD entry may name
    '../../x', or a folder on its way may be a link).
    """
    if not _inside(path, site):
        return 0
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISDIR(info.st_mode):
        size = sum(os.lstat(Path(d, n)).st_size for d, _dirs, names in os.walk(path) for n in names)
        shutil.rmtree(path)
        return size
    path.unlink()
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def remove_distributions(site: Path, names: Iterable[str]) -> tuple[tuple[str, ...], int]:
    """Delete the files of the named distributions and their dist-info folders."""
    wanted = {normalize(n) for n in names}
    removed, freed = [], 0
    for package in installed_packages(site):
        if normalize(package.name) not in wanted:
            continue
        for file in package.files:
            freed += _remove(file, site)
        freed += _remove(package.dist_info, site)
        removed.append(package.name)
    return tuple(removed), freed


def _prune_empty_dirs(site: Path) -> None:
    for folder in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _bytecode(site: Path) -> list[Path]:
    """__pycache__ folders and stray *.pyc/*.pyo files, found in one walk."""
    found = []
    for folder, dirs, names in os.walk(site):
        if "__pycache__" in dirs:
            dirs.remove("__pycache__")
            found.append(Path(folder, "__pycache__"))
        found += [Path(folder, n) for n in names if n.endswith((".pyc", ".pyo"))]
    return found


def trim(site: Path, exclude: Iterable[str] = ()) -> TrimReport:
    """Trim the installed layer folder in place."""
    removed, freed = remove_distributions(site, exclude) if exclude else ((), 0)
    for path in [*_bytecode(site), site / "bin", site / ".lock"]:
        freed += _remove(path, site)
    if removed:
        _prune_empty_dirs(site)
    return TrimReport(removed_packages=removed, removed_bytes=freed)
