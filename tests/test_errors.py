"""Every bad input from the command line: one message naming the cause and the fix, its exit
code, and never a traceback. (The API raises the same typed errors; see docs/errors.md.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdk_lambda_layer import LayerBuildError, UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.tools import find_uv

PROJECTS = Path(__file__).parent / "projects"
REPOS = Path(__file__).parent / "repos"
#: Python run in the CLI's process before main(), to swap a tool for a test double.
PRELUDE = "CDK_LAYER_TEST_PRELUDE"


def script(folder: Path, name: str, body: str) -> Path:
    """An executable shell script ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def fake_uv(tmp_path: Path, body: str) -> str:
    """A prelude that makes the CLI run ``body`` as uv (uv is found through the uv package, not PATH)."""
    fake = script(tmp_path / "fake-uv", "uv", body.replace("REAL_UV", find_uv()))
    return f"import uv; uv.find_uv_bin = lambda: {str(fake)!r}"


def setup(tmp_path: Path, case: str) -> tuple[Path, list[str], dict[str, str]]:
    """Make the bad input for ``case``; return the project, extra CLI args and environment."""
    project = tmp_path / "p"
    args: list[str] = []
    env: dict[str, str] = {}
    base = "uv_app"
    if case in ("stale-lock", "no-wheel"):
        base = "uv_numpy" if case == "no-wheel" else "uv_app"
    if case in ("not-found", "pip-no-wheel", "no-version", "pin-requires-python"):
        base = "pip_requirements"
    if case in ("poetry-no-export-plugin", "poetry-stale-no-locked", "invalid-poetry-lock"):
        base = "poetry_app"
    if case == "include-project-no-backend":
        base = "pip_pyproject"
    if case in ("local-backend-fails", "local-package-missing"):
        shutil.copytree(REPOS / "uv_path", tmp_path / "repo")
        project = tmp_path / "repo" / "service"
    elif case not in ("missing", "setup-py-only", "missing-folder"):
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
        args = ["--max-size", "0.1"]
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
    elif case == "lock-as-project":
        project = project / "uv.lock"
    elif case == "poetry-no-export-plugin":  # the real Poetry, its plugins (poetry-plugin-export) turned off
        poetry = Path(sys.executable).parent / "poetry"
        wrapper = script(tmp_path / "bin", "poetry", f'exec {poetry} --no-plugins "$@"\n')
        env = {"PATH": f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"}
    elif case == "poetry-stale-no-locked":
        pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
        args = ["--no-locked"]
    elif case == "invalid-poetry-lock":
        (project / "poetry.lock").write_text("[[package]\nname = ")
    elif case == "newer-uv-lock":  # as a newer uv writes it
        lock = project / "uv.lock"
        lock.write_text(lock.read_text().replace("version = 1\n", "version = 2\n", 1))
    elif case == "unreadable-uv-lock":  # TOML, but not a lock
        lock = project / "uv.lock"
        lock.write_text(lock.read_text().replace('requires-python = ">=3.10"', "requires-python = 5", 1))
    elif case == "uv-too-old":
        env = {
            PRELUDE: fake_uv(
                tmp_path, 'if [ "$1" = "--version" ]; then echo "uv 0.8.22"; exit 0; fi\nexec REAL_UV "$@"\n'
            )
        }
    elif case == "tool-fails":  # a failure no rule knows: the tool's own cause line, then the command
        env = {PRELUDE: fake_uv(tmp_path, 'echo "error: the flux capacitor is out of sync" >&2; exit 2\n')}
    elif case == "no-version":
        (project / "requirements.txt").write_text("requests==99.0.0\n")
    elif case == "pin-requires-python":  # numpy 2.3 requires Python >= 3.11
        (project / "requirements.txt").write_text("numpy==2.3.0\n")
        args = ["--python", "3.10"]
    elif case == "hash-mismatch":  # the lock's hashes for orjson are not those of the index's files
        lock = project / "uv.lock"
        zeros = "sha256:" + "0" * 64
        lines = lock.read_text().splitlines(keepends=True)
        lock.write_text("".join(re.sub(r"sha256:[0-9a-f]{64}", zeros, x) if "orjson-" in x else x for x in lines))
    elif case == "include-project-no-backend":
        args = ["--include-project"]
    elif case == "local-package-missing":
        shutil.rmtree(tmp_path / "repo" / "acme-lib")
    elif case == "local-backend-fails":  # hatchling finds no package folder named like the project
        source = tmp_path / "repo" / "acme-lib" / "src"
        (source / "acme_lib").rename(source / "something_else")
    elif case == "comma-in-exclude":
        args = ["--exclude", "boto3,botocore"]
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
    ("too-large", 5, ["the limit you set is 0.1 MB (--max-size", "Largest packages: pydantic_core", "!boto3"]),
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
    ("lock-as-project", 2, ["uv.lock is a file, not a project", "pass the folder", "![project]"]),
    (
        "poetry-no-export-plugin",
        3,
        ["has no export command", "poetry-plugin-export", "`poetry self add poetry-plugin-export`"],
    ),
    (
        "poetry-stale-no-locked",
        2,
        ["poetry.lock is out of date", "`poetry lock`", "Poetry always refuses a stale lock", "does not apply"],
    ),
    ("invalid-poetry-lock", 2, ["poetry.lock is not a valid TOML file", "`poetry lock`"]),
    (
        "newer-uv-lock",
        3,
        ["written by a newer uv", "lock schema v2", "and uv 0.", "reads only v1", "pip install -U uv", "!Downgrade"],
    ),
    ("unreadable-uv-lock", 2, ["uv.lock is not a lock uv can read", "TOML parse error", "`uv lock`"]),
    ("uv-too-old", 3, ["uv 0.8.22", "is too old: 0.9.0 or newer is needed", "pip install 'uv>=0.9'"]),
    ("tool-fails", 1, ["uv export failed (exit 2): error: the flux capacitor is out of sync", "\ncommand: "]),
    ("no-version", 2, ["requests==99.0.0", "is not on the package index", "check the name and version"]),
    (
        "pin-requires-python",
        2,
        ["numpy==2.3.0 requires Python >=3.11", "python3.10", "--python 3.11", "!--no-build"],
    ),
    ("hash-mismatch", 8, ["served a file for orjson==3.13.0 whose hash is not in the lock", "re-lock"]),
    ("include-project-no-backend", 2, ["cannot be built into a wheel", "Give it a build backend"]),
    ("local-package-missing", 2, ["names local packages that do not exist", "acme-lib", "Fix the path"]),
    (
        "local-backend-fails",
        2,
        [
            "The local package acme-lib",
            "by its build backend (hatchling.build): ValueError: Unable to determine which files to ship",
            "tool.hatch.build.targets.wheel",
            "`uv build --wheel",
            "!Build failures usually indicate",
        ],
    ),
    (
        "comma-in-exclude",
        2,
        ["--exclude takes one name, got 'boto3,botocore'", "repeat the flag", "--exclude boto3 --exclude botocore"],
    ),
]


@pytest.mark.network
@pytest.mark.parametrize(("case", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(tmp_path, case, code, words):
    project, args, env = setup(tmp_path, case)
    runner = [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", *args]
    prelude = env.pop(PRELUDE, "")
    if env.pop("CDK_LAYER_TEST_HIDE_POETRY", None):  # poetry sits next to this interpreter: hide it
        prelude = "import cdk_lambda_layer.core.tools as t; t._beside_interpreter = lambda name: None"
    if prelude:
        main = "import sys; from cdk_lambda_layer.cli.main import main; sys.exit(main(sys.argv[1:]))"
        runner = [sys.executable, "-c", f"{prelude}\n{main}", *runner[3:]]
    done = subprocess.run(runner, capture_output=True, text=True, check=False, env={**os.environ, **env})
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr[done.stderr.index("error: ") :]
    for word in words:  # "!word": must not be said
        assert (word[1:] not in error) if word.startswith("!") else (word in error), error


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lock=st.one_of(st.text(max_size=300), st.binary(max_size=200)))
def test_any_uv_lock_content_ends_in_a_typed_error_or_a_build(tmp_path_factory, lock):
    project = Path(shutil.copytree(PROJECTS / "uv_app", tmp_path_factory.mktemp("lockfuzz") / "p"))
    (project / "uv.lock").write_bytes(lock if isinstance(lock, bytes) else lock.encode())
    try:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=False).run()
    except LayerBuildError as exc:
        assert str(exc)


@pytest.mark.network
def test_too_large_says_when_the_layer_would_fit_without_bytecode(tmp_path, project_copy):
    """Python 3.11 is the one running these tests, so the layer gets bytecode; a limit between the
    layer's size with and without it must be refused with that way out."""
    project = project_copy("pip_pyproject")
    build = [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.11", "--no-cache"]
    first = subprocess.run([*build, "--json"], capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    compiled = sum(p.stat().st_size for p in Path(result["python_dir"]).rglob("__pycache__/*.pyc"))
    assert compiled > 0, "no bytecode: the interpreter of the running Python was not used"
    limit = (result["unzipped_bytes"] - compiled // 2) / 1e6
    done = subprocess.run([*build, "--max-size", f"{limit:.6f}"], capture_output=True, text=True, check=False)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    for words in ("the limit you set is", "Without bytecode it would be", "which fits: bytecode=False / --no-bytecode"):
        assert words in done.stderr, done.stderr
