"""Installing the plan for the Lambda target, not for the host.

Every installer gets exact pins (``name==version`` with the lock's hashes) and
``--no-deps``: the plan (plan.py) already evaluated the markers for the target and chose
each package's wheel, so no installer decides a version or a marker. uv installs what it
can be told about (one ``--python-platform``); pip installs the rest — on Amazon Linux 2
the wheels tagged manylinux_2_18 … 2_26, which uv has no platform for — given every
accepted platform tag (pip matches each ``--platform`` exactly:
https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform). pip installs into a
folder of its own that is then merged, so its ``--target`` never skips a folder (a
namespace package) that uv already made.

Index settings reach the installers as environment variables only (a requirements
file's index URL, the lock's extra indexes, private-index logins): a login never lands
in a file.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.credentials import IndexCredentials, secrets_of, tool_environment
from ..core.runner import Command, run
from ..core.tool_errors import explain_install_failure
from ..core.tools import find_uv, pip_argv
from ..errors import CommandError, VerificationError
from ..options import Installer
from ..plan.model import InstallPlan, Pin
from ..project.requirements import IndexOptions
from ..target import LambdaTarget
from .local_packages import BuiltPackage

logger = logging.getLogger(__name__)


def uv_install_command(requirements: Path, dest: Path, target: LambdaTarget) -> Command:
    argv = (
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
        "--no-deps",
        "--no-progress",
        "-r",
        str(requirements),
    )
    return Command(argv=argv, label="uv pip install")


def pip_install_command(requirements: Path, dest: Path, target: LambdaTarget) -> Command:
    argv = (
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
        "--no-deps",
        "--no-compile",
        "--no-input",
        "--disable-pip-version-check",
        "-r",
        str(requirements),
    )
    return Command(argv=argv, label="pip install")


@dataclass(frozen=True, kw_only=True)
class InstallSettings:
    """Who installs, and where packages come from."""

    installer: Installer
    credentials: tuple[IndexCredentials, ...] = ()
    #: Index options of the project's requirements files.
    index_options: IndexOptions = field(default_factory=IndexOptions)
    #: Extra indexes the lock records (beside the configured default index).
    lock_indexes: tuple[str, ...] = ()

    def environment(self, installer: str) -> dict[str, str]:
        covered = {c.url.rstrip("/") for c in self.credentials}
        extra = tuple(u for u in self.lock_indexes if u.rstrip("/") not in covered)
        options = self.index_options.merged(IndexOptions(extra_index_urls=extra))
        env = options.environment(installer)
        for key, value in tool_environment(self.credentials).items():
            env[key] = f"{env[key]} {value}" if key in env and key.endswith("INDEX_URL") else value
        return env

    @property
    def secrets(self) -> tuple[str, ...]:
        urls = (self.index_options.index_url or "", *self.index_options.extra_index_urls)
        return (*secrets_of(self.credentials), *_url_secrets(urls))


def _url_secrets(urls: Sequence[str]) -> tuple[str, ...]:
    from urllib.parse import urlsplit

    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
    return tuple(found)


def requirements_text(pins: Sequence[Pin], local: Sequence[BuiltPackage]) -> str:
    lines = [p.requirement() for p in sorted(pins, key=lambda p: p.name)]
    lines += [b.requirement() for b in sorted(local, key=lambda b: b.name)]
    return "\n".join(lines) + "\n" if lines else ""


def write_requirements(
    plan: InstallPlan, local: Sequence[BuiltPackage], repo: Path, settings: InstallSettings
) -> dict[str, Path]:
    """The requirements files of an install into ``repo`` (requirements.txt for the first installer,
    requirements-pip.txt for pip's share when uv installs the rest): installer -> file."""
    uv_pins, pip_pins = plan.channel("uv"), plan.channel("pip")
    uv_local, pip_local = (local, ()) if settings.installer == "uv" else ((), local)
    files: dict[str, Path] = {}
    if uv_pins or uv_local:
        files["uv"] = repo / "requirements.txt"
        files["uv"].write_text(requirements_text(uv_pins, uv_local))
    if pip_pins or pip_local:
        files["pip"] = repo / ("requirements-pip.txt" if "uv" in files else "requirements.txt")
        files["pip"].write_text(requirements_text(pip_pins, pip_local))
    return files


def install(
    plan: InstallPlan,
    local: Sequence[BuiltPackage],
    dest: Path,
    repo: Path,
    target: LambdaTarget,
    settings: InstallSettings,
) -> None:
    """Install every pin and local package into ``dest``; requirements files go to ``repo``."""
    for pin in plan.channel("pip") if settings.installer == "uv" else ():
        logger.info(
            "%s %s: its wheel (%s) is for glibc above manylinux_2_17, which uv cannot be told for %s; "
            "installing it with pip, given every manylinux tag up to %s",
            pin.name,
            pin.version,
            pin.wheel,
            target.runtime_name,
            ".".join(map(str, target.os.glibc)),
        )
    files = write_requirements(plan, local, repo, settings)
    if "uv" in files:
        _run(uv_install_command(files["uv"], dest, target), settings, "uv", dest)
    if "pip" in files:
        requirements = files["pip"]
        side = dest.parent / f".pip-{os.getpid()}"
        try:
            _run(pip_install_command(requirements, side, target), settings, "pip", dest)
            merge_tree(side, dest)
        finally:
            shutil.rmtree(side, ignore_errors=True)


def _run(command: Command, settings: InstallSettings, installer: str, dest: Path) -> None:
    env: Mapping[str, str] = {**command.env, **settings.environment(installer)}
    argv = (*command.argv, *settings.index_options.flags(installer))
    try:
        run(replace(command, argv=argv, env=env), secrets=settings.secrets)
    except CommandError as exc:
        raise explain_install_failure(exc, str(dest)) or exc from exc


def merge_tree(source: Path, dest: Path) -> None:
    """Move ``source``'s files into ``dest``; the same file from both must be identical."""
    for folder, _dirs, names in os.walk(source):
        for name in names:
            path = Path(folder, name)
            target = dest / path.relative_to(source)
            if target.exists():
                if not filecmp.cmp(path, target, shallow=False):
                    raise VerificationError(
                        f"Two packages install different files at {target.relative_to(dest)}: they cannot share "
                        "one layer. Exclude one of them."
                    )
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
