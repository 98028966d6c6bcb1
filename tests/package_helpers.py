"""Test support: small local packages (hatchling, src layout) whose __init__ runs what a test needs."""

from __future__ import annotations

from pathlib import Path

HATCHLING = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def hatch_package(folder: Path, name: str, init: str = "", *, version: str = "0.1.0") -> Path:
    """Write the package ``name`` into ``folder`` (pyproject.toml, src/<module>/__init__.py); return the folder."""
    module = name.replace("-", "_")
    (folder / "src" / module).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "{version}"\n' + HATCHLING)
    (folder / "src" / module / "__init__.py").write_text(init)
    return folder
