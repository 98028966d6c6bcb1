"""Choosing where a layer is built: local, container, or auto (local unless it cannot be correct).

The rule, shared by the command line and (through CDK's bundling) the construct: a local
build is correct when every package has a wheel for the target. The plan decides that from
the lock before anything is installed; "auto" goes to the container only when every
package without a wheel can be built there (it has a source distribution, or it is a local
package with native code), and it says so in the log and the result. A package that does
not exist, an index that refuses the login or a stale lock never sends a build to Docker.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from ..errors import DockerUnavailableError, NoWheelError, ProjectError
from .container import BasedLambdaLayerContainerBuilder
from .local import BasedLambdaLayerLocalBuilder
from .result import LayerBuildResult

logger = logging.getLogger(__name__)

BuildMode = Literal["auto", "local", "container"]
BUILD_MODES: tuple[str, ...] = ("auto", "local", "container")

_CONTAINER_ONLY = ("image", "user", "download_cache", "ca_bundle", "environment", "network", "container")


def parse_build_mode(value: str) -> BuildMode:
    if value not in BUILD_MODES:
        raise ProjectError(f"unknown build mode {value!r}: use 'auto', 'local' or 'container'.")
    return value  # type: ignore[return-value]


def fallback_note(exc: NoWheelError) -> str:
    """What the result and the synth line say when auto built in the container."""
    return f"{', '.join(exc.packages)}: no wheel for the target; built in the container instead (build=auto)"


def fallback_start(exc: NoWheelError) -> str:
    """What the log says before the container build starts (it may still fail: no Docker, say)."""
    return f"{', '.join(exc.packages)}: no wheel for the target; building in the container (build=auto)"


def build_layer(path: str | os.PathLike[str], *, build: str = "auto", **options: Any) -> LayerBuildResult:
    """Build with the builder the mode calls for; container options apply to the container path."""
    mode = parse_build_mode(build)
    local_options = {k: v for k, v in options.items() if k not in _CONTAINER_ONLY}
    if mode == "container":
        return BasedLambdaLayerContainerBuilder(path, **options).run()
    try:
        return BasedLambdaLayerLocalBuilder(path, **local_options).run()
    except NoWheelError as exc:
        if mode == "local" or not exc.buildable:
            raise
        note = fallback_note(exc)
        logger.warning("%s", fallback_start(exc))
        try:
            result = BasedLambdaLayerContainerBuilder(path, **options).run()
        except DockerUnavailableError as docker:
            raise NoWheelError(
                f"{exc}\nThe container fallback (build=auto) is not possible: {docker}",
                packages=exc.packages,
                buildable=False,
            ) from docker
        return type(result)(**{**result.__dict__, "warnings": (note, *result.warnings)})
