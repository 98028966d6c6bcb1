"""What the local packages of a pip project bring in, transitively (construct time, files only).

A pip project's resolver (``uv pip compile``) also follows what those local packages
declare, so for pip projects each local folder reached, the project itself included when
a requirements line names it (``-e .``) or the layer includes it, brings in, transitively:

- its ``[tool.uv.sources]`` entries, over those of its uv workspace root (as uv applies
  them to a member), for the names its dependencies (any extra) require, or all of them
  when its dependencies are dynamic: a ``path`` relative to the pyproject.toml declaring it,
  ``workspace = true`` as that workspace's member of the name;
- its ``[tool.poetry.dependencies]`` ``path`` entries, relative to it (poetry-core writes
  them into the wheel's metadata as ``file:`` references);
- the direct references to files and folders in its ``[project].dependencies`` and every
  extra (a dependent may ask for any), and in setuptools' ``dynamic`` requirement files;
  for a hatchling package with hatch's context fields filled in (``{root:uri}`` is the
  package's folder: ``core @ {root:uri}/../core``, ``{root:parent:uri}/core``).

Wider than the resolver only where it is cheaper (every extra, markers not evaluated): a
followed path that does not exist is dropped (uv says so when it needs it). Archives are not
opened, and dependencies a build hook computes are not seen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ..errors import ProjectError
from .discover import uv_workspace_root, workspace_members
from .local import LocalSource
from .pyproject import project_name, read_pyproject, table
from .requirements import PEP508_URL, logical_lines, requirement_path, string_list

# -- what local packages bring in (pip projects) ---------------------------------------------------
#: The distribution name a requirement string starts with.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def reached_local_sources(found: Iterable[LocalSource], project_root: Path) -> tuple[LocalSource, ...]:
    """``found`` and every local package they bring in, transitively (the module's rule), named by
    their pyproject.toml where ``found`` has no name.

    Each folder is read once, so a cycle ends. What ``found`` names stays even when missing (the
    fingerprint refuses it, naming it); a followed path that does not exist is dropped.
    """
    members: dict[Path, dict[str, Path]] = {}
    reached: dict[Path, LocalSource] = {}
    todo = [(source, True) for source in reversed(tuple(found))]
    while todo:
        source, named_here = todo.pop()
        if source.path in reached:
            if reached[source.path].name is None and source.name:
                reached[source.path] = source
            continue
        if not named_here and not source.path.exists():
            continue
        data = _package_toml(source.path)
        reached[source.path] = LocalSource(name=source.name or project_name(data), path=source.path)
        if source.path.is_dir():
            todo += [(s, False) for s in reversed(_brought_in(source.path, data, project_root, members))]
    return tuple(reached.values())


def _package_toml(path: Path) -> dict[str, Any]:
    """A local folder's pyproject.toml; {} for an archive, a missing file or broken TOML (its build says why)."""
    if not (path / "pyproject.toml").is_file():
        return {}
    try:
        return read_pyproject(path / "pyproject.toml", strict=False)
    except ProjectError:
        return {}


def _brought_in(
    folder: Path, data: dict[str, Any], project_root: Path, members: dict[Path, dict[str, Path]]
) -> list[LocalSource]:
    """The local packages one local folder's build metadata makes the resolver take from disk."""
    requirements = _requirement_strings(folder, data)
    found: list[LocalSource] = []
    for requirement in requirements:
        path = requirement_path(requirement, project_root)
        name = PEP508_URL.match(requirement)
        found += [LocalSource(name=name["name"] if name else None, path=path)] if path is not None else []
    dynamic = "project" not in data or "dependencies" in string_list(table(data, "project").get("dynamic"))
    wanted = {canonicalize_name(m[1]) for r in requirements if (m := _NAME.match(r))}
    for name, path in _uv_source_paths(folder, data, members):
        found += [LocalSource(name=name, path=path)] if dynamic or name in wanted else []
    found += [LocalSource(name=name, path=path) for name, path in _poetry_path_dependencies(folder, data)]
    return found


def _requirement_strings(folder: Path, data: dict[str, Any]) -> list[str]:
    """A package's requirements as its wheel's metadata has them: [project].dependencies, every extra
    (hatch's context fields filled in), and the lines of setuptools' dynamic requirement files."""
    project = table(data, "project")
    found = string_list(project.get("dependencies"))
    for extra in table(project, "optional-dependencies").values():
        found += string_list(extra)
    if str(table(data, "build-system").get("build-backend", "")).startswith("hatchling"):
        found = [_hatch_context(requirement, folder) for requirement in found]
    dynamic = table(data, "tool", "setuptools", "dynamic")
    settings = [table(dynamic, "dependencies"), *table(dynamic, "optional-dependencies").values()]
    for setting in (s for s in settings if isinstance(s, dict)):
        named = setting.get("file")
        for name in [named] if isinstance(named, str) else string_list(named):
            found += _file_requirements(folder / name)
    return found


#: hatch's context formatting, which it applies to dependencies (https://hatch.pypa.io/latest/config/context/):
#: ``{root:uri}``, ``{root:parent:uri}``, ``{home}``; ``root`` is the package's folder (uv asks hatch for the
#: metadata then, so ``core @ {root:uri}/../core`` is the package's sibling), and ``{env:NAME:default}``.
_HATCH_PATH = re.compile(r"\{(?P<field>root|home)(?P<parents>(?::parent)*)(?::(?P<modifier>uri|real))?\}")
_HATCH_ENV = re.compile(r"\{env:(?P<name>[^:}]+)(?::(?P<default>[^}]*))?\}")


def _hatch_context(requirement: str, folder: Path) -> str:
    def path(match: re.Match[str]) -> str:
        value = folder.absolute() if match["field"] == "root" else Path("~").expanduser()
        for _ in range(match["parents"].count(":parent")):
            value = value.parent
        if match["modifier"] == "uri":
            return value.as_uri()
        return os.path.realpath(value) if match["modifier"] == "real" else os.path.normpath(value)

    def env(match: re.Match[str]) -> str:
        return os.environ.get(match["name"], match["default"] if match["default"] is not None else match[0])

    return _HATCH_ENV.sub(env, _HATCH_PATH.sub(path, requirement)).replace("{/}", os.sep)


def _file_requirements(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return []  # the build fails on it; sources.py hashes the file as a declared source
    return [line for line in logical_lines(text) if line and not line.startswith("-")]


def _uv_sources(folder: Path, data: dict[str, Any]) -> tuple[Path | None, dict[str, tuple[Path, Any]]]:
    """(workspace root or None, canonical name -> (folder its paths start from, entry)) of the
    ``[tool.uv.sources]`` uv applies to a package: its workspace root's, overridden by its own
    (https://docs.astral.sh/uv/concepts/projects/dependencies/#dependency-sources)."""
    try:
        root = uv_workspace_root(folder)
    except ProjectError:  # a broken pyproject.toml above it: uv stops there too, saying why
        root = None
    declared: dict[str, tuple[Path, Any]] = {}
    for base, toml in [*([(root, _package_toml(root))] if root and root != folder else []), (folder, data)]:
        sources = table(toml, "tool", "uv", "sources")
        declared |= {canonicalize_name(name): (base, entry) for name, entry in sources.items()}
    return root, declared


def _uv_source_paths(
    folder: Path, data: dict[str, Any], members: dict[Path, dict[str, Path]]
) -> Iterator[tuple[str, Path]]:
    """(canonical name, folder or file) of the local ``[tool.uv.sources]`` entries uv applies to a package."""
    root, declared = _uv_sources(folder, data)
    for name, (base, value) in declared.items():
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield from ((name, p) for p in [_resolved(base, entry["path"])] if p is not None)
            elif isinstance(entry, dict) and entry.get("workspace") is True and root is not None:
                if root not in members:
                    members[root] = _members(root)
                yield from [(name, members[root][name])] if name in members[root] else []


def _members(root: Path) -> dict[str, Path]:
    try:
        return {name: folder.resolve() for name, folder in workspace_members(root).items()}
    except ProjectError:  # a member's broken pyproject.toml: uv refuses the workspace, saying why
        return {}


def _resolved(base: Path, written: str) -> Path | None:
    try:
        return (base / written).resolve()
    except (OSError, RuntimeError, ValueError):  # an embedded NUL, a link loop: no path uv can use
        return None


def _poetry_path_dependencies(folder: Path, data: dict[str, Any]) -> Iterator[tuple[str, Path]]:
    """``[tool.poetry.dependencies]`` path entries: poetry-core puts them in the metadata as ``file:`` URLs."""
    for name, spec in table(data, "tool", "poetry", "dependencies").items():
        for entry in spec if isinstance(spec, list) else [spec]:
            path = (
                _resolved(folder, entry["path"])
                if isinstance(entry, dict) and isinstance(entry.get("path"), str)
                else None
            )
            yield from [(canonicalize_name(name), path)] if path is not None else []
