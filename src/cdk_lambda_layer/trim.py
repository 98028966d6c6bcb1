"""Trimming: drop what a layer never needs, and the packages the user excluded.

Removed: __pycache__ folders and *.pyc (installers' bytecode, for whatever Python ran them;
the bytecode step compiles for the target afterwards), console scripts in bin/ (their
shebangs name the build host's Python and /opt/python/bin is not on PATH), the
installers' own files (uv's .lock, uv_cache.json, uv_build.json), every distribution's
``direct_url.json`` (PEP 610: for a local package it holds a path on the build machine,
for a URL it may hold a login; the layer needs neither) with its line in RECORD, and every
file of an excluded distribution, found through its RECORD. Kept: *.dist-info, which
importlib.metadata needs at run time. Only paths inside the layer folder are ever deleted.

Standard library only, so the container build can run the very same step.
"""

from __future__ import annotations

import csv
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
    for folder, _dirs, _names in os.walk(site, topdown=False):
        path = Path(folder)
        if path != site and not any(path.iterdir()):
            path.rmdir()


def _bytecode(site: Path) -> list[Path]:
    """__pycache__ folders and stray *.pyc/*.pyo files, found in one walk."""
    found = []
    for folder, dirs, names in os.walk(site):
        if "__pycache__" in dirs:
            dirs.remove("__pycache__")
            found.append(Path(folder, "__pycache__"))
        found += [Path(folder, n) for n in names if n.endswith((".pyc", ".pyo"))]
    return found


_INSTALLER_FILES = (".lock", "uv_cache.json", "uv_build.json")


def _forget_direct_urls(site: Path) -> int:
    """Delete each dist-info's direct_url.json and drop it from that RECORD."""
    freed = 0
    for marker in sorted(site.glob("*.dist-info/direct_url.json")):
        freed += _remove(marker, site)
        record = marker.parent / "RECORD"
        if record.is_file() and not record.is_symlink():
            entry = f"{marker.parent.name}/direct_url.json"
            with record.open(newline="") as handle:
                rows = [row for row in csv.reader(handle) if row and row[0] != entry]
            with record.open("w", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)
    return freed


def trim(site: Path, exclude: Iterable[str] = ()) -> TrimReport:
    """Trim the installed layer folder in place."""
    removed, freed = remove_distributions(site, exclude) if exclude else ((), 0)
    leftovers = [site / name for name in _INSTALLER_FILES]
    leftovers += [p for name in _INSTALLER_FILES[1:] for p in site.glob(f"*.dist-info/{name}")]
    for path in [*_bytecode(site), site / "bin", *leftovers]:
        freed += _remove(path, site)
    freed += _forget_direct_urls(site)
    if removed:
        _prune_empty_dirs(site)
    return TrimReport(removed_packages=removed, removed_bytes=freed)
