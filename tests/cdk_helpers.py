"""Small helpers to synthesize stacks with PythonDependencyLayer in tests."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from cdk_lambda_layer import PythonDependencyLayer

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synth_layer(
    project: Path, *, outdir: Path | None = None, context: dict | None = None, with_function=False, **props
) -> tuple[Template, PythonDependencyLayer, cdk.Stack]:
    app = cdk.App(outdir=str(outdir) if outdir else None, context=context)
    stack = cdk.Stack(app, "Stack")
    layer = PythonDependencyLayer(stack, "Deps", project=project, **props)
    if with_function:
        lambda_.Function(
            stack,
            "Fn",
            runtime=props.get("runtime", lambda_.Runtime.PYTHON_3_12),
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(e, c): return 1"),
            layers=[layer],
        )
    return Template.from_stack(stack), layer, stack


def layer_s3_key(template: Template) -> str:
    (layer,) = template.find_resources("AWS::Lambda::LayerVersion").values()
    return layer["Properties"]["Content"]["S3Key"]
