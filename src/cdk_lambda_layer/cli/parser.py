"""The command line's arguments, in one argparse parser (the documentation's CLI reference is generated
from it: docs/gen_cli.py)."""

from __future__ import annotations

import argparse
import importlib.metadata
import math
from typing import Any

from ..builders.modes import BUILD_MODES
from ..options import LAMBDA_UNZIPPED_LIMIT
from ..package.archive import DEFAULT_ZIP_LEVEL
from ..target import DEFAULT_PYTHON, PYTHON_RUNTIMES


def installed_version() -> str:
    """The installed distribution's version (the package's own when run from a source tree)."""
    try:
        return importlib.metadata.version("cdk-lambda-layer")
    except importlib.metadata.PackageNotFoundError:
        from ..core.version import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdk-lambda-layer",
        description="Build AWS Lambda layers from a Python project's lock (pip, Poetry or uv).",
    )
    parser.add_argument("--version", action="version", version=f"cdk-lambda-layer {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build",
        help="build build/lambda/layer/layer.zip for a Lambda runtime and CPU",
        description="Export the lock, install for the Lambda target, trim, verify and zip.",
    )
    build.add_argument("project", nargs="?", default=".", help="project folder or pyproject.toml (default: .)")
    build.add_argument(
        "--python",
        default=DEFAULT_PYTHON,
        help=f"Lambda Python version: {', '.join(PYTHON_RUNTIMES)} (default: {DEFAULT_PYTHON})",
    )
    build.add_argument("--arch", default="x86_64", help="CPU: x86_64 or arm64 (default: x86_64)")
    build.add_argument(
        "--tool",
        default="auto",
        choices=["auto", "pip", "poetry", "uv"],
        help="who manages the project (default: detect from the lock)",
    )
    build.add_argument(
        "--build",
        default="auto",
        choices=BUILD_MODES,
        help="local (wheels for the target, no Docker), container (in the build image), or auto: "
        "local unless a package has no wheel for the target (default: auto)",
    )
    build.add_argument(
        "--image", default=None, help="build image for --build container (default: the SAM build image of the runtime)"
    )
    build.add_argument("--installer", default="uv", choices=["uv", "pip"], help="who installs (default: uv)")
    build.add_argument(
        "--package",
        default=None,
        metavar="NAME",
        help="the uv workspace member to build, when PROJECT is the workspace",
    )
    build.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PKG",
        help="leave a distribution out of the layer (repeat the flag for each), e.g. --exclude boto3; no package "
        "that stays may need it, except boto3, botocore and s3transfer (the runtime has them)",
    )
    build.add_argument(
        "--provided",
        action="append",
        default=[],
        metavar="PKG",
        help="leave out a distribution another layer or the function provides, and trust it for the packages "
        "that need it (repeatable)",
    )
    build.add_argument(
        "--include-project",
        action="store_true",
        help="put the project's own package into the layer too (default: its dependencies only)",
    )
    build.add_argument(
        "--bytecode",
        dest="bytecode",
        action="store_true",
        default="auto",
        help="require hash-based .pyc compiled by the target's Python (default: when one is on this machine)",
    )
    build.add_argument("--no-bytecode", dest="bytecode", action="store_false", help="ship no bytecode")
    build.add_argument(
        "--invalidation",
        default="unchecked-hash",
        choices=["unchecked-hash", "checked-hash"],
        help="how the runtime validates the .pyc (default: unchecked-hash)",
    )
    build.add_argument(
        "--no-import-check",
        dest="import_check",
        action="store_false",
        help="do not import the layer's modules with the target's Python",
    )
    build.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="GROUP",
        help="include a dependency group (repeatable; dev groups are out by default)",
    )
    build.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="EXTRA",
        help="include an optional-dependency extra (repeatable)",
    )
    build.add_argument(
        "--no-locked",
        dest="locked",
        action="store_false",
        help="build a uv project from uv.lock even if it is stale (Poetry always refuses a stale lock, so this "
        "does not apply to Poetry projects)",
    )
    build.add_argument("--build-dir", default=None, help="put lambda/layer/ here instead of <project>/build")
    build.add_argument(
        "--max-size",
        type=megabytes,
        default=None,
        metavar="MB",
        help=f"largest unzipped layer accepted, in MB of 10^6 bytes like cache prune --max-size (default: "
        f"Lambda's 250 MiB = {LAMBDA_UNZIPPED_LIMIT / 1e6:.1f} MB)",
    )
    build.add_argument(
        "--zip-level",
        type=int,
        default=DEFAULT_ZIP_LEVEL,
        choices=range(10),
        metavar="0-9",
        help=f"zlib level of layer.zip (default: {DEFAULT_ZIP_LEVEL}; 1 is ~2.5x faster, ~15%% larger)",
    )
    build.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="NAME",
        help="log in to private index NAME with CDK_LAYER_INDEX_<NAME>_URL/_USERNAME/_PASSWORD from the environment "
        "(repeatable)",
    )
    build.add_argument(
        "--cache-dir",
        default=None,
        help="layer cache folder (default: $CDK_LAYER_CACHE_DIR or ~/.cache/cdk-lambda-layer/layers)",
    )
    build.add_argument("--no-cache", dest="cache_dir", action="store_false", help="neither read nor fill the cache")
    build.add_argument(
        "--remote-cache",
        default=None,
        metavar="URL",
        help="s3://bucket/prefix of a layer cache shared by machines: looked up after the local cache, filled by "
        "builds (default: $CDK_LAYER_REMOTE_CACHE, else none)",
    )
    build.add_argument(
        "--remote-cache-read-only",
        action="store_true",
        default=None,
        help="take hits from the remote cache, never write to it (pull requests, untrusted branches; default: "
        "$CDK_LAYER_REMOTE_CACHE_READ_ONLY)",
    )
    build.add_argument("--no-remote-cache", dest="remote_cache", action="store_false", help="do not use a remote cache")
    build.add_argument(
        "--no-package-cache",
        dest="package_cache",
        action="store_false",
        help="build every package anew (the layer cache still serves finished layers)",
    )
    build.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    build.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    cache_parser(commands)
    return parser


def cache_parser(commands: Any) -> None:
    cache = commands.add_parser(
        "cache",
        help="list, size and prune the layer cache",
        description="The cache of finished layers, keyed by fingerprint.",
    )
    cache.add_argument("--cache-dir", default=None, help="cache folder (default: as for build)")
    actions = cache.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="entries, newest use first, with sizes")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON on stdout")
    listing.add_argument(
        "--remote",
        default=None,
        metavar="URL",
        help="list the records of the remote cache at s3://bucket/prefix instead of the local cache",
    )
    prune = actions.add_parser("prune", help="remove entries; says what it removed")
    for action in (listing, prune):  # before or after the action: `cache list --cache-dir X` works too
        action.add_argument("--cache-dir", default=argparse.SUPPRESS, help="cache folder (default: as for build)")
    prune.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="not used for DAYS days")
    prune.add_argument(
        "--max-size", type=float, default=None, metavar="MB", help="then the least recently used beyond MB megabytes"
    )
    prune.add_argument("--all", action="store_true", help="remove every entry")


def megabytes(text: str) -> float:
    """--max-size: a positive number of MB (10^6 bytes), as cache prune --max-size takes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MB (e.g. --max-size 200)") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of MB (e.g. --max-size 200)")
    return value


#: Flags that take one name each, repeated for several (a comma is never part of a name).
