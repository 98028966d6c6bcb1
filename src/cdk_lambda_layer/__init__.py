"""cdk-lambda-layer: AWS Lambda layers from a Python project's lock, locally or in a container.

The builders run without CDK; ``PythonDependencyLayer`` (in ``cdk_lambda_layer.layer``)
is the CDK construct and is imported lazily so that scripts using only the builders do
not pay for loading aws-cdk-lib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .builder import (
    BasedLambdaLayerLocalBuilder,
    LayerBuildResult,
    PipBasedLambdaLayerLocalBuilder,
    PoetryBasedLambdaLayerLocalBuilder,
    UVBasedLambdaLayerLocalBuilder,
)
from .container import ContainerOptions
from .container_builder import (
    BasedLambdaLayerContainerBuilder,
    PipBasedLambdaLayerContainerBuilder,
    PoetryBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerContainerBuilder,
)
from .credentials import IndexCredentials, codeartifact_credentials
from .errors import (
    BuildFolderError,
    BuildImageError,
    CacheFolderError,
    CommandError,
    DockerUnavailableError,
    InterpreterNotFoundError,
    LayerBuildError,
    LayerTooLargeError,
    NoWheelError,
    PackageIndexError,
    PackageNotFoundError,
    ProjectError,
    StaleLockError,
    TargetError,
    ToolNotFoundError,
    VerificationError,
)
from .fingerprint import LAYER_FORMAT_VERSION, fingerprint
from .layout import LayerPathLayout
from .options import AWS_RUNTIME_PACKAGES, LAMBDA_UNZIPPED_LIMIT, LayerOptions
from .project import Project, Tool, load_project
from .target import Architecture, LambdaTarget

if TYPE_CHECKING:
    from .layer import PythonDependencyLayer

__version__ = "0.1.0"

__all__ = [
    "AWS_RUNTIME_PACKAGES",
    "LAMBDA_UNZIPPED_LIMIT",
    "LAYER_FORMAT_VERSION",
    "Architecture",
    "BasedLambdaLayerContainerBuilder",
    "BasedLambdaLayerLocalBuilder",
    "BuildFolderError",
    "BuildImageError",
    "CacheFolderError",
    "CommandError",
    "ContainerOptions",
    "DockerUnavailableError",
    "IndexCredentials",
    "InterpreterNotFoundError",
    "LambdaTarget",
    "LayerBuildError",
    "LayerBuildResult",
    "LayerOptions",
    "LayerPathLayout",
    "LayerTooLargeError",
    "NoWheelError",
    "PackageIndexError",
    "PackageNotFoundError",
    "PipBasedLambdaLayerContainerBuilder",
    "PipBasedLambdaLayerLocalBuilder",
    "PoetryBasedLambdaLayerContainerBuilder",
    "PoetryBasedLambdaLayerLocalBuilder",
    "Project",
    "ProjectError",
    "PythonDependencyLayer",
    "StaleLockError",
    "TargetError",
    "Tool",
    "ToolNotFoundError",
    "UVBasedLambdaLayerContainerBuilder",
    "UVBasedLambdaLayerLocalBuilder",
    "VerificationError",
    "codeartifact_credentials",
    "fingerprint",
    "load_project",
]


def __getattr__(name: str) -> Any:
    if name == "PythonDependencyLayer":
        from .layer import PythonDependencyLayer

        return PythonDependencyLayer
    raise AttributeError(f"module 'cdk_lambda_layer' has no attribute {name!r}")
