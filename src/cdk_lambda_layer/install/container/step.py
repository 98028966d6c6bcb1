"""The in-container step: install the handed-off pins with the image's Python, trim, compile, check.

Runs inside the build image (the SAM image for the runtime and CPU), copied there with
the modules it uses (trim, inventory, native, bytecode, import_check, errors: all standard
library only), for both the standalone container builders and the construct's CDK Docker
bundling. The pins are exact and installed with ``--no-deps`` (the host's plan chose every
version for the target); the image's own Python decides the wheel tags and builds sdists,
so native code matches the Lambda environment. Bytecode is compiled and every top-level
module imported by that same Python. Only ``python/`` is left in the output folder (and,
when asked, a report for the host).

    env PYTHONPATH=<out>/.cdk-lambda-layer python -m cdk_lambda_layer_step --output <out> ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...core.elf import check_native_code
from ...core.files import tree_size, walk_files
from ...errors import LayerBuildError, LayerTooLargeError, VerificationError
from ..bytecode import compile_tree
from ..trim import trim

HANDOFF_DIR = ".cdk-lambda-layer"
STEP_PACKAGE = "cdk_lambda_layer_step"
CA_FILE = "host-ca.pem"
#: Where the host's uv binary is mounted when it can run in the container.
UV_IN_CONTAINER = "/opt/cdk-lambda-layer/bin/uv"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=STEP_PACKAGE)
    parser.add_argument("--output", required=True, help="folder that gets python/ (the hand-off is inside)")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--elf-machine", type=int, required=True)
    parser.add_argument("--describe", required=True, help="the target, for messages")
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--no-deps", action="store_true", help="the requirements pin the whole closure")
    parser.add_argument("--provided", action="append", default=[], help="trusted by the import check")
    parser.add_argument("--bytecode", choices=("none", "unchecked-hash", "checked-hash"), default="none")
    parser.add_argument("--import-check", action="store_true")
    parser.add_argument("--report", default=None, help="write the outcomes as JSON here (outside python/)")
    parser.add_argument(
        "--environment-on-stdin", action="store_true", help="read the installer's variables as a JSON line"
    )
    parser.add_argument(
        "--expect-python", default=None, help="the target's Python (X.Y): refuse an image that runs another one"
    )
    parser.add_argument(
        "--phase",
        choices=("all", "install", "finish"),
        default="all",
        help="install only (the first of two containers), the rest only (the second), or both in one",
    )
    return parser.parse_args(argv)


#: How long the step waits for the host to write the installer's variables (it does so right at start).
STDIN_TIMEOUT_SECONDS = 120


def read_environment(stream: Any = None, timeout: float = STDIN_TIMEOUT_SECONDS) -> dict[str, str]:
    """The installer's variables (index logins, proxies), one JSON object on standard input.

    They never are the container's own environment (Docker keeps that on disk) nor this process's
    (which code run by the import check could read in /proc/1/environ): only the installer gets them.
    """
    stream = stream or sys.stdin
    ready, _w, _x = select.select([stream], [], [], timeout)
    if not ready:
        raise LayerBuildError(f"the host wrote no settings on the step's standard input within {timeout:.0f} s")
    line = stream.readline()
    document = json.loads(line) if line.strip() else {}
    if not isinstance(document, dict):
        raise LayerBuildError("the settings on the step's standard input are not a JSON object")
    return {str(k): str(v) for k, v in document.items()}


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


def install_argv(site: Path, requirements: Path, *, no_deps: bool) -> list[str]:
    """uv when the host lent its binary (Linux host, same CPU), else the image's pip.

    Either way the image's interpreter decides the tags and builds sdists.
    """
    if Path(UV_IN_CONTAINER).is_file():
        argv = [
            UV_IN_CONTAINER,
            "pip",
            "install",
            "--target",
            str(site),
            "--python",
            sys.executable,
            "--link-mode",
            "copy",
            "--no-progress",
            "-r",
            str(requirements),
        ]
    else:
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
            str(requirements),
        ]
    return [*argv, "--no-deps"] if no_deps else argv


#: pip's settings that uv reads under its own names, so a lent uv honours what pip would.
PIP_TO_UV = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
    "PIP_CONSTRAINT": "UV_CONSTRAINT",
    "PIP_TRUSTED_HOST": "UV_INSECURE_HOST",
}
#: pip settings uv has no variable for, only a flag.
_FALSE = ("", "0", "false", "no", "off")


def pip_install(site: Path, handoff: Path, *, no_deps: bool, extra: dict[str, str] | None = None) -> int:
    argv = install_argv(site, handoff / "requirements.txt", no_deps=no_deps)
    env = {**pip_environment(handoff), **(extra or {})}
    if argv[0] == UV_IN_CONTAINER:
        env.update({uv: env[pip] for pip, uv in PIP_TO_UV.items() if pip in env and uv not in env})
        if env.get("PIP_NO_INDEX", "").strip().lower() not in _FALSE:
            argv.append("--no-index")
    print("+ " + " ".join(argv), flush=True)
    return subprocess.call(argv, env=env)


def import_check(site: Path, provided: Sequence[str]) -> dict[str, object]:
    """The layer's modules imported by this image's Python in a clean process (-I -S -B)."""
    script = Path(__file__).parents[1] / "import_check.py"
    argv = [sys.executable, "-I", "-S", "-B", str(script), str(site)]
    for name in provided:
        argv += ["--provided", name]
    # The packages' own code runs here: none of the step's environment (index tokens) goes with it.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    env["HOME"] = "/tmp"  # noqa: S108 - a scratch home inside the container
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd="/tmp")  # noqa: S108
    if done.returncode != 0:
        last = [line for line in done.stderr.splitlines() if line.startswith("importing ")]
        module = last[-1].removeprefix("importing ") if last else "?"
        raise VerificationError(
            f"Python {platform.python_version()} crashed importing the layer's module {module} "
            f"(exit {done.returncode}). Its native code does not load on this runtime."
        )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    failed = report.get("failed") or []
    if failed:
        lines = "\n".join(f"  - {f['module']}: {f['error']}" for f in failed)
        raise VerificationError(
            f"These modules of the layer do not import with Python {platform.python_version()} in the build "
            f"image:\n{lines}\nWays out: pin versions that support this runtime, add the missing package, or "
            "exclude the package that ships the module; import_check=False skips this check."
        )
    report["python"] = platform.python_version()
    return report


def finish(site: Path, args: argparse.Namespace) -> dict[str, object]:
    """Everything after the install, in the image: links refused, trim, bytecode, imports, CPU, size."""
    walk_files(site)
    trim(site, args.exclude)
    outcomes: dict[str, object] = {}
    if args.bytecode != "none":
        outcomes["bytecode"] = compile_tree(site, args.bytecode)
    if args.import_check:
        outcomes["imports"] = import_check(site, args.provided)
    stop_stragglers()  # nothing the packages' code left running may change the layer after these checks
    check_native_code(site, args.elf_machine, args.describe)
    size = tree_size(site)
    if size > args.max_bytes:
        raise LayerTooLargeError(
            f"The layer is {size / 1e6:.1f} MB unzipped; Lambda allows {args.max_bytes / 1e6:.1f} MB. "
            "Exclude what the runtime provides, drop unused dependencies, or split the layer."
        )
    return outcomes


def stop_stragglers() -> None:
    """As the container's first process, end every other one: code run by a package's build or import
    can leave a process behind that would change the layer after it was checked (a link swapped in).
    Only as PID 1, which means a PID namespace of the container's own: elsewhere this would reach
    processes that are not ours."""
    if os.getpid() != 1:
        print(
            "warning: the step is not the container's first process (an init the engine adds?): processes the "
            "packages' code left behind are not stopped before the last checks",
            file=sys.stderr,
            flush=True,
        )
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(-1, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, 0)[0] > 0:
            pass


def python_mismatch(expected: str | None, describe: str) -> str | None:
    """Why this image cannot build the target: it runs another Python than the runtime's (its wheels,
    bytecode and import check would be for that one), or None."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not expected or expected == running:
        return None
    return (
        f"The build image runs Python {platform.python_version()}, but the layer is for {describe}: its wheels, "
        f"bytecode and import check would be for {running}. Use the runtime's SAM build image "
        f"(public.ecr.aws/sam/build-python{expected}), an image with Python {expected}, or build for python "
        f"{running} (python= / --python)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    output = Path(args.output)
    site, handoff = output / "python", output / HANDOFF_DIR
    if args.phase in ("all", "install"):
        mismatch = python_mismatch(args.expect_python, args.describe)
        if mismatch:
            print(f"error: {mismatch}", file=sys.stderr, flush=True)
            return 2
        try:
            extra = read_environment() if args.environment_on_stdin else {}
        except (LayerBuildError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        code = pip_install(site, handoff, no_deps=args.no_deps, extra=extra)
        if code != 0:
            return code
        stop_stragglers()
        if args.phase == "install":
            return 0  # the rest runs in a container of its own, without logins, caches or network
    try:
        outcomes = finish(site, args)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    if args.report:  # replaced, not written through: a link left there by package code stays harmless
        partial = Path(f"{args.report}.{os.getpid()}")
        partial.write_text(json.dumps(outcomes))
        partial.replace(args.report)
    shutil.rmtree(handoff, ignore_errors=True)
    return 0
