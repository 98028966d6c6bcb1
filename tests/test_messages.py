"""The remaining error paths, each with the message a user sees."""

from __future__ import annotations

import os

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
    # A Poetry 2 that lacks poetry-plugin-export answers exactly like this.
    fake = tmp_path / "bin" / "poetry"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Poetry (version 2.1.0)"; exit 0; fi\n'
        "echo 'The requested command \"export\" does not exist.' >&2; exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolNotFoundError) as info:
        PoetryBasedLambdaLayerLocalBuilder(project_copy("poetry_app"), python="3.12", cache_dir=False).run()
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
    assert "pass image=" in message or "refused to start" in message
