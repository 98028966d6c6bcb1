"""Container builders: the same steps and build folder, with the install in the build image.

The host exports the lock with the project's tool and plans the install for the target;
the SAM build image (or the image you name) installs those exact pins with its own Python,
so sdists (and local packages with native code) are built for the Lambda environment,
then trims, compiles bytecode and imports every module with that Python; the host then
verifies (links, tags, native code, requirements, size) and zips, as the local builders do.
The containers themselves are run by install/container/.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from ..core.files import walk_files
from ..core.tools import find_uv, tool_version
from ..errors import CommandError, VerificationError
from ..install.container.docker import docker_client, docker_time, run_step, sweep_containers
from ..install.container.handoff import CONTAINER_OUTPUT, stage_handoff
from ..install.container.options import ContainerOptions, host_ca_bundle, lendable_uv
from ..install.container.report import REPORT_FILE, only_the_layer, read_report, step_failure
from ..install.inventory import installed_packages
from ..install.target_python import BytecodeOutcome, ImportOutcome, outcome_from_imports, outcome_from_report
from ..package.layout import LayerPathLayout
from ..package.manifest import ToolVersions
from ..project.discover import Tool
from ..verify.layer import VerifyReport, verify
from ..verify.requires import check_requirements
from .local import BasedLambdaLayerLocalBuilder
from .result import LayerBuildResult, Prepared


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
    in_image: ClassVar[bool] = True

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
        #: What the in-image step reported (bytecode, imports), read after the install.
        self._report: dict[str, Any] = {}

    @property
    def image(self) -> str:
        return self.container.image_for(self.target)

    def run(self, **kwargs: Any) -> LayerBuildResult:  # type: ignore[override]
        """Remove the containers of builds that died first: one may still be writing into its
        staging folder, which this build's sweep is about to delete."""
        sweep_containers(docker_client())
        return super().run(**kwargs)

    def build_facts(self) -> dict[str, Any]:
        return {"image": {"name": self.image, **self._image_identity()}}

    def rebuild_reason(self, manifest: dict[str, Any]) -> str | None:
        """Also: the image's name now stands for another image (a tag moved) than the one the layer was
        built in, unless that one is the newer: two machines whose tags name different builds of the image
        (a CI runner that pulled earlier) then share one entry instead of building it in turn for each
        other. Images of one creation time (reproducible builds set it to the epoch) count as moved."""
        was, now = manifest.get("image") or {}, self._image_identity()
        older = docker_time(now.get("created", "")) < docker_time(was.get("created", ""))
        if was.get("id") and now.get("id") and was["id"] != now["id"] and not older:
            return f"was built in another image than {self.image} names now ({was['id'][:19]}, {now['id'][:19]})"
        return super().rebuild_reason(manifest)

    def _image_identity(self) -> dict[str, str]:
        """The ID and creation time of the image the name stands for on this engine ({} when it is not here)."""
        from docker.errors import DockerException

        try:
            image = docker_client().images.get(self.image)
        except DockerException:
            return {}
        return {"id": str(image.id), "created": str(image.attrs.get("Created") or "")}

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

    def install(self, prepared: Prepared, work: LayerPathLayout) -> None:
        stage_handoff(work.artifacts, prepared.plan, prepared.local, host_ca_bundle(self.container.ca_bundle))
        settings = self.install_settings(prepared)
        try:
            run_step(
                output=work.artifacts,
                owner=work.root,
                target=self.target,
                options=self.options,
                container=self.container,
                label=self.fingerprint[:12],
                report=f"{CONTAINER_OUTPUT}/{REPORT_FILE}",
                # Poetry never runs in the image: its logins stay out of it
                env={k: v for k, v in settings.environment("pip").items() if not k.startswith("POETRY_")},
                secrets=settings.secrets,
                project_key=hashlib.sha256(str(self.project.anchor.resolve()).encode()).hexdigest()[:16],
            )
        except CommandError as exc:
            failure = step_failure(exc)
            if isinstance(failure, VerificationError):
                self._requirements_first(work)
            raise failure from exc

    def _requirements_first(self, work: LayerPathLayout) -> None:
        """The image's import check failed: a requirement missing for the runtime explains it better."""
        try:
            packages = installed_packages(work.python, walk_files(work.python))
        except OSError:
            return
        check_requirements(packages, self.target, self.options)

    def finish(self, work: LayerPathLayout) -> BytecodeOutcome:
        """Trim, bytecode and the import check ran in the image, with its Python: read what they did."""
        self._report = read_report(work.artifacts / REPORT_FILE)
        only_the_layer(work.artifacts)
        if "bytecode" in self._report:
            return outcome_from_report(self._report["bytecode"], self.options)
        return BytecodeOutcome(included=False, reason="turned off (bytecode=False)")

    def import_check(self, work: LayerPathLayout) -> ImportOutcome:
        imports = self._report.get("imports")
        if imports is None:
            return ImportOutcome(ran=False, reason="turned off (import_check=False)")
        return outcome_from_imports(imports, imports.get("python"), self.target)

    def verify(self, work: LayerPathLayout) -> VerifyReport:
        """As the local builders, also accepting linux_<cpu> wheels the image built from sdists."""
        return verify(work.python, self.target, self.options, built_in_image=True, expected=self._expected)


class PipBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A pip project built in the image."""

    tool = Tool.PIP


class PoetryBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A Poetry project: exported on the host with `poetry export`, installed in the image."""

    tool = Tool.POETRY


class UVBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A uv project: exported on the host with `uv export`, installed in the image."""

    tool = Tool.UV
