"""Size: the unzipped layer, bytecode included, within Lambda's 250 MB."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LayerTooLargeError
from ..inventory import InstalledPackage, tree_size


def largest(packages: list[InstalledPackage], count: int = 10) -> list[InstalledPackage]:
    return sorted(packages, key=lambda p: p.size, reverse=True)[:count]


def bytecode_bytes(site: Path) -> int:
    return sum(
        os.lstat(Path(folder, name)).st_size
        for folder, _dirs, names in os.walk(site)
        if Path(folder).name == "__pycache__"
        for name in names
    )


def check_size(
    site: Path, packages: list[InstalledPackage], limit: int, *, files: list[tuple[Path, int]] | None = None
) -> int:
    """The layer's unzipped bytes; over ``limit`` is an error naming the largest packages."""
    total = sum(size for _path, size in files) if files is not None else tree_size(site)
    if total <= limit:
        return total
    top = ", ".join(f"{p.name} {p.size / 1e6:.1f} MB" for p in largest(packages))
    compiled = bytecode_bytes(site)
    hint = (
        f" Without bytecode it would be {(total - compiled) / 1e6:.1f} MB, which fits: bytecode=False / --no-bytecode."
        if compiled and total - compiled <= limit
        else ""
    )
    raise LayerTooLargeError(
        f"The layer is {total / 1e6:.1f} MB unzipped ({compiled / 1e6:.1f} MB of it bytecode); Lambda allows "
        f"{limit / 1e6:.1f} MB for a function and all its layers. Largest packages: {top}.{hint} Exclude what "
        "the runtime provides (exclude=['boto3', 'botocore', 's3transfer']), drop unused dependencies, or "
        "split the layer."
    )
