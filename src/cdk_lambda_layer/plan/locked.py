"""The pinned closure, read into one shape whichever tool exported it.

uv and pip projects arrive as a PEP 751 ``pylock.toml`` (``uv export`` / ``uv pip compile``),
read and validated by ``packaging.pylock``. Poetry's own pylock export looks every package
up in its repository (an index's JSON API) to find file URLs, so it is neither offline nor
possible behind a simple-index mirror; its requirements export is offline and carries the
markers, and poetry.lock lists every file of every version with its hash: together they
give the same facts. Either way the plan (plan.py) gets, per pinned package: its version,
marker, wheel file names, hashes, whether an sdist exists, or where on disk it lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.pylock import Pylock, PylockValidationError
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from ..errors import ProjectError, TargetError
from ..project.local import entries
from ..project.pyproject import poetry_constraint, project_name, read_pyproject, tomllib
from ..target import LambdaTarget


@dataclass(frozen=True, kw_only=True)
class LockedPackage:
    """One pinned package as the lock records it."""

    name: str
    version: str
    marker: Marker | None = None
    #: Wheel file names of this version, as published.
    wheels: tuple[str, ...] = ()
    #: Every hash the lock has for the version's files ("sha256:…").
    hashes: tuple[str, ...] = ()
    #: File name -> its hashes, where the lock says which hash is whose (the source distribution too).
    file_hashes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sdist: bool = False
    #: A folder or archive on disk (workspace member, path dependency, local wheel).
    local: Path | None = None
    #: A git or direct-URL source (built from source, not supported locally).
    remote_source: str | None = None
    index: str | None = None
    requires_python: SpecifierSet | None = None


@dataclass(frozen=True, kw_only=True)
class Locked:
    packages: tuple[LockedPackage, ...]
    source: str
    requires_python: SpecifierSet | None = None

    def patch_dependent(self, target: LambdaTarget) -> tuple[str, ...]:
        """Packages whose selection on the target depends on its patch level (a marker on
        python_full_version): what the first patch release would get differs from a recent one's."""
        recent, first = target.marker_environment(), target.marker_environment(patch=0)
        differ = {
            p.name
            for p in self.packages
            if p.marker is not None and _holds(p.marker, recent) != _holds(p.marker, first)
        }
        return tuple(sorted(differ))

    def for_target(self, target: LambdaTarget) -> tuple[LockedPackage, ...]:
        """The packages whose marker holds on the target; one per name (a fork picks its version)."""
        environment = target.marker_environment()
        full = f"{target.python}.x"
        if self.requires_python is not None and not _supports(self.requires_python, target):
            raise TargetError(
                f"The pins from {self.source} are for Python {self.requires_python}, not {target.runtime_name}. "
                "Pick a runtime the project supports, or widen requires-python and lock again."
            )
        chosen: dict[str, LockedPackage] = {}
        for package in self.packages:
            if package.marker is not None and not _holds(package.marker, environment):
                continue
            if package.requires_python is not None and not _supports(package.requires_python, target):
                raise TargetError(
                    f"{package.name} {package.version} (from {self.source}) needs Python {package.requires_python}, "
                    f"not {full}: pick another runtime, or lock a version of {package.name} that supports it."
                )
            key = canonicalize_name(package.name)
            if key in chosen and chosen[key] != package:
                raise ProjectError(
                    f"{self.source} pins {package.name} twice for {target.runtime_name} ({chosen[key].version} and "
                    f"{package.version}): the lock's markers overlap. Lock again."
                )
            chosen[key] = package
        return tuple(chosen.values())


def _holds(marker: Marker, environment: dict[str, str]) -> bool:
    try:
        return marker.evaluate({**environment, "extra": ""})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _supports(specifier: SpecifierSet, target: LambdaTarget) -> bool:
    return any(specifier.contains(f"{target.python}.{patch}") for patch in (0, 99))


# -- pylock.toml (uv export, uv pip compile) ------------------------------------------------------
def read_pylock(text: str, base: Path, source: str) -> Locked:
    try:
        lock = Pylock.from_dict(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, PylockValidationError, ValueError, TypeError) as exc:
        raise ProjectError(f"The pins exported from {source} could not be read as pylock.toml: {exc}") from exc
    return Locked(
        packages=tuple(_from_pylock(p, base) for p in lock.packages),
        source=source,
        requires_python=lock.requires_python,
    )


def _from_pylock(package: Any, base: Path) -> LockedPackage:
    files = [*(package.wheels or ()), *([package.sdist] if package.sdist else [])]
    hashes = tuple(sorted({f"{a}:{d}" for f in files for a, d in (f.hashes or {}).items()}))
    per_file = tuple(
        (f.filename, tuple(sorted(f"{a}:{d}" for a, d in (f.hashes or {}).items())))
        for f in files
        if getattr(f, "filename", None)
    )
    local = package.directory.path if package.directory else (package.archive.path if package.archive else None)
    remote = package.vcs.url if package.vcs else (package.archive.url if package.archive else None)
    return LockedPackage(
        name=package.name,
        version=str(package.version or ""),
        marker=package.marker,
        wheels=tuple(w.filename for w in package.wheels or ()),
        hashes=hashes,
        file_hashes=per_file,
        sdist=package.sdist is not None,
        local=(base / local).resolve() if local else None,
        remote_source=None if local else remote,
        index=package.index,
        requires_python=package.requires_python,
    )


# -- Poetry: requirements export + poetry.lock -----------------------------------------------------
def read_poetry(export: str, lock: dict[str, Any], root: Path, source: str = "poetry.lock") -> Locked:
    """Poetry's offline requirements export (what applies, with markers) joined with poetry.lock's files."""
    files = _poetry_files(lock)
    packages = []
    for line in export.splitlines():
        text = line.split(" \\")[0].strip()
        if text.startswith(("-e ", "--editable ")):
            packages.append(_editable(text.split(" ", 1)[1], root))  # a path dependency with develop = true
            continue
        if not text or text.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise ProjectError(f"poetry export gave a line this library cannot read: {text!r} ({exc}).") from exc
        packages.append(_from_requirement(requirement, files, root))
    metadata = lock.get("metadata") if isinstance(lock.get("metadata"), dict) else {}
    return Locked(packages=tuple(packages), source=source, requires_python=_poetry_python(metadata))


def _poetry_files(lock: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries(lock):
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            key = (canonicalize_name(entry["name"]), str(entry.get("version", "")))
            listed = entry.get("files") if isinstance(entry.get("files"), list) else []
            found[key] = [f for f in listed if isinstance(f, dict)]
    return found


def _from_requirement(
    requirement: Requirement, files: dict[tuple[str, str], list[dict[str, Any]]], root: Path
) -> LockedPackage:
    if requirement.url:
        parts = urlsplit(requirement.url)
        if parts.scheme == "file":
            path = Path(unquote(parts.path))
            return LockedPackage(
                name=requirement.name, version="", marker=requirement.marker, local=(root / path).resolve()
            )
        return LockedPackage(
            name=requirement.name, version="", marker=requirement.marker, remote_source=requirement.url
        )
    pinned = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
    if len(pinned) != 1:
        raise ProjectError(f"poetry export gave {requirement} without an exact version: lock again (`poetry lock`).")
    version = pinned[0]
    entries = files.get((canonicalize_name(requirement.name), version), [])
    names = [str(f.get("file", "")) for f in entries]
    hashes = tuple(sorted({str(f["hash"]) for f in entries if f.get("hash")}))
    per_file = tuple((str(f["file"]), (str(f["hash"]),)) for f in entries if f.get("file") and f.get("hash"))
    return LockedPackage(
        name=requirement.name,
        version=version,
        marker=requirement.marker,
        wheels=tuple(n for n in names if n.endswith(".whl")),
        hashes=hashes,
        file_hashes=per_file,
        sdist=any(n.endswith((".tar.gz", ".zip", ".tar.bz2")) for n in names),
    )


def _editable(text: str, root: Path) -> LockedPackage:
    """``-e file:///path ; marker`` (Poetry's export of ``develop = true``): built from the folder like any
    local package (never installed editable), named by its own pyproject.toml."""
    location, _, marker = text.partition(";")
    parts = urlsplit(location.strip())
    path = (root / unquote(parts.path if parts.scheme == "file" else location.strip())).resolve()
    try:
        pyproject = read_pyproject(path / "pyproject.toml", strict=False)
    except ProjectError:
        pyproject = {}
    name = project_name(pyproject) or path.name
    try:
        parsed_marker = Marker(marker.strip()) if marker.strip() else None
    except InvalidMarker as exc:
        raise ProjectError(f"poetry export gave a marker this library cannot read: {marker!r} ({exc}).") from exc
    return LockedPackage(name=name, version="", marker=parsed_marker, local=path)


def _poetry_python(metadata: dict[str, Any]) -> SpecifierSet | None:
    text = metadata.get("python-versions")
    if not isinstance(text, str):
        return None
    try:
        return SpecifierSet(poetry_constraint(text) or "")
    except InvalidSpecifier:
        return None
