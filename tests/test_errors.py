"""Every bad input from the command line: one message naming the cause and the fix, its exit
code, and never a traceback. (The API raises the same typed errors; see docs/errors.md.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdk_lambda_layer import LayerBuildError, UVBasedLambdaLayerLocalBuilder

PROJECTS = Path(__file__).parent / "projects"


def setup(tmp_path: Path, case: str) -> tuple[Path, list[str], dict[str, str]]:
    """Make the bad input for ``case``; return the project, extra CLI args and environment."""
    project = tmp_path / "p"
    args: list[str] = []
    env: dict[str, str] = {}
    base = "uv_app"
    if case in ("stale-lock", "no-wheel"):
        base = "uv_numpy" if case == "no-wheel" else "uv_app"
    if case in ("not-found", "pip-no-wheel"):
        base = "pip_requirements"
    if case not in ("missing", "setup-py-only", "missing-folder"):
        shutil.copytree(PROJECTS / base, project)
    else:
        project.mkdir()
    pyproject = project / "pyproject.toml"
    if case == "setup-py-only":
        (project / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    elif case == "invalid-toml":
        pyproject.write_text("[project\n")
    elif case == "not-utf8":
        pyproject.write_bytes(b"\xff\xfe[project]\n")
    elif case == "no-project-table":
        pyproject.write_text("[tool.ruff]\nline-length = 1\n")
    elif case == "no-lock":
        (project / "uv.lock").unlink()
        args = ["--tool", "uv"]
    elif case == "several-locks":
        (project / "poetry.lock").write_text("")
    elif case == "stale-lock":
        pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
    elif case == "tool-missing":
        shutil.rmtree(project)
        shutil.copytree(PROJECTS / "poetry_app", project)
        env = {"PATH": "/nonexistent", "CDK_LAYER_TEST_HIDE_POETRY": "1"}
    elif case == "python":
        args = ["--python", "3.8"]
    elif case == "cpu":
        args = ["--arch", "s390x"]
    elif case == "no-wheel":
        args = ["--python", "3.11", "--build", "local"]
    elif case == "too-large":
        args = ["--max-size", "100000"]
    elif case == "index-unreachable":
        env = {"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_CACHE_DIR": str(tmp_path / "uv")}
        args = ["--no-cache"]
    elif case == "docker":
        env = {"DOCKER_HOST": "unix:///nonexistent.sock"}
        args = ["--build", "container"]
    elif case == "build-folder":
        (project / "build").write_text("a file")
    elif case == "missing-folder":
        project = tmp_path / "typo"
    elif case == "exclude-unknown":
        args = ["--exclude", "orjsonn"]
    elif case == "exclude-required":
        args = ["--exclude", "pydantic-core"]
    elif case == "requires-python":
        pyproject.write_text(pyproject.read_text().replace('requires-python = ">=3.10"', 'requires-python = "<3.12"'))
    elif case == "unknown-extra":
        args = ["--extra", "fastest"]
    elif case == "unknown-group":
        args = ["--group", "observability"]
    elif case == "garbage-lock":
        (project / "uv.lock").write_bytes(b"\x00\xff\xfe garbage \x00")
    elif case == "not-found":
        (project / "requirements.txt").write_text("reqeusts-no-such-package-xyz==2.32.3\n")
        args = ["--installer", "pip"]
        env = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    elif case == "pip-no-wheel":
        (project / "requirements.txt").write_text("docopt==0.6.2\n")
        args = ["--installer", "pip", "--build", "local"]
    elif case == "bytecode-required":
        args = ["--bytecode", "--python", "3.14"]  # no CPython 3.14 here: the variable names a missing one
        env = {"CDK_LAYER_PYTHON_3_14": "/nonexistent/python3.14"}
    return project, args, env


CASES = [
    ("missing", 2, ["No pyproject.toml", "pass the project folder"]),
    ("setup-py-only", 2, ["setup.py but no pyproject.toml", "[project]"]),
    ("invalid-toml", 2, ["not valid TOML", "Fix the syntax"]),
    ("not-utf8", 2, ["not UTF-8 text", "save it as UTF-8"]),
    ("no-project-table", 2, ["neither a [project] table nor a [tool.poetry] section"]),
    ("no-lock", 2, ["No uv.lock", "`uv lock`"]),
    ("several-locks", 2, ["poetry.lock and uv.lock", "--tool poetry | uv"]),
    ("stale-lock", 2, ["uv.lock is out of date", "`uv lock`"]),
    ("tool-missing", 3, ["Poetry is not installed", "poetry-plugin-export"]),
    ("python", 2, ["Unknown Python version '3.8'", "--python"]),
    ("cpu", 2, ["Unknown CPU architecture 's390x'", "--arch"]),
    ("no-wheel", 4, ["numpy 2.4.", "no wheel runs on python3.11", "glibc 2.27 or newer", "--build container"]),
    ("too-large", 5, ["Lambda allows 0.1 MB", "Largest packages: pydantic_core"]),
    ("index-unreachable", 8, ["Cannot reach the package index at http://127.0.0.1:9/simple"]),
    ("docker", 6, ["Cannot reach a Docker engine at unix:///nonexistent.sock", "Start Docker"]),
    ("build-folder", 7, ["Cannot write the build folder", "--build-dir"]),
    ("missing-folder", 2, ["typo does not exist", "check the path"]),
    ("exclude-unknown", 2, ["exclude/provided name 'orjsonn'", "not among the layer's packages", "orjson"]),
    ("exclude-required", 5, ["pydantic", "requires pydantic-core", "(you excluded it)", "provided=['pydantic-core']"]),
    ("requires-python", 2, ["python3.12 is outside the Python versions", "requires-python <3.12"]),
    ("unknown-extra", 2, ["No extra 'fastest'", "(defined: cli)"]),
    ("unknown-group", 2, ["No dependency group 'observability'", "extra-tools"]),
    ("garbage-lock", 2, ["uv.lock is not a valid TOML file", "`uv lock`"]),
    ("not-found", 2, ["reqeusts-no-such-package-xyz", "is not on the package index", "check the name"]),
    ("pip-no-wheel", 4, ["docopt 0.6.2: it publishes only a source distribution", "build='container'"]),
    ("bytecode-required", 3, ["bytecode=True needs CPython 3.14", "CDK_LAYER_PYTHON_3_14"]),
]


@pytest.mark.network
@pytest.mark.parametrize(("case", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(tmp_path, case, code, words):
    project, args, env = setup(tmp_path, case)
    runner = [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", *args]
    if env.pop("CDK_LAYER_TEST_HIDE_POETRY", None):  # poetry sits next to this interpreter: hide it
        runner = [
            sys.executable,
            "-c",
            "import cdk_lambda_layer.tools as t, sys; t._beside_interpreter = "
            "lambda name: None; from cdk_lambda_layer.cli import main; sys.exit(main(sys.argv[1:]))",
            *runner[3:],
        ]
    done = subprocess.run(runner, capture_output=True, text=True, check=False, env={**os.environ, **env})
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr[done.stderr.index("error: ") :]
    for word in words:
        assert word in error, error


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lock=st.one_of(st.text(max_size=300), st.binary(max_size=200)))
def test_any_uv_lock_content_ends_in_a_typed_error_or_a_build(tmp_path_factory, lock):
    project = Path(shutil.copytree(PROJECTS / "uv_app", tmp_path_factory.mktemp("lockfuzz") / "p"))
    (project / "uv.lock").write_bytes(lock if isinstance(lock, bytes) else lock.encode())
    try:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=False).run()
    except LayerBuildError as exc:
        assert str(exc)
