"""Typed errors: one base class, one subclass per situation the user can fix.

Every message says what was found, what was expected and what to do next, so the
command line can print it as is and the construct can prefix it with its path.
"""

from __future__ import annotations

from collections.abc import Sequence


class LayerBuildError(Exception):
    """Base of every error this library raises on bad input or a failed build step."""

    #: Exit code of the command line for this kind of error.
    exit_code = 1


class ProjectError(LayerBuildError):
    """The project folder, its pyproject.toml or its lock cannot be used as given."""

    exit_code = 2


class StaleLockError(ProjectError):
    """The lock file no longer matches pyproject.toml."""


class TargetError(LayerBuildError):
    """An unknown Python version, CPU architecture or Lambda runtime was asked for."""

    exit_code = 2


class ToolNotFoundError(LayerBuildError):
    """A build tool (uv, Poetry, pip) is missing or too old."""

    exit_code = 3


class InterpreterNotFoundError(ToolNotFoundError):
    """No CPython of the target's version on this machine where one is required (bytecode=True)."""


class CommandError(LayerBuildError):
    """A build tool ran and failed; carries the command, exit code and stderr tail."""

    def __init__(self, message: str, *, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr


class NoWheelError(LayerBuildError):
    """Packages have no wheel that runs on the Lambda target (every one is named)."""

    exit_code = 4

    def __init__(self, message: str, *, packages: tuple[str, ...] = (), buildable: bool = False) -> None:
        super().__init__(message)
        #: The packages without a fitting wheel.
        self.packages = packages
        #: Whether a build in the Lambda build image could make them (each has a source distribution).
        self.buildable = buildable

    @property
    def package(self) -> str | None:
        return self.packages[0] if self.packages else None


class PackageNotFoundError(ProjectError):
    """The package index has no package (or no version) of that name: a typo, or a private package."""

    def __init__(self, message: str, *, package: str | None = None) -> None:
        super().__init__(message)
        self.package = package


class VerificationError(LayerBuildError):
    """The installed layer would not run on the target (wrong wheel tag or CPU)."""

    exit_code = 5


class LayerTooLargeError(VerificationError):
    """The unzipped layer exceeds Lambda's 250 MB limit."""


class DockerUnavailableError(LayerBuildError):
    """No Docker engine answers where a container build needs one."""

    exit_code = 6


class BuildImageError(DockerUnavailableError):
    """The engine answers, but the build image is not on this machine and cannot be pulled
    (no registry reachable, a typo in the name, no access)."""


class BuildFolderError(LayerBuildError):
    """The build folder cannot be written (permissions, disk full, a file in the way)."""

    exit_code = 7


class CacheFolderError(LayerBuildError):
    """The folder given as the layer cache cannot be one (not ours, a file, an empty path)."""

    exit_code = 2


class PackageIndexError(LayerBuildError):
    """A package index could not be reached, or refused the request."""

    exit_code = 8


class RemoteCacheError(LayerBuildError):
    """The remote cache setting cannot be used as given (not an ``s3://bucket/prefix`` URL).

    A remote cache that is set right but cannot be reached is never an error: the build goes on
    locally and says why in one warning."""

    exit_code = 2
