"""CDK bundling for a layer: the local path (our builder) and the Docker path (SAM image).

CDK calls ``try_bundle`` first. It builds the layer on this machine and answers True,
or, when the build must run in the image (build="container", or build="auto" and no
wheel exists for the target), exports the pinned requirements into the bundling
output folder and answers False, so CDK's own Docker bundling runs ``container_command``
in the SAM build image. The host exports because the tool (uv, Poetry) and the lock are
here; the image only needs pip, which every SAM build image has.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsii
from aws_cdk import ILocalBundling

from .builder import BasedLambdaLayerLocalBuilder
from .errors import NoWheelError
from .export import export_requirements
from .options import LayerOptions
from .project import Project
from .target import LambdaTarget

logger = logging.getLogger(__name__)

BuildMode = Literal["auto", "local", "container"]

#: Where the host leaves the pinned requirements for the container, inside /asset-output.
HANDOFF_DIR = ".cdk-lambda-layer"
ASSET_OUTPUT = "/asset-output"


def container_command(target: LambdaTarget) -> list[str]:
    """The command CDK runs in the build image: install the handed-off requirements.

    The image's own pip and Python decide the tags (sdists are built there); caches and
    console scripts are dropped and the hand-off folder removed, so only python/ is left.
    """
    site = f"{ASSET_OUTPUT}/python"
    requirements = f"{ASSET_OUTPUT}/{HANDOFF_DIR}/requirements.txt"
    install = [
        "python",
        "-m",
        "pip",
        "install",
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "--target",
        site,
        "-r",
        requirements,
    ]
    steps = [
        shlex.join(install),
        shlex.join(["find", site, "-name", "__pycache__", "-type", "d", "-prune", "-exec", "rm", "-rf", "{}", "+"]),
        shlex.join(["rm", "-rf", f"{site}/bin", f"{ASSET_OUTPUT}/{HANDOFF_DIR}"]),
    ]
    return ["bash", "-c", "set -euo pipefail; " + " && ".join(steps)]


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
        """Export the pinned requirements where the container will find them."""
        handoff = output / HANDOFF_DIR
        handoff.mkdir(parents=True, exist_ok=True)
        pinned = export_requirements(self.spec.project, self.spec.options)
        (handoff / "requirements.txt").write_text(pinned.text)
