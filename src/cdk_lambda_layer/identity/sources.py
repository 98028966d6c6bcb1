"""The sources of a local package, as the fingerprint sees them.

A workspace library or path dependency goes into the layer as the wheel its build backend
makes from its folder, so a change to what the backend reads must change the layer's
fingerprint, and nothing else should. Reading each backend's include rules (or asking
git) would need a process, and the fingerprint is computed at construct time, so the
rule is simple and deliberately wide:

**every file under the package's folder, hidden ones included, following linked folders**,
except what tools write while you work and no backend ships:
- at any depth, these folders (and files of the same name): version control (``.git``,
  ``.hg``, ``.svn``, ``.bzr``, ``.jj``), environments (``.venv``, ``.tox``, ``.nox``,
  ``.hatch``, ``.pixi``, ``.direnv``, ``__pypackages__``), caches (``__pycache__``,
  ``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``.hypothesis``, ``.pytype``,
  ``.pyre``, ``.cache``, ``.eggs``, ``.ipynb_checkpoints``), editors (``.idea``,
  ``.vscode``, ``.vs``), deployment output (``cdk.out``, ``.aws-sam``, ``.serverless``,
  ``.terraform``), ``node_modules``, ``*.egg-info``, build backends' in-tree work folders
  (pdm-backend's ``.pdm-build``, scikit-build's ``_skbuild``, meson-python's ``.mesonpy-*``;
  setuptools' ``build`` is below, Cargo's ``target`` for maturin carries a cache tag) and pdm's
  ``.pdm-python`` (a machine's interpreter path); any folder holding a ``CACHEDIR.TAG``
  (https://bford.info/cachedir/) or a ``pyvenv.cfg`` (a virtual environment); and any CDK
  cloud assembly, whatever the outdir is called (``App(outdir=...)``, ``cdk synth -o``, cdk.json's
  ``output``): a folder holding ``manifest.json`` with CDK's ``cdk.out`` marker file or its
  ``tree.json`` beside it (every assembly, a nested stage's included, has the first two);
- at any depth, the files ``.DS_Store``, ``Thumbs.db``, ``.coverage`` / ``.coverage.*``
  and compiled bytecode (``*.pyc``, ``*.pyo``);
- at the package's top level only (a sub-package may well be called ``build``): ``venv``,
  ``env``, ``build``, ``dist``, ``htmlcov``;
- folders that are another package: a local package of the same layer, a uv workspace
  member, or the project whose layer it is (a workspace root that is itself a package does
  not absorb its members, each counting on its own when the layer holds it; a library that
  holds the project does not absorb the project's handlers). Any other folder with a
  ``pyproject.toml`` is package data (a project template) and is hashed.

Besides its folder, a package's build configuration may name sources anywhere: these are
hashed too, where the folder's walk did not already cover them (outside the folder, or
under a skipped one such as ``build/``):
- hatch's ``force-include``, ``shared-data``, ``shared-scripts``, ``extra-metadata`` and
  ``only-include`` (in ``[tool.hatch.build]``, ``[tool.hatch.build.targets.wheel]`` and
  the same tables of ``hatch.toml``), a folder walked as hatch walks it: leaving out only
  hatch's own list (``__pycache__``, ``.git``, ``.hg``, ``.venv``, ``.hatch``, ``.tox``,
  ``.nox``, ``.pixi``, ``.ruff_cache``, ``.pytest_cache``, ``.mypy_cache``, ``.DS_Store``);
- hatch's ``[tool.hatch.version] path``, the ``[project]`` ``readme`` and ``license`` files;
- setuptools' ``package-dir``, ``packages.find.where`` and ``dynamic`` ``file`` entries,
  and Poetry's ``packages`` ``from`` folders, walked by the rule above.
Build hooks (code that runs at build time) and ``.gitignore`` files are not read: what a
hook reads is not covered, and an ignored file in the folder still counts.

A file is identified by its path relative to the package folder (POSIX separators) or,
for a source the build configuration names, by that setting and the path as written
there; and by its content, text with CRLF read as LF, so a Windows checkout agrees. A
link is followed (a file by its content, a folder by walking it), except a folder link
that leads back to a folder being walked (a loop) and a dangling link: those are hashed
by their link text. More than ``MAX_SOURCE_FILES`` files is refused as a wrong path.
A package itself is named in the fingerprint by its path relative to the lock's folder, so
moving the whole checkout changes nothing. A path through an environment variable
(``acme @ file:///${LIBS}/acme``: any ``${NAME}`` but ``${PROJECT_ROOT}``, read as uv reads it)
makes the fingerprint machine-dependent: where the variable differs, even to a byte-identical
copy, the package's relative path and so the fingerprint differ, and the layer is rebuilt (and
redeployed). Name such libraries relative to the project (``${PROJECT_ROOT}/../libs/acme``,
``../libs/acme``) for one fingerprint on every machine.
Wider than the backend's own selection means an edit to, say, a README in the library
rebuilds the layer; it never means a changed file that reaches the layer goes unnoticed.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProjectError
from ..project.pyproject import load_toml, table

#: Folders (and files of the same name) skipped at any depth: written by tools, shipped by no backend.
SKIPPED_ANYWHERE = frozenset(
    {
        *(".git", ".hg", ".svn", ".bzr", ".jj"),
        *(".venv", ".tox", ".nox", ".hatch", ".pixi", ".direnv", "__pypackages__"),
        *("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".pytype", ".pyre"),
        *(".cache", ".eggs", ".ipynb_checkpoints", ".idea", ".vscode", ".vs"),
        *("cdk.out", ".aws-sam", ".serverless", ".terraform", "node_modules"),
        *(".pdm-build", ".pdm-python", "_skbuild"),
        *(".DS_Store", "Thumbs.db", ".coverage"),
    }
)
#: Name prefixes of folders skipped at any depth: meson-python builds in ``.mesonpy-<random>``.
_SKIPPED_PREFIXES = (".mesonpy-",)
#: Skipped at the package's top level only (a sub-package may well be called ``build``).
TOP_LEVEL_SKIPPED = frozenset({"venv", "env", "build", "dist", "htmlcov"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
#: What hatch itself leaves out of a force-included folder (hatchling/builders/constants.py).
_HATCH_SKIPPED = frozenset(
    {"__pycache__", ".venv", ".git", ".hg", ".hatch", ".tox", ".nox", ".ruff_cache", ".pytest_cache"}
    | {".mypy_cache", ".pixi", ".DS_Store"}
)

#: A local package with more source files than this is almost surely a wrong path (a lock naming
#: "../../.." hashes a whole home folder at every synth, a link to "/" a whole disk): refused.
MAX_SOURCE_FILES = 20_000


def content_digest(data: bytes) -> str:
    """sha256 of a file's content; text (no NUL in its first 8 KiB) with CRLF read as LF."""
    if b"\0" not in data[:8192]:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


# -- walking a folder ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rules:
    """Which entries a walk leaves out: the package rule (the module's docstring) or hatch's forced one."""

    #: Real paths of folders that are other packages.
    packages: frozenset[str] = frozenset()
    #: Walk as hatch walks a force-included folder (its short list only, nothing else).
    hatch: bool = False

    def skips(self, name: str, *, folder: bool, top: bool) -> bool:
        if self.hatch:
            return name in _HATCH_SKIPPED
        return (
            name in SKIPPED_ANYWHERE
            or name.endswith(_SKIPPED_SUFFIXES)
            or (folder and top and name in TOP_LEVEL_SKIPPED)
            or (not folder and name.startswith(".coverage."))
            or (folder and name.startswith(_SKIPPED_PREFIXES))
        )

    def skips_folder(self, folder: str, names: set[str]) -> bool:
        """A folder (not the walk's start) that is a cache, a virtual environment or a CDK cloud
        assembly, by the files it holds."""
        if self.hatch:
            return False
        return (
            "pyvenv.cfg" in names or ("CACHEDIR.TAG" in names and _cache_tag(folder)) or _cloud_assembly(folder, names)
        )


def _cloud_assembly(folder: str, names: set[str]) -> bool:
    """A CDK synth's output: its ``manifest.json`` beside the ``cdk.out`` version file or ``tree.json``
    (files, not a ``cdk.out`` folder beside some other manifest). The staged assets in it are previous
    synths' layers: hashing them would give each synth a new asset hash. No file is read."""
    if "manifest.json" not in names or not names & {"cdk.out", "tree.json"}:
        return False
    files = [name for name in ("manifest.json", "cdk.out", "tree.json") if Path(folder, name).is_file()]
    return "manifest.json" in files and len(files) > 1


def _cache_tag(folder: str) -> bool:
    try:
        with Path(folder, "CACHEDIR.TAG").open("rb") as handle:
            return handle.read(len(_CACHEDIR_SIGNATURE)) == _CACHEDIR_SIGNATURE
    except OSError:
        return False


def _kind(entry: os.DirEntry[str]) -> str:
    """The entry's kind, links followed: dir, file, link (dangling or looping) or other (a socket, a pipe)."""
    try:
        if entry.is_dir():
            return "dir"
        if entry.is_file():
            return "file"
    except OSError:
        pass
    return "link" if entry.is_symlink() else "other"


def _walk(start: Path, rules: _Rules) -> Iterator[tuple[str, Path]]:
    """(path relative to ``start``, path) of every file the rules keep, linked folders followed."""
    real_start = os.path.realpath(start)
    todo: list[tuple[str, str, str, tuple[str, ...]]] = [(str(start), "", real_start, (real_start,))]
    while todo:
        folder, relative, real, chain = todo.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue  # unreadable: the backend cannot read it either
        if relative and rules.skips_folder(folder, {e.name for e in entries}):
            continue
        below = []
        for entry in entries:
            kind = _kind(entry)
            if rules.skips(entry.name, folder=kind == "dir", top=not relative):
                continue
            name = f"{relative}{entry.name}"
            if kind != "dir":
                yield from [(name, Path(entry.path))] if kind in ("file", "link") else []
                continue
            link = entry.is_symlink()
            target = os.path.realpath(entry.path) if link else str(Path(real, entry.name))
            if target in chain:
                yield from [(f"{name}/", Path(entry.path))] if link else []  # a loop: by its link text
            elif target not in rules.packages:
                below.append((entry.path, f"{name}/", target, (*chain, target)))
        todo.extend(reversed(below))


def _capped(found: Iterable[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """At most ten times the cap: enough to say how many, without walking a whole disk."""
    return list(itertools.islice(found, 10 * MAX_SOURCE_FILES + 1))


def source_files(root: Path, *, skip: Iterable[Path] = ()) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of the package's source files, sorted; ``skip``: other packages' folders."""
    rules = _Rules(packages=frozenset(os.path.realpath(p) for p in skip))
    return sorted(_capped(_walk(root, rules)))


# -- what the build configuration names besides the folder -----------------------------------------
_HATCH_MAPPINGS = ("force-include", "shared-data", "shared-scripts", "extra-metadata")


def _toml(path: Path) -> dict[str, Any]:
    """A package's pyproject.toml or hatch.toml; {} when absent or broken (its build will say why)."""
    if not path.is_file():
        return {}
    try:
        return load_toml(path, "")
    except ProjectError:
        return {}


def _strings(value: Any) -> list[str]:
    """The path strings of a setting: a string, a list of them, or the keys of a mapping."""
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, (list, dict)) else []


def _hatch_paths(data: dict[str, Any], *prefix: str) -> Iterator[tuple[str, str]]:
    for where in ((*prefix, "build"), (*prefix, "build", "targets", "wheel")):
        config = table(data, *where)
        for key in (*_HATCH_MAPPINGS, "only-include"):
            yield from ((".".join((*where, key)), p) for p in _strings(config.get(key)))
    yield from (
        (".".join((*prefix, "version", "path")), p) for p in _strings(table(data, *prefix, "version").get("path"))
    )


def _metadata_paths(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    project = table(data, "project")
    readme = project.get("readme")
    readmes = _strings(readme) if isinstance(readme, str) else _strings(table(project, "readme").get("file"))
    yield from (("project.readme", p) for p in readmes)
    yield from (("project.license", p) for p in _strings(table(project, "license").get("file")))


def _setuptools_paths(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    setuptools = table(data, "tool", "setuptools")
    package_dir = table(setuptools, "package-dir")
    yield from (("tool.setuptools.package-dir", v) for v in package_dir.values() if isinstance(v, str) and v)
    where = _strings(table(setuptools, "packages", "find").get("where"))
    yield from (("tool.setuptools.packages.find.where", p) for p in where)
    dynamic = table(setuptools, "dynamic")
    for field in dynamic:
        yield from ((f"tool.setuptools.dynamic.{field}", p) for p in _strings(table(dynamic, field).get("file")))


def _poetry_paths(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    packages = table(data, "tool", "poetry").get("packages")
    for item in packages if isinstance(packages, list) else []:
        origin = item.get("from") if isinstance(item, dict) else None
        if isinstance(origin, str) and origin:
            include = item.get("include")
            plain = isinstance(include, str) and include and not any(c in include for c in "*?[")
            yield "tool.poetry.packages.from", f"{origin}/{include}" if plain else origin


def declared_sources(root: Path) -> list[tuple[str, str, bool]]:
    """(setting, path as written, walked as hatch does) of the sources a package's build configuration names."""
    data, hatch = _toml(root / "pyproject.toml"), _toml(root / "hatch.toml")
    forced = [(s, p, True) for s, p in (*_hatch_paths(data, "tool", "hatch"), *_hatch_paths(hatch))]
    rest = [*_metadata_paths(data), *_setuptools_paths(data), *_poetry_paths(data)]
    return forced + [(s, p, False) for s, p in rest]


def _declared_files(root: Path, covered: set[str], packages: frozenset[str]) -> list[tuple[str, Path | None]]:
    """(label, path, or None where missing) of declared sources the folder's walk did not cover."""
    folders = {str(Path(p).parent) for p in covered}
    found: list[tuple[str, Path | None]] = []
    for setting, raw, hatch in declared_sources(root):
        label = f"{setting}={raw}"
        path = os.path.normpath(root / Path(os.path.normpath(raw)).expanduser())  # as hatch reads it
        if Path(path).is_file():
            found += [] if path in covered else [(label, Path(path))]
        elif not Path(path).is_dir():
            found.append((label, None))  # the build fails on it; a file appearing there is a change
        elif hatch or path not in folders:
            rules = _Rules(hatch=True) if hatch else _Rules(packages=packages)
            walked = _capped(_walk(Path(path), rules))
            found += [(f"{label}/{rel}", p) for rel, p in walked if os.path.normpath(p) not in covered]
    return found


# -- the digest -------------------------------------------------------------------------------------
def _entry_digest(path: Path | None) -> str:
    if path is None:
        return "missing"
    if path.is_symlink() and not path.is_file():
        return "link:" + str(path.readlink())
    return content_digest(path.read_bytes())


def _refuse_wide(root: Path, count: int) -> None:
    if count > MAX_SOURCE_FILES:
        shown = f"{count}" if count <= 10 * MAX_SOURCE_FILES else f"more than {10 * MAX_SOURCE_FILES}"
        raise ProjectError(
            f"The local package at {root} has {shown} source files (more than {MAX_SOURCE_FILES}): is the "
            "path in the lock or requirements file right, and does no link in it lead to a large folder? "
            "A local package is one project's folder."
        )


def tree_digest(root: Path, *, skip: Iterable[Path] = ()) -> str:
    """One digest for a local package: its sources (see the module's rule), or an archive's bytes.

    ``skip``: folders of the other packages (local packages of the layer, uv workspace members),
    left out where they sit inside this one.
    """
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    packages = frozenset(os.path.realpath(p) for p in skip) - {os.path.realpath(root)}
    files = source_files(root, skip=packages)
    _refuse_wide(root, len(files))
    declared = _declared_files(root, {os.path.normpath(p) for _, p in files}, packages)
    _refuse_wide(root, len(files) + len(declared))
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(f"{relative}\0{_entry_digest(path)}\n".encode())
    if declared:  # a line no file gives (file lines start with a name), so the two parts never mix
        digest.update(b"\0declared\n")
    for label, source in sorted(declared, key=lambda item: item[0]):
        digest.update(f"{label}\0{_entry_digest(source)}\n".encode())
    return digest.hexdigest()
