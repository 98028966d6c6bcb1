"""Test support: the command line run as a user runs it, and snapshots of folders to show what it changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The Python running the tests: a local build for it needs no other interpreter.
HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
#: The commands of the command line; arguments that start with none of them are those of ``build``.
COMMANDS = ("build", "cache")


def cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cdk_lambda_layer ARGS``, output captured and exit code kept, with ``env`` added to ours.

    ``cli("cache", "list")`` runs that command; ``cli(str(project), "--python", "3.12")`` runs ``build``.
    Other keywords (``cwd``, ``timeout``) go to subprocess.run.
    """
    command = args if args and args[0] in COMMANDS else ("build", *args)
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``: its path relative to ``folder``, and its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
