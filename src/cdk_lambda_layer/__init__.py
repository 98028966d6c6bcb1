"""cdk-lambda-layer: AWS Lambda layers from a Python project's lock, locally or in a container.

The builders run without CDK; ``PythonDependencyLayer`` (in ``cdk_lambda_layer.cdk.layer``)
is the CDK construct and is imported lazily so that scripts using only the builders do
not pay for loading aws-cdk-lib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .builders.container import (
    BasedLambdaLayerContainerBuilder,
    PipBasedLambdaLayerContainerBuilder,
    PoetryBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerContainerBuilder,
)
from .builders.local import (
    BasedLambdaLayerLocalBuilder,
    PipBasedLambdaLayerLocalBuilder,
    PoetryBasedLambdaLayerLocalBuilder,
    UVBasedLambdaLayerLocalBuilder,
)
from .builders.result import LayerBuildResult
from .core.credentials import IndexCredentials, codeartifact_credentials
from .core.version import __version__ as __version__
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
    RemoteCacheError,
    StaleLockError,
    TargetError,
    ToolNotFoundError,
    VerificationError,
)
from .identity.fingerprint import LAYER_FORMAT_VERSION, fingerprint
from .install.container.options import ContainerOptions
from .options import AWS_RUNTIME_PACKAGES, LAMBDA_UNZIPPED_LIMIT, LayerOptions
from .package.layout import LayerPathLayout
from .project.discover import Tool
from .project.load import Project, load_project
from .target import Architecture, LambdaTarget

if TYPE_CHECKING:
    from .cdk.layer import PythonDependencyLayer


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
    "RemoteCacheError",
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
        from .cdk.layer import PythonDependencyLayer

        return PythonDependencyLayer
    raise AttributeError(f"module 'cdk_lambda_layer' has no attribute {name!r}")
