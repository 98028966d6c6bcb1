"""Example CDK app: three dependency layers (pip, Poetry, uv; one arm64) and a Function.

npx aws-cdk@2 synth        # cdk.json at the repository root runs this file
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_lambda_layer import AWS_RUNTIME_PACKAGES, PythonDependencyLayer

HERE = Path(__file__).parent
PROJECTS = HERE / "projects"


class LayersStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        uv_layer = PythonDependencyLayer(
            self,
            "UvDeps",
            project=PROJECTS / "uv_app",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            description="pydantic + orjson (uv.lock)",
        )
        PythonDependencyLayer(
            self,
            "PoetryDeps",
            project=PROJECTS / "poetry_app",
            runtime=lambda_.Runtime.PYTHON_3_13,
            description="requests (poetry.lock)",
        )
        PythonDependencyLayer(
            self,
            "PipDeps",
            project=PROJECTS / "pip_app",
            runtime=lambda_.Runtime.PYTHON_3_12,
            exclude=AWS_RUNTIME_PACKAGES,
            description="aws-lambda-powertools (requirements.txt)",
        )
        lambda_.Function(
            self,
            "Hello",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.handler",
            code=lambda_.Code.from_asset(str(HERE / "handler")),
            layers=[uv_layer],
        )


if __name__ == "__main__":
    app = cdk.App()
    LayersStack(app, "CdkLambdaLayerExample")
    app.synth()
