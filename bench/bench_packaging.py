"""Packaging benchmarks (issue 10, 12): parallel zip against zipfile's single thread, a cache-hit
build against copying the cached files, and what verification adds to a warm local build."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import FIFTEEN, TARGET, Scenario, machine, table, write_section

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.files import tree_size
from cdk_lambda_layer.package.archive import write_layer_zip


def fifteen_layer(keep: Path) -> Path:
    """The ~15-package project's layer, built once (no bytecode: the tree the zip step sees either way)."""
    project = Path(shutil.copytree(FIFTEEN, keep / "project", ignore=shutil.ignore_patterns("build")))
    builder = UVBasedLambdaLayerLocalBuilder(project, python=TARGET.python, cache_dir=False, make_zip=False)
    return builder.run().python_dir


def zip_suite(keep: Path) -> list[Scenario]:
    site = fifteen_layer(keep)

    def zipper(level: int, workers: int):
        def run(work: Path) -> None:
            write_layer_zip(site, work / "layer.zip", level, workers=workers)

        return run

    scenarios = [
        Scenario("zipfile, one thread, level 6 (before)", zipper(6, 1)),
        Scenario("parallel, level 6 (default)", zipper(6, 0)),
        Scenario("zipfile, one thread, level 1", zipper(1, 1)),
        Scenario("parallel, level 1", zipper(1, 0)),
    ]
    for scenario in scenarios:
        scenario.unzipped = tree_size(site)
    return scenarios


def write_zip_page(scenarios: list[Scenario], runs: int) -> None:
    serial6, parallel6, serial1, parallel1 = (statistics.median(s.times) for s in scenarios)
    body = f"""## Zipping the layer: parallel compression (issue 10)

The ~15-package layer ({(scenarios[0].unzipped or 0) / 1e6:.0f} MB unzipped) written as `layer.zip`
by today's writer (entries compressed in a thread pool, written in sorted order through zipfile)
and by zipfile alone on one thread. Both give the same bytes (a test proves it at levels 0, 1, 6, 9).
{runs} runs each, interleaved. Machine: {machine()}.

{table(scenarios)}

Goal: parallel ≥ 1.6× faster than single-threaded on 2 cores: **{serial6 / parallel6:.2f}×** at level 6
({"met" if serial6 / parallel6 >= 1.6 else "missed"}), {serial1 / parallel1:.2f}× at level 1 (cheaper
deflate, so the writer's own per-file work weighs more). The largest file (numpy's 24 MB library)
compresses on one core while the others go on: compression may run up to 256 MB ahead of the writer.
"""
    write_section("zip", body)


def _cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cdk_lambda_layer", "build", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def verify_suite(runs: int) -> None:
    """What verification (and the import check) costs within a warm local build, and a cache hit."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-verify-") as keep:
        root = Path(keep)
        project = Path(shutil.copytree(FIFTEEN, root / "project", ignore=shutil.ignore_patterns("build")))
        steps: dict[str, list[float]] = {}
        totals = []
        # steps one after another: with the overlap the checks run while the bytecode compiles, and
        # `verify` would time only what is left to wait for, not what verification costs
        os.environ["CDK_LAYER_OVERLAP"] = "0"
        for _ in range(runs + 1):
            result = UVBasedLambdaLayerLocalBuilder(project, python=TARGET.python, cache_dir=False).run()
            totals.append(sum(seconds for _name, seconds in result.steps))
            for name, seconds in result.steps:
                steps.setdefault(name, []).append(seconds)
        del os.environ["CDK_LAYER_OVERLAP"]
        totals, steps = totals[1:], {k: v[1:] for k, v in steps.items()}  # the first run warms caches
        cache = root / "cache"
        os.environ["CDK_LAYER_CACHE_DIR"] = str(cache)
        _cli(str(project), "--python", TARGET.python)  # fills the cache (the entry is the zip alone)
        # what a hit hands over: the python/ tree and layer.zip; the baseline copies exactly those
        layer = project / "build" / "lambda" / "layer"
        shutil.copytree(layer / "artifacts" / "python", root / "finished" / "python")
        shutil.copyfile(layer / "layer.zip", root / "finished" / "layer.zip")
        hits, copies = [], []

        def copy() -> float:
            started = time.perf_counter()
            shutil.copytree(root / "finished", root / "copy")
            return time.perf_counter() - started

        for index in range(runs):  # both delete their previous output first; who goes first alternates
            shutil.rmtree(project / "build", ignore_errors=True)
            shutil.rmtree(root / "copy", ignore_errors=True)
            if index % 2:
                copies.append(copy())
            hits.append(_cli(str(project), "--python", TARGET.python))
            if not index % 2:
                copies.append(copy())
        del os.environ["CDK_LAYER_CACHE_DIR"]
    (Path(__file__).parent / "results-verify.json").write_text(
        json.dumps({"machine": machine(), "steps": steps, "totals": totals, "hits": hits, "copies": copies}, indent=2)
    )
    write_verify_page(steps, totals, hits, copies, runs)


def write_verify_page(
    steps: dict[str, list[float]], totals: list[float], hits: list[float], copies: list[float], runs: int
) -> None:
    total = statistics.median(totals)
    verify = statistics.median(steps["verify"])
    rows = "\n".join(f"| {name} | {statistics.median(times):.3f} |" for name, times in steps.items())
    hit, copy = statistics.median(hits), statistics.median(copies)
    compiled = "bytecode" in steps
    where = (
        f"A CPython {TARGET.python} was found on this machine, so the build also compiled bytecode and ran the "
        "import check (both outside the verification figure)."
        if compiled
        else f"No CPython {TARGET.python} was found on this machine, so the build ran without bytecode and "
        "import check."
    )
    body = f"""## Verification cost, and a cache hit (issues 10 and 12)

A warm local build of the ~15-package project for {TARGET.runtime_name} (download caches warm, layer
cache off), step by step with the steps one after another (`CDK_LAYER_OVERLAP=0`, so that `verify` is
what the checks cost; by default they run while the bytecode compiles), median of {runs} builds.
Machine: {machine()}.

| step | median s |
|---|---|
{rows}
| **whole build** | **{total:.3f}** |

Goal: verification (links, wheel tags, the ELF audit of every shared library with pyelftools,
Requires-Dist for the runtime, size) adds ≤ 10% to the build: **{verify / total * 100:.1f}%**
({"met" if verify / total <= 0.10 else "missed"}). {where}

A cache-hit CLI build (`cdk-lambda-layer build`, python start-up included; the cache entry is the
layer's zip alone, copied out with its sha256 checked and unpacked into the `python/` tree) takes
**{hit:.2f} s**, against **{copy:.2f} s** to copy the same tree and `layer.zip` with `shutil.copytree`:
**{hit / copy:.2f}×** (goal ≤ 1.2×: {"met" if hit / copy <= 1.2 else "missed"}).
Fastest runs: {min(hits):.2f} s and {min(copies):.2f} s. Both create the same ~2500 files; the hit
inflates them from the zip (checking each member's CRC-32) instead of reading them, and pays the
command line's start-up (a Python process importing this library). Where creating a file is slow (see the
machine line: a file system without a journal) both pay it alike; where it is fast, the copy is mostly the
kernel's and the hit's own work shows.
"""
    write_section("verify", body)
