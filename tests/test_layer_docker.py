"""The construct's Docker path against a real engine and a local stand-in build image.

CI provisions both (.ci/docker.sh) and sets CDK_LAYER_REQUIRE_DOCKER=1, so these tests
fail there instead of skipping when the engine is missing.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import BundlingFileAccess, DockerVolume
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import layer_s3_key, synth_layer
from docker_helpers import import_in_image, standin_image

from cdk_lambda_layer import PipBasedLambdaLayerLocalBuilder

pytestmark = [pytest.mark.docker, pytest.mark.network]


@pytest.fixture(scope="module")
def image() -> str:
    return standin_image()


def asset_dir(out: Path, template) -> Path:
    return out / f"asset.{layer_s3_key(template)[:-4]}"


@pytest.mark.parametrize(
    ("fixture", "code", "expected"),
    [
        ("poetry_app", "import requests, orjson; print(orjson.dumps(1).decode())", "1"),
        ("pip_requirements", "import pydantic_core, requests; print(pydantic_core.__name__)", "pydantic_core"),
        ("uv_sdist", "import docopt, six; print(docopt.__version__)", "0.6.2"),  # sdist built in the image
    ],
)
def test_container_build_through_cdk_bundling_imports_in_the_image(
    project_copy, tmp_path, image, fixture, code, expected
):
    # No Docker flags: the host's CA bundle (this machine sits behind a TLS-intercepting proxy)
    # is handed to pip in the container by the library itself.
    out = tmp_path / "cdk.out"
    template, _, _ = synth_layer(
        project_copy(fixture), outdir=out, runtime=lambda_.Runtime.PYTHON_3_11, build="container", image=image
    )
    asset = asset_dir(out, template)
    assert sorted(p.name for p in asset.iterdir()) == ["python"]  # hand-off folder and report removed
    assert all(p.name.endswith(".cpython-311.pyc") for p in asset.rglob("*.pyc"))
    assert import_in_image(image, asset / "python", code) == expected


def test_docker_options_pass_through_to_cdk_bundling(project_copy, tmp_path, image):
    # The container may use no index (an environment variable) and finds the wheels on a mounted
    # volume (find-links): the layer builds only if both reached the container.
    project = project_copy("pip_pyproject")
    pins = PipBasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run().packages
    shared = tmp_path / "shared"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(shared / "wheels")]
        + [f"{p.name}=={p.version}" for p in pins],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "cdk.out"
    template, _, _ = synth_layer(
        project,
        outdir=out,
        runtime=lambda_.Runtime.PYTHON_3_11,
        build="container",
        image=image,
        environment={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/shared/wheels"},
        volumes=[DockerVolume(host_path=str(shared), container_path="/shared")],
        network="none",
    )
    python = asset_dir(out, template) / "python"
    assert {p.name for p in pins} == {"attrs", "six"}
    assert (python / "six.py").is_file() and list(python.glob("attrs-*.dist-info"))


def test_auto_falls_back_to_docker_when_no_wheel_fits(project_copy, tmp_path, image, caplog):
    out = tmp_path / "cdk.out"
    with caplog.at_level(logging.WARNING, logger="cdk_lambda_layer"):
        template, _, _ = synth_layer(
            project_copy("uv_sdist"), outdir=out, runtime=lambda_.Runtime.PYTHON_3_11, build="auto", image=image
        )
    assert "Stack/Deps: docopt: no wheel for the target; built in the container instead (build=auto)" in caplog.text
    asset = asset_dir(out, template)
    assert import_in_image(image, asset / "python", "import docopt; print(docopt.__version__)") == "0.6.2"


def test_container_result_is_verified_against_the_runtime(tmp_path, image):
    """The stand-in image is Debian (glibc 2.36): what it compiles may need a newer glibc than python3.11's
    Amazon Linux 2 (2.26) has. A local package calling gettid() (GLIBC_2.30) is compiled there; the host
    reads the library and refuses the layer, naming the file and the symbol version."""
    from test_repository_shapes import native_project

    service = native_project(tmp_path)
    speed = tmp_path / "acme-native" / "src" / "speed.c"
    speed.write_text(
        "#define _GNU_SOURCE\n#include <unistd.h>\n"
        + speed.read_text().replace(
            "return PyModule_Create(&speed);", "(void)gettid(); return PyModule_Create(&speed);"
        )
    )
    with pytest.raises(Exception, match=r"acme_native/_speed\.cpython-311-x86_64-linux-gnu\.so") as info:
        synth_layer(
            service, outdir=tmp_path / "cdk.out", runtime=lambda_.Runtime.PYTHON_3_11, build="container", image=image
        )
    message = str(info.value)
    assert "needs GLIBC_2.30" in message and "GLIBC up to 2.26" in message
    assert "public.ecr.aws/sam/build-python3.11:latest-x86_64" in message


@pytest.mark.parametrize("fixture", ["poetry_app", "uv_sdist"])
def test_cdk_docker_bundling_path_for_remote_engines(project_copy, tmp_path, image, fixture):
    # bundling_file_access (remote Docker) hands the container run to CDK's own Docker bundling,
    # which runs the same in-image step.
    out = tmp_path / "cdk.out"
    template, _, _ = synth_layer(
        project_copy(fixture),
        outdir=out,
        runtime=lambda_.Runtime.PYTHON_3_11,
        build="container",
        image=image,
        bundling_file_access=BundlingFileAccess.BIND_MOUNT,
    )
    asset = asset_dir(out, template)
    assert sorted(p.name for p in asset.iterdir()) == ["python"]
    module = "requests" if fixture == "poetry_app" else "docopt"
    assert import_in_image(image, asset / "python", f"import {module}; print('ok')") == "ok"
