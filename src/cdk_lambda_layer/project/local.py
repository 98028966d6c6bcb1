"""Local packages the layer will hold, read from the lock files (no process, construct time).

A workspace member, a path dependency or a wheel on disk goes into the layer built from
this repository, so its sources must be part of the fingerprint. Which ones the layer gets
is decided the way the lock decides it:

- uv.lock: the packages reachable from the project (its dependencies, the chosen extras
  and groups, transitively) whose source is a folder (``editable``/``directory``) or a
  file (``path``);
- poetry.lock: packages of the chosen groups whose ``[package.source]`` is a directory or
  a file;
- a pip project: its requirements file's references, or without one the direct references in
  ``[project].dependencies`` (requirements.py), and what those local packages bring in
  (reached.py).

Relative paths resolve against the lock's folder (uv.lock, poetry.lock), never the caller's
directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

#: Files a requirements line can name that install a package from disk.
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


@dataclass(frozen=True, kw_only=True)
class LocalSource:
    """A package the layer takes from disk: a project folder, or a wheel or sdist file."""

    #: The distribution name where the lock says it (None for a bare requirements path).
    name: str | None
    #: Absolute path of the folder (with pyproject.toml or setup.py) or the archive.
    path: Path

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()


# -- uv.lock -----------------------------------------------------------------------------------
def entries(lock: Any) -> list[Any]:
    """The ``[[package]]`` entries of a parsed lock, whatever shape a damaged file has."""
    found = lock.get("package") if isinstance(lock, dict) else None
    return found if isinstance(found, list) else []


def _uv_entries(lock: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for entry in entries(lock):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            by_name.setdefault(canonicalize_name(entry["name"]), []).append(entry)
    return by_name


def _edges(items: Any) -> Iterator[tuple[str, frozenset[str]]]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            extras = item.get("extra") or []
            yield canonicalize_name(item["name"]), frozenset(e for e in extras if isinstance(e, str))


def _uv_children(
    entry: dict[str, Any], extras: Iterable[str], groups: Iterable[str]
) -> Iterator[tuple[str, frozenset]]:
    yield from _edges(entry.get("dependencies"))
    optional = entry.get("optional-dependencies") if isinstance(entry.get("optional-dependencies"), dict) else {}
    for extra in extras:
        yield from _edges(optional.get(extra))
    dev = entry.get("dev-dependencies") if isinstance(entry.get("dev-dependencies"), dict) else {}
    for group in groups:
        yield from _edges(dev.get(group))


def _uv_local_path(entry: dict[str, Any], base: Path) -> Path | None:
    source = entry.get("source") if isinstance(entry.get("source"), dict) else {}
    for key in ("editable", "directory", "path"):
        if isinstance(source.get(key), str):
            return (base / source[key]).resolve()
    return None


def uv_local_sources(
    lock: dict[str, Any],
    lock_dir: Path,
    root_name: str,
    *,
    extras: Iterable[str] = (),
    groups: Iterable[str] = (),
    include_root: bool = False,
) -> tuple[LocalSource, ...]:
    """Local packages reachable from ``root_name`` in a parsed uv.lock."""
    by_name = _uv_entries(lock)
    root = canonicalize_name(root_name)
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset(extras))]
    found: dict[Path, LocalSource] = {}
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        for entry in by_name.get(name, []):
            path = _uv_local_path(entry, lock_dir)
            if path is not None and (name != root or include_root):
                found.setdefault(path, LocalSource(name=entry["name"], path=path))
            todo.extend(_uv_children(entry, wanted, groups if name == root else ()))
    return tuple(sorted(found.values(), key=lambda s: str(s.path)))


# -- poetry.lock -------------------------------------------------------------------------------
def poetry_local_sources(lock: dict[str, Any], project_root: Path, groups: Iterable[str]) -> tuple[LocalSource, ...]:
    """Directory and file sources in poetry.lock that belong to main or a chosen group."""
    wanted = {"main", *groups}
    found = []
    for entry in entries(lock):
        source = entry.get("source") if isinstance(entry, dict) and isinstance(entry.get("source"), dict) else {}
        if source.get("type") not in ("directory", "file") or not isinstance(source.get("url"), str):
            continue
        entry_groups = entry.get("groups") if isinstance(entry, dict) else None
        if isinstance(entry_groups, list) and not wanted & set(entry_groups):
            continue
        found.append(LocalSource(name=entry.get("name"), path=(project_root / source["url"]).resolve()))
    return tuple(sorted(found, key=lambda s: str(s.path)))
