"""Installing pinned requirements for the Lambda target, not for the host.

Both installers are told the target's Python version and manylinux platforms and take
wheels only, so the result is the same on macOS, Windows or Linux hosts. uv is the
default: one --python-platform names the glibc ceiling, and it evaluates environment
markers for the target. pip needs every accepted platform tag listed (it matches each
--platform exactly): https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .credentials import IndexCredentials, secrets_of, tool_environment
from .errors import CommandError, LayerBuildError, NoWheelError, PackageIndexError
from .options import Installer
from .runner import Command, run
from .target import LambdaOS, LambdaTarget
from .tools import find_uv, pip_argv


def uv_install_command(requirements: Path, dest: Path, target: LambdaTarget, *, no_deps: bool) -> Command:
    argv = [
        find_uv(),
        "pip",
        "install",
        "--target",
        str(dest),
        "--python",
        sys.executable,
        "--python-version",
        target.python,
        "--python-platform",
        target.uv_python_platform,
        "--only-binary",
        ":all:",
        # Copies, not hard links into uv's cache: the layer's files end up in cdk.out and in
        # our layer cache, and an in-place edit there must never reach uv's cache.
        "--link-mode",
        "copy",
        "--no-progress",
        "-r",
        str(requirements),
    ]
    if no_deps:
        argv.append("--no-deps")
    return Command(argv=tuple(argv), label="uv pip install")


def pip_install_command(requirements: Path, dest: Path, target: LambdaTarget, *, no_deps: bool) -> Command:
    argv = [
        *pip_argv(),
        "install",
        "--target",
        str(dest),
        "--implementation",
        "cp",
        "--python-version",
        target.python,
        "--abi",
        target.cpython_abi,
        *[arg for tag in target.manylinux_platforms for arg in ("--platform", tag)],
        "--only-binary=:all:",
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "-r",
        str(requirements),
    ]
    if no_deps:
        argv.append("--no-deps")
    return Command(argv=tuple(argv), label="pip install")


def install_command(
    installer: Installer, requirements: Path, dest: Path, target: LambdaTarget, *, no_deps: bool
) -> Command:
    make = uv_install_command if installer == "uv" else pip_install_command
    return make(requirements, dest, target, no_deps=no_deps)


def install(
    installer: Installer,
    requirements: Path,
    dest: Path,
    target: LambdaTarget,
    *,
    no_deps: bool,
    credentials: Sequence[IndexCredentials] = (),
) -> None:
    """Install into ``dest``; a missing wheel or an index problem becomes an error that says what to do."""
    command = install_command(installer, requirements, dest, target, no_deps=no_deps)
    command = replace(command, env={**command.env, **tool_environment(credentials)})
    try:
        run(command, secrets=secrets_of(credentials))
    except CommandError as exc:
        raise explain_install_failure(exc, target) or exc from exc


_NO_WHEEL = (
    re.compile(r"Because (?P<pkg>[A-Za-z0-9._-]+)(?:==(?P<ver>[^\s,]+))? has no (?:usable )?wheels"),
    re.compile(r"Distribution `(?P<pkg>[A-Za-z0-9._-]+)(?:==(?P<ver>[^\s`@]+))?[^`]*` can't be installed"),
    re.compile(r"No matching distribution found for (?P<pkg>[A-Za-z0-9._-]+)(?:==(?P<ver>\S+))?"),
)


_DENIED = re.compile(r"\((40[13]) ([A-Za-z ]+)\) for url \((\S+?)\)")
_DENIED_HINT = re.compile(
    r"An index URL \((\S+?)\) could not be queried due to a lack of valid authentication "
    r"credentials \((\d+) ([^)]+)\)"
)
_DENIED_STATUS = re.compile(r"An index \((\S+?)\) returned a (40[13]) ([A-Za-z ]+?) error")
_UNREACHABLE = (re.compile(r"Failed to fetch: `?(\S+?)`?$", re.M), re.compile(r"Could not fetch URL (\S+?):"))


def without_userinfo(url: str) -> str:
    """https://user:token@host/simple -> https://host/simple (never show a secret)."""
    return re.sub(r"//[^/@\s]+@", "//", url)


def explain_index_failure(stderr: str) -> PackageIndexError | None:
    """Recognise an index that refused the credentials or could not be reached."""
    denied = _DENIED.search(stderr)
    hint = _DENIED_HINT.search(stderr) or _DENIED_STATUS.search(stderr)
    if denied or hint:
        code, words, url = denied.groups() if denied else (hint.group(2), hint.group(3), hint.group(1))
        return PackageIndexError(
            f"The package index at {without_userinfo(url)} refused the request (HTTP {code} {words.strip()}): "
            "check the username and password or token given for that index (and that it may read this package)."
        )
    for pattern in _UNREACHABLE:
        match = pattern.search(stderr)
        if match:
            causes = [line.split("cause:", 1)[1].strip() for line in stderr.splitlines() if "cause:" in line]
            reason = causes[-1] if causes else "no answer"
            return PackageIndexError(
                f"Cannot reach the package index at {without_userinfo(match.group(1))} ({reason}). Check the "
                "index URL, the network or proxy (HTTPS_PROXY), and that the index is up."
            )
    return None


def explain_install_failure(exc: CommandError, target: LambdaTarget) -> LayerBuildError | None:
    """Recognise an index failure, or 'no wheel for this platform', in uv's or pip's output."""
    index_problem = explain_index_failure(exc.stderr)
    if index_problem is not None:
        return index_problem
    for pattern in _NO_WHEEL:
        match = pattern.search(exc.stderr)
        if match:
            return no_wheel_error(match.group("pkg"), match.group("ver"), target, detail=exc.stderr)
    return None


def no_wheel_error(package: str, version: str | None, target: LambdaTarget, *, detail: str) -> NoWheelError:
    glibc = ".".join(map(str, target.os.glibc))
    spec = f"{package}=={version}" if version else package
    newer = " or a python3.12+ runtime (Amazon Linux 2023, glibc 2.34)" if target.os is LambdaOS.AMAZON_LINUX_2 else ""
    last = detail.strip().splitlines()[-6:]
    return NoWheelError(
        f"{spec} has no wheel that runs on {target.runtime_name} "
        f"({target.describe()}): its wheels need a newer glibc than {glibc}, another CPU, or "
        f"it ships only source. Ways out: pin a version of {package} that publishes a "
        f"manylinux wheel for glibc <= {glibc}{newer}, or build in the SAM build image "
        f"(build='container' / --build container), which can compile from source.\n" + "\n".join(last),
        package=package,
    )
