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
    """What ``--no-binary`` / ``--only-binary`` lines of requirements files leave source-only, in pip's terms.

    pip applies them in order (``FormatControl``): ``:all:`` clears both lists, a name moves from one
    list to the other, ``:none:`` clears the list it is given. A package is then built from source when
    it is in the no-binary list, or when that list holds ``:all:`` and the only-binary list does not
    name it. Returned as names, with "*" for ``:all:`` and "!name" for each exception to it.
    """
    no_binary: set[str] = set()
    only_binary: set[str] = set()
    for option, value in _format_options(texts):
        target, other = (no_binary, only_binary) if option == "--no-binary" else (only_binary, no_binary)
        for name in value.split(","):
            if name == ":all:":
                target.clear()
                other.clear()
                target.add(":all:")
            elif name == ":none:":
                target.clear()
            elif name:
                other.discard(canonicalize_name(name))
                target.add(canonicalize_name(name))
    found = {n for n in no_binary if n != ":all:"}
    if ":all:" in no_binary:
        found |= {ALL, *(f"!{n}" for n in only_binary if n != ":all:")}
    return frozenset(found)


def _format_options(texts: list[str]) -> list[tuple[str, str]]:
    """(option, value) of every ``--no-binary``/``--only-binary`` in the texts, in order."""
    found = []
    for text in texts:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            for index, word in enumerate(words):
                for option in ("--no-binary", "--only-binary"):
                    if word.startswith(option + "="):
                        found.append((option, word.split("=", 1)[1]))
                    elif word == option and index + 1 < len(words):
                        found.append((option, words[index + 1]))
    return found


def poetry_source_only(root: Path) -> frozenset[str]:
    """Poetry's ``installer.no-binary`` in the project's poetry.toml (``:all:``/true, a list or a
    comma-separated string of names; ``:none:``/false: none)."""
    config = root / "poetry.toml"
    if not config.is_file():
        return frozenset()
    value = table(load_toml(config, "Fix its syntax."), "installer").get("no-binary")
    if value is True or value == ":all:":
        return frozenset({ALL})
    names = value if isinstance(value, list) else str(value or "").split(",")
    kept = [n.strip() for n in names if isinstance(n, str) and n.strip() not in ("", ":none:", "False")]
    return frozenset(canonicalize_name(n) for n in kept)
