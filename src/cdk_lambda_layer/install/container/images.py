"""The build image: on this machine before a container starts, or a clear error saying how to get one.

Docker pulls a missing image by itself when a container starts, but a failed pull then
arrives as a generic "refused to start" error (no registry reachable, a typo in the tag,
no access) that gives no way out. Looking the image up first, and pulling it explicitly,
separates "this image cannot be had" from a build that failed inside it.
"""

from __future__ import annotations

import logging
from typing import Any

from ...errors import BuildImageError

logger = logging.getLogger(__name__)


def ensure_image(client: Any, image: str, *, platform: str | None = None) -> None:
    """Make sure ``image`` is on the engine ``client`` talks to: present, else pulled, else BuildImageError.

    ``client`` is a ``docker.DockerClient``; ``platform`` (``linux/arm64``) is passed to the pull.
    """
    from docker.errors import APIError, DockerException, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    except APIError as exc:  # e.g. an invalid reference: a pull would fail the same way
        raise _cannot_get(image, _reason(exc)) from exc
    logger.info("pulling the build image %s", image)
    try:
        client.images.pull(image, platform=platform)
    except (APIError, DockerException) as exc:
        raise _cannot_get(image, _reason(exc)) from exc


def _reason(exc: Exception) -> str:
    """Docker's own words: the API's explanation when there is one, else the exception's text."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip() or type(exc).__name__


def _cannot_get(image: str, reason: str) -> BuildImageError:
    return BuildImageError(
        f"The build image {image} is not on this machine and could not be pulled ({reason}). "
        f"Ways out: pull or load it yourself (`docker pull {image}`, or `docker load` where no registry is "
        "reachable); name an image you have (image= / --image / context cdk-lambda-layer:image), checking "
        "the spelling of the name and tag; or build without Docker (build='local' / --build local)."
    )
