"""What the user chose beyond the project and the target: groups, extras, exclusions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from .errors import ProjectError

Installer = Literal["uv", "pip"]
#: Whether the layer carries compiled bytecode: "auto" where an interpreter of the target's
#: version is at hand, True (fail without one), False (none).
Bytecode = Literal["auto"] | bool
#: PEP 552 hash-based .pyc: "unchecked-hash" (the runtime never reads the source to check)
#: or "checked-hash" (it hashes the source on import, still valid on a read-only /opt).
Invalidation = Literal["unchecked-hash", "checked-hash"]

#: Lambda's limit for a function plus all its layers, unzipped (250 MB).
#: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024

#: Packages every Python runtime already ships. Not excluded by default (the runtime's
#: copies lag PyPI); pass ``exclude=AWS_RUNTIME_PACKAGES`` to save ~25 MB.
AWS_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer")


def name_list(values: Iterable[str] | str, what: str) -> tuple[str, ...]:
    """The names given for ``what`` (groups, extras, exclude, provided): a list, never a bare string,
    which would be read letter by letter (``groups="dev"`` as d, e, v)."""
    if isinstance(values, str):
        raise ProjectError(f"{what} takes a list of names, got the string {values!r}: write {what}=[{values!r}].")
    return tuple(values)


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({str(v).strip() for v in values if str(v).strip()}))


@dataclass(frozen=True, kw_only=True)
class LayerOptions:
    """Choices that, with the project and target, determine the layer."""

    #: Dependency groups to add to the main dependencies (dev groups stay out by default).
    groups: tuple[str, ...] = ()
    #: Optional-dependency extras of the project to include.
    extras: tuple[str, ...] = ()
    #: Distributions left out of the layer (PyPI names, any spelling). Each must be among the
    #: layer's packages, and none may be required by a package that stays, except those the
    #: Lambda runtime provides (AWS_RUNTIME_PACKAGES) and those named in ``provided``.
    exclude: tuple[str, ...] = ()
    #: Distributions something else puts on sys.path at run time (another layer, the function's
    #: own package): left out like ``exclude``, and trusted to satisfy the packages that need them.
    provided: tuple[str, ...] = ()
    #: Put the project's own package into its layer (teams that ship shared code as the layer).
    include_project: bool = False
    #: Compile the layer's modules to hash-based .pyc for the target's Python (see bytecode.py).
    bytecode: Bytecode = "auto"
    #: How the .pyc files are validated by the runtime.
    invalidation: Invalidation = "unchecked-hash"
    #: Import every top-level module of the layer with the target's Python, where one can run.
    import_check: bool = True
    #: Who installs: uv (default, resolves for the target from any host) or pip.
    installer: Installer = "uv"
    #: Fail when the lock is out of date with pyproject.toml (uv --locked, poetry check --lock).
    locked: bool = True
    #: Largest unzipped layer accepted; Lambda's limit by default.
    max_unzipped_bytes: int = LAMBDA_UNZIPPED_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", _names(self.groups))
        object.__setattr__(self, "extras", _names(self.extras))
        for name in ("exclude", "provided"):
            object.__setattr__(self, name, tuple(sorted({canonicalize_name(n) for n in _names(getattr(self, name))})))
        if self.installer not in ("uv", "pip"):
            raise ProjectError(f"Unknown installer {self.installer!r}: use 'uv' or 'pip'.")
        if self.bytecode not in ("auto", True, False):
            raise ProjectError(f"Unknown bytecode choice {self.bytecode!r}: use 'auto', True or False.")
        if self.invalidation not in ("unchecked-hash", "checked-hash"):
            raise ProjectError(f"Unknown invalidation {self.invalidation!r}: use 'unchecked-hash' or 'checked-hash'.")

    @property
    def left_out(self) -> frozenset[str]:
        """Every distribution kept out of the layer: excluded and provided ones (canonical names)."""
        return frozenset(self.exclude) | frozenset(self.provided)
