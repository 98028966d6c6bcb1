"""CDK bundling for a layer: the local path (our builder) and the Docker path (SAM image).

CDK calls ``try_bundle`` first. It builds the layer on this machine and answers True,
or, when the build must run in the image (build="container", or build="auto" and no
wheel exists for the target), exports the pinned requirements into the bundling
output folder and answers False, so CDK's own Docker bundling runs ``container.step_command``
in the SAM build image (see container.py: the same step the container builders run).
The host exports because the tool (uv, Poetry) and the lock are here; the image only
needs pip, which every SAM build image has.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from .builder import BasedLambdaLayerLocalBuilder
from .container import ContainerOptions, host_ca_bundle, stage_handoff
from .container_builder import BasedLambdaLayerContainerBuilder
from .credentials import IndexCredentials
from .errors import NoWheelError
from .export import export_requirements
from .modes import BuildMode
from .options import LayerOptions
from .project import Project
from .target import LambdaTarget

logger = logging.getLogger(__name__)


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
    #: Layer cache folder (None: the default; False: off).
    cache_dir: str | bool | None = None
    #: Private index logins: handed to the tools at bundling time, never hashed or written.
    credentials: tuple[IndexCredentials, ...] = ()


@jsii.implements(ILocalBundling)
class LocalLayerBundling:
    """CDK's local bundling hook for PythonDependencyLayer.

    Builds locally, or in the build image through the Docker SDK (persistent pip cache,
    the host's CA bundle, full verification on the host), and answers True. Only with
    ``cdk_docker`` does it hand the container run to CDK's own Docker bundling (False).
    """

    def __init__(self, spec: LayerBuildSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        spec, output = self.spec, Path(output_dir)
        if spec.mode == "container":
            logger.info("%s: building in %s (build='container')", spec.construct_path, spec.container.image)
            return self._in_container(output)
        try:
            self._build(BasedLambdaLayerLocalBuilder, output)
        except NoWheelError as exc:
            if spec.mode == "local":
                raise
            logger.warning(
                "%s: %s has no wheel for %s; falling back to the Docker build in %s (build='auto')",
                spec.construct_path,
                exc.package,
                spec.target.describe(),
                spec.container.image,
            )
            return self._in_container(output)
        return True

    def _in_container(self, output: Path) -> bool:
        if self.spec.cdk_docker:
            pinned = export_requirements(self.spec.project, self.spec.options, self.spec.credentials)
            stage_handoff(output, pinned, host_ca_bundle(self.spec.container.ca_bundle))
            return False
        self._build(BasedLambdaLayerContainerBuilder, output)
        return True

    def _build(self, builder_class: type[BasedLambdaLayerLocalBuilder], output: Path) -> None:
        """Build into CDK's output folder, staging beside it in cdk.out: a synth writes nothing
        into the project (no build/ folder next to pyproject.toml)."""
        work = output.parent / f".cdk-lambda-layer-{uuid.uuid4().hex[:12]}"
        try:
            self._run_builder(builder_class, output, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run_builder(self, builder_class: type[BasedLambdaLayerLocalBuilder], output: Path, work: Path) -> None:
        spec = self.spec
        extra = {"container": spec.container} if builder_class is BasedLambdaLayerContainerBuilder else {}
        builder = builder_class(
            spec.project.pyproject_path,
            python=spec.target.python,
            architecture=spec.target.architecture,
            tool=spec.project.tool.value,
            groups=spec.options.groups,
            extras=spec.options.extras,
            exclude=spec.options.exclude,
            installer=spec.options.installer,
            locked=spec.options.locked,
            make_zip=False,
            max_unzipped_bytes=spec.options.max_unzipped_bytes,
            cache_dir=spec.cache_dir,
            credentials=spec.credentials,
            build_dir=work,
            **extra,
        )
        builder.run(copy_python_to=output / "python", publish=False)
