"""Benchmarks, side by side in one run; writes docs/benchmarks.md.

    python bench/run.py [--runs 7] [--suite local|synth|all]

Every scenario runs once to warm caches, then --runs times, interleaved with the
others so that machine noise hits all alike; the page gives medians, min-max and
ratios against the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder  # noqa: E402
from cdk_lambda_layer.inventory import tree_size  # noqa: E402
from cdk_lambda_layer.target import LambdaTarget  # noqa: E402
from cdk_lambda_layer.tools import find_uv  # noqa: E402

FIFTEEN = ROOT / "bench" / "projects" / "fifteen"
TARGET = LambdaTarget(python="3.12", architecture="x86_64")


@dataclass
class Scenario:
    name: str
    action: Callable[[Path], Path | None]  # gets a fresh work folder, returns the layer folder
    times: list[float] = field(default_factory=list)
    unzipped: int | None = None

    def once(self) -> float:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            started = time.perf_counter()
            produced = self.action(Path(tmp))
            seconds = time.perf_counter() - started
            if produced is not None:
                self.unzipped = tree_size(produced)
        return seconds


def _copy_project(work: Path) -> Path:
    return Path(shutil.copytree(FIFTEEN, work / "project", ignore=shutil.ignore_patterns("build")))


def _requirements(work: Path) -> Path:
    req = work / "requirements.txt"
    out = subprocess.run(
        [
            find_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-header",
            "--format",
            "requirements-txt",
        ],
        cwd=FIFTEEN,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    req.write_text(out)
    return req


def bare_uv(work: Path) -> Path:
    """The uv command the builder wraps, with the same requirements: the floor."""
    req, dest = _requirements(work), work / "python"
    subprocess.run(
        [
            find_uv(),
            "pip",
            "install",
            "--target",
            str(dest),
            "--python-version",
            TARGET.python,
            "--python-platform",
            TARGET.uv_python_platform,
            "--only-binary",
            ":all:",
            "--no-deps",
            "-q",
            "-r",
            str(req),
        ],
        check=True,
    )
    return dest


def bare_pip(work: Path) -> Path:
    req, dest = _requirements(work), work / "python"
    platforms = [a for tag in TARGET.manylinux_platforms for a in ("--platform", tag)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--target",
            str(dest),
            "--implementation",
            "cp",
            "--python-version",
            TARGET.python,
            "--abi",
            TARGET.cpython_abi,
            *platforms,
            "--only-binary=:all:",
            "--no-deps",
            "-r",
            str(req),
        ],
        check=True,
    )
    return dest


def ours(installer: str) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        project = _copy_project(work)
        result = UVBasedLambdaLayerLocalBuilder(project, python=TARGET.python, installer=installer).run()
        return result.python_dir

    return build


def local_suite() -> list[Scenario]:
    return [
        Scenario("bare `uv pip install --target` (floor)", bare_uv),
        Scenario("cdk-lambda-layer build, uv installer", ours("uv")),
        Scenario("bare `pip install --target --platform ...`", bare_pip),
        Scenario("cdk-lambda-layer build, pip installer", ours("pip")),
    ]


def measure(scenarios: list[Scenario], runs: int) -> None:
    for scenario in scenarios:
        scenario.once()  # warm the download caches
    for _ in range(runs):
        for scenario in scenarios:
            scenario.times.append(scenario.once())


def _tool_versions() -> dict[str, str]:
    def version(argv: list[str]) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]

    return {"uv": version([find_uv(), "--version"]), "pip": version([sys.executable, "-m", "pip", "--version"])}


def table(scenarios: list[Scenario]) -> str:
    floor = statistics.median(scenarios[0].times)
    rows = ["| scenario | median s | min–max s | ratio to floor | layer MB unzipped |", "|---|---|---|---|---|"]
    for s in scenarios:
        median = statistics.median(s.times)
        size = f"{s.unzipped / 1e6:.1f}" if s.unzipped else "–"
        rows.append(
            f"| {s.name} | {median:.2f} | {min(s.times):.2f}–{max(s.times):.2f} | {median / floor:.2f}× | {size} |"
        )
    return "\n".join(rows)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cores = os.cpu_count()
    return f"{platform.system()} {platform.release()}, {cpu}, {cores} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results-local.json")
    args = parser.parse_args()
    scenarios = local_suite()
    measure(scenarios, args.runs)
    versions = _tool_versions()
    results = {s.name: {"times": s.times, "unzipped": s.unzipped} for s in scenarios}
    args.json.write_text(json.dumps({"machine": machine(), "versions": versions, "results": results}, indent=2))
    print(table(scenarios))
    write_page(scenarios, versions, args.runs)


def write_page(scenarios: list[Scenario], versions: dict[str, str], runs: int) -> None:
    floor = statistics.median(scenarios[0].times)
    ours_uv = statistics.median(scenarios[1].times)
    pip_ours = statistics.median(scenarios[3].times)
    page = ROOT / "docs" / "benchmarks.md"
    section = f"""<!-- local-build:start -->
## Local build of the ~15-package project (warm download cache)

`bench/projects/fifteen`: numpy, pydantic, requests, orjson, aws-lambda-powertools and their
dependencies (15 packages from uv.lock), for python3.12 x86_64. Each scenario starts from an
empty target folder; the download caches are warm (one untimed run first). Our build is the
whole pipeline (export from uv.lock, install, trim, verify, deterministic zip); the floor is
the bare install command alone. {runs} runs each, interleaved.

Machine: {machine()}. Tools: {versions["uv"]}; {versions["pip"]}.

{table(scenarios)}

Goal (issue 2): our build within 1.5× of the bare `uv pip install`: **{ours_uv / floor:.2f}×**
({"met" if ours_uv / floor <= 1.5 else "missed"}). The uv installer makes our build
{pip_ours / ours_uv:.1f}× faster than the same build with pip, which is why uv installs by default.
<!-- local-build:end -->
"""
    text = page.read_text() if page.exists() else "# Benchmarks\n\nRegenerate with `python bench/run.py`.\n"
    start, end = "<!-- local-build:start -->", "<!-- local-build:end -->\n"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text)


if __name__ == "__main__":
    main()
