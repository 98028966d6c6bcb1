"""Trimming: drop what a layer never needs, and the packages the user excluded.

Removed: __pycache__ folders and *.pyc beside their .py (installers' bytecode, for whatever
Python ran them; the bytecode step compiles for the target afterwards; a sourceless .pyc a
wheel ships as the module itself stays), console scripts in bin/ (their
shebangs name the build host's Python and /opt/python/bin is not on PATH), the
installers' own files (uv's .lock), the install records installers add to each dist-info
with their lines in RECORD (``direct_url.json``, PEP 610: for a local package a path on the
build machine, for a URL maybe a login; uv's ``uv_cache.json`` with a timestamp that makes
two builds differ), and every
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
    if not _inside(path, site, on_disk=True):
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
    """__pycache__ folders and *.pyc/*.pyo files beside their own .py, found in one walk.

    A .pyc with no .py beside it is a sourceless module a wheel ships on purpose (the only form of
    that module): removing it would break ``import``, so it stays.
    """
    found = []
    for folder, dirs, names in os.walk(site):
        if "__pycache__" in dirs:
            dirs.remove("__pycache__")
            found.append(Path(folder, "__pycache__"))
        sources = {n[:-3] for n in names if n.endswith(".py")}
        found += [Path(folder, n) for n in names if n.endswith((".pyc", ".pyo")) and n[:-4] in sources]
    return found


#: Files installers leave in the layer's top folder.
_INSTALLER_FILES = (".lock", "uv_cache.json", "uv_build.json")
#: Files installers add to a dist-info that say how, where or when it was installed: they differ from
#: build to build (uv_cache.json holds a timestamp) or name the build machine (direct_url.json).
_INSTALL_RECORDS = ("direct_url.json", "uv_cache.json", "uv_build.json")


def _forget_install_records(site: Path) -> int:
    """Delete those files from every dist-info and drop their lines from its RECORD."""
    freed = 0
    for dist_info in sorted(site.glob("*.dist-info")):
        found = [dist_info / name for name in _INSTALL_RECORDS if os.path.lexists(dist_info / name)]
        if not found:
            continue
        freed += sum(_remove(path, site) for path in found)
        record = dist_info / "RECORD"
        if record.is_file() and not record.is_symlink():
            gone = {f"{dist_info.name}/{path.name}" for path in found}
            with record.open(newline="") as handle:
                rows = [row for row in csv.reader(handle) if row and row[0] not in gone]
            with record.open("w", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)
    return freed


def trim(site: Path, exclude: Iterable[str] = ()) -> TrimReport:
    """Trim the installed layer folder in place."""
    removed, freed = remove_distributions(site, exclude) if exclude else ((), 0)
    for path in [*_bytecode(site), site / "bin", *(site / name for name in _INSTALLER_FILES)]:
        freed += _remove(path, site)
    freed += _forget_install_records(site)
    if removed:
        _prune_empty_dirs(site)
    return TrimReport(removed_packages=removed, removed_bytes=freed)
