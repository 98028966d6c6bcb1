"""Reading a project: pyproject.toml, the tool that owns it, its lock, and its local packages.

Only files are read here (no subprocess), so the CDK construct can call it at construct
time. A folder inside a uv workspace is read as uv reads it (the workspace root's lock);
local packages (workspace members, path dependencies, wheels on disk) come from the lock
files, so the fingerprint can cover their sources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from ..errors import ProjectError
from .discover import Tool, ToolName, detect_tool, member_folder, uv_workspace_root, workspace_members
from .local import LocalSource, poetry_local_sources, uv_local_sources
from .pyproject import (
    declared_extras,
    declared_groups,
    load_toml,
    project_name,
    read_pyproject,
    requires_python,
    resolve_pyproject,
    table,
)
from .reached import reached_local_sources
from .requirements import RequirementFiles, pyproject_local_sources, requirement_files

__all__ = ["LocalSource", "Project", "Tool", "ToolName", "load_project"]


@dataclass(frozen=True, kw_only=True)
class Project:
    """A Python project whose dependencies become a layer."""

    root: Path
    pyproject_path: Path
    pyproject: dict[str, Any] = field(repr=False, compare=False)
    tool: Tool
    #: The lock (uv.lock, poetry.lock, requirements.txt), or None for pip projects
    #: that list their dependencies in [project].dependencies only.
    lock_path: Path | None
    #: The folder the lock belongs to: a uv workspace's root, else ``root``. Tools run here.
    anchor: Path
    #: The parsed uv.lock / poetry.lock (read once, at construct time).
    lock: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: What requirements.txt pulls in from disk (pip projects).
    requirements: RequirementFiles | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return project_name(self.pyproject) or self.root.name

    @property
    def member(self) -> str | None:
        """The uv workspace member to export (``uv export --package``), when not the root."""
        return self.name if self.tool is Tool.UV and self.anchor != self.root else None

    @property
    def requires_python(self) -> SpecifierSet | None:
        return requires_python(self.pyproject, self.pyproject_path)

    @property
    def packaged(self) -> bool:
        """Whether the project itself can be built into a wheel (include_project)."""
        poetry = table(self.pyproject, "tool", "poetry")
        if poetry.get("package-mode") is False or table(self.pyproject, "tool", "uv").get("package") is False:
            return False
        return bool(self.pyproject.get("build-system")) or bool(poetry) or (self.root / "setup.py").is_file()

    @property
    def input_files(self) -> tuple[Path, ...]:
        """Files whose content determines the layer: pyproject.toml, the lock, the workspace
        root's pyproject.toml, uv.toml settings, Poetry's poetry.toml (installer.no-binary), and
        requirements includes."""
        files = [self.pyproject_path]
        if self.lock_path is not None:
            files.append(self.lock_path)
        for folder in dict.fromkeys((self.anchor, self.root)):
            for name in ("pyproject.toml", "uv.toml", "poetry.toml"):
                if (folder / name).is_file():
                    files.append((folder / name).resolve())
        if self.requirements is not None:
            files += self.requirements.includes
        return tuple(dict.fromkeys(files))

    def relative(self, path: Path) -> str:
        """``path`` relative to the lock's folder, POSIX style: stable across checkouts and machines."""
        return Path(os.path.relpath(path, self.anchor)).as_posix()

    def local_sources(
        self, *, extras: tuple[str, ...] = (), groups: tuple[str, ...] = (), include_project: bool = False
    ) -> tuple[LocalSource, ...]:
        """The local packages this layer gets (from the lock files; no process); the project itself
        only with ``include_project``. For a pip project, also those its local packages bring in
        (project/local.py's rule), as its resolver follows them."""
        if self.tool is Tool.UV:
            return uv_local_sources(
                self.lock, self.anchor, self.name, extras=extras, groups=groups, include_root=include_project
            )
        if self.tool is Tool.POETRY:
            found = poetry_local_sources(self.lock, self.root, groups)
        else:
            found = self._pip_local_sources(extras, groups, include_project)
        # `-e .` (what `uv export` writes) names the project itself: its code is in the layer only
        # with include_project, and then once.
        found = tuple(s for s in found if s.path != self.root)
        if include_project:
            found = (LocalSource(name=self.name, path=self.root), *found)
        return found

    def _pip_local_sources(
        self, extras: tuple[str, ...], groups: tuple[str, ...], include_project: bool
    ) -> tuple[LocalSource, ...]:
        """What requirements.txt (else [project].dependencies) names, and what those local packages
        bring in, transitively; the project is followed like them when a line names it (``-e .``: the
        installer takes its dependencies too) or the layer includes it."""
        if self.requirements is not None:
            named = self.requirements.local
        else:
            named = pyproject_local_sources(self.pyproject, self.root, extras=extras, groups=groups)
        itself = (LocalSource(name=self.name, path=self.root),) if include_project else ()
        return reached_local_sources((*named, *itself), self.root)

    def package_folders(self, local: tuple[LocalSource, ...]) -> tuple[Path, ...]:
        """Folders that are packages on their own: the layer's local packages, every uv workspace
        member, and this project. A package's sources leave them out where they sit inside it, so a
        workspace root that is itself a package does not absorb its members, and a library holding
        this project (``../..`` in an example's requirements) does not absorb its handlers."""
        members: tuple[Path, ...] = ()
        if self.tool is Tool.UV and uv_workspace_root(self.anchor) == self.anchor:
            members = tuple(workspace_members(self.anchor).values())
        return tuple(dict.fromkeys([self.root, *(s.path for s in local if s.is_folder), *members]))

    def check_options(self, extras: tuple[str, ...], groups: tuple[str, ...]) -> None:
        """Unknown extras and groups are errors here, before any tool runs."""
        for kind, asked, known in (
            ("extra", extras, declared_extras(self.pyproject)),
            ("dependency group", groups, declared_groups(self.pyproject)),
        ):
            normal = {canonicalize_name(k) for k in known}
            missing = [a for a in asked if canonicalize_name(a) not in normal]
            if missing:
                listed = ", ".join(sorted(known)) or "none"
                raise ProjectError(
                    f"No {kind} {', '.join(repr(m) for m in missing)} in {self.pyproject_path} (defined: {listed}). "
                    f"Check the spelling, or declare it in pyproject.toml."
                )

    def describe(self) -> str:
        """One line for logs: tool, project, lock, e.g. "uv workspace member 'orders' (lock: ../../uv.lock)"."""
        lock = os.path.relpath(self.lock_path, self.root) if self.lock_path else "none: [project].dependencies"
        if self.member:
            return f"uv workspace member {self.name!r} at {self.root} (lock: {lock})"
        return f"{self.tool.value} project {self.name!r} at {self.root} (lock: {lock})"


def load_project(path: str | os.PathLike[str], tool: str | Tool = "auto", *, package: str | None = None) -> Project:
    """Read the project at ``path`` (folder or pyproject.toml) and find its tool, lock and anchor.

    ``package`` names a uv workspace member when ``path`` is the workspace (or anywhere in it).
    """
    pyproject_path = resolve_pyproject(path)
    if package:
        pyproject_path = member_folder(pyproject_path.parent, package) / "pyproject.toml"
    _refuse_bare_workspace_root(pyproject_path)
    data = read_pyproject(pyproject_path)
    root = pyproject_path.parent
    chosen, lock_path, anchor = detect_tool(root, data, tool)
    lock: dict[str, Any] = {}
    requirements = None
    if chosen is not Tool.PIP and lock_path is not None:
        lock = load_toml(lock_path, f"Regenerate it: `{chosen.lock_command}` in {anchor}.")
    elif lock_path is not None:
        requirements = requirement_files(lock_path, root)
    return Project(
        root=root,
        pyproject_path=pyproject_path,
        pyproject=data,
        tool=chosen,
        lock_path=lock_path,
        anchor=anchor,
        lock=lock,
        requirements=requirements,
    )


def _refuse_bare_workspace_root(pyproject_path: Path) -> None:
    """A virtual workspace root declares no dependencies of its own: say which members there are."""
    data = read_pyproject(pyproject_path, strict=False)
    if "project" in data or table(data, "tool", "poetry"):
        return
    root = pyproject_path.parent
    if uv_workspace_root(root) == root.resolve():
        members = ", ".join(sorted(workspace_members(root))) or "none"
        raise ProjectError(
            f"{root} is the root of a uv workspace and has no dependencies of its own: name the member to "
            f"build (package='NAME' / --package NAME; members: {members}), or pass the member's folder."
        )
