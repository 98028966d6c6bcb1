"""The command line as scripts use it: exit codes, --json keys, messages without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_help_lists_the_options():
    out = cli("build", "--help").stdout
    for option in ("--python", "--arch", "--tool", "--exclude", "--json", "PROJECT"):
        assert option in out.replace("project", "PROJECT")


@pytest.mark.network
def test_build_arm64_json_result(project_copy):
    project = project_copy("uv_app")
    done = cli("build", "--python", "3.12", "--arch", "arm64", "--exclude", "orjson", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"layer_zip", "fingerprint", "packages"} <= set(result)
    assert result["layer_zip"] == str(project / "build/lambda/layer/layer.zip")
    assert "orjson" not in {p["name"] for p in result["packages"]}
    assert result["target"]["architecture"] == "arm64"
    for step in ("export", "install", "trim", "verify", "zip"):
        assert f"  {step}" in done.stderr  # each step shown with its duration
    assert "layer: " in done.stderr and "largest: pydantic_core" in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--python", "3.9"], 2, ["Unknown Python version '3.9'"]),
        (["--arch", "sparc"], 2, ["Unknown CPU architecture 'sparc'"]),
        (["--tool", "uv"], 2, ["No uv.lock", "uv lock"]),
    ],
)
def test_errors_exit_non_zero_with_the_message_only(project_copy, args, code, words):
    project = project_copy("pip_pyproject")
    done = cli("build", str(project), *args)
    assert done.returncode == code
    assert "\nerror: " in "\n" + done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr


def test_missing_project_folder(tmp_path):
    done = cli("build", str(tmp_path / "nope"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"The project folder {tmp_path / 'nope'} does not exist" in done.stderr


def test_a_folder_without_pyproject(tmp_path):
    done = cli("build", str(tmp_path))
    assert done.returncode == 2 and "No pyproject.toml" in done.stderr and "Traceback" not in done.stderr


def test_version(tmp_path):
    import importlib.metadata

    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"cdk-lambda-layer {importlib.metadata.version('cdk-lambda-layer')}"


def test_help_says_no_locked_is_for_uv_and_max_size_is_in_mb():
    out = " ".join(cli("build", "--help").stdout.split())
    assert "Poetry always refuses a stale lock" in out
    assert "--max-size MB" in out and "like cache prune --max-size" in out


@pytest.mark.parametrize("value", ["0", "-5", "abc", "inf"])
def test_max_size_must_be_a_positive_number_of_mb(tmp_path, value):
    done = cli("build", str(tmp_path), "--max-size", value)
    assert done.returncode == 2 and "argument --max-size" in done.stderr and "number of MB" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["cache", "--cache-dir", "{dir}", "list"],
        ["cache", "list", "--cache-dir", "{dir}"],
        ["cache", "list", "--cache-dir", "{dir}", "--json"],
        ["cache", "--cache-dir", "{dir}", "prune", "--all"],
        ["cache", "prune", "--cache-dir", "{dir}", "--all"],
        ["cache", "prune", "--max-size", "100", "--cache-dir", "{dir}"],
    ],
)
def test_an_empty_cache_folder_is_an_empty_cache(tmp_path, args):
    """A CI job that restores an empty cache folder and prunes before the first build must not fail."""
    empty = tmp_path / "cache"
    empty.mkdir()
    done = cli(*(a.format(dir=empty) for a in args))
    assert done.returncode == 0, done.stderr
    assert f"0 layers{',' if 'list' in args else ' from'}" in done.stderr and str(empty) in done.stderr
    assert list(empty.iterdir()) == []  # nothing written into it either


def test_the_cache_dir_after_the_action_is_the_one_used(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    done = cli("cache", "--cache-dir", str(tmp_path / "other"), "list", "--cache-dir", str(foreign))
    assert done.returncode == 2 and f"{foreign} is not a cdk-lambda-layer cache" in done.stderr
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.network
def test_a_setuptools_layout_with_requirements_builds_as_a_pip_project(tmp_path):
    """pyproject.toml with only [build-system] beside a requirements.txt: the pip project it is."""
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (project / "requirements.txt").write_text("six==1.17.0\n")
    done = cli("build", str(project), "--python", "3.12", "--json")
    assert done.returncode == 0, done.stderr
    assert [p["name"] for p in json.loads(done.stdout)["packages"]] == ["six"]
    assert "pip project 'svc'" in done.stderr
    assert "1 package (built)" in done.stderr  # one package, not "1 packages"


@pytest.mark.network
def test_the_first_line_says_what_was_found_and_package_names_the_member(tmp_path):
    """From the workspace root, --package picks the member; the first line names tool, member, lock and
    target before anything runs; the member's workspace library is in the layer."""
    import shutil
    from pathlib import Path

    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    done = cli("build", str(root), "--package", "orders", "--python", "3.12", "--no-cache", "--json")
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("uv workspace member 'orders' at ") and "(lock: ../../uv.lock)" in first
    assert first.endswith("-> python3.12 x86_64 (build: auto)")
    result = json.loads(done.stdout)
    assert "ledger" in {p["name"] for p in result["packages"]}
    assert result["python_dir"].startswith(str(root / "services" / "orders" / "build"))


@pytest.mark.network
def test_no_bytecode_ships_none_and_bytecode_requires_it(project_copy):
    import zipfile

    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # this machine has that CPython
    off = cli("build", str(project_copy("uv_app", "off")), "--python", python, "--no-bytecode", "--json")
    assert off.returncode == 0, off.stderr
    result = json.loads(off.stdout)
    assert result["bytecode"]["included"] is False and "turned off" in result["bytecode"]["reason"]
    with zipfile.ZipFile(result["layer_zip"]) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]
    on = cli("build", str(project_copy("uv_app", "on")), "--python", python, "--bytecode", "--json")
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["bytecode"]["included"] is True
