"""The one place that runs subprocesses.

Every command is an argument tuple (never a shell string), logged as ``+ argv`` with
secrets redacted, run with an explicit environment and captured output; a failure
raises CommandError carrying the command, exit code and the tail of stderr, so no
caller ever checks a return code by hand.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandError, ToolNotFoundError
from .redact import redact_urls

logger = logging.getLogger(__name__)

#: uv's diagnostic marks: the multiplication sign opens an error, the arrow a cause.
_UV_ERROR_MARK = "\N{MULTIPLICATION SIGN}"
_UV_CAUSE_MARK = "\u2570\u2500\u25b6"

#: Lines of stderr kept in an error message.
STDERR_TAIL_LINES = 25


@dataclass(frozen=True, kw_only=True)
class Command:
    """A planned subprocess: what to run, where, and which variables to add."""

    argv: tuple[str, ...]
    #: Short name used in logs and errors, e.g. "uv export".
    label: str
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: Start from a minimal environment instead of ours: for commands that run code of the packages
    #: being packaged (the import check), which must not see credentials in our environment.
    minimal_env: bool = False
    #: When the build stops it early: ask it to end (SIGTERM) before it is killed, for a process that ends
    #: workers of its own on SIGTERM (the import check outside a PID namespace, which would take them along).
    stop_first: bool = False


@dataclass(frozen=True)
class Completed:
    stdout: str
    stderr: str
    seconds: float


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longest first, so overlapping ones go whole), and every login in a URL
    (``scheme://user:password@``, whoever wrote it: a requirements file, a tool's message), by '***'."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact_urls(text)


#: What a command started with ``minimal_env`` gets from our environment: how to find programs
#: and how to decode text, nothing that could hold a credential.
MINIMAL_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "TZ")


#: uv and pip settings a child may take from our environment: where packages come from, how to reach
#: and authenticate to an index, where to cache, how to log. Every other UV_*/PIP_* variable changes
#: *what* gets exported, resolved or installed (UV_OVERRIDE, UV_DEV, UV_RESOLUTION, PIP_CONSTRAINT,
#: UV_COMPILE_BYTECODE, PIP_REQUIRE_VIRTUALENV...), which only the lock and this library's options
#: decide: those are dropped, so the fingerprint stays the whole story. So is UV_CONFIG_FILE: a
#: config file can hold every one of those settings.
_TOOL_SETTINGS = re.compile(
    r"UV_(CACHE_DIR|NO_CACHE|INDEX_URL|EXTRA_INDEX_URL|DEFAULT_INDEX|INDEX|FIND_LINKS|INDEX_STRATEGY"
    r"|INDEX_[A-Z0-9_]+_(USERNAME|PASSWORD)|KEYRING_PROVIDER|NATIVE_TLS|INSECURE_HOST|HTTP_TIMEOUT"
    r"|REQUEST_TIMEOUT|HTTP_RETRIES|CONCURRENT_DOWNLOADS|CONCURRENT_BUILDS|CONCURRENT_INSTALLS|OFFLINE"
    r"|PYTHON_INSTALL_DIR|PYTHON_INSTALL_MIRROR|PYPY_INSTALL_MIRROR|NO_PROGRESS|LOG_CONTEXT"
    r"|NO_WRAP)"
    r"|PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|NO_INDEX|TRUSTED_HOST|CERT|CLIENT_CERT|PROXY|TIMEOUT"
    r"|DEFAULT_TIMEOUT|RETRIES|CACHE_DIR|NO_CACHE_DIR|DISABLE_PIP_VERSION_CHECK|NO_INPUT|KEYRING_PROVIDER"
    r"|CONFIG_FILE|PROGRESS_BAR)"
)
#: Colour in a tool's output would end up in what we parse (a path printed by a tool, say):
#: the CDK CLI runs apps with FORCE_COLOR=0, which uv reads as "force colour on".
_NO_COLOR = {"NO_COLOR": "1"}
_COLOR_FORCING = ("FORCE_COLOR", "CLICOLOR_FORCE")


def without_user_config() -> dict[str, str]:
    """Variables that hide the user's and the system's uv.toml (``$XDG_CONFIG_HOME/uv``,
    ``$XDG_CONFIG_DIRS/uv``) from uv, for commands whose outcome only the project's own settings may
    decide (the fingerprint holds those, not a file of the machine): folders that do not exist."""
    nowhere = str(Path(tempfile.gettempdir()) / "cdk-lambda-layer-no-user-config")
    return {"XDG_CONFIG_HOME": nowhere, "XDG_CONFIG_DIRS": nowhere}


def _kept(name: str) -> bool:
    if name.startswith(("UV_", "PIP_")):
        return bool(_TOOL_SETTINGS.fullmatch(name))
    return name not in _COLOR_FORCING


def child_environment(extra: Mapping[str, str], *, minimal: bool = False) -> dict[str, str]:
    """The child's environment: ours (only MINIMAL_VARIABLES of it, or all but the uv and pip settings
    that change what is installed) plus the command's additions; os.environ is untouched."""
    if minimal:
        env = {k: v for k, v in os.environ.items() if k in MINIMAL_VARIABLES}
    else:
        env = {k: v for k, v in os.environ.items() if _kept(k)}
    env.update(_NO_COLOR)
    env.update(extra)
    return env


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last lines of a tool's output, without the hash lines that bury the cause."""
    kept = [line for line in text.strip().splitlines() if "--hash=" not in line]
    return "\n".join(kept[-lines:])


def cause_line(stderr: str) -> str:
    """The line that says why a tool failed: uv's last ``cause:``, else the first error line, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "--hash=" not in line]
    causes = [line.split("cause:", 1)[1].strip() for line in lines if line.startswith("cause:")]
    if causes:
        return causes[-1]
    marks = ("error:", "error ", _UV_ERROR_MARK, _UV_CAUSE_MARK)
    errors = [line for line in lines if line.lower().startswith(marks)]
    return (errors[0] if errors else (lines[-1] if lines else "")).lstrip(_UV_ERROR_MARK + _UV_CAUSE_MARK + " ")


#: Seconds a process asked to end (SIGTERM) has before it is killed.
STOP_GRACE = 5.0


def _stop(process: subprocess.Popen[str], command: Command) -> None:
    """End a process the build no longer waits for: killed, or with ``command.stop_first`` asked first
    (SIGTERM), so that workers it started in process groups of their own (the import check's) end with it,
    and killed if it has not ended within STOP_GRACE seconds."""
    if command.stop_first:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE)
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()


def run(command: Command, *, secrets: Iterable[str] = (), started: Callable[[], object] | None = None) -> Completed:
    """Run ``command``; return its output or raise CommandError / ToolNotFoundError.

    ``started``: called once the process runs, before it is waited for: work that goes on beside the
    process starts then, not before, so that it does not slow the process's start (threads of this
    process hold the interpreter while it forks and execs). If it raises, the process is ended (_stop).
    """
    secrets = tuple(secrets)
    shown = redact(shlex.join(command.argv), secrets)
    logger.info("+ %s", shown)
    began = time.perf_counter()
    try:
        process = subprocess.Popen(
            command.argv,
            cwd=command.cwd,
            env=child_environment(command.env, minimal=command.minimal_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError as exc:
        raise ToolNotFoundError(
            f"{command.label}: cannot run {command.argv[0]!r} (not found). Install it or put it on PATH."
        ) from exc
    with process:  # as subprocess.run: on any error (or KeyboardInterrupt), the process is killed and reaped
        try:
            if started is not None:
                started()
            stdout, stderr = process.communicate()
        except BaseException:
            _stop(process, command)
            raise
    proc = subprocess.CompletedProcess(command.argv, process.returncode, stdout, stderr)
    seconds = time.perf_counter() - began
    logger.debug("%s finished in %.2fs (exit %d)", command.label, seconds, proc.returncode)
    if proc.returncode != 0:
        stderr = redact(proc.stderr or proc.stdout, secrets)
        raise CommandError(
            f"{command.label} failed (exit {proc.returncode}): {cause_line(stderr)}\n{tail(stderr)}\ncommand: {shown}",
            argv=tuple(redact(a, secrets) for a in command.argv),
            returncode=proc.returncode,
            stderr=stderr,
        )
    return Completed(stdout=proc.stdout, stderr=proc.stderr, seconds=seconds)
