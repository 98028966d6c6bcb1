"""Build a Lambda layer from a pip project (requirements.txt) in the Lambda build image, through Docker.

requirements.txt holds the exact pins (from `uv pip compile` or pip-tools; without one,
[project].dependencies are resolved); the project's own code stays out of the layer.

The image's Python installs the pins (building any package without a wheel from its source),
compiles and imports them; this machine exports the lock, verifies and zips. The default image is
AWS SAM's build image for the runtime and CPU, pulled from its registry; without one, pass a local
image and its Python version:

    python examples/builders/example_1_2_build_lambda_layer_using_pip_in_container.py \
        --image my/build-image:3.11 --python 3.11
"""

import argparse
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from cdk_lambda_layer import DockerUnavailableError, LayerBuildError, PipBasedLambdaLayerContainerBuilder

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent / "projects" / "pip_app"  # pyproject.toml + requirements.txt, every pin exact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=HERE / "build" / "pip_container", help="default: %(default)s")
    parser.add_argument("--python", default="3.12", help="Lambda Python version, the image's (default: %(default)s)")
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"], help="default: %(default)s")
    parser.add_argument(
        "--image",
        help="build image (default: public.ecr.aws/sam/build-python<python>:latest-<arch>, pulled from its "
        "registry); without a registry, pass a local image",
    )
    args = parser.parse_args()
    try:
        builder = PipBasedLambdaLayerContainerBuilder(
            PROJECT, image=args.image, python=args.python, architecture=args.arch, build_dir=args.build_dir
        )
        result = builder.run()  # <build-dir>/lambda/layer/{repo/,artifacts/python/,layer.zip,manifest.json}
    except DockerUnavailableError as exc:  # no engine answers, or the image is neither here nor pullable
        print("error:", " ".join(str(exc).split()), file=sys.stderr)  # one line, whatever Docker said
        return exc.exit_code
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    print(f"layer.zip: {result.layer_zip}")
    print(f"size: {result.zipped_bytes / 1e6:.1f} MB zipped, {result.unzipped_bytes / 1e6:.1f} MB unzipped")
    print(f"packages ({'from the layer cache' if result.cached else f'built in {builder.image}'}):")
    for package in result.packages:
        print(f"  {canonicalize_name(package.name)}=={package.version}")
    largest = sorted(result.packages, key=lambda p: p.size, reverse=True)[:3]
    print("largest:", ", ".join(f"{canonicalize_name(p.name)} {p.size / 1e6:.1f} MB" for p in largest))
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
