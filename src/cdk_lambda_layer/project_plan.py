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

from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from .errors import PackageIndexError
from .options import LayerOptions
from .pinning import pinned_hashes, unpinned, unpinned_warning
from .plan import InstallPlan, LocalPin
from .project import Project, Tool
from .project.settings import poetry_source_only, requirements_source_only, uv_source_only


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
    """The plan with the project itself in or out, and held to the requirements' hashes."""
    shaped = _the_project(plan, project, options)
    return replace(shaped, plan=_held_to_hashes(shaped.plan, project))


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


def _held_to_hashes(plan: InstallPlan, project: Project) -> InstallPlan:
    """Only the user's hashes are allowed: an index serving other files under the same names and
    versions is refused, never installed."""
    allowed = pinned_hashes(requirement_texts(project))
    if not allowed:
        return plan
    pins, refused = [], []
    for pin in plan.pins:
        mine = allowed.get(canonicalize_name(pin.name))
        kept = pin.hashes if mine is None else tuple(h for h in pin.hashes if h in mine)
        if not kept:
            refused.append(f"{pin.name} {pin.version}")
        elif mine is None:
            pins.append(pin)
        else:
            pins.append(replace(pin, hashes=kept, file_hashes=tuple(h for h in pin.file_hashes if h in mine)))
    if refused:
        raise PackageIndexError(
            f"The package index serves other files than {_lock_name(project)} pins by hash for: "
            f"{', '.join(refused)}. Something replaced them (a mirror, an index named in the requirements, a "
            "tampered file): nothing was installed. Check the index, or pin again with "
            "`uv pip compile --generate-hashes` if the new files are right."
        )
    return replace(plan, pins=tuple(pins))


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
