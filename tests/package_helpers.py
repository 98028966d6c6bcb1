"""Test support: small local packages (hatchling, src layout) whose __init__ runs what a test needs,
projects that install one, and reading a file back from a layer's zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

HATCHLING = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
#: The pyproject.toml of a service whose requirements.txt a test writes.
SVC = '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'


def hatch_package(folder: Path, name: str, init: str = "", *, version: str = "0.1.0") -> Path:
    """Write the package ``name`` into ``folder`` (pyproject.toml, src/<module>/__init__.py); return the folder."""
    module = name.replace("-", "_")
    (folder / "src" / module).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "{version}"\n' + HATCHLING)
    (folder / "src" / module / "__init__.py").write_text(init)
    return folder


def local_package_project(root: Path, init_py: str, *, name: str = "evilpkg", extra: str = "") -> Path:
    """A pip project whose requirements are ``extra`` plus a pure-Python local package running ``init_py``."""
    hatch_package(root / "pkg", name, init_py)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (root / "requirements.txt").write_text(f"{extra}./pkg\n")
    return root


def unzipped(layer_zip: Path, name: str) -> bytes:
    """The bytes of ``name`` in the zip ``layer_zip``."""
    with zipfile.ZipFile(layer_zip) as archive:
        return archive.read(name)
