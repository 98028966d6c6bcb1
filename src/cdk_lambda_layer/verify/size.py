"""Size: the unzipped layer, bytecode included, within Lambda's 250 MB (or the limit the user set)."""

from __future__ import annotations

import os
from pathlib import Path

from packaging.utils import canonicalize_name

from ..core.files import tree_size
from ..errors import LayerTooLargeError
from ..install.inventory import InstalledPackage
from ..options import AWS_RUNTIME_PACKAGES, LAMBDA_UNZIPPED_LIMIT


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
        f"The layer is {total / 1e6:.1f} MB unzipped ({compiled / 1e6:.1f} MB of it bytecode); {_limit(limit)}. "
        f"Largest packages: {top}.{hint} {_ways_out(packages)}"
    )


def _limit(limit: int) -> str:
    """Lambda's own limit, or the one the user set (a smaller budget for this layer)."""
    if limit == LAMBDA_UNZIPPED_LIMIT:
        return f"Lambda allows {limit / 1e6:.1f} MB (250 MiB) for a function and all its layers"
    return f"the limit you set is {limit / 1e6:.1f} MB (--max-size / max_unzipped_bytes)"


def _ways_out(packages: list[InstalledPackage]) -> str:
    """Excluding what the runtime provides is offered only when the layer has some of it."""
    present = {canonicalize_name(p.name) for p in packages}
    runtime = [name for name in AWS_RUNTIME_PACKAGES if name in present]
    exclude = f"Exclude what the runtime provides (exclude={runtime!r}), drop" if runtime else "Drop"
    return f"{exclude} unused dependencies, or split the layer."
