"""What a requirements file pulls in from disk: included files, local packages, index options.

Folder and archive paths, ``file:`` URLs and ``-e`` lines, through ``-r``/``-c`` includes
(which are files the fingerprint must cover too). ``-r``/``-c`` resolve against the including
file's folder (as pip and uv do); package paths against the project folder, where the
installer runs. ``${PROJECT_ROOT}`` is that folder: uv expands it to the folder it runs in,
the project's, also in a local package's own dependencies (uv 0.13: from ``svc``, acme's
``core @ file:///${PROJECT_ROOT}/../core`` is ``svc/../core``). Another ``${NAME}`` comes from
the environment, as uv reads it: such a path, and so the fingerprint, then depends on the
machine (a variable pointing at another copy, even an identical one, gives another
fingerprint). A line naming the project itself (``-e .``, which ``uv export`` writes) is read
like any other here; ``Project.local_sources`` leaves it out unless the layer includes the
project.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ProjectError
from .local import ARCHIVE_SUFFIXES, LocalSource
from .pyproject import table


# -- requirements files -------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexOptions:
    """Where a requirements file says packages come from. Handed to installers as environment
    variables only: an index URL may carry a login, which must never be written to disk."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    no_index: bool = False

    def merged(self, other: IndexOptions) -> IndexOptions:
        return IndexOptions(
            index_url=self.index_url or other.index_url,
            extra_index_urls=tuple(dict.fromkeys(self.extra_index_urls + other.extra_index_urls)),
            find_links=tuple(dict.fromkeys(self.find_links + other.find_links)),
            trusted_hosts=tuple(dict.fromkeys(self.trusted_hosts + other.trusted_hosts)),
            no_index=self.no_index or other.no_index,
        )

    def flags(self, installer: str) -> tuple[str, ...]:
        """What uv takes only as a flag (it has no variable for ``--no-index``)."""
        return ("--no-index",) if self.no_index and installer == "uv" else ()

    def environment(self, installer: str) -> dict[str, str]:
        """Variables that give uv (``UV_…``) or pip (``PIP_…``) these settings."""
        prefix = "UV_" if installer == "uv" else "PIP_"
        env: dict[str, str] = {}
        if self.index_url:
            env[f"{prefix}INDEX_URL"] = self.index_url
        if self.extra_index_urls:
            env[f"{prefix}EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        if self.find_links:
            env[f"{prefix}FIND_LINKS"] = " ".join(self.find_links)
        if self.trusted_hosts:
            env["UV_INSECURE_HOST" if installer == "uv" else "PIP_TRUSTED_HOST"] = " ".join(self.trusted_hosts)
        if self.no_index and installer != "uv":
            env["PIP_NO_INDEX"] = "1"
        return env


@dataclass(frozen=True)
class RequirementFiles:
    """What a requirements file pulls in from disk (included files, local packages) and its index options."""

    includes: tuple[Path, ...]
    local: tuple[LocalSource, ...]
    index_options: IndexOptions = field(default_factory=IndexOptions)


_OPTION = re.compile(
    r"^(-r|--requirement|-c|--constraint|-e|--editable|-f|--find-links|-i|--index-url|--extra-index-url"
    r"|--trusted-host)(?:=|\s+|(?=\S))(.+)$"
)
PEP508_URL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*@\s*(?P<url>\S+)")


def logical_lines(text: str) -> Iterator[str]:
    """Lines with backslash continuations joined and comments removed (pip's rules)."""
    buffer = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.rstrip().endswith("\\"):
            buffer += line.rstrip()[:-1] + " "
            continue
        yield (buffer + line).strip()
        buffer = ""
    if buffer.strip():
        yield buffer.strip()


#: uv expands ``${NAME}`` (upper case) in requirement paths and URLs: ``PROJECT_ROOT`` to the folder it
#: runs in, which is the project's here, any other name from the environment (left as it is when unset).
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")
_EXTRAS = re.compile(r"\[[^\]]*\]$")


def _expand_variables(text: str, base: Path) -> str:
    """``${PROJECT_ROOT}/libs/x`` (also as ``file:///${PROJECT_ROOT}/libs/x``) as uv reads it."""

    def value(match: re.Match[str]) -> str:
        name = match["name"]
        return base.as_posix() if name == "PROJECT_ROOT" else os.environ.get(name, match[0])

    expanded = _VARIABLE.sub(value, text)
    slashes = len(text) - len(text.lstrip("/"))
    if expanded != text and text[slashes:].startswith("${") and expanded[slashes:].startswith("/"):
        return expanded[slashes:]  # the URL's slashes before an absolute folder
    return expanded


def _as_path(reference: str, base: Path) -> Path | None:
    """A local path named by a requirement (a folder, an archive, a file: URL), else None."""
    if reference.startswith("file:"):
        try:
            parts = urlsplit(reference)
        except ValueError:
            return None
        text = unquote(parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}")
        text = _expand_variables(text, base)
        return (base / text).resolve() if not Path(text).is_absolute() else Path(text).resolve()
    if "://" in reference or reference.startswith(("git+", "hg+", "svn+", "bzr+")):
        return None
    reference = _EXTRAS.sub("", _expand_variables(reference, base))  # ./libs/x[cli]: the folder ./libs/x
    looks_local = reference.startswith((".", "/", "~")) or "/" in reference or reference.endswith(ARCHIVE_SUFFIXES)
    if not looks_local:
        return None
    try:
        return (base / Path(reference).expanduser()).resolve()
    except (RuntimeError, ValueError, OSError):  # ~unknown-user, an embedded NUL: not a path uv can use
        return None


def requirement_path(line: str, base: Path) -> Path | None:
    """The local path a requirement line or string names (``name @ file:…``, ``./x``), else None."""
    url = PEP508_URL.match(line)
    return _as_path(url.group("url") if url else _first_word(line).split(";")[0], base)


def requirement_files(path: Path, project_root: Path, _seen: frozenset[Path] = frozenset()) -> RequirementFiles:
    """Includes and local packages of requirements file ``path``, recursively.

    ``-r``/``-c`` resolve against the including file's folder (as pip and uv do); package
    paths against the project folder, where the installer runs.
    """
    path = path.resolve()
    if path in _seen:
        return RequirementFiles((), ())
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(
            f"Cannot read the requirements file {path}: {exc}. Check the -r/-c line that names it."
        ) from exc
    includes: list[Path] = [path]
    local: list[LocalSource] = []
    index = IndexOptions()
    for line in logical_lines(text):
        if line == "--no-index":
            index = index.merged(IndexOptions(no_index=True))
            continue
        option = _OPTION.match(line)
        if option:
            flag, value = option.group(1), _first_word(option.group(2))
            if flag in ("-r", "--requirement", "-c", "--constraint"):
                nested = requirement_files(path.parent / value, project_root, _seen | {path})
                includes += nested.includes
                local += nested.local
                index = index.merged(nested.index_options)
            elif flag in ("-e", "--editable"):
                target = _as_path(value, project_root)
                local += [LocalSource(name=None, path=target)] if target is not None else []
            else:
                index = index.merged(_index_option(flag, value, project_root))
                folder = _as_path(value, project_root) if flag in ("-f", "--find-links") else None
                if folder is not None and folder.is_dir():
                    local += [LocalSource(name=None, path=p) for p in sorted(folder.iterdir()) if _archive(p)]
            continue
        if not line or line.startswith("-"):
            continue
        target = requirement_path(line, project_root)
        if target is not None:
            local.append(LocalSource(name=None, path=target))
    return RequirementFiles(tuple(dict.fromkeys(includes)), tuple(local), index)


def _index_option(flag: str, value: str, base: Path) -> IndexOptions:
    """One index option line (--index-url, --extra-index-url, --trusted-host, --find-links) as IndexOptions."""
    if flag in ("-i", "--index-url"):
        return IndexOptions(index_url=value)
    if flag == "--extra-index-url":
        return IndexOptions(extra_index_urls=(value,))
    if flag == "--trusted-host":
        return IndexOptions(trusted_hosts=(value,))
    if flag in ("-f", "--find-links"):
        folder = _as_path(value, base)
        return IndexOptions(find_links=(str(folder) if folder else value,))
    return IndexOptions()


def requirement_options(text: str, base: Path) -> IndexOptions:
    """The index options (--index-url, --extra-index-url, --find-links, --trusted-host) of requirements text."""
    index = IndexOptions()
    for line in logical_lines(text):
        option = _OPTION.match(line)
        if line == "--no-index":
            index = index.merged(IndexOptions(no_index=True))
        elif option:
            index = index.merged(_index_option(option.group(1), _first_word(option.group(2)), base))
    return index


def _first_word(text: str) -> str:
    try:
        words = shlex.split(text, comments=False)
    except ValueError:
        words = text.split()
    return words[0] if words else ""


def _archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES)


# -- [project] dependencies -------------------------------------------------------------------
def string_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _group_requirements(groups: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """A PEP 735 group's requirement strings, ``{include-group = …}`` followed (read leniently: the
    export step refuses a malformed table with a message)."""
    if name in seen:
        return []
    items = groups.get(name)
    found: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("include-group"), str):
            found += _group_requirements(groups, item["include-group"], seen | {name})
        elif isinstance(item, str):
            found.append(item)
    return found


def pyproject_local_sources(
    pyproject: dict[str, Any], project_root: Path, *, extras: Iterable[str] = (), groups: Iterable[str] = ()
) -> tuple[LocalSource, ...]:
    """Local packages that [project].dependencies, the chosen extras and dependency groups name by
    direct reference (``acme @ file:///${PROJECT_ROOT}/libs/acme``, an absolute ``file:`` URL,
    ``acme @ ./libs/acme``): a pip project without requirements.txt installs them from disk."""
    project = table(pyproject, "project")
    requirements = string_list(project.get("dependencies"))
    for extra in extras:
        requirements += string_list(table(project, "optional-dependencies").get(extra))
    for group in groups:
        requirements += _group_requirements(table(pyproject, "dependency-groups"), group)
    found: dict[Path, LocalSource] = {}
    for requirement in requirements:
        path = requirement_path(requirement, project_root)
        name = PEP508_URL.match(requirement)
        if path is not None:
            found.setdefault(path, LocalSource(name=name.group("name") if name else None, path=path))
    return tuple(sorted(found.values(), key=lambda s: str(s.path)))
