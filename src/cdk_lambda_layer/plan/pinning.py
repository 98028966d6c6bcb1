"""Whether a pip project's requirements pin everything the layer gets.

uv.lock and poetry.lock pin the whole closure; a requirements.txt only does when it was compiled
(``uv pip compile``, ``pip-compile``, ``uv export``), and ``[project].dependencies`` usually do not.
What is not pinned is resolved when the layer is built: the same files (the same fingerprint) then
give another layer after a release on the index, and the layer cache and CDK keep the first one.
That is not an error (many projects work this way), but the build says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..project.requirements import logical_lines, requirement_path

_HASH = re.compile(r"--hash[=\s]+(\S+)")
#: Where a requirement line's per-requirement options (``--hash``, ``--config-settings``) begin.
_OPTIONS = re.compile(r"\s+--?[a-z]")


def _requirement_part(line: str) -> str:
    """The requirement itself, without the options written after it."""
    return _OPTIONS.split(line, maxsplit=1)[0]


def _requirements(texts: Iterable[str]) -> Iterator[tuple[Requirement, frozenset[str]]]:
    """Each requirement line of the texts, with the ``--hash`` values written after it."""
    for text in texts:
        for line in logical_lines(text):
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(_requirement_part(line))
            except InvalidRequirement:
                continue
            yield requirement, frozenset(_HASH.findall(line))


def exact_pins(texts: Iterable[str]) -> set[str]:
    """Canonical names that requirements or constraints text pins with ``==``/``===`` to one version."""
    pinned: set[str] = set()
    for requirement, _hashes in _requirements(texts):
        exact = [s for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if exact or requirement.url:
            pinned.add(canonicalize_name(requirement.name))
    return pinned


def pinned_file_hashes(texts: Iterable[str], base: Path) -> dict[Path, frozenset[str]]:
    """Resolved path -> hashes of the local archives requirements pin by hash (``./x.whl --hash=…``,
    ``name @ file:///…/x.whl --hash=…``); paths resolve against ``base``, the project folder."""
    found: dict[Path, frozenset[str]] = {}
    for text in texts:
        for line in logical_lines(text):
            hashes = frozenset(_HASH.findall(line))
            if not hashes or line.startswith("-"):
                continue
            path = requirement_path(_requirement_part(line), base)
            if path is not None:
                found[path.resolve()] = found.get(path.resolve(), frozenset()) | hashes
    return found


def file_digest(path: Path, algorithm: str) -> str:
    """``algorithm:hexdigest`` of a file, as requirements write hashes."""
    return f"{algorithm}:{hashlib.new(algorithm, path.read_bytes()).hexdigest()}"


def pinned_hashes(texts: Iterable[str]) -> dict[str, frozenset[str]]:
    """Canonical name -> the hashes the requirements allow for it (``name==1.0 --hash=sha256:…``).

    These are the user's own pins: a resolver that reads the requirements again (``uv pip compile``)
    records the hashes of the files the index serves today, so they must be held to these.
    """
    found: dict[str, frozenset[str]] = {}
    for requirement, hashes in _requirements(texts):
        if hashes:
            name = canonicalize_name(requirement.name)
            found[name] = found.get(name, frozenset()) | hashes
    return found


def unpinned(closure: Iterable[str], texts: Iterable[str]) -> list[str]:
    """The packages of ``closure`` that the requirements do not pin exactly, sorted."""
    pinned = exact_pins(texts)
    return sorted({canonicalize_name(n) for n in closure} - pinned)


def unpinned_warning(names: list[str], source: str) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"{source} does not pin every package the layer gets ({shown}): they are resolved when the layer is "
        "built, so the same inputs can give another layer after a new release (and the layer cache keeps the "
        "first). Pin them for a reproducible layer: `uv pip compile pyproject.toml -o requirements.txt`"
    )
