"""The import check: every top-level module of the layer imported by the target's Python.

Tags and ELF headers say a layer *should* load; importing its modules with the runtime's Python version and CPU,
in a clean process with only the layer and the standard library on ``sys.path`` (``-I -S``: no site-packages, no
user paths, no PYTHON* variables; ``-B``: no .pyc written into the layer), shows that it does. A module that cannot
import fails the build, naming the module and the ImportError; one that needs a package the layer leaves out on
purpose (boto3, a package another layer provides) is skipped and reported; any other exception (a module that
wants an environment variable, say) is a warning: that is the code's business, not the packaging's.

Standard library only, run as a script by the target interpreter (on the host, or in the build image):
``python3.X -I -S -B import_check.py SITE [--provided NAME ...] [--jobs N]`` prints progress on stderr and one
JSON object on stdout (its last line).

The import-time profile: each distribution's modules are imported after those it requires (dependency_order),
each timed with ``time.perf_counter``: what importing it adds once its dependencies are loaded (numpy's own
start-up, not pandas' share of it). With ``--jobs`` above 1 each distribution no other one requires is a job with
everything it needs (``groups``), dealt to that many forked workers: a module still sees exactly its dependencies
loaded, a dependency two jobs share is imported (and counted) in each worker that needs it and reported once,
and the check takes the longest worker's time, not the sum. ``.pyc`` are read where the build compiled them
(``-B`` only stops new ones being written), as on Lambda.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check(
    site: Path, modules: Iterable[str], provided: Iterable[str], started: Callable[[str], None] | None = None
) -> dict[str, list[object]]:
    """Import each module; sort outcomes into failed, skipped (needs a provided package) and warnings.

    ``times``: each module's import in seconds (perf_counter around its first import, in this one
    process, in the order given), for the modules that imported.
    """
    allowed = {_normal(p) for p in provided}
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    failed, skipped, warnings, ok, times = [], [], [], [], {}
    for module in modules:
        print(f"importing {module}", file=sys.stderr, flush=True)
        if started is not None:
            started(module)
        began = time.perf_counter()
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if _normal(missing) in allowed:
                skipped.append({"module": module, "needs": missing})
            else:
                failed.append({"module": module, "error": f"{type(exc).__name__}: {exc}"})
        except ImportError as exc:
            failed.append({"module": module, "error": f"{type(exc).__name__}: {exc}"})
        except BaseException as exc:
            warnings.append({"module": module, "error": f"{type(exc).__name__}: {exc}"})
        else:
            ok.append(module)
            times[module] = round(time.perf_counter() - began, 6)
    return {"imported": ok, "failed": failed, "skipped": skipped, "warnings": warnings, "times": times}


class WorkerCrashed(Exception):
    """A worker died while importing ``module`` (a native extension that crashes the interpreter)."""

    def __init__(self, module: str, status: int) -> None:
        super().__init__(module, status)
        self.module, self.status = module, status


def check_in_workers(
    site: Path, parts: Sequence[Sequence[str]], provided: Sequence[str], jobs: int
) -> dict[str, list[object]]:
    """``check`` of the groups ``parts`` on ``jobs`` forked workers, each taking the next group from a queue as it
    finishes one (import times cannot be known before); merged in the order of ``parts``. Each worker reports in a
    file of its own (a module may close descriptors it did not open, or leave a process holding them), first each
    module's name before it imports it, so a worker that dies names the module it died on (WorkerCrashed)."""
    order = list(dict.fromkeys(m for part in parts for m in part))  # a shared dependency once, where first
    if jobs < 2 or len(parts) < 2 or not hasattr(os, "fork"):
        return check(site, order, provided)
    import tempfile  # here, not above: its imports cost a process that needs no workers ~10 ms

    with tempfile.TemporaryDirectory(prefix="import-check-") as scratch:
        reports = _collect(_fork_workers(site, parts, provided, min(jobs, len(parts)), Path(scratch)))
    merged = _merge(reports, order)
    left = [part for part in parts if not set(part) <= _reported(merged)]
    if left:  # every worker lost the queue (a module closed it) before it was empty
        merged = _merge([merged, check_in_workers(site, left, provided, jobs)], order)
    return merged


def _collect(workers: Sequence[tuple[int, Path]]) -> list[dict[str, Any]]:
    """Each worker's report, once it has ended; WorkerCrashed for the first that died."""
    reports, crash, running = [], None, {pid for pid, _path in workers}
    try:
        for pid, path in workers:
            _pid, status = os.waitpid(pid, 0)
            _stop_leftovers(pid)
            running.discard(pid)
            _RUNNING.discard(pid)
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
            if status != 0 or not lines or not lines[-1].startswith("report "):
                begun = [line.removeprefix("start ") for line in lines if line.startswith("start ")]
                crash = crash or WorkerCrashed(begun[-1] if begun else "?", status)
            else:
                reports.append(json.loads(lines[-1].removeprefix("report ")))
    finally:
        for pid in running:  # interrupted: no worker left running
            _stop_leftovers(pid)
    if crash is not None:
        raise crash
    return reports


def _reported(report: dict[str, Any]) -> set[str]:
    return {*report["imported"], *(o["module"] for name in ("failed", "skipped", "warnings") for o in report[name])}


def _fork_workers(
    site: Path, parts: Sequence[Sequence[str]], provided: Sequence[str], count: int, scratch: Path
) -> list[tuple[int, Path]]:
    """``count`` workers taking ``parts`` from one queue: (pid, report file) of each."""
    queue_read, queue_write = os.pipe()  # the groups' numbers, 4 bytes each: a read of 4 takes one
    os.write(queue_write, b"".join(struct.pack("<I", i) for i in range(len(parts))))
    os.close(queue_write)
    workers: list[tuple[int, Path]] = []
    with contextlib.suppress(ValueError):  # only the main thread may (the script's: always)
        signal.signal(signal.SIGTERM, _stop_workers)  # the build stopped the check: its workers stop with it
    try:
        for report in (scratch / f"worker-{n}" for n in range(count)):
            if (pid := os.fork()) == 0:
                _work(site, parts, provided, queue_read, report)
            with contextlib.suppress(OSError):  # as the worker does: its group exists before any signal
                os.setpgid(pid, pid)
            _RUNNING.add(pid)
            workers.append((pid, report))
    finally:
        os.close(queue_read)
    return workers


#: The workers forked and not yet waited for.
_RUNNING: set[int] = set()


def _stop_workers(signum: int, _frame: object) -> NoReturn:
    """SIGTERM (the build stopped waiting: another check failed, or it was interrupted): the workers, in
    process groups of their own, and what they left running, are killed, then this process ends. Without
    it they would go on importing the packages' code into a layer the build is removing."""
    for pid in list(_RUNNING):
        _stop_leftovers(pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    os._exit(128 + signum)


def _stop_leftovers(pid: int) -> None:
    """Kill what a worker left running in its process group (a process a module forked and left behind)."""
    with contextlib.suppress(OSError):  # none left
        os.killpg(pid, signal.SIGKILL)


def _merge(reports: Sequence[dict[str, Any]], order: Sequence[str]) -> dict[str, Any]:
    """One report of several checks' reports, each list and the times in ``order`` (the workers finish in
    any order; the report must not depend on it). A module two workers imported is reported once: failed if
    it failed in either, else warned, else skipped, else imported, with its longest time (a worker that had
    it loaded already took none)."""
    position, kinds = {m: i for i, m in enumerate(order)}, ("failed", "warnings", "skipped")
    outcome: dict[str, tuple[int, Any]] = {}  # module -> (rank: an index of kinds, 3 imported; what was said)
    for report in reports:
        for rank, name in enumerate(kinds):
            for found in report[name]:
                if rank < outcome.get(found["module"], (9, None))[0]:
                    outcome[found["module"]] = (rank, found)
        for module in report["imported"]:
            outcome.setdefault(module, (3, None))
    times: dict[str, float] = {}
    for module, seconds in ((m, t) for r in reports for m, t in r["times"].items() if outcome[m][0] == 3):
        times[module] = max(seconds, times.get(module, 0.0))
    merged: dict[str, Any] = {
        "imported": sorted((m for m, (rank, _f) in outcome.items() if rank == 3), key=position.__getitem__),
        "times": dict(sorted(times.items(), key=lambda item: position[item[0]])),
    }
    for rank, name in enumerate(kinds):
        merged[name] = sorted((f for r, f in outcome.values() if r == rank), key=lambda o: position[o["module"]])
    return merged


def _work(site: Path, parts: Sequence[Sequence[str]], provided: Sequence[str], queue: int, report: Path) -> NoReturn:
    """A forked worker: imports the groups it takes from ``queue`` and leaves without running the parent's
    cleanup. Each line is appended by opening ``report`` anew; a copy of it a module forked leaves at once;
    a queue a module closed or replaced ends its taking (others, or another round, take the rest)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
        os.setpgid(0, 0)  # its own process group: what its modules leave running is killed after it
        me, queue_id, reports, order = os.getpid(), os.fstat(queue), [], []
        while os.getpid() == me and (number := _take(queue, queue_id, len(parts))) is not None:
            order += parts[number]
            reports.append(check(site, parts[number], provided, lambda m: _append(report, f"start {m}", me)))
        _append(report, "report " + json.dumps(_merge(reports, order)), me)
        code = 0
    finally:
        os._exit(code)


def _take(queue: int, queue_id: os.stat_result, count: int) -> int | None:
    """The next group's number from the queue, or None: empty, or no longer the queue."""
    try:
        number = os.read(queue, 4) if os.path.samestat(os.fstat(queue), queue_id) else b""
    except OSError:
        return None
    index = struct.unpack("<I", number)[0] if len(number) == 4 else count
    return index if index < count else None


def _append(path: Path, line: str, worker: int) -> None:
    """One line onto a worker's report; a copy of the worker that a module forked leaves instead."""
    if os.getpid() != worker:
        os._exit(0)
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _sibling(name: str) -> Any:
    """``name``.py beside this file, loaded by its path: run as a script with ``-I``, this file has no package,
    and its folder must not go on ``sys.path`` (the layer's modules would see ours)."""
    spec = importlib.util.spec_from_file_location(f"_cdk_lambda_layer_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="import_check")
    parser.add_argument("site")
    parser.add_argument("--provided", action="append", default=[], help="a package the runtime or a layer provides")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per CPU)")
    args = parser.parse_args(argv)
    site = Path(args.site).resolve()
    layer, plan = _sibling("layer_snapshot"), _sibling("import_plan")
    before = layer.snapshot(site)
    distributions = plan.read_distributions(site)
    order = plan.dependency_order(site, plan.top_level_modules(site, distributions), distributions)
    try:
        parts = plan.groups(site, order, before, distributions)
        report = check_in_workers(site, parts, args.provided, args.jobs or default_jobs())
    except WorkerCrashed as crash:
        layer.undo_writes(site, before)
        print(f"importing {crash.module}", file=sys.stderr, flush=True)  # the module the caller names
        print(f"the worker importing {crash.module} died (wait status {crash.status})", file=sys.stderr)
        return 70
    report["writes"] = layer.undo_writes(site, before)
    report["tree"] = layer.tree_digest(before.items())
    sys.stdout.flush()
    print("\n" + json.dumps(report), flush=True)  # on a line of its own, whatever a module wrote before
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # not waiting for a thread a module started and never ends (one process checks all)
