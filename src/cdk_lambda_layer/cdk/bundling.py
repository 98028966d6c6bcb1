"""CDK bundling for a layer: the local path (our builder) and the Docker path (the build image).

CDK calls ``try_bundle`` first. It builds the layer on this machine (or in the build image through
the Docker SDK) and answers True; by default the build runs beside the synth and the construct's
validation finishes it (side_by_side.py), so an app's layers build at the same time. Only for remote
engines (``bundling_file_access``) does it prepare the hand-off in the bundling output folder and
answer False, so CDK's own Docker bundling runs ``container.step_command`` in the build image (the
same step the container builders run). Either way the host exports and plans: the tool (uv, Poetry)
and the lock are here; the image only needs its Python.

Each layer says what happened in one line on stderr when its build ends, which ``cdk synth``
shows among its "Bundling asset" lines (see summary.py).
"""

from __future__ import annotations

import logging
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingFileAccess, BundlingOptions, DockerImage, DockerVolume, ILocalBundling

from ..builders.container import BasedLambdaLayerContainerBuilder
from ..builders.local import BasedLambdaLayerLocalBuilder
from ..builders.modes import BuildMode, fallback_note
from ..builders.result import LayerBuildResult
from ..builders.summary import synth_line
from ..cache.remote.location import RemoteLocation
from ..core.credentials import IndexCredentials
from ..errors import LayerBuildError, NoWheelError
from ..install.container.handoff import stage_handoff, step_command
from ..install.container.options import BASE_ENVIRONMENT, ContainerOptions, host_ca_bundle
from ..options import LayerOptions
from ..package.layout import LayerPathLayout
from ..project.load import Project
from ..target import LambdaTarget
from .side_by_side import FinishLayer, PendingLayer

logger = logging.getLogger(__name__)


def with_construct_path(exc: LayerBuildError, path: str) -> LayerBuildError:
    """The same error (its type and attributes: a NoWheelError's packages, a CommandError's argv)
    with the construct path in front of its message, so a synth names the layer that failed."""
    prefixed = type(exc).__new__(type(exc))
    prefixed.__dict__.update(exc.__dict__)
    prefixed.args = (f"{path}: {exc}",)
    return prefixed


@dataclass(frozen=True, kw_only=True)
class LayerBuildSpec:
    """Everything a bundling run needs, decided at construct time (no subprocess there)."""

    project: Project
    target: LambdaTarget
    options: LayerOptions
    mode: BuildMode
    construct_path: str
    #: How the container runs when the build needs one (image, user, env, volumes...).
    container: ContainerOptions
    #: Leave the container to CDK's Docker bundling (set for remote engines: bundling_file_access).
    cdk_docker: bool = False
    #: Layer cache folder (False: off).
    cache_dir: str | bool | None = None
    #: The remote cache (None: none), decided at construct time.
    remote_cache: RemoteLocation | None = None
    #: Private index logins: handed to the tools at bundling time, never hashed or written.
    credentials: tuple[IndexCredentials, ...] = ()
    #: Print the one summary line per layer (off under --quiet, see layer.py).
    announce: bool = True
    #: Build beside the synth, finished by the construct's validation (side_by_side.py).
    side_by_side: bool = True

    def builder_options(self, work: Path) -> dict[str, Any]:
        """Keyword arguments for a builder that reproduces this spec, staging in ``work``."""
        options = self.options
        return {
            "python": self.target.python,
            "architecture": self.target.architecture,
            "tool": self.project.tool.value,
            "groups": options.groups,
            "extras": options.extras,
            "exclude": options.exclude,
            "provided": options.provided,
            "include_project": options.include_project,
            "installer": options.installer,
            "locked": options.locked,
            "make_zip": False,
            "max_unzipped_bytes": options.max_unzipped_bytes,
            "bytecode": options.bytecode,
            "invalidation": options.invalidation,
            "import_check": options.import_check,
            "cache_dir": self.cache_dir,
            "remote_cache": self.remote_cache.url if self.remote_cache else False,
            "remote_cache_read_only": bool(self.remote_cache and self.remote_cache.read_only),
            "credentials": self.credentials,
            "build_dir": work,
        }


@jsii.implements(ILocalBundling)
class LocalLayerBundling:
    """CDK's local bundling hook for PythonDependencyLayer.

    Builds locally, or in the build image through the Docker SDK (persistent pip cache,
    the host's CA bundle, full verification on the host), and answers True. Only with
    ``cdk_docker`` does it hand the container run to CDK's own Docker bundling (False).
    """

    def __init__(self, spec: LayerBuildSpec) -> None:
        self.spec = spec
        #: The construct's validation, which finishes a build started beside the synth.
        self.finish = FinishLayer()

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        output = Path(output_dir)
        if self.spec.side_by_side and not self.spec.cdk_docker:
            # CDK's own Docker bundling must run right after an answer of False: never deferred.
            self.finish.pending = PendingLayer.start(self.spec.construct_path, output, self._bundle)
            if self.finish.pending is not None:
                return True
        try:
            return self._bundle(output)
        except LayerBuildError as exc:
            raise with_construct_path(exc, self.spec.construct_path) from exc

    def _bundle(self, output: Path) -> bool:
        spec = self.spec
        if spec.mode == "container":
            return self._in_container(output)
        try:
            result = self._build(BasedLambdaLayerLocalBuilder, output)
        except NoWheelError as exc:
            if spec.mode == "local" or not exc.buildable:
                raise
            note = fallback_note(exc)
            logger.warning("%s: %s", spec.construct_path, note)
            return self._in_container(output, note=note)
        self._announce(result)
        return True

    def _in_container(self, output: Path, *, note: str | None = None) -> bool:
        if self.spec.cdk_docker:
            self._hand_off(output)
            return False
        result = self._build(BasedLambdaLayerContainerBuilder, output)
        if note:
            result = LayerBuildResult(**{**result.__dict__, "warnings": (note, *result.warnings)})
        self._announce(result)
        return True

    def _announce(self, result: LayerBuildResult) -> None:
        if self.spec.announce:
            print(synth_line(self.spec.construct_path, result), file=sys.stderr, flush=True)

    def _builder(self, builder_class: type[BasedLambdaLayerLocalBuilder], work: Path) -> BasedLambdaLayerLocalBuilder:
        extra = {"container": self.spec.container} if builder_class is BasedLambdaLayerContainerBuilder else {}
        return builder_class(self.spec.project.pyproject_path, **self.spec.builder_options(work), **extra)

    def _build(self, builder_class: type[BasedLambdaLayerLocalBuilder], output: Path) -> LayerBuildResult:
        """Build into CDK's output folder, staging beside it in cdk.out: a synth writes nothing
        into the project (no build/ folder next to pyproject.toml)."""
        work = output.parent / f".cdk-lambda-layer-{uuid.uuid4().hex[:12]}"
        try:
            builder = self._builder(builder_class, work)
            logger.info("%s: %s", self.spec.construct_path, builder.describe())
            return builder.run(copy_python_to=output / "python", publish=False)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _hand_off(self, output: Path) -> None:
        """CDK's Docker bundling runs the step: export, plan and build local packages here first."""
        work = output.parent / f".cdk-lambda-layer-{uuid.uuid4().hex[:12]}"
        try:
            builder = self._builder(BasedLambdaLayerContainerBuilder, work)
            layout = LayerPathLayout(work / "prepare")
            layout.repo.mkdir(parents=True)
            prepared = builder.prepare(layout)
            stage_handoff(output, prepared.plan, prepared.local, host_ca_bundle(self.spec.container.ca_bundle))
        finally:
            shutil.rmtree(work, ignore_errors=True)


def bundling_options(
    local: LocalLayerBundling,
    image: DockerImage,
    *,
    environment: Mapping[str, str] | None,
    volumes: Sequence[DockerVolume] | None,
    network: str | None,
    user: str | None,
    security_opt: str | None,
    bundling_file_access: BundlingFileAccess | None,
) -> BundlingOptions:
    """CDK's bundling for the layer: ``LocalLayerBundling`` first; CDK's own Docker bundling runs the
    in-image step only when the local hook hands over (remote engines: ``bundling_file_access``)."""
    target, options = local.spec.target, local.spec.options
    return BundlingOptions(
        image=image,
        platform=target.architecture.docker_platform,
        # The step as the container's entrypoint: an image's own (an init, a wrapper) would make it not
        # the first process, which must stop what packages' code leaves running (install/container/step.py).
        entrypoint=step_command(target, options)[:1],
        command=step_command(target, options)[1:],
        environment={**BASE_ENVIRONMENT, **(environment or {})},
        volumes=volumes,
        network=network,
        user=user,
        security_opt=security_opt,
        bundling_file_access=bundling_file_access,
        local=local,
    )
