"""Reading a project: pyproject.toml, which tool manages it, and its lock file.

Only files are read here (no subprocess), so the CDK construct can call it at
construct time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from .errors import ProjectError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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

    @property
    def name(self) -> str:
        project = self.pyproject.get("project") or {}
        poetry = self.pyproject.get("tool", {}).get("poetry") or {}
        return str(project.get("name") or poetry.get("name") or self.root.name)

    @property
    def input_files(self) -> tuple[Path, ...]:
        """The files that determine the layer: pyproject.toml and the lock."""
        return (self.pyproject_path,) + ((self.lock_path,) if self.lock_path else ())


def resolve_pyproject(path: str | Path) -> Path:
    """Accept a project folder or the path of its pyproject.toml."""
    given = Path(path).expanduser()
    candidate = given / "pyproject.toml" if given.is_dir() else given
    if candidate.is_file():
        return candidate.resolve()
    folder = given if given.is_dir() else given.parent
    if (folder / "setup.py").is_file():
        raise ProjectError(
            f"{folder} has setup.py but no pyproject.toml: this tool reads dependencies from "
            "pyproject.toml. Add one with a [project] table listing your dependencies "
            "(https://packaging.python.org/en/latest/guides/writing-pyproject-toml/)."
        )
    raise ProjectError(f"No pyproject.toml at {candidate}: pass the project folder or its pyproject.toml path.")


def read_pyproject(path: Path) -> dict[str, Any]:
    """Parse pyproject.toml, turning read and syntax errors into a ProjectError."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}. Check the file's permissions.") from exc
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path} is not UTF-8 text ({exc.reason}): save it as UTF-8.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path} is not valid TOML: {exc}. Fix the syntax and try again.") from exc
    has_project = isinstance(data.get("project"), dict)
    tool = data.get("tool")
    has_poetry = isinstance(tool, dict) and isinstance(tool.get("poetry"), dict)
    if not (has_project or has_poetry):
        raise ProjectError(
            f"{path} has neither a [project] table nor a [tool.poetry] section, so it declares no "
            "dependencies. Add [project] with a 'dependencies' list (or [tool.poetry] for Poetry)."
        )
    return data


def detect_tool(root: Path, pyproject: dict[str, Any], tool: str | Tool = "auto") -> tuple[Tool, Path | None]:
    """Pick the tool from the lock present, or check the lock of the tool asked for."""
    if str(getattr(tool, "value", tool)) == "auto":
        found = [t for t in Tool if (root / t.lock_name).is_file()]
        if len(found) > 1:
            names = " and ".join(t.lock_name for t in found)
            choices = " | ".join(t.value for t in found)
            raise ProjectError(
                f"{root} has {names}: more than one tool could own this project. Name the tool "
                f"(tool='{found[0].value}' in Python, --tool {choices} on the command line) "
                "or delete the stale lock."
            )
        if found:
            return found[0], root / found[0].lock_name
        if "poetry" in pyproject.get("tool", {}) and "project" not in pyproject:
            return _require_lock(root, Tool.POETRY)
        return Tool.PIP, None
    chosen = _parse_tool(tool)
    if chosen is Tool.PIP:
        req = root / Tool.PIP.lock_name
        return chosen, req if req.is_file() else None
    return _require_lock(root, chosen)


def _parse_tool(tool: str | Tool) -> Tool:
    try:
        return Tool(str(getattr(tool, "value", tool)).lower())
    except ValueError:
        raise ProjectError(f"Unknown tool {tool!r}: use 'auto', 'pip', 'poetry' or 'uv'.") from None


def _require_lock(root: Path, tool: Tool) -> tuple[Tool, Path]:
    lock = root / tool.lock_name
    if not lock.is_file():
        raise ProjectError(
            f"No {tool.lock_name} in {root}: a {tool.value} project is built from its lock. "
            f"Run `{tool.lock_command}` there and commit the lock."
        )
    return tool, lock


def load_project(path: str | Path, tool: str | Tool = "auto") -> Project:
    """Read the project at ``path`` (folder or pyproject.toml) and find its tool and lock."""
    pyproject_path = resolve_pyproject(path)
    data = read_pyproject(pyproject_path)
    root = pyproject_path.parent
    chosen, lock = detect_tool(root, data, tool)
    return Project(root=root, pyproject_path=pyproject_path, pyproject=data, tool=chosen, lock_path=lock)
