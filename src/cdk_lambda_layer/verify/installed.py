"""The layer holds exactly what the plan pinned: every package at its locked version, nothing else.

The installers get exact pins with ``--no-deps``, but an installer can still be steered by its own
configuration (a ``uv.toml`` ``[pip]`` section, ``pip.conf``, a variable the environment filter does
not know): an override that swaps a version, a constraint, a dependency pulled in anyway. None of
that is in the fingerprint, so a layer built that way would be cached and served as the locked one.
Comparing what is installed with what was planned closes that door whatever the cause.
"""

from __future__ import annotations

from collections.abc import Mapping

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import VerificationError
from ..install.inventory import InstalledPackage


def _same(one: str, other: str) -> bool:
    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return one == other


def check_installed(packages: list[InstalledPackage], expected: Mapping[str, str]) -> None:
    """Raise unless ``packages`` are exactly ``expected`` (canonical name -> version; "" = any version)."""
    installed = {canonicalize_name(p.name): p.version for p in packages}
    wanted = {canonicalize_name(name): version for name, version in expected.items()}
    extra, missing = sorted(set(installed) - set(wanted)), sorted(set(wanted) - set(installed))
    problems = [f"{name} {installed[name]} is not in the plan" for name in extra]
    problems += [f"{name} {wanted[name]} was planned but is not installed" for name in missing]
    problems += [
        f"{name} {installed[name]} is installed, the lock pins {wanted[name]}"
        for name in sorted(set(wanted) & set(installed))
        if wanted[name] and not _same(installed[name], wanted[name])
    ]
    if problems:
        raise VerificationError(
            "The layer does not hold exactly what the lock pins:\n"
            + "\n".join(f"  - {line}" for line in problems)
            + "\nThe installer was steered by a setting of its own (a uv.toml [pip] section, pip.conf, an "
            "installer variable such as UV_OVERRIDE or PIP_CONSTRAINT): remove it, or lock what you want. "
            "Nothing was published."
        )
