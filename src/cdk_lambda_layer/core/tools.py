"""Finding the build tools (uv, Poetry, pip) and their versions."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import sys
from functools import cache
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ..errors import ToolNotFoundError
from .runner import Command, run

#: Oldest versions whose flags this library uses (uv: export/pip compile --format pylock.toml,
#: --python-platform manylinux_2_34; Poetry 2: export through poetry-plugin-export).
MIN_VERSIONS = {"uv": Version("0.9.0"), "poetry": Version("2.0.0")}

_INSTALL_ADVICE = {
    "uv": "pip install 'uv>=0.9' (it is a dependency of cdk-lambda-layer) or see https://docs.astral.sh/uv/",
    "poetry": "pipx install poetry && poetry self add poetry-plugin-export (or pip install 'cdk-lambda-layer[poetry]')",
}


def _beside_interpreter(name: str) -> str | None:
    """A console script installed next to this Python (a venv not on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def _beside_uv_package() -> str | None:
    """uv's binary in a ``--target`` install: <target>/bin/uv next to <target>/uv/."""
    try:
        import uv
    except ImportError:
        return None
    candidate = Path(uv.__file__).resolve().parent.parent / "bin" / "uv"
    return str(candidate) if candidate.is_file() else None


@cache
def find_uv() -> str:
    """The uv binary: the one from the uv package we depend on, else PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError, TypeError, OSError):
        # TypeError: uv's locator reads sysconfig's EXE, which some system Pythons leave unset.
        pass
    found = _beside_uv_package() or shutil.which("uv") or _beside_interpreter("uv")
    if not found:
        raise ToolNotFoundError(f"uv is not installed: {_INSTALL_ADVICE['uv']}.")
    return found


def find_poetry() -> str:
    """The poetry command: PATH first, then next to this interpreter."""
    found = shutil.which("poetry") or _beside_interpreter("poetry")
    if not found:
        raise ToolNotFoundError(
            f"Poetry is not installed but this project has poetry.lock: {_INSTALL_ADVICE['poetry']}."
        )
    return found


def pip_argv() -> tuple[str, ...]:
    """pip of the interpreter running this library (pip is always there with venv/ensurepip)."""
    return (sys.executable, "-m", "pip")


def pip_version() -> str:
    """Version of that pip, read from its metadata (starting pip just to ask costs ~0.4 s)."""
    try:
        return importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        raise ToolNotFoundError(
            f"pip is not installed for {sys.executable}: run `{sys.executable} -m ensurepip` "
            "or use the default installer (installer='uv')."
        ) from None


def installed_version(executable: str, name: str) -> str | None:
    """The version a console script's own environment has installed, read without starting it
    (``poetry --version`` costs ~0.8 s of CPU: all of Poetry is imported to print one line).

    A pipx, installer or venv script names that environment's interpreter on its first line; the
    distribution's metadata is then in the environment's site-packages. None when the script is not
    such a file (a shell wrapper, ``#!/usr/bin/env python``), names a Python that is not a venv's (its
    user and /usr/local sites come first: ``pip install --user poetry`` writes ``#!/usr/bin/python3``),
    or the environment holds no single copy.
    """
    try:
        with Path(executable).open("rb") as script:
            first = script.readline(1024)
    except OSError:
        return None
    if not first.startswith(b"#!/") or b"\x00" in first:
        return None
    interpreter = Path(os.fsdecode(first[2:].split()[0]))
    if interpreter.name.startswith("env") or not interpreter.name.startswith("python"):
        return None
    environment = interpreter.parent.parent
    if not (environment / "pyvenv.cfg").is_file():
        return None  # a system Python also imports from the user's and /usr/local's sites: ask
    found = {
        dist.version
        for site in environment.glob("lib/python3*/site-packages")
        for dist in importlib.metadata.distributions(name=name, path=[str(site)])
    }
    return found.pop() if len(found) == 1 else None


def asked_version(executable: str, name: str) -> str:
    """The version the tool prints for ``--version`` (it runs)."""
    out = run(Command(argv=(executable, "--version"), label=f"{name} --version")).stdout
    match = re.search(r"(\d+\.\d+(?:\.\d+)?\S*)", out)
    return match.group(1).rstrip(")") if match else out.strip()


@cache
def tool_version(executable: str, name: str) -> str:
    """The tool's version string, e.g. '0.13.9'; checked against MIN_VERSIONS. Poetry's is read from
    its environment's metadata when the script names that environment (uv answers in 10 ms)."""
    version = (installed_version(executable, name) if name == "poetry" else None) or asked_version(executable, name)
    minimum = MIN_VERSIONS.get(name)
    if minimum is not None:
        try:
            too_old = Version(version) < minimum
        except InvalidVersion:
            too_old = False
        if too_old:
            raise ToolNotFoundError(
                f"{name} {version} at {executable} is too old: {minimum} or newer is needed. "
                f"Upgrade: {_INSTALL_ADVICE[name]}."
            )
    return version
