"""Build a Lambda layer from a pip project (requirements.txt) on this machine, for any Lambda target.

requirements.txt holds the exact pins (from `uv pip compile` or pip-tools; without one,
[project].dependencies are resolved); the project's own code stays out of the layer.

The wheels are picked for the Lambda runtime and CPU, not for this machine (an arm64 layer builds
on an x86_64 laptop), and the layer is verified for them. No Docker needed.

    python examples/builders/example_1_1_build_lambda_layer_using_pip_in_local.py --python 3.12 --arch arm64
"""

import argparse
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from cdk_lambda_layer import LayerBuildError, PipBasedLambdaLayerLocalBuilder

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent / "projects" / "pip_app"  # pyproject.toml + requirements.txt, every pin exact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=HERE / "build" / "pip_local", help="default: %(default)s")
    parser.add_argument("--python", default="3.12", help="Lambda Python version (default: %(default)s)")
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"], help="default: %(default)s")
    args = parser.parse_args()
    try:
        builder = PipBasedLambdaLayerLocalBuilder(
            PROJECT, python=args.python, architecture=args.arch, build_dir=args.build_dir
        )
        result = builder.run()  # <build-dir>/lambda/layer/{repo/,artifacts/python/,layer.zip,manifest.json}
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    print(f"layer.zip: {result.layer_zip}")
    print(f"size: {result.zipped_bytes / 1e6:.1f} MB zipped, {result.unzipped_bytes / 1e6:.1f} MB unzipped")
    print(f"packages ({'from the layer cache' if result.cached else 'built'}):")
    for package in result.packages:
        print(f"  {canonicalize_name(package.name)}=={package.version}")
    largest = sorted(result.packages, key=lambda p: p.size, reverse=True)[:3]
    print("largest:", ", ".join(f"{canonicalize_name(p.name)} {p.size / 1e6:.1f} MB" for p in largest))
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
