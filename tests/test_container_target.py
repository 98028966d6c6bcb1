"""A container build is for the runtime's Python: an image that runs another one is refused before any
install, naming both versions and the way out (its wheels, bytecode and import check would be for the
image's Python, and a layer for another runtime would come out)."""

from __future__ import annotations

import pytest
from docker_helpers import standin_image

from cdk_lambda_layer import PipBasedLambdaLayerContainerBuilder, ProjectError

pytestmark = [pytest.mark.docker, pytest.mark.network]


def test_an_image_with_another_python_than_the_target_is_refused(project_copy):
    image = standin_image()  # Debian bookworm: Python 3.11
    builder = PipBasedLambdaLayerContainerBuilder(project_copy("pip_requirements"), python="3.12", image=image)
    with pytest.raises(ProjectError) as caught:
        builder.run()
    message = str(caught.value)
    assert "The build image runs Python 3.11" in message and "Python 3.12" in message
    assert "public.ecr.aws/sam/build-python3.12" in message and "--python" in message
    assert not builder.layout.root.exists()  # nothing published


def test_the_command_cdk_bundling_hashes_is_unchanged():
    """Only the Docker SDK path checks the image's Python: CDK's own bundling runs the command its asset
    hash was made with."""
    from cdk_lambda_layer import LambdaTarget, LayerOptions
    from cdk_lambda_layer.install.container.handoff import step_command

    target = LambdaTarget(python="3.12")
    assert "--expect-python" not in step_command(target, LayerOptions())
    argv = step_command(target, LayerOptions(), expect_python=True)
    assert argv[argv.index("--expect-python") + 1] == "3.12"
