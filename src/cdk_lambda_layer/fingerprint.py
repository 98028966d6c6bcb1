"""The fingerprint: one hash of exactly what determines a layer.

It is the CDK asset hash and the key of a finished build. In: the contents of
pyproject.toml, the lock, the workspace root's pyproject.toml, uv.toml and requirements
includes; the sources of every local package the layer holds (workspace members, path
dependencies, wheels on disk: see sources.py for the rule); tool, installer, target,
groups, extras, exclusions, whether the lock must be fresh, the bytecode choice, build
mode and image; and this library's layer format version. Out: other files in the project
(handlers, tests, .venv), absolute paths (files are named relative to the lock's folder),
line endings, timestamps, and credentials (they change access, not the layer): no login
is read from the environment, and the files above are hashed with the logins in their URLs
(``https://user:token@host``) removed, as ``redact.redact_urls`` removes them from copies.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ProjectError
from .options import LayerOptions
from .project import LocalSource, Project
from .redact import redact_urls
from .sources import content_digest, tree_digest
from .target import LambdaTarget

#: Bump when a change in this library changes the layer built from the same inputs.
LAYER_FORMAT_VERSION = "2"

#: Kept for callers of the first release; the digest of one file's content.
file_digest = content_digest


def fingerprint(
    project: Project,
    target: LambdaTarget,
    options: LayerOptions,
    *,
    build: str = "local",
    image: str | None = None,
) -> str:
    """Return the hex sha256 identifying the layer these inputs produce (construct time: files only)."""
    local = project.local_sources(extras=options.extras, groups=options.groups, include_project=options.include_project)
    local = _existing(project, local)
    packages = project.package_folders(local)
    document = {
        "format": LAYER_FORMAT_VERSION,
        "tool": project.tool.value,
        "project": project.relative(project.root),
        "installer": options.installer,
        "python": target.python,
        "architecture": target.architecture.value,
        "groups": list(options.groups),
        "extras": list(options.extras),
        "exclude": list(options.exclude),
        "provided": list(options.provided),
        "include_project": options.include_project,
        "locked": options.locked,
        "bytecode": [str(options.bytecode), options.invalidation],
        "build": build,
        "image": image if build != "local" else None,
        "files": {project.relative(p): _input_digest(p) for p in project.input_files},
        "local": {project.relative(s.path): tree_digest(s.path, skip=packages) for s in local},
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _input_digest(path: Path) -> str:
    """A project file's digest with the logins in its URLs removed: a rotated token changes who may
    download, not what is installed, so it must not rebuild (or redeploy) the layer."""
    data = path.read_bytes()
    if b"@" in data:  # no login without an "@": a multi-MB lock without one skips the regex
        data = redact_urls(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    return content_digest(data)


def _existing(project: Project, local: tuple[LocalSource, ...]) -> tuple[LocalSource, ...]:
    missing = [s for s in local if not s.path.exists()]
    if missing:
        shown = ", ".join(f"{s.name or 'a package'} at {project.relative(s.path)}" for s in missing)
        lock = project.lock_path.name if project.lock_path else "pyproject.toml"
        raise ProjectError(
            f"{lock} of {project.root} names local packages that do not exist: {shown}. Fix the path "
            f"(relative to {project.anchor}) or regenerate the lock."
        )
    return local
