"""Pinned requirements from the project's lock, produced by the project's own tool.

uv and Poetry export their locks (dev groups left out unless asked for), pip projects
give their requirements.txt or, without one, the dependencies listed in pyproject.toml.
The result is a requirements file an installer can take on any host or in a container.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name

from .credentials import IndexCredentials, secrets_of, tool_environment
from .errors import CommandError, ProjectError, StaleLockError, ToolNotFoundError
from .install import explain_index_failure
from .options import LayerOptions
from .project import Project, Tool
from .runner import Command, run
from .tools import find_poetry, find_uv


@dataclass(frozen=True)
class PinnedRequirements:
    """A requirements file's text, and whether it pins the whole dependency closure."""

    text: str
    #: True when exported from a lock: install exactly these with --no-deps.
    complete: bool
    #: Where the pins came from (uv.lock, poetry.lock, requirements.txt, pyproject.toml).
    source: str


def uv_export_command(project: Project, options: LayerOptions) -> Command:
    argv = [
        find_uv(),
        "export",
        "--format",
        "requirements-txt",
        "--no-emit-project",
        "--no-header",
        "--no-annotate",
        "--no-python-downloads",
        "--no-default-groups",
        "--locked" if options.locked else "--frozen",
    ]
    for group in options.groups:
        argv += ["--group", group]
    for extra in options.extras:
        argv += ["--extra", extra]
    return Command(argv=tuple(argv), label="uv export", cwd=project.root)


def poetry_export_command(project: Project, options: LayerOptions) -> Command:
    """`poetry export` of main plus the chosen groups.

    No separate `poetry check --lock`: export itself refuses a lock that no longer
    matches pyproject.toml, and every Poetry start costs ~0.5 s.
    """
    argv = [find_poetry(), "export", "--format", "requirements.txt", "--only", ",".join(["main", *options.groups])]
    for extra in options.extras:
        argv += ["--extras", extra]
    argv += ["--no-interaction", "--directory", str(project.root)]
    return Command(argv=tuple(argv), label="poetry export", env={"POETRY_NO_INTERACTION": "1"})


def export_requirements(
    project: Project, options: LayerOptions, credentials: Sequence[IndexCredentials] = ()
) -> PinnedRequirements:
    """Return the pinned requirements for the layer, with excluded packages removed."""
    if project.tool is Tool.UV:
        text = _run_export((uv_export_command(project, options),), project, credentials)
        pinned = PinnedRequirements(text=text, complete=True, source="uv.lock")
    elif project.tool is Tool.POETRY:
        text = _run_export((poetry_export_command(project, options),), project, credentials)
        pinned = PinnedRequirements(text=text, complete=True, source="poetry.lock")
    else:
        pinned = pip_requirements(project, options)
    return PinnedRequirements(
        text=without_packages(pinned.text, options.exclude), complete=pinned.complete, source=pinned.source
    )


def _run_export(commands: Iterable[Command], project: Project, credentials: Sequence[IndexCredentials]) -> str:
    out, logins = "", tool_environment(credentials, declare=False)
    for command in commands:
        try:
            out = run(replace(command, env={**command.env, **logins}), secrets=secrets_of(credentials)).stdout
        except CommandError as exc:
            raise _explain_export_failure(exc, project) from exc
    return out


def _explain_export_failure(exc: CommandError, project: Project) -> Exception:
    """Turn the tools' messages for the common failures into errors that say what to do."""
    lock = project.lock_path.name if project.lock_path else project.tool.lock_name
    stderr = exc.stderr
    index_problem = explain_index_failure(stderr)
    if index_problem is not None:
        return index_problem
    if "needs to be updated" in stderr or "changed significantly since poetry.lock" in stderr:
        override = " (or pass locked=False / --no-locked to build from the lock as it is)"
        return StaleLockError(
            f"{project.root / lock} is out of date with {project.pyproject_path.name}: "
            f"run `{project.tool.lock_command}` in {project.root} and commit the lock"
            f"{override if project.tool is Tool.UV else ''}."
        )
    if 'command "export" does not exist' in stderr or 'The command "export" does not exist' in stderr:
        return ToolNotFoundError(
            "Poetry's export command is missing (Poetry 2 moved it into a plugin): run "
            "`poetry self add poetry-plugin-export` (or pip install poetry-plugin-export)."
        )
    return exc


def pip_requirements(project: Project, options: LayerOptions) -> PinnedRequirements:
    """requirements.txt as is, else [project].dependencies plus chosen extras and groups."""
    if project.lock_path is not None:
        if options.extras or options.groups:
            raise ProjectError(
                f"{project.lock_path} is installed as it is; extras and groups apply only to "
                "dependencies listed in pyproject.toml. Add the packages to requirements.txt instead."
            )
        return PinnedRequirements(text=project.lock_path.read_text(), complete=False, source="requirements.txt")
    table: dict[str, Any] = project.pyproject.get("project") or {}
    lines = list(_strings(table.get("dependencies", []), "project.dependencies", project))
    optional = _table(table.get("optional-dependencies"), "[project.optional-dependencies]", project)
    for extra in options.extras:
        if extra not in optional:
            raise ProjectError(_unknown(project, "extra", extra, "[project.optional-dependencies]", optional))
        lines += _strings(optional[extra], f"optional-dependencies.{extra}", project)
    groups = _table(project.pyproject.get("dependency-groups"), "[dependency-groups]", project)
    for group in options.groups:
        lines += _group(groups, group, project)
    return PinnedRequirements(text="\n".join(lines) + "\n", complete=False, source="pyproject.toml")


def _table(value: Any, where: str, project: Project) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProjectError(f"{project.pyproject_path}: {where} must be a table of lists of requirement strings.")
    return value


def _unknown(project: Project, kind: str, name: str, table: str, known: Iterable[Any]) -> str:
    choices = ", ".join(sorted(str(k) for k in known)) or "none"
    return f"No {kind} {name!r} in {table} of {project.pyproject_path} (defined: {choices})."


def _strings(values: Any, where: str, project: Project) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ProjectError(f"{project.pyproject_path}: {where} must be a list of requirement strings.")
    return list(values)


def _group(groups: dict[str, Any], name: str, project: Project, seen: tuple[str, ...] = ()) -> list[str]:
    """A PEP 735 dependency group, with its {include-group = ...} entries expanded."""
    if name not in groups or name in seen:
        raise ProjectError(_unknown(project, "dependency group", name, "[dependency-groups]", groups))
    lines: list[str] = []
    entries = groups[name]
    if not isinstance(entries, list):
        raise ProjectError(f"{project.pyproject_path}: [dependency-groups] {name} must be a list.")
    for item in entries:
        if isinstance(item, dict) and "include-group" in item:
            lines += _group(groups, str(item["include-group"]), project, (*seen, name))
        elif isinstance(item, str):
            lines.append(item)
    return lines


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _logical_lines(text: str) -> Iterator[str]:
    """Lines of a requirements file with backslash continuations kept together."""
    chunk: list[str] = []
    for line in text.splitlines():
        chunk.append(line)
        if not line.rstrip().endswith("\\"):
            yield "\n".join(chunk)
            chunk = []
    if chunk:
        yield "\n".join(chunk)


def without_packages(text: str, names: Iterable[str]) -> str:
    """Drop the requirements of the named distributions (any spelling) from a requirements file."""
    excluded = {canonicalize_name(n) for n in names}
    if not excluded:
        return text
    kept = []
    for logical in _logical_lines(text):
        match = _NAME.match(logical)
        if match and not logical.lstrip().startswith(("-", "#")) and canonicalize_name(match.group(1)) in excluded:
            continue
        kept.append(logical)
    return "\n".join(kept) + "\n"
