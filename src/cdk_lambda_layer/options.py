"""What the user chose beyond the project and the target: groups, extras, exclusions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

Installer = Literal["uv", "pip"]

#: Lambda's limit for a function plus all its layers, unzipped (250 MB).
#: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

#: Packages every Python runtime already ships. Not excluded by default (the runtime's
#: copies lag PyPI); pass ``exclude=AWS_RUNTIME_PACKAGES`` to save ~25 MB.
AWS_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({str(v).strip() for v in values if str(v).strip()}))


@dataclass(frozen=True, kw_only=True)
class LayerOptions:
    """Choices that, with the project and target, determine the layer."""

    #: Dependency groups to add to the main dependencies (dev groups stay out by default).
    groups: tuple[str, ...] = ()
    #: Optional-dependency extras of the project to include.
    extras: tuple[str, ...] = ()
    #: Distributions removed from the layer (PyPI names, any spelling).
    exclude: tuple[str, ...] = ()
    #: Who installs: uv (default, resolves for the target from any host) or pip.
    installer: Installer = "uv"
    #: Fail when the lock is out of date with pyproject.toml (uv --locked, poetry check --lock).
    locked: bool = True
    #: Largest unzipped layer accepted; Lambda's limit by default.
    max_unzipped_bytes: int = LAMBDA_UNZIPPED_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", _names(self.groups))
        object.__setattr__(self, "extras", _names(self.extras))
        excluded = {canonicalize_name(n) for n in _names(self.exclude)}
        object.__setattr__(self, "exclude", tuple(sorted(excluded)))
        if self.installer not in ("uv", "pip"):
            from .errors import ProjectError

            raise ProjectError(f"Unknown installer {self.installer!r}: use 'uv' or 'pip'.")
