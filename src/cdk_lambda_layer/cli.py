"""The command line: `cdk-lambda-layer build [PROJECT] --python 3.12 --arch arm64 ...`.

Progress and the summary go to stderr; `--json` prints one JSON object on stdout for
scripts (keys: layer_zip, fingerprint, packages, ...). Errors print their message and
exit with the error's code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .archive import DEFAULT_ZIP_LEVEL
from .builder import LayerBuildResult
from .cache import MARKER, CacheEntry, LayerCache, resolve_cache_dir
from .credentials import IndexCredentials
from .errors import CacheFolderError, LayerBuildError, ProjectError, VerificationError
from .modes import BUILD_MODES, build_layer
from .options import LAMBDA_UNZIPPED_LIMIT
from .project import load_project
from .summary import closing_lines
from .target import DEFAULT_PYTHON, PYTHON_RUNTIMES, LambdaTarget


def installed_version() -> str:
    """The installed distribution's version (the package's own when run from a source tree)."""
    try:
        return importlib.metadata.version("cdk-lambda-layer")
    except importlib.metadata.PackageNotFoundError:
        from . import __version__

        return __version__


def _parser() -> argparse.ArgumentParser:
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
        type=_megabytes,
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
    build.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    build.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    _cache_parser(commands)
    return parser


def _cache_parser(commands: Any) -> None:
    cache = commands.add_parser(
        "cache",
        help="list, size and prune the layer cache",
        description="The cache of finished layers, keyed by fingerprint.",
    )
    cache.add_argument("--cache-dir", default=None, help="cache folder (default: as for build)")
    actions = cache.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="entries, newest use first, with sizes")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON on stdout")
    prune = actions.add_parser("prune", help="remove entries; says what it removed")
    for action in (listing, prune):  # before or after the action: `cache list --cache-dir X` works too
        action.add_argument("--cache-dir", default=argparse.SUPPRESS, help="cache folder (default: as for build)")
    prune.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="not used for DAYS days")
    prune.add_argument(
        "--max-size", type=float, default=None, metavar="MB", help="then the least recently used beyond MB megabytes"
    )
    prune.add_argument("--all", action="store_true", help="remove every entry")


def _cache(args: argparse.Namespace) -> int:
    root = resolve_cache_dir(args.cache_dir)
    if root is None:
        print("the layer cache is turned off (CDK_LAYER_CACHE_DIR)", file=sys.stderr)
        return 0
    cache = LayerCache(root)
    empty = root.is_dir() and not any(root.iterdir())  # a new cache (e.g. CI restored nothing): no entries
    if root.exists() and not empty and not cache.is_ours():
        raise CacheFolderError(
            f"{root} is not a cdk-lambda-layer cache (no {MARKER} in it): nothing was listed or removed. "
            "Check --cache-dir / CDK_LAYER_CACHE_DIR."
        )
    try:
        if args.action == "list":
            return _cache_list(cache, json_out=args.json)
        return _cache_prune(cache, args, empty=empty)
    except OSError as exc:  # a read-only or vanished folder, an entry that cannot be read
        raise CacheFolderError(
            f"The layer cache at {root} cannot be {'read' if args.action == 'list' else 'pruned'} "
            f"({exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}). Check the folder's "
            "permissions, or point --cache-dir / CDK_LAYER_CACHE_DIR elsewhere."
        ) from exc


def _cache_list(cache: LayerCache, *, json_out: bool) -> int:
    rows = [_entry_row(entry) for entry in cache.entries()]
    leftovers = cache.leftovers()
    left_bytes = sum(_folder_bytes(p) for p in leftovers)
    if json_out:
        document = {"cache_dir": str(cache.root), "entries": rows, "leftover_bytes": left_bytes}
        print(json.dumps(document, indent=2))
    if rows:
        print(f"{'FINGERPRINT':<16}  {'SIZE':>11}  {'LAST USED':<16}  PROJECT TARGET", file=sys.stderr)
    for row in rows:
        print(
            f"{row['fingerprint'][:16]}  {row['bytes'] / 1e6:8.1f} MB  {row['last_used']:<16}  "
            f"{row['project']} {row['target']}",
            file=sys.stderr,
        )
    total = sum(r["bytes"] for r in rows)
    print(f"{len(rows)} layers, {total / 1e6:.1f} MB in {cache.root}", file=sys.stderr)
    if leftovers:
        print(
            f"{len(leftovers)} unfinished stores of killed builds, {left_bytes / 1e6:.1f} MB "
            "(cache prune removes them)",
            file=sys.stderr,
        )
    return 0


def _cache_prune(cache: LayerCache, args: argparse.Namespace, *, empty: bool) -> int:
    if not (args.all or args.older_than is not None or args.max_size is not None):
        print("error: say what to prune: --older-than DAYS, --max-size MB or --all", file=sys.stderr)
        return 2
    if empty:  # nothing to remove, and no marker yet for prune to check
        print(f"removed 0 layers from {cache.root}", file=sys.stderr)
        return 0
    leftovers = cache.leftovers()
    removed = cache.prune(
        older_than_days=0 if args.all else args.older_than,
        keep_bytes=None if args.max_size is None else int(args.max_size * 1e6),
    )
    for entry in removed:
        print(f"removed {entry.fingerprint}", file=sys.stderr)
    for folder in leftovers:
        print(f"removed unfinished store {folder.name}", file=sys.stderr)
    print(f"removed {len(removed)} layers from {cache.root}", file=sys.stderr)
    return 0


def _folder_bytes(folder: Path) -> int:
    return sum(os.lstat(Path(d, n)).st_size for d, _dirs, names in os.walk(folder) for n in names)


def _entry_row(entry: CacheEntry) -> dict[str, Any]:
    try:
        manifest = entry.metadata()["manifest"]
        project = manifest.get("project", "?")
        target = f"{manifest['target']['runtime']} {manifest['target']['architecture']}"
    except (OSError, ValueError, KeyError, VerificationError):
        project, target = "?", "(incomplete)"
    last = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used)) if project != "?" else "-"
    return {
        "fingerprint": entry.fingerprint,
        "bytes": entry.size,
        "last_used": last,
        "project": project,
        "target": target,
    }


def result_json(result: LayerBuildResult) -> dict[str, Any]:
    return {
        "layer_zip": str(result.layer_zip) if result.layer_zip else None,
        "fingerprint": result.fingerprint,
        "python_dir": str(result.python_dir),
        "manifest": str(result.layout.manifest),
        "packages": [{"name": p.name, "version": p.version, "bytes": p.size} for p in result.packages],
        "cached": result.cached,
        "warnings": list(result.warnings),
        "bytecode": result.manifest.get("bytecode"),
        "import_check": result.manifest.get("import_check"),
        "local_packages": result.manifest.get("local_packages", []),
        "unzipped_bytes": result.unzipped_bytes,
        "zipped_bytes": result.zipped_bytes,
        "target": result.manifest["target"],
        "steps": {name: round(seconds, 3) for name, seconds in result.steps},
    }


def _megabytes(text: str) -> float:
    """--max-size: a positive number of MB (10^6 bytes), as cache prune --max-size takes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MB (e.g. --max-size 200)") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of MB (e.g. --max-size 200)")
    return value


#: Flags that take one name each, repeated for several (a comma is never part of a name).
_REPEATED = (("exclude", "--exclude"), ("provided", "--provided"), ("group", "--group"), ("extra", "--extra"))


def _refuse_commas(args: argparse.Namespace) -> None:
    """``--exclude boto3,botocore`` would be one name no package has: say how to give several."""
    for dest, flag in _REPEATED:
        for value in getattr(args, dest):
            if "," in value:
                names = [n.strip() for n in value.split(",") if n.strip()]
                repeated = " ".join(f"{flag} {n}" for n in names)
                raise ProjectError(f"{flag} takes one name, got {value!r}: repeat the flag for each one: {repeated}.")


def _build(args: argparse.Namespace) -> int:
    def show(step: str, seconds: float) -> None:
        print(f"  {step:<12} {seconds:6.2f}s", file=sys.stderr)

    options = {
        "python": args.python,
        "architecture": args.arch,
        "tool": args.tool,
        "package": args.package,
        "groups": args.group,
        "extras": args.extra,
        "exclude": args.exclude,
        "provided": args.provided,
        "include_project": args.include_project,
        "bytecode": args.bytecode,
        "invalidation": args.invalidation,
        "import_check": args.import_check,
        "installer": args.installer,
        "locked": args.locked,
        "build_dir": args.build_dir,
        "max_unzipped_bytes": LAMBDA_UNZIPPED_LIMIT if args.max_size is None else int(args.max_size * 1e6),
        "zip_level": args.zip_level,
        "cache_dir": args.cache_dir,
        "credentials": [IndexCredentials.from_environment(name) for name in args.index],
        "on_step": show,
    }
    if args.image:
        options["image"] = args.image
    _refuse_commas(args)
    project = load_project(args.project, args.tool, package=args.package)
    target = LambdaTarget(python=args.python, architecture=args.arch)
    print(
        f"{project.describe()} -> {target.runtime_name} {target.architecture.value} (build: {args.build})",
        file=sys.stderr,
    )
    result = build_layer(args.project, build=args.build, **options)
    print(closing_lines(result), file=sys.stderr)
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return _cache(args) if args.command == "cache" else _build(args)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was published; the next run builds again", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
