"""The steps that run the target's Python on this machine: bytecode and the import check.

Both run ``bytecode.py`` / ``import_check.py`` (standard library only, the same files the
build image runs) with the interpreter interpreter.py finds, through the runner. When
there is none (or, for the import check, it is for another CPU) the build goes on and the
outcome says why, for the log and the manifest; ``bytecode=True`` is the one case where a
missing interpreter is an error.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..core.runner import Command, run
from ..errors import CommandError, InterpreterNotFoundError, ToolNotFoundError, VerificationError
from ..options import AWS_RUNTIME_PACKAGES, LayerOptions
from ..plan.interpreter import TargetInterpreter, find_interpreter, how_to_get
from ..target import LambdaTarget
from .bytecode import iter_sources

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent


@dataclass(frozen=True, kw_only=True)
class BytecodeOutcome:
    included: bool
    python: str | None = None
    invalidation: str | None = None
    compiled: int = 0
    failed: tuple[str, ...] = ()
    reason: str | None = None

    def manifest(self) -> dict[str, Any]:
        document = asdict(self)
        document["failed"] = list(self.failed[:20])
        return document


@dataclass(frozen=True, kw_only=True)
class ImportOutcome:
    ran: bool
    python: str | None = None
    imported: int = 0
    skipped: tuple[dict[str, Any], ...] = ()
    warnings: tuple[dict[str, Any], ...] = field(default=())
    reason: str | None = None
    #: Files the imports wrote into the layer, removed again (relative to python/).
    removed: tuple[str, ...] = ()
    #: Whether the packages' code ran in namespaces of its own (it could not read this process's environment).
    sandboxed: bool = False
    #: Each imported top-level module's import time in seconds on the target's Python, slowest first
    #: (import_check.py: one process, dependencies first, so each is what it adds to what it needs).
    times: tuple[tuple[str, float], ...] = ()
    #: The digest of the layer's files as the check found them before the first import (tree_digest).
    tree: str | None = None

    def manifest(self) -> dict[str, Any]:
        """For manifest.json: the times are the manifest's own ``import_times`` (a measurement, kept out of
        manifest.json's reproducible text: package/manifest.py)."""
        document = asdict(self)
        del document["times"], document["tree"]
        return {
            **document,
            "skipped": list(self.skipped),
            "warnings": list(self.warnings),
            "removed": list(self.removed[:20]),
        }

    def slowest(self, count: int = 5) -> tuple[tuple[str, float], ...]:
        return self.times[:count]


def import_times(report: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """The report's ``times`` (module -> seconds), slowest first; ties by name."""
    times = report.get("times") or {}
    pairs = (
        [(str(m), float(s)) for m, s in times.items() if isinstance(s, (int, float))] if isinstance(times, dict) else []
    )
    return tuple(sorted(pairs, key=lambda pair: (-pair[1], pair[0])))


def bytecode_wanted(options: LayerOptions) -> bool:
    return options.bytecode is not False


def interpreter_for(target: LambdaTarget, options: LayerOptions) -> TargetInterpreter | None:
    """The interpreter for the bytecode step, or None; ``bytecode=True`` without one is an error."""
    if not bytecode_wanted(options):
        return None
    found = find_interpreter(target.python)
    if found is None and options.bytecode is True:
        raise InterpreterNotFoundError(
            f"bytecode=True needs CPython {target.python} to compile the layer for {target.runtime_name}, and none "
            f"was found on this machine: {how_to_get(target.python)}; or build in the container "
            "(build='container'), or let it go (bytecode='auto' builds without bytecode and says so)."
        )
    return found


#: The flags word of a PEP 552 hash-based .pyc (bit 0: hash-based, bit 1: check the source).
PYC_FLAGS = {"unchecked-hash": 0b01, "checked-hash": 0b11}


@cache
def pyc_magic(python: str) -> bytes:
    """The magic number of the .pyc that interpreter writes (importlib.util.MAGIC_NUMBER)."""
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    return bytes.fromhex(run(Command(argv=(python, "-I", "-S", "-c", code), label="pyc magic")).stdout.strip())


def compile_bytecode(
    site: Path, target: LambdaTarget, options: LayerOptions, *, jobs: int | None = None
) -> BytecodeOutcome:
    """Compile ``site`` with the target's Python on ``jobs`` workers (default: one per CPU)."""
    if not bytecode_wanted(options):
        return BytecodeOutcome(included=False, reason="turned off (bytecode=False)")
    interpreter = interpreter_for(target, options)
    if interpreter is None:
        reason = f"no CPython {target.python} on this machine to compile it: {how_to_get(target.python)}"
        logger.info("the layer carries no bytecode (slower cold starts): %s", reason)
        return BytecodeOutcome(included=False, reason=reason)
    if next(iter_sources(site), None) is None:  # nothing to compile (every package came from the package cache)
        return BytecodeOutcome(included=True, python=interpreter.version, invalidation=options.invalidation)
    argv = (interpreter.path, "-I", "-S", "-B", str(_HERE / "bytecode.py"), str(site))
    argv += ("--invalidation", options.invalidation, *(("--jobs", str(jobs)) if jobs else ()))
    report = json.loads(run(Command(argv=argv, label="compile bytecode")).stdout)
    return outcome_from_report(report, options)


def outcome_from_report(report: dict[str, Any], options: LayerOptions) -> BytecodeOutcome:
    failed = tuple(report.get("failed") or ())
    if failed:
        logger.info("%d modules have no bytecode (they do not compile on this Python): %s", len(failed), failed[:5])
    return BytecodeOutcome(
        included=True,
        python=report.get("python"),
        invalidation=options.invalidation,
        compiled=int(report.get("compiled") or 0),
        failed=failed,
    )


def check_imports(
    site: Path,
    target: LambdaTarget,
    options: LayerOptions,
    jobs: int | None = None,
    started: Callable[[], object] | None = None,
) -> ImportOutcome:
    """The import check (install/import_check.py) on the target's Python, in a sandbox where Linux allows
    one; ``jobs``: its workers (None: one per CPU); ``started``: called once it runs (core/runner.py), or
    when it does not run at all."""
    if not options.import_check:
        _call(started)
        return ImportOutcome(ran=False, reason="turned off (import_check=False)")
    interpreter = find_interpreter(target.python)
    if interpreter is None or not interpreter.runs(target):
        reason = (
            f"no CPython {target.python} on this machine ({how_to_get(target.python)})"
            if interpreter is None
            else f"this machine's Python {interpreter.version} runs {interpreter.machine}, not "
            f"{target.architecture.value} (the container build runs it in the image)"
        )
        logger.info("import check skipped: %s", reason)
        _call(started)
        return ImportOutcome(ran=False, reason=reason)
    argv = [interpreter.path, "-I", "-S", "-B", str(_HERE / "import_check.py"), str(site)]
    for name in sorted(set(options.provided) | set(AWS_RUNTIME_PACKAGES)):
        argv += ["--provided", name]
    argv += ["--jobs", str(jobs)] if jobs else []
    with tempfile.TemporaryDirectory(prefix="cdk-lambda-layer-import-") as scratch:
        # Importing runs the packages' own code: give it a scratch home and folder, none of our
        # environment's variables (credentials, tokens), only PATH and the locale, and, where Linux
        # allows it, a PID namespace of its own, so it cannot read ours in /proc/<pid>/environ either.
        prefix = sandbox_prefix()
        command = Command(
            argv=(*prefix, *argv),
            label="import check",
            cwd=Path(scratch),
            env={"HOME": scratch},
            minimal_env=True,
            # Stopped early, it must end its workers (import_check._stop_workers); in a PID namespace of its
            # own a kill ends them all (unshare --kill-child), and unshare ignores SIGTERM.
            stop_first=not prefix,
        )
        outcome = _run_import_check(command, interpreter, target, started)
    return replace(outcome, sandboxed=sandboxed())


def _call(started: Callable[[], object] | None) -> None:
    if started is not None:
        started()


_UNSHARE = ("--pid", "--fork", "--mount-proc", "--kill-child")


@cache
def sandbox_prefix() -> tuple[str, ...]:
    """``unshare`` arguments that give the import check namespaces of its own, or () where this machine
    cannot (no util-linux unshare, not Linux, namespaces refused).

    User and PID namespaces and a /proc of its own, even as root: root in a PID namespace alone may
    unmount the new /proc and read the host's; as (mapped) root of a user namespace of its own it may
    unmount it, but not read other processes' environments. Where user namespaces are refused but root
    may still make a PID namespace (a container given CAP_SYS_ADMIN), that is used: weaker, better than
    none (sandboxed() tells them apart).
    """
    unshare = shutil.which("unshare") if sys.platform == "linux" else None
    if unshare is None:
        return ()
    candidates = [(unshare, "--user", "--map-root-user", *_UNSHARE, "--")]
    if os.geteuid() == 0:
        candidates.append((unshare, *_UNSHARE, "--"))
    for prefix in candidates:
        try:
            run(Command(argv=(*prefix, "true"), label="unshare probe", minimal_env=True))
        except (CommandError, ToolNotFoundError) as exc:
            logger.info("unshare %s is not allowed here: %s", " ".join(prefix[1:-1]), str(exc).splitlines()[0])
            continue
        return prefix
    return ()


def sandboxed() -> bool:
    """Whether the import check runs in a user namespace of its own (it cannot read our environment)."""
    return "--user" in sandbox_prefix()


def _run_import_check(
    command: Command, interpreter: TargetInterpreter, target: LambdaTarget, started: Callable[[], object] | None
) -> ImportOutcome:
    try:
        out = run(command, started=started).stdout
    except CommandError as exc:
        last = [line for line in exc.stderr.splitlines() if line.startswith("importing ")]
        module = last[-1].removeprefix("importing ") if last else "?"
        raise VerificationError(
            f"Python {interpreter.version} crashed importing the layer's module {module} "
            f"(exit {exc.returncode}): {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else ''}. "
            "Its native code does not load on this runtime: pin another version, or build in the container."
        ) from exc
    return outcome_from_imports(json.loads(out.strip().splitlines()[-1]), interpreter.version, target)


def outcome_from_imports(report: dict[str, Any], python: str | None, target: LambdaTarget) -> ImportOutcome:
    failed = report.get("failed") or []
    if failed:
        lines = "\n".join(f"  - {f['module']}: {f['error']}" for f in failed)
        raise VerificationError(
            f"These modules of the layer do not import with Python {python} for {target.runtime_name}:\n{lines}\n"
            "Ways out: pin versions that support this runtime, add the missing package, or exclude the package "
            "that ships the module; import_check=False / --no-import-check skips this check."
        )
    for warning in report.get("warnings") or []:
        logger.info("importing %s raised %s (not a packaging problem)", warning["module"], warning["error"])
    writes = report.get("writes") or {}
    spoiled = [*(writes.get("changed") or []), *(writes.get("deleted") or [])]
    if spoiled:
        raise VerificationError(
            f"Importing the layer's modules with Python {python} changed or deleted files of the layer: "
            f"{', '.join(spoiled[:10])}. On Lambda /opt is read-only, so the layer would behave differently "
            "there; nothing was published. Find the package that writes on import and exclude it or pin another "
            "version, or skip the check (import_check=False / --no-import-check)."
        )
    return ImportOutcome(
        ran=True,
        python=python,
        imported=len(report.get("imported") or []),
        skipped=tuple(report.get("skipped") or ()),
        warnings=tuple(report.get("warnings") or ()),
        removed=tuple(writes.get("removed") or ()),
        times=import_times(report),
        tree=report.get("tree") if isinstance(report.get("tree"), str) else None,
    )
