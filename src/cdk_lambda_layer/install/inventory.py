"""What is installed in a layer folder: distributions, versions, files and sizes.

Standard library only (importlib.metadata reads each *.dist-info and its RECORD), so
the same code can run inside a build container.
"""

from __future__ import annotations

import base64
import csv
import os
import re
import stat
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path


def record_hash(sha256: bytes) -> str:
    """A sha256 digest as RECORD writes it after ``sha256=`` (urlsafe base64, no padding: PEP 376)."""
    return base64.urlsafe_b64encode(sha256).rstrip(b"=").decode()


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
    # RECORD rows are normalised and checked against the absolute, normalised folder; files are named as
    # ``site`` spells them (the walk's spelling: ``app/../asset/six.py``, ``six.py`` for ``.``), so that a
    # caller can match and rebase them.
    root = os.path.abspath(site)  # noqa: PTH100
    inside = root.rstrip(os.sep) + os.sep
    spelled = "" if str(site) == "." else str(site).rstrip(os.sep) + os.sep
    sizes = {str(path): size for path, size in files} if files is not None else None
    packages = []
    for dist_info in sorted(site.glob("*.dist-info")):
        dist = PathDistribution(dist_info)
        name = dist.metadata["Name"] or dist_info.name.split("-")[0]
        kept: dict[str, int] = {}
        for entry, _hash in record_rows(dist_info):
            # strings, not Paths: a layer's RECORD files list thousands of entries
            full = os.path.normpath(os.path.join(root, entry))  # noqa: PTH118
            if not full.startswith(inside):  # climbs out (relpath per row cost 0.15 s on a large layer)
                continue
            full = spelled + full[len(inside) :]
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
