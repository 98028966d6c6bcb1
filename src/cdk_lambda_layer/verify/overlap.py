"""No file of the layer is claimed by two distributions with different content.

Two distributions can ship the same path (``pyjwt`` and ``jwt`` both install ``jwt/``); installed
together into one folder, the later one overwrites the earlier one's files and the layer holds a
mix that neither package is. The installers say nothing. Each distribution's RECORD lists its files
with their hashes: a path listed twice with different hashes is refused, naming both packages.
Identical files (a shared ``__init__.py`` of an old-style namespace package) are fine.
"""

from __future__ import annotations

from ..errors import VerificationError
from ..install.inventory import InstalledPackage, record_rows


def _owned(path: str) -> bool:
    """Paths that belong to one distribution's own files (not its metadata, not outside the layer). RECORD
    separates with '/' (PEP 376); split as a string, not as a Path, for the thousands of rows of a layer."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if path.startswith("/"):
        parts.insert(0, "/")
    return bool(parts) and ".." not in parts and not parts[0].endswith(".dist-info") and "__pycache__" not in parts


def check_overlaps(packages: list[InstalledPackage]) -> None:
    claims: dict[str, dict[str, str]] = {}
    for package in packages:
        for path, digest in record_rows(package.dist_info):
            if _owned(path) and digest:
                claims.setdefault(path, {})[package.name] = digest
    clashes = {path: owners for path, owners in claims.items() if len(set(owners.values())) > 1}
    if not clashes:
        return
    pairs = sorted({" and ".join(sorted(owners)) for owners in clashes.values()})
    shown = ", ".join(sorted(clashes)[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
    raise VerificationError(
        f"Two distributions install different files at the same paths ({shown}): {'; '.join(pairs)}. In one "
        "layer the last one installed wins and the result is neither package. Keep one of them (exclude the "
        "other, or drop it from the project)."
    )
