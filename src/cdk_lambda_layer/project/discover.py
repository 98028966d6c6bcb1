"""Which tool owns a project, and where its lock is — found the way the tool finds it.

uv: a project inside a uv workspace uses the workspace root's ``uv.lock`` (uv walks up
from the project to the nearest ``pyproject.toml`` with ``[tool.uv.workspace]`` and the
project is a member when a ``members`` glob matches it and no ``exclude`` glob does:
https://docs.astral.sh/uv/concepts/projects/workspaces/). A uv or Poetry project without
its lock is an error that says which lock to create: resolving it from the index instead
would take whatever carries the name there (a workspace library's name on PyPI is
somebody else's package).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

from packaging.utils import canonicalize_name

from ..errors import ProjectError
from .pyproject import project_name, read_pyproject, table

ToolName = Literal["auto", "pip", "poetry", "uv"]


class Tool(str, Enum):
    """A dependency manager and the lock file that identifies it."""

    PIP = "pip"
    POETRY = "poetry"
    UV = "uv"

    @property
    def lock_name(self) -> str:
        return {"pip": "requirements.txt", "poetry": "poetry.lock", "uv": "uv.lock"}[self.value]

    @property
    def lock_command(self) -> str:
        """How the user creates or refreshes this tool's lock."""
        return {
            "pip": "pip-compile / uv pip compile -o requirements.txt",
            "poetry": "poetry lock",
            "uv": "uv lock",
        }[self.value]


def parse_tool(tool: str | Tool) -> Tool | None:
    """The tool asked for, or None for "auto"."""
    value = str(getattr(tool, "value", tool)).lower()
    if value == "auto":
        return None
    try:
        return Tool(value)
    except ValueError:
        raise ProjectError(f"Unknown tool {tool!r}: use 'auto', 'pip', 'poetry' or 'uv'.") from None


# -- uv workspaces -----------------------------------------------------------------------------
def _matches(root: Path, patterns: Any, folder: Path) -> bool:
    if not isinstance(patterns, list):
        return False
    for pattern in patterns:
        if isinstance(pattern, str) and any(p.resolve() == folder for p in root.glob(pattern) if p.is_dir()):
            return True
    return False


def _workspace_table(folder: Path) -> dict[str, Any] | None:
    """[tool.uv.workspace] of folder/pyproject.toml (an empty table counts), or None."""
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return None
    uv = table(read_pyproject(pyproject, strict=False), "tool", "uv")
    return table(uv, "workspace") if "workspace" in uv else None


def uv_workspace_root(folder: Path) -> Path | None:
    """The uv workspace ``folder`` belongs to (itself when it is a workspace root), or None.

    As uv does: the nearest folder, from ``folder`` up, whose pyproject.toml has
    [tool.uv.workspace]; a folder that workspace does not list as a member is on its own.
    """
    folder = folder.resolve()
    if _workspace_table(folder) is not None:
        return folder
    for candidate in folder.parents:
        workspace = _workspace_table(candidate)
        if workspace is None:
            continue
        member = _matches(candidate, workspace.get("members"), folder)
        return candidate if member and not _matches(candidate, workspace.get("exclude"), folder) else None
    return None


def workspace_members(root: Path) -> dict[str, Path]:
    """Canonical name -> folder of every member of the workspace at ``root`` (the root included)."""
    workspace = _workspace_table(root) or {}
    found: dict[str, Path] = {}
    folders = [root] + [
        p.resolve()
        for pattern in workspace.get("members") or []
        if isinstance(pattern, str)
        for p in root.glob(pattern)
    ]
    for folder in folders:
        pyproject = folder / "pyproject.toml"
        if not pyproject.is_file() or _matches(root, workspace.get("exclude"), folder.resolve()):
            continue
        name = project_name(read_pyproject(pyproject, strict=False))
        if name:
            found.setdefault(canonicalize_name(name), folder)
    return found


def member_folder(start: Path, package: str) -> Path:
    """The folder of workspace member ``package``, for a path anywhere in the workspace."""
    root = uv_workspace_root(start)
    if root is None:
        raise ProjectError(
            f"--package {package} names a uv workspace member, but {start} is not inside a uv workspace "
            "(no pyproject.toml with [tool.uv.workspace] above it). Pass the member's folder instead."
        )
    members = workspace_members(root)
    folder = members.get(canonicalize_name(package))
    if folder is None:
        known = ", ".join(sorted(members)) or "none"
        raise ProjectError(f"No member named {package!r} in the uv workspace at {root} (members: {known}).")
    return folder


# -- tool and lock -----------------------------------------------------------------------------
def detect_tool(root: Path, pyproject: dict[str, Any], tool: str | Tool = "auto") -> tuple[Tool, Path | None, Path]:
    """(tool, lock, folder the lock belongs to) for the project in ``root``."""
    chosen = parse_tool(tool)
    workspace = uv_workspace_root(root)
    if chosen is None:
        chosen = _detect(root, pyproject, workspace)
    if chosen is Tool.PIP:
        _refuse_uv_sources_for_pip(root, pyproject)
        requirements = root / Tool.PIP.lock_name
        return chosen, requirements if requirements.is_file() else None, root
    anchor = workspace if chosen is Tool.UV and workspace is not None else root
    return chosen, _require_lock(anchor, chosen, root), anchor


def _detect(root: Path, pyproject: dict[str, Any], workspace: Path | None) -> Tool:
    found = [t for t in Tool if (root / t.lock_name).is_file()]
    if workspace is not None and workspace != root and Tool.UV not in found:
        found = [t for t in found if t is not Tool.PIP] + [Tool.UV]  # a member: the workspace's lock
    if len(found) > 1:
        names = " and ".join(t.lock_name for t in found)
        choices = " | ".join(t.value for t in found)
        raise ProjectError(
            f"{root} has {names}: more than one tool could own this project. Name the tool "
            f"(tool='{found[0].value}' in Python, --tool {choices} on the command line) "
            "or delete the stale lock."
        )
    if found:
        return found[0]
    if table(pyproject, "tool", "poetry") and _poetry_managed(pyproject):
        return Tool.POETRY
    if "uv" in table(pyproject, "tool") or workspace is not None:
        return Tool.UV
    return Tool.PIP


def _poetry_managed(pyproject: dict[str, Any]) -> bool:
    """Poetry owns the dependencies (not merely its build backend's settings)."""
    poetry = table(pyproject, "tool", "poetry")
    return "project" not in pyproject or bool(poetry.get("dependencies") or poetry.get("group"))


def _refuse_uv_sources_for_pip(root: Path, pyproject: dict[str, Any]) -> None:
    """pip does not read [tool.uv.sources]: a dependency named there would come from the index instead."""
    sources = table(pyproject, "tool", "uv", "sources")
    if sources:
        names = ", ".join(sorted(sources))
        raise ProjectError(
            f"{root / 'pyproject.toml'} takes {names} from [tool.uv.sources], which pip ignores: built as a "
            "pip project, the index's package of that name would be installed instead. Build it as a uv "
            "project (create uv.lock with `uv lock`, or tool='uv' / --tool uv)."
        )


def _require_lock(anchor: Path, tool: Tool, root: Path) -> Path:
    lock = anchor / tool.lock_name
    if not lock.is_file():
        where = f"{anchor} (the workspace root of {root})" if anchor != root else str(anchor)
        raise ProjectError(
            f"No {tool.lock_name} in {where}: a {tool.value} project is built from its lock, never resolved "
            f"afresh from the index. Run `{tool.lock_command}` there and commit the lock."
        )
    return lock
