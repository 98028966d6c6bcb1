"""Error messages: bad options, projects and index credentials, a missing Poetry plugin, logins refused for CDK's
Docker bundling, build images missing or misspelt; each with the message a user sees."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import BundlingFileAccess

from cdk_lambda_layer import (
    IndexCredentials,
    LayerBuildError,
    LayerOptions,
    PipBasedLambdaLayerLocalBuilder,
    PoetryBasedLambdaLayerLocalBuilder,
    ProjectError,
    PythonDependencyLayer,
    ToolNotFoundError,
)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"name": "corp index", "url": "https://corp.example/simple/"}, ["Index name 'corp index'", "letters, digits"]),
        ({"name": "corp", "url": "ftp://corp.example/simple/"}, ["Index corp", "is not an http(s) URL"]),
    ],
)
def test_bad_index_credentials(kwargs, words):
    with pytest.raises(ProjectError) as info:
        IndexCredentials(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_unknown_installer():
    with pytest.raises(ProjectError, match="Unknown installer 'conda': use 'uv' or 'pip'"):
        LayerOptions(installer="conda")


def test_extras_with_a_requirements_file_are_refused(project_copy):
    project = project_copy("pip_requirements")
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text + '\n[project.optional-dependencies]\ncli = ["click"]\n')
    with pytest.raises(ProjectError) as info:
        PipBasedLambdaLayerLocalBuilder(project, python="3.12", extras=["cli"]).run()
    assert "requirements.txt is installed as it is" in str(info.value)
    assert "Add the packages to requirements.txt instead" in str(info.value)


def test_unknown_extra_lists_the_defined_ones(project_copy):
    with pytest.raises(ProjectError) as info:
        PipBasedLambdaLayerLocalBuilder(project_copy("pip_pyproject"), python="3.12", extras=["gui"]).run()
    assert "No extra 'gui' in" in str(info.value) and "pip_pyproject/pyproject.toml" in str(info.value)
    assert "(defined: cli)" in str(info.value)


def test_poetry_without_the_export_plugin(project_copy, tmp_path, monkeypatch):
    # The real Poetry with its plugins turned off: exactly what a Poetry 2 without
    # poetry-plugin-export prints ("The requested command export does not exist.").
    poetry = Path(sys.executable).parent / "poetry"
    wrapper = tmp_path / "bin" / "poetry"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {poetry} --no-plugins "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolNotFoundError) as info:
        PoetryBasedLambdaLayerLocalBuilder(project_copy("poetry_app"), python="3.12", cache_dir=False).run()
    assert info.value.exit_code == 3
    assert f"Poetry at {wrapper} has no export command" in str(info.value)
    assert "poetry self add poetry-plugin-export" in str(info.value)


def test_credentials_with_cdk_docker_bundling_are_refused(project_copy):
    stack = cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "Api")
    with pytest.raises(LayerBuildError) as info:
        PythonDependencyLayer(
            stack,
            "Deps",
            project=project_copy("uv_app"),
            build="container",
            bundling_file_access=BundlingFileAccess.VOLUME_COPY,
            credentials=[IndexCredentials(name="corp", url="https://corp.example/simple/", password="tok")],
        )
    message = str(info.value)
    assert message.startswith("Api/Deps: credentials cannot go through CDK's own Docker bundling")
    assert "tok" not in message.replace("token", "")


@pytest.mark.docker
def test_missing_build_image_says_how_to_get_one(project_copy):
    from docker_helpers import standin_image

    from cdk_lambda_layer import PipBasedLambdaLayerContainerBuilder

    standin_image()  # an engine must answer; this image must not exist
    with pytest.raises(LayerBuildError) as info:
        PipBasedLambdaLayerContainerBuilder(
            project_copy("pip_pyproject"), python="3.11", cache_dir=False, image="cdk-lambda-layer/no-such-image:never"
        ).run()
    message = str(info.value)
    assert "cdk-lambda-layer/no-such-image:never" in message
    assert "is not on this machine and could not be pulled" in message and "image= / --image" in message


class _Images:
    """The images API of a Docker client: ``present`` images; a pull answers with ``refusal``."""

    def __init__(self, present: set[str], refusal: Exception | None) -> None:
        self.present, self.refusal, self.pulled = present, refusal, []

    def get(self, name):
        from docker.errors import ImageNotFound

        if name not in self.present:
            raise ImageNotFound(f"No such image: {name}")
        return name

    def pull(self, name, platform=None):
        self.pulled.append((name, platform))
        if self.refusal is not None:
            raise self.refusal
        self.present.add(name)


class _Client:
    def __init__(self, present=(), refusal=None):
        self.images = _Images(set(present), refusal)


def test_a_build_image_on_the_machine_is_used_as_it_is():
    from cdk_lambda_layer.install.container.images import ensure_image

    client = _Client(present={"corp/build:3.12"})
    ensure_image(client, "corp/build:3.12")
    assert client.images.pulled == []
    missing = _Client()
    ensure_image(missing, "corp/build:3.12", platform="linux/arm64")
    assert missing.images.pulled == [("corp/build:3.12", "linux/arm64")]


def test_a_build_image_that_cannot_be_pulled_says_why_and_the_ways_out():
    from docker.errors import APIError

    from cdk_lambda_layer import BuildImageError, DockerUnavailableError
    from cdk_lambda_layer.install.container.images import ensure_image

    reason = 'Get "https://public.ecr.aws/v2/": dial tcp: lookup public.ecr.aws: no such host'
    client = _Client(refusal=APIError("500 Server Error", explanation=reason))
    with pytest.raises(BuildImageError) as info:
        ensure_image(client, "public.ecr.aws/sam/build-python3.12:latest-x86_64")
    assert isinstance(info.value, DockerUnavailableError) and info.value.exit_code == 6
    message = str(info.value)
    assert "The build image public.ecr.aws/sam/build-python3.12:latest-x86_64 is not on this machine" in message
    assert reason in message
    for way in ("docker pull public.ecr.aws/sam/build-python3.12:latest-x86_64", "image= / --image", "build='local'"):
        assert way in message


@pytest.mark.docker
def test_a_misspelt_build_image_on_a_real_engine():
    from docker_helpers import standin_image

    from cdk_lambda_layer import BuildImageError
    from cdk_lambda_layer.install.container.docker import docker_client
    from cdk_lambda_layer.install.container.images import ensure_image

    present = standin_image()  # an engine answers and has this image
    client = docker_client()
    ensure_image(client, present)
    typo = present.rsplit(":", 1)[0] + ":no-such-tag-bookwrom"
    with pytest.raises(BuildImageError) as info:
        ensure_image(client, typo)
    assert f"The build image {typo} is not on this machine and could not be pulled (" in str(info.value)
    assert f"docker pull {typo}" in str(info.value)
