"""The install plan as the project's own files shape it, beyond the lock's pins.

The plan (plan.py) comes from the exported lock. What the project says elsewhere changes it:

- a requirements file may name the project itself (``-e .``, as ``uv export`` writes): its
  dependencies belong in its dependency layer, its own package only with ``include_project``
  (which, for pip and Poetry projects, adds it: their exports never name the project);
- requirements may pin files by hash: a resolution (``uv pip compile``) records the hashes of what
  the index serves today, so only the user's hashes may be installed;
- settings may want packages built from source (``no-binary``);
- a pip project's requirements may leave packages open (resolved at build time): said, not refused;
- an empty layer is allowed, but said.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from ..errors import PackageIndexError, ProjectError
from ..options import LayerOptions
from ..project.discover import Tool
from ..project.load import Project
from ..project.local import entries
from ..project.settings import poetry_source_only, requirements_source_only, uv_source_only
from .model import InstallPlan, LocalPin
from .pinning import file_digest, pinned_file_hashes, pinned_hashes, unpinned, unpinned_warning


@dataclass(frozen=True)
class ShapedPlan:
    plan: InstallPlan
    warnings: tuple[str, ...] = field(default=())


def requirement_texts(project: Project) -> list[str]:
    """The text of a pip project's requirements file and everything it includes (-r, -c)."""
    requirements = project.requirements if project.tool is Tool.PIP else None
    return [path.read_text(errors="replace") for path in requirements.includes] if requirements else []


def source_only(project: Project) -> frozenset[str]:
    """Packages the project's settings want built from source (uv's no-binary, pip's --no-binary, Poetry's
    installer.no-binary)."""
    if project.tool is Tool.UV:
        return uv_source_only(project.anchor)
    if project.tool is Tool.PIP:
        return requirements_source_only(requirement_texts(project))
    return poetry_source_only(project.root)


def shape(plan: InstallPlan, project: Project, options: LayerOptions) -> ShapedPlan:
    """The plan with the project itself in or out, held to the requirements' hashes, and each local
    package with the version its lock records (which the built wheel must have)."""
    shaped = _the_project(plan, project, options)
    return replace(shaped, plan=_with_locked_versions(_held_to_hashes(shaped.plan, project), project))


def _with_locked_versions(plan: InstallPlan, project: Project) -> InstallPlan:
    """uv's pylock export leaves out the version of a local folder; uv.lock itself records it."""
    if project.tool is not Tool.UV:
        return plan
    versions = {
        canonicalize_name(e["name"]): str(e["version"])
        for e in entries(project.lock)
        if isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("version"), str)
    }
    local = tuple(
        replace(pin, version=pin.version or versions.get(canonicalize_name(pin.name), "")) for pin in plan.local
    )
    return replace(plan, local=local)


def _lock_name(project: Project) -> str:
    return project.lock_path.name if project.lock_path else "the requirements"


def _the_project(plan: InstallPlan, project: Project, options: LayerOptions) -> ShapedPlan:
    root = project.root.resolve()
    itself = [pin for pin in plan.local if pin.path.resolve() == root]
    if options.include_project:
        if itself or project.tool is Tool.UV:
            return ShapedPlan(plan)
        return ShapedPlan(replace(plan, local=(*plan.local, LocalPin(name=project.name, path=project.root))))
    if not itself:
        return ShapedPlan(plan)
    note = (
        f"{_lock_name(project)} names the project itself ({itself[0].name}): left out of its dependency layer "
        "(include_project=True / --include-project puts it in)"
    )
    return ShapedPlan(replace(plan, local=tuple(pin for pin in plan.local if pin not in itself)), (note,))


def _algorithms(hashes: Iterable[str]) -> set[str]:
    return {h.split(":", 1)[0] for h in hashes}


def _held_to_hashes(plan: InstallPlan, project: Project) -> InstallPlan:
    """Only the user's hashes are allowed, as pip's hash-checking mode does: every package then needs one
    (pip refuses a file with hashes on some lines only), an index serving other files under the same
    names and versions is refused before anything is installed, and a local archive pinned by hash must
    be that file. Hashes of another algorithm than the lock's (sha512) go to the installer as they are."""
    texts = requirement_texts(project)
    allowed = pinned_hashes(texts)
    files = pinned_file_hashes(texts, project.root)
    if not (allowed or files):
        return plan
    _check_local_archives(plan, files, project)
    unhashed = [pin.name for pin in plan.pins if canonicalize_name(pin.name) not in allowed]
    if unhashed:
        raise ProjectError(
            f"{_lock_name(project)} pins some packages by hash (--hash) but not {', '.join(sorted(unhashed))}: pip "
            "refuses such a file (hash-checking mode needs a hash for every package, dependencies included). "
            "Pin them all: `uv pip compile --generate-hashes`, or remove the hashes."
        )
    pins, refused = [], []
    for pin in plan.pins:
        mine = allowed[canonicalize_name(pin.name)]
        comparable = [h for h in pin.hashes if h.split(":", 1)[0] in _algorithms(mine)]
        kept = tuple(h for h in comparable if h in mine) if comparable else tuple(sorted(mine))
        if not kept:
            refused.append(f"{pin.name} {pin.version}")
            continue
        exact = tuple(h for h in pin.file_hashes if h in kept)
        pins.append(replace(pin, hashes=kept, file_hashes=exact))
    if refused:
        raise PackageIndexError(
            f"The package index serves other files than {_lock_name(project)} pins by hash for: "
            f"{', '.join(refused)}. Something replaced them (a mirror, an index named in the requirements, a "
            "tampered file): nothing was installed. Check the index, or pin again with "
            "`uv pip compile --generate-hashes` if the new files are right."
        )
    return replace(plan, pins=tuple(pins))


def _check_local_archives(plan: InstallPlan, files: dict[Path, frozenset[str]], project: Project) -> None:
    for pin in plan.local:
        mine = files.get(pin.path.resolve())
        if mine is None or not pin.path.is_file():
            continue
        if not any(file_digest(pin.path, algorithm) in mine for algorithm in _algorithms(mine)):
            raise ProjectError(
                f"{pin.path} is not the file {_lock_name(project)} pins by hash (--hash): it was replaced or "
                "rebuilt. Pin its new hash if it is right, or restore the file."
            )


def unpinned_notes(plan: InstallPlan, project: Project, generated: Path) -> list[str]:
    """A pip project resolved at build time says which packages its requirements leave open.

    ``generated``: the requirements written from pyproject.toml when there is no requirements file.
    """
    if project.tool is not Tool.PIP:
        return []
    if project.requirements is not None:
        texts, source = requirement_texts(project), _lock_name(project)
    else:
        texts = [generated.read_text()] if generated.is_file() else []
        source = "pyproject.toml's dependencies"
    loose = unpinned([pin.name for pin in plan.pins], texts)
    return [unpinned_warning(loose, source)] if loose else []


def empty_note(project: Project, source: str) -> str:
    """An empty layer is allowed (a project with no dependencies yet), but said: it is often a mistake."""
    hint = ""
    if source == "requirements.txt" and (project.pyproject.get("project") or {}).get("dependencies"):
        hint = " (the dependencies in pyproject.toml are not read when there is a requirements.txt)"
    return f"the layer holds no packages: {source} gives none{hint}"
