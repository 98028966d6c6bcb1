"""manifest.json: what was built, from what, with which tools, and how big it is."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..identity.fingerprint import LAYER_FORMAT_VERSION
from ..install.inventory import InstalledPackage
from ..options import LayerOptions
from ..project.load import Project
from ..target import LambdaTarget

if TYPE_CHECKING:
    from ..install.local_packages import BuiltPackage
    from ..install.target_python import BytecodeOutcome, ImportOutcome


@dataclass(frozen=True, kw_only=True)
class ToolVersions:
    tool: str
    tool_version: str
    installer: str
    installer_version: str


def build_manifest(
    *,
    fingerprint: str,
    project: Project,
    target: LambdaTarget,
    options: LayerOptions,
    tools: ToolVersions,
    build: str,
    packages: tuple[InstalledPackage, ...],
    unzipped_bytes: int,
    zipped_bytes: int | None,
    local: Sequence[BuiltPackage] = (),
    bytecode: BytecodeOutcome | None = None,
    imports: ImportOutcome | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The manifest as a dict; no absolute paths, no timestamps, no credentials."""
    from ..core.version import __version__

    return {
        "format": LAYER_FORMAT_VERSION,
        "fingerprint": fingerprint,
        "builder": {"name": "cdk-lambda-layer", "version": __version__, "build": build},
        "project": project.name,
        "tool": {"name": tools.tool, "version": tools.tool_version},
        "lock": Path(os.path.relpath(project.lock_path, project.root)).as_posix() if project.lock_path else None,
        "installer": {"name": tools.installer, "version": tools.installer_version},
        "target": {
            "runtime": target.runtime_name,
            "python": target.python,
            "architecture": target.architecture.value,
            "os": target.os.label,
            "glibc": ".".join(map(str, target.os.glibc)),
        },
        "groups": list(options.groups),
        "extras": list(options.extras),
        "exclude": list(options.exclude),
        "provided": list(options.provided),
        "include_project": options.include_project,
        "packages": [{"name": p.name, "version": p.version, "bytes": p.size} for p in packages],
        "local_packages": [
            {"name": b.name, "version": b.version, "source": Path(os.path.relpath(b.source, project.anchor)).as_posix()}
            for b in local
        ],
        "bytecode": bytecode.manifest() if bytecode else None,
        "import_check": imports.manifest() if imports else None,
        #: Every imported top-level module's import time on the target's Python, slowest first.
        "import_times": dict(imports.times) if imports else {},
        "warnings": list(warnings),
        "sizes": {"unzipped_bytes": unzipped_bytes, "zipped_bytes": zipped_bytes},
    }


#: What a build measured rather than decided (it differs from build to build of the same inputs).
MEASURED = ("import_times",)
#: Beside manifest.json, which stays the same for the same inputs, byte for byte.
MEASUREMENTS_FILE = "import-times.json"


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """manifest.json without the measurements, and the measurements (the import times, slowest first)
    beside it in import-times.json."""
    stable = {key: value for key, value in manifest.items() if key not in MEASURED}
    path.write_text(json.dumps(stable, indent=2, sort_keys=False) + "\n")
    measured = {key: manifest.get(key) or {} for key in MEASURED}
    (path.parent / MEASUREMENTS_FILE).write_text(json.dumps(measured, indent=2) + "\n")
