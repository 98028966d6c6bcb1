"""The pinned dependency closure, produced by the project's own tool.

uv exports its lock as a PEP 751 ``pylock.toml`` (``uv export``; dev groups left out unless
asked for). A pip project's requirements.txt (or the dependencies listed in pyproject.toml)
is resolved by ``uv pip compile`` into a pylock.toml for the target: wheels only at the
platform level uv knows for the runtime, and when that finds no answer, universally, so
that the plan (plan.py) can say exactly which package has no wheel and why. Poetry exports
requirements (offline; its pylock export needs the index's JSON API), which locked.py
joins with poetry.lock's file lists.

Every tool runs in the project's folder (or its workspace root), so the project's own
settings (``[tool.uv]``, ``uv.toml``) apply and relative paths resolve against it, never
against the caller's working directory.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core.credentials import IndexCredentials, secrets_of, tool_environment
from ..core.runner import Command, cause_line, run, without_user_config
from ..core.tool_errors import (
    explain_index_failure,
    explain_lock_schema,
    explain_missing_export,
    explain_requires_python,
    explain_resolution_failure,
    explain_unreadable_lock,
)
from ..core.tools import find_poetry, find_uv
from ..errors import CommandError, ProjectError, StaleLockError
from ..options import LayerOptions
from ..project.discover import Tool
from ..project.load import Project
from ..project.pyproject import table
from ..project.requirements import IndexOptions, requirement_options
from ..target import LambdaTarget
from .interpreter import find_interpreter, how_to_get
from .locked import Locked, read_poetry, read_pylock
from .machine_config import index_environment


@dataclass(frozen=True, kw_only=True)
class ExportedLock:
    """A pylock.toml's text and the folder its relative paths start from."""

    text: str
    #: Relative ``directory``/``archive`` paths in the text are relative to this folder.
    base: Path
    #: Where the pins came from (uv.lock, poetry.lock, requirements.txt, pyproject.toml).
    source: str
    #: pip options of the requirements files (index URLs, find-links) the installer must honour.
    index_options: IndexOptions = field(default_factory=IndexOptions)
    #: "pylock" (a pylock.toml) or "poetry" (Poetry's requirements export).
    kind: str = "pylock"
    #: What the user should know about the export (a lock whose freshness could not be checked).
    warnings: tuple[str, ...] = ()

    def read(self, project: Project) -> Locked:
        """The pins in one shape, whichever tool made them."""
        if self.kind == "poetry":
            return read_poetry(self.text, project.lock, project.root, self.source)
        return read_pylock(self.text, self.base, self.source)


def uv_export_command(project: Project, options: LayerOptions, python: str | None = None) -> Command:
    """``uv export`` of the lock; ``python`` satisfies requires-python for the freshness check."""
    argv = [
        find_uv(),
        "export",
        "--format",
        "pylock.toml",
        "--no-header",
        "--no-editable",
        "--no-python-downloads",
        "--no-default-groups",
        "--locked" if options.locked else "--frozen",
    ]
    if python:
        argv += ["--python", python]
    if project.member:
        argv += ["--package", project.member]
    if not options.include_project:
        argv.append("--no-emit-project")
    for group in options.groups:
        argv += ["--group", group]
    for extra in options.extras:
        argv += ["--extra", extra]
    return Command(argv=tuple(argv), label="uv export", cwd=project.anchor)


def poetry_export_command(project: Project, options: LayerOptions) -> Command:
    """`poetry export` (requirements, no hashes: poetry.lock has them) of main plus the chosen groups.

    No separate `poetry check --lock`: export itself refuses a lock that no longer
    matches pyproject.toml, and every Poetry start costs ~0.5 s.
    """
    groups = ",".join(["main", *options.groups])
    argv = [find_poetry(), "export", "--format", "requirements.txt", "--without-hashes", "--only", groups]
    for extra in options.extras:
        argv += ["--extras", extra]
    argv += ["--no-interaction", "--directory", str(project.root)]
    return Command(argv=tuple(argv), label="poetry export", env={"POETRY_NO_INTERACTION": "1"}, cwd=project.root)


def compile_command(requirements: Path, target: LambdaTarget, project: Project, *, universal: bool) -> Command:
    """`uv pip compile` of a pip project's requirements for the target (or universally)."""
    argv = [
        find_uv(),
        "pip",
        "compile",
        str(requirements),
        "--format",
        "pylock.toml",
        "--no-header",
        "--quiet",
        "--no-python-downloads",
        "--python",
        sys.executable,
        "--python-version",
        target.python,
    ]
    if universal:
        argv.append("--universal")
    else:
        argv += ["--python-platform", target.uv_python_platform, "--only-binary", ":all:"]
    flags, env = project_config(project)
    return Command(argv=(*argv, *flags), label="uv pip compile", cwd=project.root, env=env)


def project_config(project: Project) -> tuple[tuple[str, ...], dict[str, str]]:
    """uv's settings for resolving a pip project: its own (uv.toml, else pyproject.toml's [tool.uv], both
    in the fingerprint), nothing else: (flags, environment) for uv.

    Left to itself uv would also read a uv.toml in a folder above the project (when the project's own
    pyproject.toml has no [tool.uv]) and the user's (~/.config/uv/uv.toml), none of which the fingerprint
    holds and any of which can change what is resolved (``resolution``, ``no-emit-package``...). With
    [tool.uv] uv's search stops at the project; the user's file is then kept out by the environment
    (the system's, /etc/uv/uv.toml, uv reads whatever it is told: an administrator's policy). The
    machine's settings about where packages come from (its mirror) are given to uv as variables
    (machine_config.py).
    """
    own, machine = project.root / "uv.toml", index_environment()  # the machine's index or mirror still counts
    if own.is_file():
        return ("--config-file", str(own)), machine
    if "uv" in table(project.pyproject, "tool"):
        return (), {**machine, **without_user_config()}
    return ("--no-config",), machine


def export_lock(
    project: Project,
    options: LayerOptions,
    target: LambdaTarget,
    repo: Path,
    credentials: Sequence[IndexCredentials] = (),
) -> ExportedLock:
    """The pinned closure for the layer (all packages; the plan leaves out the excluded ones)."""
    if project.tool is Tool.UV:
        return _uv_export(project, options, target, credentials)
    if project.tool is Tool.POETRY:
        text = _run(poetry_export_command(project, options), project, credentials)
        index = requirement_options(text, project.root)
        return ExportedLock(text=text, base=project.root, source="poetry.lock", index_options=index, kind="poetry")
    return _compile(project, options, target, repo, credentials)


#: uv's ways of saying it found no Python it may use (to check the lock against requires-python).
_NO_INTERPRETER = re.compile(
    r"No interpreter found|incompatible with the project's Python requirement|Failed to inspect Python interpreter"
)


def _uv_export(
    project: Project, options: LayerOptions, target: LambdaTarget, credentials: Sequence[IndexCredentials]
) -> ExportedLock:
    """``uv export --locked`` checks the lock against pyproject.toml with a Python that satisfies
    requires-python; the target's is used when this machine has it. Where uv finds none (a python3.13
    project built on a 3.11-only CI machine), the lock is exported as it is, and the build says so."""
    interpreter = find_interpreter(target.python)
    command = uv_export_command(project, options, interpreter.path if interpreter else None)
    try:
        return ExportedLock(text=_run(command, project, credentials), base=project.anchor, source="uv.lock")
    except CommandError as exc:
        if not (options.locked and _NO_INTERPRETER.search(exc.stderr)):
            raise
        cause = cause_line(exc.stderr)
    frozen = uv_export_command(project, replace(options, locked=False))
    text = _run(frozen, project, credentials)
    supported = project.requires_python or "the project's requires-python"
    warning = (
        f"uv.lock was exported without checking that it matches pyproject.toml: uv needs a Python {supported} "
        f"for that, and found none here ({cause}); {how_to_get(target.python)}, or run "
        "`uv lock --check` where one is"
    )
    return ExportedLock(text=text, base=project.anchor, source="uv.lock", warnings=(warning,))


def _compile(
    project: Project, options: LayerOptions, target: LambdaTarget, repo: Path, credentials: Sequence[IndexCredentials]
) -> ExportedLock:
    if project.lock_path is not None:
        if options.extras or options.groups:
            raise ProjectError(
                f"{project.lock_path} is installed as it is; extras and groups apply only to "
                "dependencies listed in pyproject.toml. Add the packages to requirements.txt instead."
            )
        requirements, source = project.lock_path, "requirements.txt"
    else:
        requirements, source = repo / "requirements.in", "pyproject.toml"
        requirements.write_text(pyproject_requirements(project, options))
    index_options = project.requirements.index_options if project.requirements else IndexOptions()
    try:
        text = _run(compile_command(requirements, target, project, universal=False), project, credentials)
    except CommandError as exc:
        # No answer with wheels for the runtime at uv's level: resolve as a lock tool would, so the
        # plan can name each package without a wheel (or install a manylinux_2_24 one with pip).
        try:
            text = _run(compile_command(requirements, target, project, universal=True), project, credentials)
        except CommandError:
            raise explain_resolution_failure(exc, project.lock_path or project.pyproject_path) or exc from exc
    return ExportedLock(text=text, base=project.root, source=source, index_options=index_options)


def _run(command: Command, project: Project, credentials: Sequence[IndexCredentials]) -> str:
    # A lock's export must not see extra indexes (uv would call the lock stale); a pip project's
    # resolution must: that is where its private packages are.
    logins = tool_environment(credentials, declare=project.tool is Tool.PIP)
    try:
        return run(replace(command, env={**command.env, **logins}), secrets=secrets_of(credentials)).stdout
    except CommandError as exc:
        raise _explain_export_failure(exc, project) from exc


def _explain_export_failure(exc: CommandError, project: Project) -> Exception:
    """Turn the tools' messages for the common failures into errors that say what to do."""
    lock = project.lock_path or project.anchor / project.tool.lock_name
    stderr = exc.stderr
    index_problem = explain_index_failure(stderr)
    if index_problem is not None:
        return index_problem
    if "needs to be updated" in stderr or "changed significantly since poetry.lock" in stderr:
        return StaleLockError(
            f"{lock} is out of date with {project.pyproject_path}: "
            f"run `{project.tool.lock_command}` in {project.anchor} and commit the lock{_stale_override(project)}."
        )
    found = explain_missing_export(stderr, exc.argv[0]) if project.tool is Tool.POETRY else None
    if found is None and project.tool is Tool.UV:
        found = explain_lock_schema(stderr, str(lock), exc.argv[0])
        found = found or explain_unreadable_lock(stderr, str(lock), str(project.anchor))
    if found is None and project.tool is Tool.PIP:
        python = _argument(exc.argv, "--python-version")
        source = str(project.lock_path or project.pyproject_path)
        found = explain_requires_python(stderr, python, source) if python else None
        found = found or explain_resolution_failure(exc, project.lock_path or project.pyproject_path)
    return found or exc


def _stale_override(project: Project) -> str:
    """What locked=False does for this tool: uv exports the lock as it is; Poetry never does."""
    if project.tool is Tool.UV:
        return " (or pass locked=False / --no-locked to build from the lock as it is)"
    return (
        ". Poetry always refuses a stale lock, so locked=False / --no-locked does not apply to a Poetry "
        "project (it lets uv projects build from the lock as it is)"
    )


def _argument(argv: Sequence[str], flag: str) -> str | None:
    """The value after ``flag`` in a command's argv (the target Python of a compile), else None."""
    for index, value in enumerate(argv[:-1]):
        if value == flag:
            return argv[index + 1]
    return None


def pyproject_requirements(project: Project, options: LayerOptions) -> str:
    """[project].dependencies plus the chosen extras and PEP 735 groups, as requirements text."""
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
    return "\n".join(lines) + "\n"


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
