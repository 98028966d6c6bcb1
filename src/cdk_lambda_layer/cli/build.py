"""`cdk-lambda-layer build`: the arguments as builder options, the summary on stderr, ``--json`` on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..builders.modes import build_layer
from ..builders.result import LayerBuildResult
from ..builders.summary import closing_lines
from ..core.credentials import IndexCredentials
from ..errors import ProjectError
from ..options import LAMBDA_UNZIPPED_LIMIT
from ..project.load import load_project
from ..target import LambdaTarget


def result_json(result: LayerBuildResult) -> dict[str, Any]:
    return {
        "layer_zip": str(result.layer_zip) if result.layer_zip else None,
        "fingerprint": result.fingerprint,
        "python_dir": str(result.python_dir),
        "manifest": str(result.layout.manifest),
        "packages": [{"name": p.name, "version": p.version, "bytes": p.size} for p in result.packages],
        "cached": result.cached,
        "cache": result.source,
        "remote": result.remote.as_json() if result.remote is not None else None,
        "warnings": list(result.warnings),
        "bytecode": result.manifest.get("bytecode"),
        "import_check": result.manifest.get("import_check"),
        "import_times": result.manifest.get("import_times") or {},
        "local_packages": result.manifest.get("local_packages", []),
        "unzipped_bytes": result.unzipped_bytes,
        "zipped_bytes": result.zipped_bytes,
        "target": result.manifest["target"],
        "steps": {name: round(seconds, 3) for name, seconds in result.steps},
    }


_REPEATED = (("exclude", "--exclude"), ("provided", "--provided"), ("group", "--group"), ("extra", "--extra"))


def _refuse_commas(args: argparse.Namespace) -> None:
    """``--exclude boto3,botocore`` would be one name no package has: say how to give several."""
    for dest, flag in _REPEATED:
        for value in getattr(args, dest):
            if "," in value:
                names = [n.strip() for n in value.split(",") if n.strip()]
                repeated = " ".join(f"{flag} {n}" for n in names)
                raise ProjectError(f"{flag} takes one name, got {value!r}: repeat the flag for each one: {repeated}.")


def build_command(args: argparse.Namespace) -> int:
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
        "remote_cache": args.remote_cache,
        "remote_cache_read_only": args.remote_cache_read_only,
        "package_cache": getattr(args, "package_cache", True),
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
