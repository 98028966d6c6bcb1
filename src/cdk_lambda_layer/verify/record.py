"""Every installed file is the one its distribution's RECORD names (PEP 376/627 hashes).

The installers write RECORD from the wheel; a file changed after that (by a build step run in the
container, by package code at import, by a poisoned installer cache that serves unpacked files
without checking them again) no longer has the hash RECORD gives it. Files the build removes on
purpose (bytecode of the host's Python, console scripts, excluded packages) are simply absent and
not checked; files the build adds (its own bytecode, in ``__pycache__``, which is not checked) are
in no RECORD.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import VerificationError
from ..install.inventory import InstalledPackage, record_hash, record_rows


def _listed(package: InstalledPackage, site: str) -> list[tuple[str, str]]:
    """(file, expected urlsafe-base64 sha256) for RECORD rows with a sha256 hash, inside the layer: strings
    (``site``: the layer's folder, normalised), not Paths, for the thousands of rows of a large layer."""
    inside = site.rstrip(os.sep) + os.sep
    found = []
    for name, digest in record_rows(package.dist_info):
        if not digest.startswith("sha256="):
            continue
        path = os.path.normpath(os.path.join(site, name))  # noqa: PTH118
        # __pycache__: a wheel's own bytecode was removed, and the bytecode step may have put ours there
        if path.startswith(inside) and "__pycache__" not in path[len(inside) :].split(os.sep):  # noqa: PTH206
            found.append((path, digest.removeprefix("sha256=")))
    return found


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:  # noqa: PTH123
            data = handle.read()
    except FileNotFoundError:
        return None
    return record_hash(hashlib.sha256(data).digest())


def check_records(
    site: Path, packages: list[InstalledPackage], present: set[Path], known: Mapping[Path, str] | None = None
) -> None:
    """Raise naming the files whose content is not what their RECORD says (``present``: the layer's files).

    ``known``: the sha256 (hex) of files whose bytes the build hashed as it wrote them and which are
    unchanged since (core/digests.py: copies out of the package cache); they are not read again."""
    root = os.path.normpath(os.path.abspath(site))  # noqa: PTH100
    # compared with RECORD's rows as normalised absolute paths: a walk spelled another way still matches
    here = {os.path.normpath(os.path.abspath(path)) for path in present}  # noqa: PTH100
    hashes = {os.path.normpath(os.path.abspath(path)): digest for path, digest in (known or {}).items()}  # noqa: PTH100
    listed = [(package.name, path, want) for package in packages for path, want in _listed(package, root)]
    listed = [item for item in listed if item[1] in here]
    unread = [path for _name, path, _want in listed if path not in hashes]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # hashlib releases the GIL
        read = dict(zip(unread, pool.map(_digest, unread), strict=True))
    digests = [read.get(path) if path in read else record_hash(bytes.fromhex(hashes[path])) for _n, path, _w in listed]
    changed = [
        f"{os.path.relpath(path, root).replace(os.sep, '/')} ({name})"
        for (name, path, want), got in zip(listed, digests, strict=True)
        if got is not None and got != want
    ]
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise VerificationError(
            f"Files of the layer are not what their distribution's RECORD says: {shown}. Something changed them "
            "after they were installed (a build step run in the image, a package's code, a damaged or poisoned "
            "installer cache): nothing was published. Build again with a clean cache (`uv cache clean`, or "
            "remove ~/.cache/cdk-lambda-layer/uv-container); if it persists, the package itself is at fault."
        )
