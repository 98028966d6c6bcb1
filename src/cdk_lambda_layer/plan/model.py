"""What a plan holds: pins from an index (with the file the target's installer takes), local packages,
refusals, and the plan itself. Decided by wheels.py, shaped by shape.py, installed by install/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Channel = Literal["uv", "pip", "image"]


#: Index URLs that mean "the installer's configured index" (PyPI or its mirror).
DEFAULT_INDEXES = frozenset({"https://pypi.org/simple", "https://pypi.org/simple/"})


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One package from an index, at the locked version, with every hash the lock has for it."""

    name: str
    version: str
    hashes: tuple[str, ...]
    #: The file the target's installer will take (None: built from its sdist in the image).
    wheel: str | None
    channel: Channel
    index: str | None = None
    #: The hashes of that one file (the sdist's when ``wheel`` is None), where the lock says whose they are.
    file_hashes: tuple[str, ...] = ()

    def requirement(self, *, exact: bool = False) -> str:
        """``name==version --hash=...`` for a requirements file.

        ``exact``: allow only the planned file's hashes. pip (and uv) consider only files whose hash
        is allowed, so a build image whose own platform is newer than the runtime's (a glibc above the
        runtime's, say) installs the wheel planned for the runtime, or builds the planned sdist,
        instead of the wheel that fits the image best.
        """
        hashes = "".join(f" --hash={h}" for h in (self.file_hashes if exact and self.file_hashes else self.hashes))
        return f"{self.name}=={self.version}{hashes}"


@dataclass(frozen=True, kw_only=True)
class LocalPin:
    """A package from disk: a project folder (built into a wheel) or a wheel or sdist file."""

    name: str
    path: Path
    #: The version the lock (or the resolution) expects of it, where it records one.
    version: str = ""


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """A package without a wheel for the target, and why."""

    name: str
    version: str
    reason: str
    #: A source distribution exists, so the build image could compile it.
    buildable: bool


@dataclass(frozen=True, kw_only=True)
class InstallPlan:
    pins: tuple[Pin, ...]
    local: tuple[LocalPin, ...]
    #: Index URLs the lock records besides the default one (PyPI or the configured mirror).
    indexes: tuple[str, ...] = ()
    #: What the build should say about the plan (a choice that depends on the runtime's patch level).
    warnings: tuple[str, ...] = ()

    def channel(self, name: Channel) -> tuple[Pin, ...]:
        return tuple(p for p in self.pins if p.channel == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted([p.name for p in self.pins] + [p.name for p in self.local]))
