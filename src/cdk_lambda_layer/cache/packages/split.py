"""Which files of an installed, trimmed and compiled tree belong to which distribution.

A distribution's files are those its RECORD names that are there (inside the tree), everything in
its ``.dist-info`` folder, and the ``.pyc`` the bytecode step wrote for its ``.py`` files
(``__pycache__/<stem>.<tag>.pyc`` beside each). A file no distribution claims (something an
installer or a package's install step left) cannot be put back from the package cache, so a tree
that has one is not split at all (``unowned``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...install.inventory import InstalledPackage, installed_packages, normalize


@dataclass(frozen=True)
class Split:
    #: canonical distribution name -> its files (relative to the tree, sorted)
    owned: dict[str, tuple[str, ...]]
    #: files no distribution claims
    unowned: tuple[str, ...]


def _pyc_index(present: set[str]) -> dict[tuple[str, str], list[str]]:
    """(folder of the source, module stem) -> the .pyc in that folder's __pycache__."""
    index: dict[tuple[str, str], list[str]] = {}
    for name in present:
        folder, _, file = name.rpartition("/")
        if file.endswith(".pyc") and (folder == "__pycache__" or folder.endswith("/__pycache__")):
            source_folder = folder[: -len("__pycache__")].rstrip("/")
            stem = file[:-4].rpartition(".")[0]  # mod.cpython-312.pyc -> mod
            index.setdefault((source_folder, stem), []).append(name)
    return index


def split_tree(site: Path, files: list[tuple[Path, int]], packages: list[InstalledPackage] | None = None) -> Split:
    """Each distribution's files in ``site`` (``files``: a walk of it, walk_files; ``packages``: its
    installed_packages from that walk, when the caller has them)."""
    relative = _relative_to(site)
    present = {relative(path) for path, _size in files}
    pycs = _pyc_index(present)
    by_top: dict[str, list[str]] = {}
    for name in present:
        by_top.setdefault(name.partition("/")[0], []).append(name)
    owned: dict[str, tuple[str, ...]] = {}
    for package in installed_packages(site, files) if packages is None else packages:
        names = {relative(path) for path in package.files}
        names.update(by_top.get(package.dist_info.name, ()))
        for name in [n for n in names if n.endswith(".py")]:
            folder, _, file = name.rpartition("/")
            names.update(pycs.get((folder, file[:-3]), ()))
        owned[normalize(package.name)] = tuple(sorted(names & present))
    claimed = set().union(*owned.values()) if owned else set()
    return Split(owned=owned, unowned=tuple(sorted(present - claimed)))


def _relative_to(site: Path) -> Callable[[Path], str]:
    """A path under ``site`` (spelled as the walk and the inventory spell it, from ``site``) -> its name
    relative to it, with '/': cut from the string (relpath per file cost 0.15 s on a large layer)."""
    root = os.path.normpath(site)
    spelled = os.fspath(site).rstrip(os.sep) + os.sep

    def relative(path: Path) -> str:
        text = os.fspath(path)
        if text.startswith(spelled) and os.sep == "/":
            return text[len(spelled) :]
        return os.path.relpath(text, root).replace(os.sep, "/")

    return relative
