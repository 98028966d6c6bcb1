"""What is installed in a layer folder: distributions, versions, files and sizes.

Standard library only (importlib.metadata reads each *.dist-info and its RECORD), so
the same code can run inside a build container.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path


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

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def _inside(path: Path, root: Path) -> bool:
    """Lexically inside ``root`` (RECORD paths may climb out with '..', e.g. to bin/)."""
    try:
        relative = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
    except ValueError:  # another drive on Windows
        return False
    return relative != ".." and not relative.startswith(".." + os.sep)


def walk_files(root: Path) -> list[tuple[Path, int]]:
    """Every regular file under ``root`` with its size, in one pass."""
    found = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if not path.is_symlink():
                found.append((path, path.stat().st_size))
    return found


def installed_packages(site: Path) -> list[InstalledPackage]:
    """Every distribution in ``site``, sorted by normalised name."""
    packages = []
    for dist_info in sorted(site.glob("*.dist-info")):
        dist = PathDistribution(dist_info)
        name = dist.metadata["Name"] or dist_info.name.split("-")[0]
        files = []
        for entry in dist.files or ():
            path = site / entry
            if path.is_file() and _inside(path, site):
                files.append(path)
        packages.append(
            InstalledPackage(
                name=name, version=dist.version or "", dist_info=dist_info, files=tuple(sorted(set(files)))
            )
        )
    return sorted(packages, key=lambda p: normalize(p.name))


def tree_size(root: Path) -> int:
    """Bytes of all regular files under ``root`` (what Lambda counts, unzipped)."""
    return sum(size for _path, size in walk_files(root))
