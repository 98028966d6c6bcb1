"""Whether a pip project's requirements pin everything the layer gets.

uv.lock and poetry.lock pin the whole closure; a requirements.txt only does when it was compiled
(``uv pip compile``, ``pip-compile``, ``uv export``), and ``[project].dependencies`` usually do not.
What is not pinned is resolved when the layer is built: the same files (the same fingerprint) then
give another layer after a release on the index, and the layer cache and CDK keep the first one.
That is not an error (many projects work this way), but the build says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .project.local import logical_lines


def exact_pins(texts: Iterable[str]) -> set[str]:
    """Canonical names that requirements or constraints text pins with ``==``/``===`` to one version."""
    pinned: set[str] = set()
    for text in texts:
        for line in logical_lines(text):
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            exact = [s for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
            if exact or requirement.url:
                pinned.add(canonicalize_name(requirement.name))
    return pinned


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
