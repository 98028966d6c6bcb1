"""The in-container step: install the handed-off requirements with the image's pip, trim, check.

Runs inside the build image (the SAM image for the runtime and CPU), copied there with
the modules it uses (trim, inventory, native, errors: all standard library only), for
both the standalone container builders and the construct's CDK Docker bundling. The
image's own Python and pip decide the wheel tags and build sdists, so the layer matches
the Lambda environment. Only ``python/`` is left in the output folder.

    env PYTHONPATH=<out>/.cdk-lambda-layer python -m cdk_lambda_layer_step --output <out> ...
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import LayerBuildError, LayerTooLargeError
from .inventory import tree_size
from .native import check_native_code
from .trim import trim

HANDOFF_DIR = ".cdk-lambda-layer"
STEP_PACKAGE = "cdk_lambda_layer_step"
CA_FILE = "host-ca.pem"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=STEP_PACKAGE)
    parser.add_argument("--output", required=True, help="folder that gets python/ (the hand-off is inside)")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--elf-machine", type=int, required=True)
    parser.add_argument("--describe", required=True, help="the target, for messages")
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--no-deps", action="store_true", help="the requirements pin the whole closure")
    return parser.parse_args(argv)


def pip_environment(handoff: Path) -> dict[str, str]:
    """pip's environment: trust the host's CA bundle when the host handed one over.

    The bundle travels in the hand-off folder rather than as a mount, so no host path
    reaches CDK's asset hash; behind a TLS-intercepting proxy pip then just works.
    """
    env = dict(os.environ)
    ca = handoff / CA_FILE
    if ca.is_file():
        env.update(dict.fromkeys(("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"), str(ca)))
    return env


def pip_install(site: Path, handoff: Path, *, no_deps: bool) -> int:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "--target",
        str(site),
        "-r",
        str(handoff / "requirements.txt"),
    ]
    if no_deps:
        argv.append("--no-deps")
    print("+ " + " ".join(argv), flush=True)
    return subprocess.call(argv, env=pip_environment(handoff))


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    output = Path(args.output)
    site, handoff = output / "python", output / HANDOFF_DIR
    code = pip_install(site, handoff, no_deps=args.no_deps)
    if code != 0:
        return code
    try:
        trim(site, args.exclude)
        check_native_code(site, args.elf_machine, args.describe)
        size = tree_size(site)
        if size > args.max_bytes:
            raise LayerTooLargeError(
                f"The layer is {size / 1e6:.1f} MB unzipped; Lambda allows {args.max_bytes / 1e6:.1f} MB. "
                "Exclude what the runtime provides, drop unused dependencies, or split the layer."
            )
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    shutil.rmtree(handoff, ignore_errors=True)
    return 0
