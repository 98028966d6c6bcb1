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
