"""Docker test support: the engine and stand-in image CI provisions (.ci/docker.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEFAULT_IMAGE = "cdk-lambda-layer/standin-build:bookworm"
#: Stand-ins by (Python, CPU): the variable .ci/run exports, and the tag .ci/docker.sh makes.
IMAGES = {
    ("3.11", "x86_64"): ("CDK_LAYER_TEST_IMAGE", DEFAULT_IMAGE),
    ("3.13", "x86_64"): ("CDK_LAYER_TEST_IMAGE_313", "cdk-lambda-layer/standin-build:trixie"),
    ("3.11", "arm64"): ("CDK_LAYER_TEST_IMAGE_ARM64", "cdk-lambda-layer/standin-build:bookworm-arm64"),
}


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


def standin_image_for(python: str = "3.11", arch: str = "x86_64") -> str:
    """The stand-in build image for a Python and CPU (.ci/docker.sh makes them), or skip/fail."""
    variable, default = IMAGES[(python, arch)]
    standin_image()  # an engine must answer first
    import docker

    name = os.environ.get(variable, default)
    if not docker.from_env().images.list(name=name):
        unavailable(f"build image {name} not found; run CDK_LAYER_CI_QEMU=1 .ci/docker.sh to make the stand-ins")
    if arch == "arm64" and not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        unavailable("arm64 images need qemu-user-static registered with binfmt (CDK_LAYER_CI_QEMU=1 .ci/docker.sh)")
    return name


def import_in_image(image: str, python_dir: Path, code: str, platform: str | None = None) -> str:
    """Run ``code`` in the build image with the layer on PYTHONPATH, as Lambda puts it on sys.path."""
    return subprocess.run(
        [
            "docker",
            "run",
            *(["--platform", platform] if platform else []),
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
