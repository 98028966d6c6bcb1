"""The sources of a local package, as the fingerprint sees them.

A workspace library or path dependency goes into the layer as the wheel its build backend
makes from its folder, so a change to what the backend reads must change the layer's
fingerprint, and nothing else should. Reading each backend's include rules (or asking
git) would need a process, and the fingerprint is computed at construct time, so the
rule is simple and deliberately wide:

**every regular file under the package's folder**, except
- folders that are never part of a wheel: every hidden folder (version control, ``.venv``,
  ``.pytest_cache``…), ``__pycache__`` and ``*.egg-info`` anywhere, and at the package's top
  level virtual environments (``venv``, ``env``), build outputs (``build``, ``dist``,
  ``cdk.out``), ``htmlcov`` and ``node_modules``;
- hidden files and compiled bytecode (``*.pyc``);
- nested projects (a sub-folder with its own ``pyproject.toml``: a workspace root that is
  itself a package does not absorb its members; each member counts on its own when the
  layer holds it).

A file is identified by its path relative to the package folder (POSIX separators) and
its content; text files hash with CRLF read as LF, so a Windows checkout agrees. A file
reached through a link is hashed by content; a linked folder by its link text (never
walked, so a link cannot loop or pull in a whole disk). Wider than the backend's own
selection means an edit to, say, a README in the library rebuilds the layer; it never
means a changed file that reaches the layer goes unnoticed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import ProjectError

#: Skipped at the package's top level only (a sub-package may well be called ``build``).
TOP_LEVEL_SKIPPED = frozenset({"venv", "env", "node_modules", "build", "dist", "cdk.out", "htmlcov"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


def content_digest(data: bytes) -> str:
    """sha256 of a file's content; text (no NUL in its first 8 KiB) with CRLF read as LF."""
    if b"\0" not in data[:8192]:
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def _skip_folder(folder: Path, name: str, *, top: bool) -> bool:
    return (
        name.startswith(".")
        or name == "__pycache__"
        or (top and name in TOP_LEVEL_SKIPPED)
        or name.endswith(_SKIPPED_SUFFIXES)
        or (folder / name / "pyproject.toml").is_file()
    )


def source_files(root: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of the package's source files, sorted."""
    found: list[tuple[str, Path]] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _skip_folder(here, d, top=here == root))
        for name in names:
            if name.startswith(".") or name.endswith(_SKIPPED_SUFFIXES):
                continue
            path = here / name
            found.append((path.relative_to(root).as_posix(), path))
        found += [(f"{(here / d).relative_to(root).as_posix()}/", here / d) for d in dirs if (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
    return sorted(found)


def _entry_digest(path: Path) -> str:
    if path.is_symlink() and (path.is_dir() or not path.exists()):
        return "link:" + str(path.readlink())
    return content_digest(path.read_bytes())


#: A local package with more source files than this is almost surely a wrong path (a lock naming
#: "../../.." hashes a whole home folder at every synth): refused with a message instead.
MAX_SOURCE_FILES = 20_000


def tree_digest(root: Path) -> str:
    """One digest for a local package: its folder's sources (see the module's rule), or an archive's bytes."""
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    files = source_files(root)
    if len(files) > MAX_SOURCE_FILES:
        raise ProjectError(
            f"The local package at {root} has {len(files)} source files (more than {MAX_SOURCE_FILES}): is the "
            "path in the lock or requirements file right? A local package is one project's folder."
        )
    digest = hashlib.sha256()
    for relative, path in files:
        digest.update(f"{relative}\0{_entry_digest(path)}\n".encode())
    return digest.hexdigest()
