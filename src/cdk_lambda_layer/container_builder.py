"""Container builders: the same steps and build folder, with the install in the build image.

The host exports the lock with the project's tool and plans the install for the target;
the SAM build image (or the image you name) installs those exact pins with its own Python,
so sdists (and local packages with native code) are built for the Lambda environment,
then trims, compiles bytecode and imports every module with that Python; the host then
verifies (links, tags, native code, requirements, size) and zips, as the local builders do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from .builder import BasedLambdaLayerLocalBuilder, LayerBuildResult, Prepared
from .container import (
    CONTAINER_OUTPUT,
    ContainerOptions,
    docker_client,
    docker_time,
    host_ca_bundle,
    lendable_uv,
    run_step,
    stage_handoff,
    sweep_containers,
)
from .errors import CommandError, LayerBuildError, ProjectError, VerificationError
from .export import ExportedLock
from .inventory import installed_packages, read_regular, walk_files
from .layout import LayerPathLayout
from .local_build import BuiltPackage, build_local_packages
from .manifest import ToolVersions
from .plan import InstallPlan
from .project import Tool
from .target_python import BytecodeOutcome, ImportOutcome, outcome_from_imports, outcome_from_report
from .tool_errors import explain_install_failure
from .tools import find_uv, tool_version
from .verify import VerifyReport, verify
from .verify.requires import check_requirements


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

    def _rebuild_reason(self, manifest: dict[str, Any]) -> str | None:
        """Also: the image's name now stands for another image (a tag moved) than the one the layer was
        built in, unless that one is the newer: two machines whose tags name different builds of the image
        (a CI runner that pulled earlier) then share one entry instead of building it in turn for each
        other. Images of one creation time (reproducible builds set it to the epoch) count as moved."""
        was, now = manifest.get("image") or {}, self._image_identity()
        older = docker_time(now.get("created", "")) < docker_time(was.get("created", ""))
        if was.get("id") and now.get("id") and was["id"] != now["id"] and not older:
            return f"was built in another image than {self.image} names now ({was['id'][:19]}, {now['id'][:19]})"
        return super()._rebuild_reason(manifest)

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

    def plan(self, exported: ExportedLock, *, in_image: bool = True) -> InstallPlan:
        """As the local plan, but a package without a fitting wheel is built from its sdist in the image."""
        return super().plan(exported, in_image=True)

    def build_local(self, plan: InstallPlan, work: LayerPathLayout) -> tuple[BuiltPackage, ...]:
        """Pure-Python local packages as wheels; ones with native code as sdists, compiled in the image."""
        local, folder = plan.local, work.repo / "local"
        return build_local_packages(local, folder, self.target, in_image=True, where=self.project.anchor)

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


#: The step's outcomes (bytecode, imports), written beside python/ for the host and removed after.
REPORT_FILE = ".cdk-lambda-layer-report.json"
_STEP_ERRORS: dict[int, type[LayerBuildError]] = {5: VerificationError, 2: ProjectError}


def only_the_layer(artifacts: Path) -> None:
    """After the step, the mounted folder holds python/ and nothing else (the step removes its hand-off,
    the host its report): anything more was left there by code run in the container, and would be
    published beside the layer, so it is refused."""
    extra = sorted(p.name for p in artifacts.iterdir() if p.name != "python")
    if extra:
        raise VerificationError(
            f"The build image left {', '.join(extra[:10])} beside python/ in the output folder: something run "
            "in the container (a package's build or install step, or its code at import) wrote there. Nothing "
            "was published."
        )


def read_report(path: Path) -> dict[str, Any]:
    """The step's report, then gone. Code run in the container could have put a link (to a host file)
    or garbage there: it is read without following links, and anything but a JSON object is refused."""
    if not os.path.lexists(path):
        return {}
    try:
        report = json.loads(read_regular(path))
    except (ValueError, OSError) as exc:
        raise VerificationError(
            f"The build image left an unreadable report ({exc}): something run in the container (a package's "
            "build or install step) wrote into the output folder. Nothing was published."
        ) from exc
    finally:
        with contextlib.suppress(OSError):  # a folder planted there stays: refused above, the staging goes
            path.unlink(missing_ok=True)
    if not isinstance(report, dict) or not all(isinstance(report.get(k, {}), dict) for k in ("bytecode", "imports")):
        raise VerificationError(
            "The build image left a report of another shape than its step writes: something "
            "run in the container wrote into the output folder. Nothing was published."
        )
    return report


def step_failure(exc: CommandError) -> LayerBuildError:
    """The in-image step's own error (its "error: ..." line and exit code), or the installer's, explained."""
    explained = explain_install_failure(exc, "the build image's output folder")
    if explained is not None:
        return explained
    own = [line.removeprefix("error: ") for line in exc.stderr.splitlines() if line.startswith("error: ")]
    kind = _STEP_ERRORS.get(exc.returncode)
    if own and kind is not None:
        return kind(own[-1] + "".join("\n" + line for line in exc.stderr.split(own[-1], 1)[-1].splitlines()[1:]))
    return exc


class PipBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A pip project built in the image."""

    tool = Tool.PIP


class PoetryBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A Poetry project: exported on the host with `poetry export`, installed in the image."""

    tool = Tool.POETRY


class UVBasedLambdaLayerContainerBuilder(BasedLambdaLayerContainerBuilder):
    """A uv project: exported on the host with `uv export`, installed in the image."""

    tool = Tool.UV
