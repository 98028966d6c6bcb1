"""Docker test support: the engine and stand-in image CI provisions (.ci/docker.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEFAULT_IMAGE = "cdk-lambda-layer/standin-build:bookworm"


def unavailable(reason: str):
    """Skip where no engine can be reached; fail in CI, where the tests must run."""
    if os.environ.get("CDK_LAYER_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason} (CDK_LAYER_REQUIRE_DOCKER=1: container tests must run)")
    pytest.skip(reason)


def standin_image() -> str:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        unavailable(f"no Docker engine reachable ({exc.__class__.__name__}); start one or set DOCKER_HOST")
    name = os.environ.get("CDK_LAYER_TEST_IMAGE", DEFAULT_IMAGE)
    if not client.images.list(name=name):
        unavailable(f"build image {name} not found; run .ci/docker.sh to make the stand-in")
    return name


def import_in_image(image: str, python_dir: Path, code: str) -> str:
    """Run ``code`` in the build image with the layer on PYTHONPATH, as Lambda puts it on sys.path."""
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-v",
            f"{python_dir}:/opt/python:ro",
            "-e",
            "PYTHONPATH=/opt/python",
            image,
            "python",
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
