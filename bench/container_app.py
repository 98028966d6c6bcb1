"""One-layer apps for the container benchmark (run by bench/run.py).

    python bench/container_app.py ours PROJECT IMAGE   # PythonDependencyLayer, build="container"
    python bench/container_app.py plv PROJECT IMAGE    # aws-cdk's PythonLayerVersion, same image

Both build for python3.11 x86_64 in IMAGE; CDK_OUTDIR sets the output folder.
PythonLayerVersion needs the host's CA bundle mounted by hand behind a TLS proxy; ours
hands it over by itself.
"""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

from cdk_lambda_layer import PythonDependencyLayer

CA = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
INSIDE_CA = "/etc/ssl/certs/host-ca.pem"


def peer_layer(stack: cdk.Stack, project: str, image: str) -> None:
    from aws_cdk.aws_lambda_python_alpha import BundlingOptions, PythonLayerVersion

    PythonLayerVersion(
        stack,
        "Layer",
        entry=project,
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
        bundling=BundlingOptions(
            image=cdk.DockerImage.from_registry(image),
            volumes=[cdk.DockerVolume(host_path=CA, container_path=INSIDE_CA)],
            environment={"PIP_CERT": INSIDE_CA, "SSL_CERT_FILE": INSIDE_CA},
        ),
    )


if __name__ == "__main__":
    mode, project, image = sys.argv[1:4]
    app = cdk.App()
    stack = cdk.Stack(app, "Bench")
    if mode == "plv":
        peer_layer(stack, project, image)
    else:
        PythonDependencyLayer(
            stack, "Layer", project=project, runtime=lambda_.Runtime.PYTHON_3_11, build="container", image=image
        )
    app.synth()
