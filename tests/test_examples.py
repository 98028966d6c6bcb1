"""The runnable examples (examples/builders/), each run as a user would: a subprocess from the repository root."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from docker_helpers import standin_image

from cdk_lambda_layer.project.pyproject import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "builders"
PROJECTS = ROOT / "examples" / "projects"

LOCAL = {
    "pip": "example_1_1_build_lambda_layer_using_pip_in_local",
    "poetry": "example_2_1_build_lambda_layer_using_poetry_in_local",
    "uv": "example_3_1_build_lambda_layer_using_uv_in_local",
}
CONTAINER = {
    "pip": "example_1_2_build_lambda_layer_using_pip_in_container",
    "poetry": "example_2_2_build_lambda_layer_using_poetry_in_container",
    "uv": "example_3_2_build_lambda_layer_using_uv_in_container",
}
PROJECT_OF = {"pip": "pip_app", "poetry": "poetry_app", "uv": "uv_app"}
#: What each project's layer must hold, and what it must not (dev groups, extras not asked for).
REQUIRED = {
    "pip": {"aws-lambda-powertools", "jmespath"},
    "poetry": {"requests", "urllib3"},
    "uv": {"pydantic", "pydantic-core", "orjson"},
}
ABSENT = {"pip": set(), "poetry": {"pytest"}, "uv": {"pytest", "click", "six"}}


def locked_pins(tool: str) -> set[str]:
    """Every name==version the project's lock holds (normalized names)."""
    project = PROJECTS / PROJECT_OF[tool]
    if tool == "pip":
        text = (project / "requirements.txt").read_text()
        pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, flags=re.MULTILINE)
    else:
        lock = tomllib.loads((project / ("poetry.lock" if tool == "poetry" else "uv.lock")).read_text())
        pins = [(p["name"], p["version"]) for p in lock["package"]]
    return {f"{normalize(name)}=={version}" for name, version in pins}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def git_status() -> str | None:
    """What git sees in examples/ (new, changed and ignored files), or None outside a git checkout."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    argv = [git, "status", "--porcelain", "--ignored", "--untracked-files=all", "--", "examples"]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python examples/builders/<name>.py ...`` from the repository root; the checkout stays as it was."""
    before = git_status()
    done = subprocess.run(
        [sys.executable, f"examples/builders/{name}.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert git_status() == before, "the example left files in examples/"
    return done


def check_layer(tool: str, done: subprocess.CompletedProcess[str], build_dir: Path) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    found = re.search(r"^layer\.zip: (.+)$", done.stdout, flags=re.MULTILINE)
    assert found, done.stdout
    layer_zip = Path(found.group(1))
    assert layer_zip == build_dir / "lambda" / "layer" / "layer.zip"
    assert zipfile.is_zipfile(layer_zip)
    with zipfile.ZipFile(layer_zip) as archive:
        entries = archive.namelist()
    assert entries and all(entry.startswith("python/") for entry in entries)
    assert re.search(r"^size: [\d.]+ MB zipped, [\d.]+ MB unzipped$", done.stdout, flags=re.MULTILINE)
    assert re.search(r"^largest: \S+ [\d.]+ MB", done.stdout, flags=re.MULTILINE)
    printed = set(re.findall(r"^  (\S+==\S+)$", done.stdout, flags=re.MULTILINE))
    assert printed and printed <= locked_pins(tool), f"not in the lock: {printed - locked_pins(tool)}"
    names = {line.split("==")[0] for line in printed}
    assert REQUIRED[tool] <= names
    assert not ABSENT[tool] & names


@pytest.mark.parametrize("name", [*LOCAL.values(), *CONTAINER.values()])
def test_every_example_has_a_module_docstring_and_help(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert ast.get_docstring(ast.parse(source)), f"{name}.py has no module docstring"
    done = run_example(name, "--help")
    assert done.returncode == 0, done.stderr
    for option in ("--build-dir", "--python", "--arch"):
        assert option in done.stdout
    if name in CONTAINER.values():
        assert "--image" in done.stdout and "local image" in done.stdout


def test_examples_are_all_listed_here_and_in_the_readme():
    scripts = {path.stem for path in EXAMPLES.glob("example_*.py")}
    assert scripts == {*LOCAL.values(), *CONTAINER.values()}
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"{name}.py" in readme for name in scripts)


@pytest.mark.network
@pytest.mark.parametrize("tool", sorted(LOCAL))
def test_local_example_builds_the_projects_locked_packages(tool, tmp_path):
    build_dir = tmp_path / "build"
    done = run_example(LOCAL[tool], "--build-dir", str(build_dir))
    check_layer(tool, done, build_dir)
    assert "(built)" in done.stdout


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize("tool", sorted(CONTAINER))
def test_container_example_builds_the_projects_locked_packages_in_the_image(tool, tmp_path):
    image = standin_image()  # skips without an engine and the stand-in; fails then under CDK_LAYER_REQUIRE_DOCKER=1
    build_dir = tmp_path / "build"
    done = run_example(CONTAINER[tool], "--build-dir", str(build_dir), "--image", image, "--python", "3.11")
    check_layer(tool, done, build_dir)
    assert f"(built in {image})" in done.stdout


@pytest.mark.parametrize("tool", sorted(CONTAINER))
def test_container_example_without_docker_says_so_in_one_line(tool, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    done = run_example(CONTAINER[tool], "--build-dir", str(tmp_path / "build"), "--image", "any/image:1")
    assert done.returncode == 6  # DockerUnavailableError.exit_code
    assert done.stdout == ""
    assert done.stderr.startswith("error: Cannot reach a Docker engine")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
