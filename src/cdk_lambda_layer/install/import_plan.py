"""Which modules the import check imports, in which order, and in which jobs (install/import_check.py).

The modules are the importable top-level names the distributions' RECORD files list; each distribution's come
after those of the distributions it requires (``dependency_order``), so that a module's import time is what it
adds to its dependencies; the jobs (``groups``) are one per distribution no other one requires, with all it needs.

Standard library only: the import check loads this file by its path, on the host and in the build image.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

#: Top-level names that are not importable modules of the package (tests, docs, vendored libraries).
NOT_MODULES = frozenset({"test", "tests", "testing", "docs", "doc", "examples", "example", "benchmarks", "scripts"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: The name at the start of a Requires-Dist value (PEP 508).
_IDENTIFIER_START = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level(entry: str) -> str | None:
    first, _, rest = entry.partition("/")
    if first.endswith((".dist-info", ".data", ".libs", ".pth")) or first in ("bin", "__pycache__", ".."):
        return None
    name = first if rest else (first[:-3] if first.endswith(".py") else first.split(".")[0] if ".so" in first else "")
    if not name or not _IDENTIFIER.fullmatch(name) or name in NOT_MODULES:
        return None
    return name


def top_level_modules(site: Path, distributions: dict[str, tuple[set[str], set[str]]] | None = None) -> list[str]:
    """Every importable top-level name the distributions' RECORD files list (``distributions``: read_distributions,
    read already), each looked for in the folder once."""
    named = {m for owned, _requires in (distributions or read_distributions(site)).values() for m in owned}
    present = {entry.name.partition(".")[0] if entry.is_file() else entry.name for entry in os.scandir(site)}
    return sorted(named & present)


def read_distributions(site: Path) -> dict[str, tuple[set[str], set[str]]]:
    """canonical distribution name -> (its top-level modules, the distributions it requires)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for dist_info in sorted(site.glob("*.dist-info")):
        name, requires = dist_info.name[: -len(".dist-info")].split("-")[0], set()
        metadata = dist_info / "METADATA"
        if metadata.is_file():
            for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
                if not line:
                    break  # the headers end at the first empty line; a blank one that is not empty continues
                    # a folded header (scipy's License): stopping there lost every Requires-Dist after it
                key, _, value = line.partition(":")
                if key.lower() == "name":
                    name = value.strip()
                elif key.lower() == "requires-dist" and (match := _IDENTIFIER_START.match(value.strip())):
                    requires.add(_normal(match.group(0)))
        modules = {m for m in (_top_level(row[0]) for row in _rows(dist_info)) if m}
        found[_normal(name)] = (modules, requires)
    return found


def groups(
    site: Path,
    modules: Sequence[str],
    sizes: dict[str, tuple[int, ...]] | None = None,
    distributions: dict[str, tuple[set[str], set[str]]] | None = None,
) -> list[list[str]]:
    """``modules`` (in dependency order) as the workers' jobs: one per distribution no other one requires (what
    the layer is for), with its modules and those of all it needs, in the order given (see the module's
    docstring). Jobs that shared a dependency used to go to one worker, so one job held most of a layer.
    Distributions only a cycle reaches, and modules of no distribution, are jobs of their own. Largest (bytes
    on disk, from ``sizes``: a snapshot of the layer) first, the order workers take them in."""
    distributions = read_distributions(site) if distributions is None else distributions
    needs = {name: requires & distributions.keys() for name, (_owned, requires) in distributions.items()}
    needed = {n for requires in needs.values() for n in requires}
    jobs: dict[str, set[str]] = {}
    covered: set[str] = set()
    for name in [*sorted(set(distributions) - needed), *sorted(needed)]:  # roots first, then what no root reaches
        if name not in covered:
            jobs[name] = _closure(name, needs)
            covered |= jobs[name]
    owner = {m: d for d, (owned, _req) in sorted(distributions.items()) for m in sorted(owned)}
    parts = {name: [m for m in modules if owner.get(m) in closure] for name, closure in jobs.items()}
    parts.update({f"module {m}": [m] for m in modules if m not in owner})
    totals = _module_sizes(sizes or {})
    weight = {name: sum(totals.get(m, 0) for m in members) for name, members in parts.items()}
    return [parts[name] for name in sorted(parts, key=lambda c: (-weight[c], c)) if parts[name]]


def _closure(name: str, needs: dict[str, set[str]]) -> set[str]:
    """``name`` and every distribution it requires, directly or not."""
    found, pending = {name}, [name]
    while pending:
        for needed in needs[pending.pop()] - found:
            found.add(needed)
            pending.append(needed)
    return found


def _module_sizes(sizes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """top-level name -> the bytes of its folder's files, or of its single file, in a snapshot."""
    totals: dict[str, int] = {}
    for path, info in sizes.items():
        first, slash, _rest = path.partition("/")
        name = first if slash else first.partition(".")[0]
        totals[name] = totals.get(name, 0) + info[1]
    return totals


def _rows(dist_info: Path) -> list[list[str]]:
    record = dist_info / "RECORD"
    if not record.is_file():
        return []
    with record.open(newline="") as handle:
        return [row for row in csv.reader(handle) if row]


def dependency_order(
    site: Path, modules: Sequence[str], distributions: dict[str, tuple[set[str], set[str]]] | None = None
) -> list[str]:
    """``modules`` with each distribution's modules after those of the distributions it requires (ties,
    cycles and modules of no distribution by name): timed one after another in one process, each
    module's time is then what it adds to its dependencies, and the times add up to the whole layer's."""
    distributions = read_distributions(site) if distributions is None else distributions
    owner = {m: d for d, (owned, _req) in sorted(distributions.items()) for m in sorted(owned)}
    placed: list[str] = []
    done: set[str] = set()

    def visit(dist: str, path: tuple[str, ...]) -> None:
        if dist in done or dist in path or dist not in distributions:
            return
        for needed in sorted(distributions[dist][1]):
            visit(needed, (*path, dist))
        done.add(dist)
        placed.extend(sorted(m for m in distributions[dist][0] if m in wanted))

    wanted = set(modules)
    for module in sorted(modules):
        if module in owner:
            visit(owner[module], ())
    return [*placed, *sorted(m for m in wanted if m not in placed)]
