"""The example app for synth benchmarks, in two forms (run by bench/run.py, not by hand).

    python bench/synth_app.py construct          # examples/app.py's stack, PythonDependencyLayer
    python bench/synth_app.py prebuilt DIR       # same layers as plain Code.from_asset(DIR/<id>)

The output folder comes from CDK_OUTDIR, as when the CDK CLI runs an app.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from app import HERE, LayersStack

LAYERS = {
    "UvDeps": (lambda_.Runtime.PYTHON_3_12, lambda_.Architecture.ARM_64),
    "PoetryDeps": (lambda_.Runtime.PYTHON_3_13, lambda_.Architecture.X86_64),
    "PipDeps": (lambda_.Runtime.PYTHON_3_12, lambda_.Architecture.X86_64),
    "OrdersDeps": (lambda_.Runtime.PYTHON_3_12, lambda_.Architecture.X86_64),
    "BillingDeps": (lambda_.Runtime.PYTHON_3_12, lambda_.Architecture.X86_64),
}


class PrebuiltStack(cdk.Stack):
    """The same resources, with each layer's finished python/ folder given as a plain asset."""

    def __init__(self, scope: cdk.App, construct_id: str, prebuilt: Path) -> None:
        super().__init__(scope, construct_id)
        layers = {
            name: lambda_.LayerVersion(
                self,
                name,
                code=lambda_.Code.from_asset(str(prebuilt / name)),
                compatible_runtimes=[runtime],
                compatible_architectures=[arch],
            )
            for name, (runtime, arch) in LAYERS.items()
        }
        lambda_.Function(
            self,
            "Hello",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.handler",
            code=lambda_.Code.from_asset(str(HERE / "handler")),
            layers=[layers["UvDeps"]],
        )
        for service in ("orders", "billing"):
            lambda_.Function(
                self,
                f"{service.title()}Api",
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler=f"{service}.handler.handler",
                code=lambda_.Code.from_asset(str(HERE / "workspace" / "services" / service / "src")),
                layers=[layers[f"{service.title()}Deps"]],
            )


if __name__ == "__main__":
    app = cdk.App()
    if sys.argv[1] == "construct":
        LayersStack(app, "CdkLambdaLayerExample")
    else:
        PrebuiltStack(app, "CdkLambdaLayerExample", Path(sys.argv[2]))
    app.synth()
