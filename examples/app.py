"""Example CDK app: dependency layers for pip, Poetry and uv projects (one arm64), and a uv
workspace whose two services share one library, each service with its own layer.

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
WORKSPACE = HERE / "workspace"


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
        self.workspace_services()
        lambda_.Function(
            self,
            "Hello",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.handler",
            code=lambda_.Code.from_asset(str(HERE / "handler")),
            layers=[uv_layer],
        )

    def workspace_services(self) -> None:
        """One layer per service of the uv workspace; the shared library is built into both."""
        for service in ("orders", "billing"):
            layer = PythonDependencyLayer(
                self,
                f"{service.title()}Deps",
                project=WORKSPACE / "services" / service,
                runtime=lambda_.Runtime.PYTHON_3_12,
                description=f"{service}'s dependencies, with the workspace's ledger library (uv workspace)",
            )
            lambda_.Function(
                self,
                f"{service.title()}Api",
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler=f"{service}.handler.handler",
                code=lambda_.Code.from_asset(str(WORKSPACE / "services" / service / "src")),
                layers=[layer],
            )


if __name__ == "__main__":
    app = cdk.App()
    LayersStack(app, "CdkLambdaLayerExample")
    app.synth()
