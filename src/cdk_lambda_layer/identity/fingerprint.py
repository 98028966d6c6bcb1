"""The fingerprint: one hash of exactly what determines a layer.

It is the CDK asset hash and the key of a finished build. In: the contents of
pyproject.toml, the lock, the workspace root's pyproject.toml, uv.toml and requirements
includes; the sources of every local package the layer holds (workspace members, path
dependencies, wheels on disk, and for pip projects what those bring in: see
project/local.py for which, sources.py for the rule); tool, installer, target, groups,
extras, exclusions, whether the lock must be fresh, the bytecode choice, build mode and
image; and this library's layer format version. Out: the sources of a local package left
out by name (``exclude``/``provided``: its name is in, and what it brings in still counts);
other files in the project (handlers, tests, .venv); absolute paths (packages and files are
named relative to the lock's folder, except where a path goes through an environment
variable: then the fingerprint depends on the machine, see sources.py); line endings,
timestamps, and credentials (they change access, not the layer): no login is read from the
environment, and the files above are hashed with the logins in their URLs
(``https://user:token@host``) removed, as ``redact.redact_urls`` removes them from copies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from ..core.redact import redact_urls
from ..errors import ProjectError
from ..options import LayerOptions
from ..project.load import Project
from ..project.local import LocalSource
from ..target import LambdaTarget
from .sources import content_digest, tree_digest

#: Bump when a change in this library changes the layer built from the same inputs.
LAYER_FORMAT_VERSION = "3"

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
    found = _existing(project, _reached(project, options))
    packages = project.package_folders(found)  # a left-out package is still no part of another's sources
    local = _kept(found, options)
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


def covered_local_paths(project: Project, options: LayerOptions) -> frozenset[Path]:
    """Resolved paths of the local packages (folders, archives) whose sources the fingerprint hashes.

    A local package the resolver then plans to install from a path outside this set would reach the
    layer unhashed: a stale cache entry and asset hash after its next edit. Left-out packages are not
    in it (nor in the plan). Files only, like the fingerprint.
    """
    return frozenset(s.path for s in _kept(_reached(project, options), options))


def _reached(project: Project, options: LayerOptions) -> tuple[LocalSource, ...]:
    return project.local_sources(extras=options.extras, groups=options.groups, include_project=options.include_project)


def _kept(local: Iterable[LocalSource], options: LayerOptions) -> tuple[LocalSource, ...]:
    """Less the packages left out by name: editing a provided library must not rebuild the layer without it."""
    return tuple(s for s in local if s.name is None or canonicalize_name(s.name) not in options.left_out)


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
