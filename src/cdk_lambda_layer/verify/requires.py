"""Every installed distribution's requirements, met in the layer for the target.

A layer can install cleanly and still fail at import: a requirement whose marker holds on
the runtime but not on the build host was left out (``anyio`` needs ``exceptiongroup`` on
Python 3.10), or a package the user excluded is still needed by one that stays
(``pydantic`` without ``pydantic-core``). So each distribution's ``Requires-Dist`` is read
(importlib.metadata), its markers evaluated for the target (packaging.markers) and each
requirement that applies must be installed at a version that satisfies it. What the user
leaves out on purpose passes: packages the Lambda runtime provides (AWS_RUNTIME_PACKAGES)
when excluded, and every package named in ``provided``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PathDistribution

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import VerificationError
from ..install.inventory import InstalledPackage
from ..options import AWS_RUNTIME_PACKAGES, LayerOptions
from ..target import LambdaTarget

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unmet:
    package: InstalledPackage
    requirement: Requirement
    found: str | None  # the installed version, or None when absent

    def describe(self, target: LambdaTarget, options: LayerOptions) -> str:
        need = f"{self.package.name} {self.package.version} requires {self.requirement}"
        name = canonicalize_name(self.requirement.name)
        if self.found is None:
            why = " (you excluded it)" if name in options.exclude else ""
            return f"{need} on {target.runtime_name}, which is not in the layer{why}"
        return f"{need}, but the layer has {self.requirement.name} {self.found}"


def _applies(requirement: Requirement, environment: dict[str, str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate(environment)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _requirements(package: InstalledPackage) -> list[Requirement]:
    found = []
    for text in PathDistribution(package.dist_info).requires or ():
        try:
            found.append(Requirement(text))
        except InvalidRequirement:
            logger.warning("%s lists an unreadable requirement %r; not checked", package.name, text)
    return found


def unmet_requirements(packages: list[InstalledPackage], target: LambdaTarget, options: LayerOptions) -> list[Unmet]:
    """Every requirement that applies on the target and is not met, extras included: a package asked
    for as ``requests[socks]`` must bring what its ``socks`` extra requires (PySocks), transitively."""
    environment = target.marker_environment()
    installed = {canonicalize_name(p.name): p for p in packages}
    trusted = set(options.provided) | (set(options.exclude) & set(AWS_RUNTIME_PACKAGES))
    unmet: list[Unmet] = []
    todo = [(p, "") for p in packages]  # (package, extra it is asked for with; "" = its base requirements)
    seen: set[tuple[str, str]] = set()
    while todo:
        package, extra = todo.pop()
        if (canonicalize_name(package.name), extra) in seen:
            continue
        seen.add((canonicalize_name(package.name), extra))
        for requirement in _requirements(package):
            name = canonicalize_name(requirement.name)
            if not _applies(requirement, {**environment, "extra": extra}) or name in trusted:
                continue
            if extra and _applies(requirement, {**environment, "extra": ""}):
                continue  # a base requirement: checked in the package's own pass
            have = installed.get(name)
            if have is None:
                unmet.append(Unmet(package, requirement, None))
                continue
            if requirement.specifier and not requirement.specifier.contains(have.version, prereleases=True):
                unmet.append(Unmet(package, requirement, have.version))
            todo += [(have, canonicalize_name(e)) for e in requirement.extras]
    return unmet


def check_requirements(packages: list[InstalledPackage], target: LambdaTarget, options: LayerOptions) -> None:
    unmet = unmet_requirements(packages, target, options)
    if not unmet:
        return
    lines = "\n".join(f"  - {u.describe(target, options)}" for u in unmet)
    excluded = sorted({canonicalize_name(u.requirement.name) for u in unmet} & set(options.exclude))
    ways = ["lock again (the lock does not pin what these packages need on this runtime)"]
    if excluded:
        ways.insert(
            0,
            f"stop excluding {', '.join(excluded)}, or, if another layer or the function provides "
            f"it, say so with provided=[{', '.join(repr(e) for e in excluded)}] / --provided NAME",
        )
    raise VerificationError(
        f"The layer would fail at import on {target.runtime_name}: requirements of installed packages are "
        f"missing or at the wrong version:\n{lines}\nWays out: " + "; or ".join(ways) + "."
    )
