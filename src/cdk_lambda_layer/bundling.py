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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from .builder import BasedLambdaLayerLocalBuilder
from .container import host_ca_bundle, stage_handoff
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


@jsii.implements(ILocalBundling)
class LocalLayerBundling:
    """CDK's local bundling hook for PythonDependencyLayer."""

    def __init__(self, spec: LayerBuildSpec) -> None:
        self.spec = spec

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        spec, output = self.spec, Path(output_dir)
        if spec.mode == "container":
            logger.info("%s: building in the container image (build='container')", spec.construct_path)
            self._hand_off(output)
            return False
        try:
            self._build_locally(output)
        except NoWheelError as exc:
            if spec.mode == "local":
                raise
            logger.warning(
                "%s: %s has no wheel for %s; falling back to the Docker build (build='auto')",
                spec.construct_path,
                exc.package,
                spec.target.describe(),
            )
            self._hand_off(output)
            return False
        return True

    def _build_locally(self, output: Path) -> None:
        spec = self.spec
        logger.info("%s: building locally for %s", spec.construct_path, spec.target.describe())
        builder = BasedLambdaLayerLocalBuilder(
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
        )
        builder.run(copy_python_to=output / "python")

    def _hand_off(self, output: Path) -> None:
        """Export the pinned requirements, with the step and the host's CA bundle, for the container."""
        pinned = export_requirements(self.spec.project, self.spec.options)
        stage_handoff(output, pinned, host_ca_bundle())
