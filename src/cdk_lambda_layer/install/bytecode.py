"""Compiling the layer's modules to PEP 552 hash-based .pyc, with the target's own Python.

Lambda mounts layers read-only under /opt, so a module without a usable .pyc is compiled
in memory at every cold start. Timestamp-based .pyc (what pip writes) go stale once the
asset zip resets file times; hash-based ones stay valid: ``unchecked-hash`` (the default)
is never checked against the source, ``checked-hash`` hashes the source on import.
Code objects name the file where Lambda will see it (``/opt/python/<relative path>``), so
tracebacks point at real files and the bytes do not depend on the build folder.

A package's own test suite (every ``tests`` folder: numpy's, pandas', scipy's) stays source only: a
function never imports it, and it is a third of the source of a scientific layer, so compiling it
would cost a third of this step and add its .pyc to the layer's size for nothing (should something
import it after all, Python compiles it in memory, as it would with no bytecode at all).

Standard library only, run as a script by the target interpreter (on the host, or in the
build image by the in-container step):

    python3.X -I -S -B bytecode.py SITE [--invalidation unchecked-hash] [--prefix /opt/python] [--jobs N]

prints one JSON object: {"python": "3.X.Y", "compiled": N, "failed": [paths], "jobs": N}. The files
are dealt to one forked worker per CPU by size (compileall's own workers start a new interpreter
each through a forkserver, which costs more than it saves on a small layer).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import py_compile
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

#: Where Lambda puts a layer's python/ folder.
LAMBDA_PREFIX = "/opt/python"
_MODES = {
    "unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
    "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
}
#: Folders whose modules are left as source (a package's test suite).
SOURCE_ONLY = frozenset({"__pycache__", "tests"})
#: Fewer files than this per worker are not worth a fork.
_MIN_SHARE = 16


def sources(site: Path) -> list[Path]:
    """Every .py file under ``site`` (regular files, no link followed, ``__pycache__`` and test suites
    skipped: SOURCE_ONLY), sorted."""
    return sorted(iter_sources(site))


def iter_sources(site: Path) -> Iterator[Path]:
    """The .py files ``sources`` lists, as the walk finds them (the first one found ends a caller's question
    whether there is anything to compile)."""
    for folder, dirs, names in os.walk(site):
        dirs[:] = sorted(d for d in dirs if d not in SOURCE_ONLY)
        for name in names:
            path = Path(folder, name)
            if name.endswith(".py") and path.is_file() and not path.is_symlink():
                yield path


def _compile_all(paths: Iterable[Path], site: Path, mode: py_compile.PycInvalidationMode, prefix: str) -> list[str]:
    """Compile each file (the code object names /opt/python/<relative path>); the ones that fail."""
    failed = []
    for path in paths:
        relative = path.relative_to(site).as_posix()
        try:
            py_compile.compile(str(path), dfile=f"{prefix}/{relative}", doraise=True, invalidation_mode=mode)
        except (py_compile.PyCompileError, SyntaxError, ValueError, OSError):
            failed.append(relative)
    return failed


def shares(paths: Sequence[Path], jobs: int) -> list[list[Path]]:
    """``paths`` dealt into ``jobs`` shares of about equal bytes (largest file first to the lightest share)."""
    bins: list[tuple[int, int, list[Path]]] = [(0, i, []) for i in range(max(1, jobs))]
    for path in sorted(paths, key=lambda p: (-p.stat().st_size, p)):
        size, index, share = min(bins)
        share.append(path)
        bins[index] = (size + path.stat().st_size, index, share)
        bins.sort(key=lambda b: b[1])
    return [share for _size, _index, share in bins if share]


def _forked(
    files: Callable[[], Iterable[Path]], site: Path, mode: py_compile.PycInvalidationMode, prefix: str
) -> tuple[int, int]:
    """A child compiling the files ``files()`` gives it: (its pid, the read end of the pipe its failures come
    back on)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compile, report, and leave without running the parent's cleanup
        code = 0
        try:
            os.close(read)
            with os.fdopen(write, "w") as out:
                json.dump(_compile_all(files(), site, mode, prefix), out)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


class _Queue:
    """The files, largest first, as a queue the workers take from as each finishes one (compile time is not in
    proportion to size, so shares fixed in advance left one worker compiling alone at the end): a pipe of
    their numbers, 4 bytes each, written whole before any worker starts (``fits``: into a pipe's buffer)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = paths
        order = sorted(range(len(paths)), key=lambda i: (-paths[i].stat().st_size, paths[i]))
        self.read, write = os.pipe()
        try:
            os.write(write, b"".join(struct.pack("<I", i) for i in order))
        finally:
            os.close(write)

    @staticmethod
    def fits(paths: Sequence[Path]) -> bool:
        return len(paths) * 4 <= 60_000

    def take(self) -> Iterator[Path]:
        while len(number := os.read(self.read, 4)) == 4:
            yield self.paths[struct.unpack("<I", number)[0]]

    def close(self) -> None:
        os.close(self.read)


def compile_paths(
    paths: Sequence[Path], site: Path, invalidation: str = "unchecked-hash", prefix: str = LAMBDA_PREFIX, jobs: int = 1
) -> list[str]:
    """Compile ``paths`` on ``jobs`` processes (forked: this script imports nothing but the standard
    library, and a fork costs a millisecond where a process pool's new interpreters cost a third of a
    second); the relative paths that did not compile, sorted."""
    mode = _MODES[invalidation]
    if not hasattr(os, "fork"):
        return sorted(_compile_all(paths, site, mode, prefix))
    # Every file, the first too, compiled in a child: this process (the build image's first process, which
    # code run later could read through /proc/1/mem) never holds the sources' bytes.
    workers = jobs if len(paths) >= 2 * _MIN_SHARE else 1
    if workers > 1 and _Queue.fits(paths):
        queue = _Queue(paths)
        try:
            children = [_forked(queue.take, site, mode, prefix) for _ in range(workers)]
        finally:
            queue.close()
    else:
        children = [_forked(functools.partial(iter, share), site, mode, prefix) for share in shares(paths, workers)]
    failed: list[str] = []
    for pid, read in children:
        with os.fdopen(read) as report:
            text = report.read()
        _pid, status = os.waitpid(pid, 0)
        if status != 0 or not text:
            raise RuntimeError(f"a bytecode worker ended with status {status}")
        failed += json.loads(text)
    return sorted(failed)


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def compile_tree(
    site: Path, invalidation: str = "unchecked-hash", prefix: str = LAMBDA_PREFIX, jobs: int | None = None
) -> dict[str, object]:
    """Compile every .py under ``site``; a file that does not compile (e.g. Python 2 syntax) is listed."""
    found = sources(site)
    jobs = jobs or default_jobs()
    failed = compile_paths(found, site, invalidation, prefix, jobs)
    return {"python": platform.python_version(), "compiled": len(found) - len(failed), "failed": failed, "jobs": jobs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bytecode")
    parser.add_argument("site")
    parser.add_argument("--invalidation", choices=sorted(_MODES), default="unchecked-hash")
    parser.add_argument("--prefix", default=LAMBDA_PREFIX)
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per CPU)")
    args = parser.parse_args(argv)
    print(json.dumps(compile_tree(Path(args.site), args.invalidation, args.prefix, args.jobs or None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
