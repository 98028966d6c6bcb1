"""The construct's Docker path against a real engine and a local stand-in build image.

CI provisions both (.ci/docker.sh) and sets CDK_LAYER_REQUIRE_DOCKER=1, so these tests
fail there instead of skipping when the engine is missing.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from aws_cdk import DockerVolume
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import layer_s3_key, synth_layer

pytestmark = [pytest.mark.docker, pytest.mark.network]

CA_BUNDLE = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"


def _unavailable(reason: str):
    if os.environ.get("CDK_LAYER_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason} (CDK_LAYER_REQUIRE_DOCKER=1: container tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def image() -> str:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine reachable ({exc.__class__.__name__}); start one or set DOCKER_HOST")
    name = os.environ.get("CDK_LAYER_TEST_IMAGE", "cdk-lambda-layer/standin-build:bookworm")
    if not client.images.list(name=name):
        _unavailable(f"build image {name} not found; run .ci/docker.sh to make the stand-in")
    return name


def trust_host_ca() -> dict:
    """What a user behind a TLS-intercepting proxy passes through (the pass-through options)."""
    return {
        "volumes": [DockerVolume(host_path=CA_BUNDLE, container_path="/etc/ssl/certs/host-ca.pem")],
        "environment": {"SSL_CERT_FILE": "/etc/ssl/certs/host-ca.pem", "PIP_CERT": "/etc/ssl/certs/host-ca.pem"},
    }


def run_in_image(image: str, asset: Path, code: str) -> str:
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "-v",
            f"{asset / 'python'}:/opt/python:ro",
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


def asset_dir(out: Path, template) -> Path:
    return out / f"asset.{layer_s3_key(template)[:-4]}"


def test_container_build_through_cdk_bundling_imports_in_the_image(project_copy, tmp_path, image):
    out = tmp_path / "cdk.out"
    template, _, _stack = synth_layer(
        project_copy("poetry_app"),
        outdir=out,
        runtime=lambda_.Runtime.PYTHON_3_11,
        build="container",
        image=image,
        **trust_host_ca(),
    )
    asset = asset_dir(out, template)
    assert sorted(p.name for p in asset.iterdir()) == ["python"]  # hand-off folder removed
    assert not list(asset.rglob("__pycache__"))
    assert run_in_image(image, asset, "import requests, orjson; print(requests.__version__ > '2.3')") == "True"


def test_auto_falls_back_to_docker_when_no_wheel_fits(project_copy, tmp_path, image, caplog):
    out = tmp_path / "cdk.out"
    with caplog.at_level(logging.WARNING, logger="cdk_lambda_layer"):
        template, _, _ = synth_layer(
            project_copy("uv_numpy"),
            outdir=out,
            runtime=lambda_.Runtime.PYTHON_3_11,
            build="auto",
            image=image,
            **trust_host_ca(),
        )
    assert "Stack/Deps: numpy has no wheel for Python 3.11" in caplog.text
    assert "falling back to the Docker build" in caplog.text
    asset = asset_dir(out, template)
    assert run_in_image(image, asset, "import numpy; print(numpy.__version__[:3])") == "2.4"
