"""Container builders: the same steps and build folder, with the install in the build image.

The host exports the pinned requirements with the project's tool; the SAM build image
(or the image you name) installs them with its own pip and Python, so sdists are built
for the Lambda environment; the host then verifies (tags, ELF CPU, size) and zips, as
the local builders do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from .builder import BasedLambdaLayerLocalBuilder
from .container import ContainerOptions, docker_client, host_ca_bundle, lendable_uv, run_step, stage_handoff
from .credentials import secrets_of, tool_environment
from .errors import CommandError
from .export import PinnedRequirements
from .install import explain_index_failure
from .layout import LayerPathLayout
from .manifest import ToolVersions
from .project import Tool
from .tools import find_uv, tool_version
from .verify import VerifyReport, verify


class BasedLambdaLayerContainerBuilder(BasedLambdaLayerLocalBuilder):
    """Build a layer in the SAM build image for the runtime and CPU, through Docker.

    Takes every option of the local builder, plus:

    :param image: build image. Default: ``public.ecr.aws/sam/build-pythonX.Y:latest-<arch>``.
    :param user: "uid:gid" in the container. Default: the calling user (output owned by you).
    :param download_cache: host folder for pip's cache, or False. Default: ~/.cache/cdk-lambda-layer/pip.
    :param ca_bundle: CA bundle trusted in the container. Default: the host's SSL_CERT_FILE,
        PIP_CERT or REQUESTS_CA_BUNDLE, so builds behind a TLS-intercepting proxy work.
    :param environment: extra variables for the container (proxies pass through by themselves).
    :param network: Docker network for the container. Default: the engine's default.
    :param container: all of the above as one ContainerOptions (wins over them).
    """

    build_mode: ClassVar[str] = "container"

    def __init__(
        self,
        path_pyproject_toml: str | os.PathLike[str],
        *,
        image: str | None = None,
        user: str | None = None,
        download_cache: str | os.PathLike[str] | bool | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        environment: Mapping[str, str] | None = None,
        network: str | None = None,
        container: ContainerOptions | None = None,
        **options: Any,
    ) -> None:
        self.container = container or ContainerOptions(
            image=image,
            user=user,
            download_cache=download_cache,
            ca_bundle=ca_bundle,
            environment=dict(environment or {}),
            network=network,
        )
        super().__init__(path_pyproject_toml, **options)

    @property
    def image(self) -> str:
        return self.container.image_for(self.target)

    def locate_tools(self) -> None:
        """The project's tool on the host, and a Docker engine that answers."""
        if self.project.tool is not Tool.PIP:
            super().locate_tools()
        docker_client()

    def tool_versions(self) -> ToolVersions:
        local = super().tool_versions()
        lent = self.container.host_uv and lendable_uv(self.target) is not None
        installer = f"{'uv' if lent else 'pip'} in {self.image}"
        version = tool_version(find_uv(), "uv") if lent else "the image's"
        return ToolVersions(
            tool=local.tool, tool_version=local.tool_version, installer=installer, installer_version=version
        )

    def install(self, pinned: PinnedRequirements, work: LayerPathLayout) -> None:
        stage_handoff(work.artifacts, pinned, host_ca_bundle(self.container.ca_bundle))
        try:
            run_step(
                output=work.artifacts,
                target=self.target,
                options=self.options,
                container=self.container,
                no_deps=pinned.complete,
                label=self.fingerprint[:12],
                env=tool_environment(self.credentials),
                secrets=secrets_of(self.credentials),
            )
        except CommandError as exc:
            raise explain_index_failure(exc.stderr) or exc from exc

    def verify(self, work: LayerPathLayout) -> VerifyReport:
        """As the local builders, also accepting linux_<cpu> wheels the image built from sdists."""
        return verify(work.python, self.target, max_unzipped_bytes=self.options.max_unzipped_bytes, built_in_image=True)


class PipBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A pip project built in the image."""

    tool = Tool.PIP


class PoetryBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A Poetry project: exported on the host with `poetry export`, installed in the image."""

    tool = Tool.POETRY


class UVBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A uv project: exported on the host with `uv export`, installed in the image."""

    tool = Tool.UV
