"""The fingerprint: one hash of exactly what determines a layer.

It is the CDK asset hash and the key of a finished build. In: pyproject.toml and lock
contents, tool, installer, target, groups, extras, exclusions, build mode and image,
and this library's layer format version. Out: other files in the folder, the folder's
absolute path, timestamps, and credentials (they change access, not the layer).
"""

from __future__ import annotations

import hashlib
import json

from .options import LayerOptions
from .project import Project
from .target import LambdaTarget

#: Bump when a change in this library changes the layer built from the same inputs.
LAYER_FORMAT_VERSION = "1"


def file_digest(data: bytes) -> str:
    """sha256 of file content with line endings normalised, so a CRLF checkout agrees."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def fingerprint(
    project: Project,
    target: LambdaTarget,
    options: LayerOptions,
    *,
    build: str = "local",
    image: str | None = None,
) -> str:
    """Return the hex sha256 identifying the layer these inputs produce."""
    document = {
        "format": LAYER_FORMAT_VERSION,
        "tool": project.tool.value,
        "installer": options.installer,
        "python": target.python,
        "architecture": target.architecture.value,
        "groups": list(options.groups),
        "extras": list(options.extras),
        "exclude": list(options.exclude),
        "build": build,
        "image": image if build != "local" else None,
        "files": {p.name: file_digest(p.read_bytes()) for p in project.input_files},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
