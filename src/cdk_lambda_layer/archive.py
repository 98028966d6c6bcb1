"""layer.zip: deterministic, with python/ at its top.

Same files in, same bytes out, on any machine: entries sorted by path, every timestamp
fixed at 1980-01-01 (the zip format's epoch), permissions normalised to 0644/0755, Unix
as the creating system. Lambda extracts the zip under /opt, so python/ lands on sys.path.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX = 3
#: zlib level; 6 is what the zip tool uses. 1 zips ~2.5x faster for ~15% more bytes.
DEFAULT_ZIP_LEVEL = 6


def layer_entries(site: Path) -> list[tuple[str, Path]]:
    """(name in zip, file on disk) for every regular file, sorted by name."""
    files = [p for p in site.rglob("*") if p.is_file()]
    return sorted((f"python/{p.relative_to(site).as_posix()}", p) for p in files)


def _zip_info(name: str, path: Path) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    executable = path.stat().st_mode & stat.S_IXUSR
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    info.create_system = _UNIX
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_layer_zip(site: Path, destination: Path, level: int = DEFAULT_ZIP_LEVEL) -> int:
    """Write ``site`` as python/... into ``destination`` atomically; return its size in bytes."""
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, path in layer_entries(site):
            # writestr is the public way to give a ZipInfo its own compression level
            archive.writestr(_zip_info(name, path), path.read_bytes(), compresslevel=level)
    partial.replace(destination)
    return destination.stat().st_size
