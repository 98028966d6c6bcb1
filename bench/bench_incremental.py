"""The cost of the checks, what per-package reuse saves, and what each parallel step pays (one run).

    python bench/run.py --suite incremental [--runs 5]

Scenarios (all local builds for python3.12 x86_64 with the CPython 3.12 found on this machine, so
that bytecode and the import check really run; the layer cache off unless said):

(a) the ~15-package project built in full with bytecode and the import check, against the same
    build with both off;
(b) the same project after one pure-Python pin was bumped in its lock (idna 3.19 -> 3.20), with the
    package cache that the build of the lock before the bump left, against a full build without it;
(c) the same on a large layer (numpy and scipy, ~190 MB unzipped with bytecode; python-dateutil
    3.0.0 -> 4.0.0);
and, for the parallel steps, (a)'s full build with the steps one after another
(``CDK_LAYER_OVERLAP=0``) and with the bytecode step and the zip on one core (``CDK_LAYER_JOBS=1``).
Each timed build starts from a fresh copy of the project (and, for the bumped ones, of the package
cache as the earlier build left it); the copies are made, and written to disk (``os.sync``), outside
the timing.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from run import ROOT, TARGET, Scenario, machine, table, target_interpreter, write_section

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.tools import find_uv

FIFTEEN = ROOT / "bench" / "projects" / "fifteen"
LARGE = ROOT / "bench" / "projects" / "large"
#: (project, the pin before the bump): the committed lock is the bumped one.
BUMPS = {"fifteen": (FIFTEEN, "idna==3.19"), "large": (LARGE, "python-dateutil==3.0.0")}


@dataclass
class Build(Scenario):
    """A scenario whose build reports its steps; ``prepare`` runs before the clock starts."""

    prepare: Callable[[Path], None] | None = None
    steps: list[dict[str, float]] = field(default_factory=list)

    def once(self) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            work = Path(tmp)
            if self.prepare is not None:
                self.prepare(work)
            # Every run starts with nothing left to write back (the fixture's copies, the last run's files):
            # the disk's flush of them would land in whichever build is timed next.
            os.sync()
            started = time.perf_counter()
            result = self.action(work)
            seconds = time.perf_counter() - started
            self.unzipped = result.unzipped_bytes  # type: ignore[attr-defined]
            self.steps.append(dict(result.steps))  # type: ignore[attr-defined]
        return seconds


def builder(
    project: Path, *, cache: str | None = None, env: dict[str, str] | None = None, **options: object
) -> Callable[[Path], object]:
    """A timed build of a fresh copy of ``project``; ``cache``: a folder of the work dir holding the layer
    and package caches (None: no cache at all)."""
    variable = f"CDK_LAYER_PYTHON_{TARGET.python.replace('.', '_')}"
    interpreter = target_interpreter()

    def build(work: Path) -> object:
        copy = work / "project"
        if not copy.exists():
            shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build"))
        saved = {k: os.environ.get(k) for k in [variable, *(env or {})]}
        os.environ.update({variable: interpreter or "/nonexistent/python", **(env or {})})
        try:
            return UVBasedLambdaLayerLocalBuilder(
                copy,
                python=TARGET.python,
                cache_dir=work / cache if cache else False,
                **options,
            ).run()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return build


def bumped(keep: Path, name: str) -> Callable[[Path], None]:
    """Set-up for a bumped build: the project (its committed lock) and the package cache that a build
    of the lock before the bump left (made once, copied for each run)."""
    project, before = BUMPS[name]
    template = keep / f"{name}-cache"
    if not template.exists():
        base = Path(shutil.copytree(project, keep / f"{name}-before", ignore=shutil.ignore_patterns("build")))
        # the target's CPython: the large project's requires-python excludes the host's, and uv must not
        # download one
        python = ["--python", target_interpreter()] if target_interpreter() else []
        argv = [find_uv(), "lock", "-q", "--no-python-downloads", *python, "--upgrade-package", before]
        subprocess.run(argv, cwd=base, check=True)
        builder(base, cache="cache")(keep / f"{name}-seed")
        shutil.move(keep / f"{name}-seed" / "cache", template)
        for entry in template.iterdir():  # the finished layer would not serve the bumped lock: leave it out
            if len(entry.name) == 64 and entry.is_dir():
                shutil.rmtree(entry)

    def prepare(work: Path) -> None:
        shutil.copytree(project, work / "project", ignore=shutil.ignore_patterns("build"))
        shutil.copytree(template, work / "cache", symlinks=True)

    return prepare


def incremental_suites(keep: Path) -> tuple[list[Build], list[Build]]:
    small = [
        Build("(a) full build, bytecode and import check off", builder(FIFTEEN, bytecode=False, import_check=False)),
        Build("(a) full build, bytecode and import check (no cache at all)", builder(FIFTEEN)),
        Build(
            "(b) full build into an empty layer cache, no package cache",
            builder(FIFTEEN, cache="cache", package_cache=False),
        ),
        Build(
            "(b) one pure-Python pin bumped (idna), with the package cache",
            builder(FIFTEEN, cache="cache"),
            prepare=bumped(keep, "fifteen"),
        ),
        Build(
            "parallel: full build, steps one after another (CDK_LAYER_OVERLAP=0)",
            builder(FIFTEEN, env={"CDK_LAYER_OVERLAP": "0"}),
        ),
        Build(
            "parallel: full build, bytecode and zip on one core (CDK_LAYER_JOBS=1)",
            builder(FIFTEEN, env={"CDK_LAYER_JOBS": "1"}),
        ),
        Build(
            "parallel: neither (CDK_LAYER_OVERLAP=0, CDK_LAYER_JOBS=1)",
            builder(FIFTEEN, env={"CDK_LAYER_OVERLAP": "0", "CDK_LAYER_JOBS": "1"}),
        ),
    ]
    large = [
        Build(
            "(c) large layer: full build into an empty layer cache, no package cache",
            builder(LARGE, cache="cache", package_cache=False),
        ),
        Build(
            "(c) large layer: one pure-Python pin bumped (python-dateutil), with the package cache",
            builder(LARGE, cache="cache"),
            prepare=bumped(keep, "large"),
        ),
    ]
    return small, large


def step_table(scenarios: list[Build]) -> str:
    names = [
        n
        for n in (
            "export",
            "plan",
            "install",
            "trim",
            "bytecode",
            "import check",
            "verify",
            "zip",
            "cache store",
            "package store",
        )
        if any(n in s for sc in scenarios for s in sc.steps)
    ]
    rows = ["| scenario | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for sc in scenarios:
        cells = [f"{statistics.median(s.get(n, 0.0) for s in sc.steps):.2f}" for n in names]
        rows.append(f"| {sc.name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_incremental_page(small: list[Build], large: list[Build], runs: int, large_runs: int) -> dict[str, float]:
    med = [statistics.median(s.times) for s in small]
    off, full, full_cached, bump, serial, one_core, neither = med
    big_full, big_bump = (statistics.median(s.times) for s in large)
    ratios = {
        "checks": full / off,
        "bump": bump / full_cached,
        "bump_vs_uncached": bump / full,
        "bump_large": big_bump / big_full,
        "overlap": serial / full,
        "jobs": one_core / full,
        "neither": neither / full,
    }
    body = f"""## Speed with every check on: incremental layers and parallel steps

Local builds for python3.12 x86_64 with CPython {TARGET.python} on the machine (bytecode and the import
check run), the layer cache off unless a row says so; the bumped builds start from the package cache
that the build of the lock before the bump left (copied for each run and written to disk, outside the
timing). {runs} runs
each for the ~15-package project, {large_runs} for the large layer (`bench/projects/large`: numpy and
scipy), interleaved. Ratios are to the first row of each table. Machine: {machine()}.

{table(small)}

{table(large)}

- (a) bytecode and the import check cost **{ratios["checks"]:.2f}×** the build without them
  (goal ≤ 1.4×: {"met" if ratios["checks"] <= 1.4 else "missed"}).
- (b) one bumped pure-Python pin rebuilds in **{ratios["bump"]:.2f}×** a full build without the
  package cache (both store the finished layer in the layer cache; {ratios["bump_vs_uncached"]:.2f}× the full
  build with no cache at all) (goal ≤ 0.3×: {"met" if ratios["bump"] <= 0.3 else "missed"}); (c) on the large layer in
  **{ratios["bump_large"]:.2f}×** (goal ≤ 0.2×: {"met" if ratios["bump_large"] <= 0.2 else "missed"}). Both zips
  are byte-identical to a build from nothing (tests/test_package_cache.py).
- Parallel steps, against the default full build: the steps one after another take
  **{ratios["overlap"]:.2f}×**, the bytecode step and the zip on one core **{ratios["jobs"]:.2f}×**, neither
  **{ratios["neither"]:.2f}×** (above 1: the default pays).

Step medians (seconds; with the overlap the content checks run during `bytecode` or `import check`, and
the zip during `import check`, so `verify` and `zip` are what was left to wait for):

{step_table(small + large)}
"""
    write_section("incremental", body)
    return ratios
