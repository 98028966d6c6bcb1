"""pyproject.toml: finding it, reading it, and what it declares (requires-python, extras, groups).

Only files are read here (no subprocess), so the CDK construct can call it at construct time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# tomli is the standard library's tomllib, published with compiled wheels that parse a lock about 3.5x
# faster (uv.lock at construct time, the exported pylock.toml at every build); both raise the same way.
import tomli as tomllib
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import ProjectError

TOMLDecodeError = tomllib.TOMLDecodeError


def resolve_pyproject(path: str | Path) -> Path:
    """Accept a project folder or the path of its pyproject.toml."""
    given = Path(path).expanduser()
    if not given.exists():
        raise ProjectError(
            f"The project folder {given} does not exist (resolved from {Path.cwd()}): check the path, "
            "or pass the folder that holds pyproject.toml."
        )
    if given.is_file() and given.name != "pyproject.toml":
        raise ProjectError(
            f"{given} is a file, not a project: pass the folder that holds the project's pyproject.toml "
            f"({given.parent}) or that pyproject.toml itself; its lock (uv.lock, poetry.lock, requirements.txt) "
            "is found next to it."
        )
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


def read_pyproject(path: Path, *, strict: bool = True) -> dict[str, Any]:
    """Parse pyproject.toml, turning read and syntax errors into a ProjectError.

    ``strict``: it must declare dependencies ([project] or [tool.poetry], or a requirements.txt
    beside it: the setuptools layout whose pyproject.toml holds only [build-system]); a workspace
    root's pyproject, read to find members, need not.
    """
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}. Check the file's permissions.") from exc
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path} is not UTF-8 text ({exc.reason}): save it as UTF-8.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path} is not valid TOML: {exc}. Fix the syntax and try again.") from exc
    if not strict:
        return data
    has_project = isinstance(data.get("project"), dict)
    tool = data.get("tool")
    has_poetry = isinstance(tool, dict) and isinstance(tool.get("poetry"), dict)
    if not (has_project or has_poetry or (path.parent / "requirements.txt").is_file()):
        raise ProjectError(
            f"{path} has neither a [project] table nor a [tool.poetry] section, so it declares no "
            "dependencies. Add [project] with a 'dependencies' list (or [tool.poetry] for Poetry, or a "
            "requirements.txt beside it for pip)."
        )
    return data


def load_toml(path: Path, fix: str) -> dict[str, Any]:
    """Parse a TOML file (a lock, uv.toml), turning read and syntax errors into a ProjectError."""
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}. Check the file's permissions.") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"{path} is not a valid TOML file ({exc}). {fix}") from exc


def table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """data[k1][k2]..., or {} where a level is missing or not a table."""
    for key in keys:
        value = data.get(key) if isinstance(data, dict) else None
        data = value if isinstance(value, dict) else {}
    return data


def project_name(pyproject: dict[str, Any]) -> str | None:
    name = table(pyproject, "project").get("name") or table(pyproject, "tool", "poetry").get("name")
    return str(name) if name else None


def requires_python(pyproject: dict[str, Any], path: Path) -> SpecifierSet | None:
    """[project].requires-python, else Poetry's ``python`` dependency (caret and tilde forms included)."""
    text = table(pyproject, "project").get("requires-python")
    if text is None:
        text = table(pyproject, "tool", "poetry", "dependencies").get("python")
        text = poetry_constraint(text) if isinstance(text, str) else None
    if not text:
        return None
    try:
        return SpecifierSet(str(text))
    except InvalidSpecifier:
        raise ProjectError(
            f"{path}: requires-python {text!r} is not a valid version specifier (e.g. '>=3.10')."
        ) from None


def poetry_constraint(text: str) -> str | None:
    """Poetry's python constraint ('^3.10', '~3.11', '>=3.10,<3.13', '3.11.*') as PEP 440 specifiers."""
    parts = []
    for raw in text.replace(" ", "").split(","):
        if raw in ("", "*"):
            continue
        if raw.startswith("^"):
            major, minor = ([*raw[1:].split("."), "0"])[:2]
            parts += [f">={major}.{minor}", f"<{int(major) + 1}"]
        elif raw.startswith("~") and not raw.startswith("~="):
            major, minor = ([*raw[1:].split("."), "0"])[:2]
            parts += [f">={major}.{minor}", f"<{major}.{int(minor) + 1}"]
        elif raw[0].isdigit():
            parts.append(f"=={raw}")
        else:
            parts.append(raw)
    return ",".join(parts) or None


def declared_extras(pyproject: dict[str, Any]) -> set[str]:
    """Extras the project declares ([project.optional-dependencies], Poetry's [tool.poetry.extras])."""
    declared = table(pyproject, "project", "optional-dependencies")
    return set(declared) | set(table(pyproject, "tool", "poetry", "extras"))


def declared_groups(pyproject: dict[str, Any]) -> set[str]:
    """Dependency groups: PEP 735 [dependency-groups], uv's dev-dependencies ("dev"), Poetry's groups."""
    found = set(table(pyproject, "dependency-groups")) | set(table(pyproject, "tool", "poetry", "group"))
    if table(pyproject, "tool", "uv").get("dev-dependencies") is not None:
        found.add("dev")
    return found
