"""Issue 6's side-by-side matrix: every path of ours against the peers, per project, one run.

    python bench/matrix.py [--runs 5]      (needs Docker and the stand-in image for two rows)

Projects: a small pure-Python one, the ~15-package one, a Poetry one; all for python3.11
x86_64 because the stand-in build image (no registry is reachable here) runs Python 3.11.
Every tool gets the same pinned packages (exported once from the project's lock). Writes
the "matrix" section of docs/benchmarks.md and docs/benchmarks.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    CONTAINER_APP,
    ROOT,
    STANDIN,
    Scenario,
    container_project,
    machine,
    measure,
    write_section,
)

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, ContainerOptions
from cdk_lambda_layer.builders.container import BasedLambdaLayerContainerBuilder
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.package.archive import write_layer_zip

PY = "3.11"


@dataclass
class Project:
    name: str
    folder: Path  # what our builders read (with its own tool)
    requirements: Path  # the same pins for the peers and the bare tools


def projects(keep: Path) -> list[Project]:
    def pins(folder: Path, out: Path) -> Path:
        """The project's pinned requirements, exported once by our own builder."""
        result = BasedLambdaLayerLocalBuilder(folder, python=PY, make_zip=False, cache_dir=False).run()
        shutil.copyfile(result.layout.requirements, out)
        return out

    small = ROOT / "tests" / "projects" / "pip_pyproject"
    poetry = ROOT / "tests" / "projects" / "poetry_app"
    fifteen = container_project(keep / "fifteen")
    found = []
    for name, folder in (("small pure-Python (2 pkgs)", small), ("~15 packages", fifteen), ("Poetry (6 pkgs)", poetry)):
        copy = Path(shutil.copytree(folder, keep / f"src-{len(found)}", ignore=shutil.ignore_patterns("build")))
        found.append(Project(name, copy, pins(copy, keep / f"req-{len(found)}.txt")))
    return found


def fresh(project: Project, work: Path) -> Path:
    return Path(shutil.copytree(project.folder, work / "p", ignore=shutil.ignore_patterns("build")))


def ours_local(project: Project, *, cold: bool = False, layer_cache: Path | None = None) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        previous = os.environ.get("UV_CACHE_DIR")
        if cold:
            os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
        try:
            cache: Path | bool = layer_cache if layer_cache else False
            return (
                BasedLambdaLayerLocalBuilder(fresh(project, work), python=PY, make_zip=False, cache_dir=cache)
                .run()
                .python_dir
            )
        finally:
            if cold:
                os.environ.pop("UV_CACHE_DIR")
                if previous is not None:
                    os.environ["UV_CACHE_DIR"] = previous

    return build


def ours_container(project: Project) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        container = ContainerOptions(image=STANDIN)
        return (
            BasedLambdaLayerContainerBuilder(
                fresh(project, work), python=PY, make_zip=False, cache_dir=False, container=container
            )
            .run()
            .python_dir
        )

    return build


def peer(project: Project) -> Callable[[Path], Path]:
    def build(work: Path) -> Path:
        entry = work / "entry"
        entry.mkdir()
        shutil.copyfile(project.requirements, entry / "requirements.txt")
        out = work / "cdk.out"
        env = {**os.environ, "CDK_OUTDIR": str(out), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        subprocess.run(
            [sys.executable, str(CONTAINER_APP), "plv", str(entry), STANDIN], env=env, check=True, capture_output=True
        )
        return next(p for p in out.iterdir() if p.name.startswith("asset.") and p.is_dir())

    return build


def bare(project: Project, tool: str) -> Callable[[Path], Path]:
    def install(work: Path) -> Path:
        dest = work / "python"
        if tool == "uv":
            argv = [
                find_uv(),
                "pip",
                "install",
                "-q",
                "--target",
                str(dest),
                "--python-version",
                PY,
                "--python-platform",
                "x86_64-manylinux2014",
                "--only-binary",
                ":all:",
                "-r",
                str(project.requirements),
            ]
        else:
            argv = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(dest),
                "--platform",
                "manylinux2014_x86_64",
                "--implementation",
                "cp",
                "--python-version",
                PY,
                "--abi",
                "cp311",
                "--only-binary=:all:",
                "-r",
                str(project.requirements),
            ]
        subprocess.run(argv, check=True)
        return dest

    return install


def zipped_size(folder: Path | None, work: Path) -> int:
    if folder is None:
        return 0
    site = folder / "python" if (folder / "python").is_dir() and folder.name.startswith("asset.") else folder
    return write_layer_zip(site, work / "size.zip")


def suite(project: Project, keep: Path) -> list[Scenario]:
    layer_cache = keep / f"layer-cache-{id(project)}"
    ours_local(project, layer_cache=layer_cache)(Path(tempfile.mkdtemp(dir=keep)))  # warm the layer cache
    return [
        Scenario("aws-cdk PythonLayerVersion (Docker, no cache)", peer(project)),
        Scenario("ours: container build, warm", ours_container(project)),
        Scenario("ours: local, cold caches", ours_local(project, cold=True)),
        Scenario("ours: local, warm download cache", ours_local(project)),
        Scenario("ours: local, warm layer cache, fresh build", ours_local(project, layer_cache=layer_cache)),
        Scenario("bare `pip install --target` (warm)", bare(project, "pip")),
        Scenario("bare `uv pip install --target` (warm)", bare(project, "uv")),
    ]


def rows(name: str, scenarios: list[Scenario], zipped: dict[str, int]) -> list[str]:
    peer_time = statistics.median(scenarios[0].times)
    out = []
    for s in scenarios:
        median = statistics.median(s.times)
        size = f"{(s.unzipped or 0) / 1e6:.1f} / {zipped[s.name] / 1e6:.1f}"
        out.append(
            f"| {name} | {s.name} | {median:.2f} | {min(s.times):.2f}–{max(s.times):.2f} | "
            f"{peer_time / median:.1f}× | {size} |"
        )
    return out


def plot(results: dict[str, list[Scenario]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in next(iter(results.values()))]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(results)
    for index, (project, scenarios) in enumerate(results.items()):
        medians = [statistics.median(s.times) for s in scenarios]
        ax.barh([i + index * width for i in range(len(names))], medians, height=width, label=project)
    ax.set_yticks([i + width for i in range(len(names))], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("seconds (median, log scale)")
    ax.set_title("Building a python3.11 layer: cdk-lambda-layer vs aws-cdk PythonLayerVersion")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[Scenario]] = {}
    table = [
        "| project | scenario | median s | min–max s | speed-up vs PythonLayerVersion | MB unzipped / zipped |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp:
        keep = Path(tmp)
        for project in projects(keep):
            scenarios = suite(project, keep)
            measure(scenarios, args.runs)
            zipped = {}
            for s in scenarios:
                with tempfile.TemporaryDirectory(dir=keep) as work:
                    zipped[s.name] = zipped_size(s.action(Path(work)), Path(work))
            results[project.name] = scenarios
            table += rows(project.name, scenarios, zipped)
            print("\n".join(table[-len(scenarios) :]), flush=True)
    plot(results, ROOT / "docs" / "benchmarks.png")
    write_section(
        "matrix",
        f"""## All paths against the peers, per project (issue 6)

python3.11 x86_64; the stand-in build image `{STANDIN}` for both Docker paths; the same pins for
every tool. "cold caches" empties uv's download cache; "warm layer cache, fresh build" is a new
build folder (as in a CI job) with the layer cache restored. Speed-up = PythonLayerVersion's median
divided by the scenario's. Sizes: unzipped, and zipped with this library's zip (level 6) for all.
{args.runs} runs each, interleaved per project. Machine: {machine()}.

![time per scenario](benchmarks.png)

{chr(10).join(table)}
""",
    )


if __name__ == "__main__":
    main()
