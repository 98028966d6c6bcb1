"""Cold start (issue 10): CPU seconds to import a layer's packages from a read-only copy.

For each project: our layer with bytecode, our layer without, and aws-cdk PythonLayerVersion's
layer built in the same stand-in image, each zipped and extracted as Lambda gets it (fixed
1980-01-01 file times, as CDK's asset zip has; then made read-only), imported by this machine's
Python (3.11, the layers' target) in a clean process (-I -S, PYTHONDONTWRITEBYTECODE=1): user +
system CPU of that process, median of the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from run import FIFTEEN, ROOT, STANDIN, cdk_app, machine, write_section

from cdk_lambda_layer import PipBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.files import tree_size
from cdk_lambda_layer.core.tools import find_uv

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
PROJECTS = {
    "~15 packages (numpy, pydantic, requests, orjson, powertools)": (
        FIFTEEN,
        ["numpy", "pydantic", "requests", "orjson", "aws_lambda_powertools"],
    ),
    "powertools-style (powertools: logging, tracing, parser, validation; boto3)": (
        ROOT / "bench" / "projects" / "powertools",
        [
            "aws_lambda_powertools.logging",
            "aws_lambda_powertools.utilities.parser",
            "aws_lambda_powertools.utilities.validation",
            "aws_lambda_powertools.utilities.typing",
            "boto3",
            "pydantic",
        ],
    ),
}
EPOCH_1980 = 315532800  # 1980-01-01T00:00:00Z


def pip_project(source: Path, folder: Path) -> Path:
    """The lock's pins as a requirements.txt (numpy at 2.2.6: 2.4 has no wheel for python3.11's glibc)."""
    folder.mkdir(parents=True)
    argv = [find_uv(), "export", "--frozen", "--no-emit-project", "--no-header", "--no-hashes", "--no-annotate"]
    out = subprocess.run(argv, cwd=source, capture_output=True, text=True, check=True).stdout
    pins = [("numpy==2.2.6" if line.startswith("numpy==") else line) for line in out.splitlines()]
    (folder / "requirements.txt").write_text("\n".join(pins) + "\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "coldstart"\nversion = "0"\n')
    return folder


def as_lambda_gets_it(python_dir: Path, opt: Path) -> Path:
    """Zip with fixed times, extract, give every file the zip's 1980 time, make it read-only."""
    archive = opt.parent / "layer.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(p for p in python_dir.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"python/{path.relative_to(python_dir).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            out.writestr(info, path.read_bytes())
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(opt)
    for path in [*opt.rglob("*"), opt]:
        os.utime(path, (EPOCH_1980, EPOCH_1980), follow_symlinks=False)
        path.chmod(path.stat().st_mode & ~0o222)
    return opt / "python"


def import_cpu(python_dir: Path, modules: list[str]) -> float:
    code = f"import sys; sys.path.insert(0, {str(python_dir)!r}); import {', '.join(modules)}"
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen([sys.executable, "-I", "-S", "-B", "-c", code], env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"import failed in {python_dir}"
    return usage.ru_utime + usage.ru_stime


def layers(project: Path, keep: Path) -> dict[str, Path]:
    """The three layers of one project, each as Lambda gets it."""
    found = {}
    for name, bytecode in (("ours, with bytecode", True), ("ours, without bytecode", False)):
        copy = Path(shutil.copytree(project, keep / name / "p"))
        builder = PipBasedLambdaLayerLocalBuilder(copy, python=PYTHON, cache_dir=False, bytecode=bytecode)
        result = builder.run()
        found[name] = as_lambda_gets_it(result.python_dir, keep / name / "opt")
    peer = cdk_app(keep / "peer" / "cdk.out", "plv", str(project), STANDIN)
    found["aws-cdk PythonLayerVersion (pip's timestamp .pyc)"] = as_lambda_gets_it(
        peer / "python", keep / "peer" / "opt"
    )
    return found


def coldstart(runs: int) -> None:
    rows, results = [], {}
    for title, (source, modules) in PROJECTS.items():
        with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as keep:
            project = pip_project(source, Path(keep) / "project")
            variants = layers(project, Path(keep))
            for variant in variants.values():
                import_cpu(variant, modules)  # page cache warm for all alike
            times: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(runs):
                for name, folder in variants.items():
                    times[name].append(import_cpu(folder, modules))
            sizes = {name: tree_size(folder) for name, folder in variants.items()}
            compiled = variants["ours, with bytecode"]
            # Where the rest goes: the interpreter alone, and each package alone from the compiled layer
            # (native extension modules and their start-up are what bytecode cannot shorten).
            floor = statistics.median(import_cpu(compiled, ["sys"]) for _ in range(runs))
            alone = {m: statistics.median(import_cpu(compiled, [m]) for _ in range(runs)) for m in modules}
        medians = {name: statistics.median(t) for name, t in times.items()}
        results[title] = {"times": times, "sizes": sizes, "interpreter": floor, "alone": alone}
        without = medians["ours, without bytecode"]
        for name, median in medians.items():
            rows.append(
                f"| {title} | {name} | {median:.3f} | {min(times[name]):.3f}–{max(times[name]):.3f} | "
                f"{median / without:.2f}× | {sizes[name] / 1e6:.1f} |"
            )
    (ROOT / "bench" / "results-coldstart.json").write_text(
        json.dumps({"machine": machine(), "results": results}, indent=2)
    )
    write_page(rows, results, runs)


def write_page(rows: list[str], results: dict, runs: int) -> None:
    lines = []
    for title, data in results.items():
        med = {name: statistics.median(t) for name, t in data["times"].items()}
        ours, bare = med["ours, with bytecode"], med["ours, without bytecode"]
        peer = med["aws-cdk PythonLayerVersion (pip's timestamp .pyc)"]
        extra = data["sizes"]["ours, with bytecode"] / data["sizes"]["ours, without bytecode"] - 1
        why = ""
        if ours / bare > 0.4:
            heaviest = max(data["alone"], key=data["alone"].get)
            start, native = data["interpreter"], data["alone"][heaviest]
            why = (
                f" Missed by {ours / bare - 0.4:.2f}: of the {ours:.3f} s with bytecode, {start:.3f} s is the "
                f"interpreter starting and {native - start:.3f} s is `{heaviest}` alone, mostly loading and "
                "initialising its native libraries, which bytecode cannot shorten; without it the ratio is "
                f"{(ours - native) / (bare - native):.2f}×."
            )
        lines.append(
            f"- {title}: with bytecode **{ours / bare:.2f}×** the CPU of the same layer without "
            f"(goal ≤ 0.4×: {'met' if ours / bare <= 0.4 else 'missed'}), **{ours / peer:.2f}×** PythonLayerVersion's "
            f"layer after the zip round trip (goal < 1: {'met' if ours < peer else 'missed'}); bytecode adds "
            f"{extra * 100:.0f}% to the unzipped size.{why}"
        )
    table = "\n".join(rows)
    body = f"""## Cold start

CPU seconds (user + system) to import each layer's main packages with Python {PYTHON}, from a
read-only copy extracted from a zip with 1980-01-01 file times (as CDK's asset zip gives Lambda),
`PYTHONDONTWRITEBYTECODE=1`, a fresh process each time (`-I -S`); median of {runs} runs, the three
layers interleaved. PythonLayerVersion's layer was built in the stand-in image (`{STANDIN}`,
Python {PYTHON}); pip compiled it, with timestamp-based `.pyc` that no longer match the sources'
times after the zip, so Python compiles those modules in memory at every import, as Lambda would.
Ours carry PEP 552 unchecked-hash `.pyc`. Same pins for all (the lock's, numpy at 2.2.6).
Machine: {machine()}.

| project | layer | median CPU s | min–max s | ratio to ours without bytecode | unzipped MB |
|---|---|---|---|---|---|
{table}

{chr(10).join(lines)}
"""
    write_section("coldstart", body)


if __name__ == "__main__":
    started = time.perf_counter()
    coldstart(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    print(f"done in {time.perf_counter() - started:.0f} s")
