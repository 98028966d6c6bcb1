"""The target interpreter: a CPython of the runtime's version on this machine, if there is one.

Two steps need the runtime's own Python: compiling bytecode (the .pyc magic number is
per version) and the import check (a module must load on that version). Container builds
have it in the image; local builds look for one here, once per build:

1. ``CDK_LAYER_PYTHON_<X>_<Y>`` (e.g. ``CDK_LAYER_PYTHON_3_12=/opt/py312/bin/python3``);
2. the Python running this library, when it is that version;
3. pyenv's installs (``$PYENV_ROOT/versions/X.Y.*``, default ``~/.pyenv``), newest patch first:
   pyenv users often have several versions installed but only one on PATH, and uv looks
   only at PATH's shims, which answer for the global version alone;
4. ``uv python find X.Y`` (uv's own and the system's interpreters; no download).

Found or not is said in the build's log and manifest; nothing here ever fails a build.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..core.runner import Command, run
from ..core.tools import find_uv
from ..errors import CommandError, ToolNotFoundError
from ..target import LambdaTarget

logger = logging.getLogger(__name__)

_PROBE = "import platform, sys; print(sys.implementation.name, platform.python_version(), platform.machine())"


@dataclass(frozen=True, kw_only=True)
class TargetInterpreter:
    path: str
    #: Full version, e.g. "3.12.1".
    version: str
    #: platform.machine(): x86_64 or aarch64.
    machine: str

    def runs(self, target: LambdaTarget) -> bool:
        """Native code of the target loads in it (same CPU): what the import check needs."""
        return self.machine in (target.architecture.machine, target.architecture.value)


def environment_variable(python: str) -> str:
    return f"CDK_LAYER_PYTHON_{python.replace('.', '_')}"


def how_to_get(python: str) -> str:
    return (
        f"install CPython {python} (`uv python install {python}`, or your system's python{python}) or point "
        f"{environment_variable(python)} at one"
    )


def find_interpreter(python: str) -> TargetInterpreter | None:
    """A CPython ``python`` (e.g. "3.12") on this machine, or None (looked up once per setting)."""
    return _find(python, os.environ.get(environment_variable(python)))


@cache
def _find(python: str, explicit: str | None) -> TargetInterpreter | None:
    if explicit:
        return _probe(explicit, python)
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python and sys.implementation.name == "cpython":
        return TargetInterpreter(path=sys.executable, version=platform.python_version(), machine=platform.machine())
    for candidate in _pyenv_candidates(python):
        found = _probe(str(candidate), python, quiet=True)
        if found is not None:
            return found
    try:
        found = run(
            Command(
                argv=(find_uv(), "python", "find", "--no-python-downloads", "--no-project", "--no-config", python),
                label="uv python find",
                cwd=tempfile.gettempdir(),  # no .python-version file of the caller's folder applies
            )
        ).stdout.strip()
    except (CommandError, ToolNotFoundError) as exc:
        logger.info("no Python %s found by uv: %s", python, str(exc).splitlines()[0])
        return None
    return _probe(found, python) if found else None


def _pyenv_candidates(python: str) -> list[Path]:
    """pyenv's CPython X.Y installs, newest patch first (3.12.10 before 3.12.9; no pre-releases)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = []
    for folder in root.glob(f"{python}.*") if root.is_dir() else ():
        patch = folder.name.removeprefix(f"{python}.")
        executable = folder / "bin" / f"python{python}"
        if patch.isdigit() and executable.is_file():
            found.append((int(patch), executable))
    return [path for _patch, path in sorted(found, reverse=True)]


def _probe(path: str, python: str, *, quiet: bool = False) -> TargetInterpreter | None:
    try:
        name, version, machine = run(
            Command(argv=(path, "-I", "-S", "-c", _PROBE), label="python probe")
        ).stdout.split()
    except (CommandError, ToolNotFoundError, ValueError) as exc:
        log = logger.info if quiet else logger.warning
        log("%s cannot be used as Python %s: %s", path, python, str(exc).splitlines()[0])
        return None
    if name != "cpython" or not (version == python or version.startswith(python + ".")):
        logger.warning("%s is %s %s, not CPython %s; not used", path, name, version, python)
        return None
    return TargetInterpreter(path=path, version=version, machine=machine)
