"""What a build gives back: the result (paths, packages, sizes, manifest, steps, warnings), and what
the steps before the install decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cache.remote.session import RemoteOutcome
from ..install.inventory import InstalledPackage
from ..install.local_packages import BuiltPackage
from ..package.layout import LayerPathLayout
from ..plan.export import ExportedLock
from ..plan.model import InstallPlan


@dataclass(frozen=True, kw_only=True)
class LayerBuildResult:
    """What a build produced; paths point into the final build folder."""

    fingerprint: str
    layout: LayerPathLayout
    layer_zip: Path | None
    packages: tuple[InstalledPackage, ...]
    unzipped_bytes: int
    zipped_bytes: int | None
    manifest: dict[str, Any]
    steps: tuple[tuple[str, float], ...] = field(default=())
    #: True when the layer came from a cache, local or remote (no build ran).
    cached: bool = False
    #: Where the layer came from: "built", "local" (the layer cache) or "remote" (the remote cache).
    source: str = "built"
    #: What the remote cache did (a hit, an upload, seconds, bytes); None without a remote cache.
    remote: RemoteOutcome | None = None
    #: What the user should know: no bytecode, import check skipped, a pip or container fallback.
    warnings: tuple[str, ...] = field(default=())

    @property
    def python_dir(self) -> Path:
        return self.layout.python


@dataclass(frozen=True)
class Prepared:
    """What the steps before the install produced."""

    exported: ExportedLock
    plan: InstallPlan
    local: tuple[BuiltPackage, ...]

    @property
    def expected(self) -> dict[str, str]:
        """What the plan installs (name -> version), which verify holds the layer to."""
        return {p.name: p.version for p in self.plan.pins} | {b.name: b.version for b in self.local}


def rebase(package: InstalledPackage, old: Path, new: Path) -> InstalledPackage:
    """The package as seen from ``new``, where the tree read at ``old`` now is."""

    def move(path: Path) -> Path:
        return new / path.relative_to(old)

    return InstalledPackage(
        name=package.name,
        version=package.version,
        dist_info=move(package.dist_info),
        files=tuple(move(f) for f in package.files),
        size=package.size,
    )
