"""Build settings a project declares for its packages: which must be built from source.

uv reads ``no-binary = true`` / ``no-binary-package = [...]`` from ``[tool.uv]`` (or ``uv.toml``)
of the workspace root; pip reads ``--no-binary`` lines in requirements files. The lock then still
lists the version's wheels, so the plan must honour the setting itself: such a package is built
from its source distribution, which only the build image can do for the runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .pyproject import load_toml, read_pyproject, table

#: "every package" (no-binary = true / --no-binary :all:)
ALL = "*"


def _names(value: Any) -> set[str]:
    return {canonicalize_name(v) for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _from_uv_table(uv: dict[str, Any]) -> set[str]:
    found = _names(uv.get("no-binary-package"))
    if uv.get("no-binary") is True:
        found.add(ALL)
    return found


def uv_source_only(anchor: Path) -> frozenset[str]:
    """Packages the uv project at ``anchor`` (its workspace root) wants built from source."""
    found: set[str] = set()
    if (anchor / "pyproject.toml").is_file():
        found |= _from_uv_table(table(read_pyproject(anchor / "pyproject.toml", strict=False), "tool", "uv"))
    if (anchor / "uv.toml").is_file():
        found |= _from_uv_table(load_toml(anchor / "uv.toml", "Fix its syntax."))
    return frozenset(found)


def requirements_source_only(texts: list[str]) -> frozenset[str]:
    """``--no-binary NAME[,NAME]`` (or ``:all:``) lines of requirements files."""
    found: set[str] = set()
    for text in texts:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            for index, word in enumerate(words):
                value = word.split("=", 1)[1] if word.startswith("--no-binary=") else None
                if word == "--no-binary" and index + 1 < len(words):
                    value = words[index + 1]
                for name in (value or "").split(","):
                    if name == ":all:":
                        found.add(ALL)
                    elif name and name != ":none:":
                        found.add(canonicalize_name(name))
    return frozenset(found)
