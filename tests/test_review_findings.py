"""The outside review's wrong-layer and wrong-diagnosis findings, reproduced from the outside.

Each failed before its fix: a stale lock served from the cache, a full disk reported as a
tool failure, a misspelt package or a refused login sent to Docker as "no wheel", a tool's
cause buried under its command line, a killed container build's container left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import synth_layer
from package_helpers import hatch_package

from cdk_lambda_layer import CommandError, StaleLockError
from cdk_lambda_layer.core.runner import Command, run

PROJECTS = Path(__file__).parent / "projects"


def cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


# -- 4. a stale lock is never served from the cache -----------------------------------------------------
@pytest.mark.network
def test_a_stale_lock_is_refused_even_after_a_no_locked_build_was_cached(project_copy, tmp_path):
    project = project_copy("uv_app")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
    assert cli(str(project), "--python", "3.12", "--no-locked").returncode == 0  # cached, as asked
    locked = cli(str(project), "--python", "3.12")
    assert locked.returncode == 2, locked.stderr
    assert "uv.lock is out of date" in locked.stderr and "taken from the layer cache" not in locked.stderr
    with pytest.raises(Exception) as info:  # and through the construct, which always wants a fresh lock
        synth_layer(project, outdir=tmp_path / "out", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert "out of date" in str(info.value)
    assert StaleLockError.exit_code == 2


# -- 6. a tool's cause comes first, its command last -------------------------------------------------------
def test_a_failed_tool_shows_its_cause_before_its_command(tmp_path):
    noise = "\n".join(f"    --hash=sha256:{i:064x}" for i in range(22))
    output = tmp_path / "stderr.txt"
    cause = "  cause: Hash mismatch for `numpy==2.4.6`"
    output.write_text(f"Resolved 9 packages\nerror: Failed to install numpy==2.4.6\n{cause}\n{noise}\n")
    script = f"import sys; sys.stderr.write(open({str(output)!r}).read()); sys.exit(2)"
    with pytest.raises(CommandError) as info:
        run(Command(argv=(sys.executable, "-c", script, "--some", "long", "argv"), label="installer"))
    first, *rest = str(info.value).splitlines()
    assert first == "installer failed (exit 2): Hash mismatch for `numpy==2.4.6`"
    assert rest[-1].startswith("command: ") and "--some long argv" in rest[-1]
    assert "--hash=" not in str(info.value)


# -- 8. pip's diagnoses: not found, refused, no wheel; never Docker for the first two -------------------------
@pytest.mark.network
@pytest.mark.parametrize("build", ["auto", "local"])
def test_a_misspelt_package_with_pip_is_not_found_and_never_goes_to_docker(project_copy, build):
    project = project_copy("pip_requirements")
    (project / "requirements.txt").write_text("requests==2.32.3\npydnatic-core-zz==2.0\n")
    done = cli(
        str(project),
        "--python",
        "3.12",
        "--installer",
        "pip",
        "--build",
        build,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert done.returncode == 2, done.stderr
    assert "pydnatic-core-zz" in done.stderr and "is not on the package index" in done.stderr
    assert "Docker" not in done.stderr and "no wheel" not in done.stderr


@pytest.mark.network
def test_a_refused_login_with_pip_is_an_index_error(project_copy, tmp_path, refusing_index):
    url = f"http://builder:wrong@{refusing_index}/simple"
    done = cli(
        str(project_copy("pip_requirements")),
        "--python",
        "3.12",
        "--installer",
        "pip",
        "--no-cache",
        env={
            "UV_INDEX_URL": url,
            "PIP_INDEX_URL": url,
            "UV_CACHE_DIR": str(tmp_path / "uv"),
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        },
    )
    assert done.returncode == 8, done.stderr
    assert "refused the request (HTTP 401" in done.stderr and "wrong" not in done.stderr
    assert "Docker" not in done.stderr


# -- 12. a full disk is a build-folder error -----------------------------------------------------------------
def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@pytest.mark.network
@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_a_full_disk_says_so_with_exit_7(project_copy, tmp_path):
    project = project_copy("uv_numpy")
    small = tmp_path / "small"
    small.mkdir()
    script = (
        f"mount -t tmpfs -o size=3m tmpfs {small} && {sys.executable} -m cdk_lambda_layer build {project} "
        f"--python 3.12 --no-cache --build-dir {small}"
    )
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 7, done.stderr
    assert "is full" in done.stderr or "No space left" in done.stderr
    assert "Free disk space" in done.stderr and "Traceback" not in done.stderr


# -- a cache hit does not zip again ------------------------------------------------------------------------
@pytest.mark.network
def test_a_cache_hit_takes_the_zip_from_the_cache(project_copy, tmp_path):
    project = project_copy("uv_app")
    first = json.loads(cli(str(project), "--python", "3.12", "--json").stdout)
    shutil.rmtree(project / "build")
    second = json.loads(cli(str(project), "--python", "3.12", "--json").stdout)
    assert "zip" in first["steps"] and "zip" not in second["steps"] and second["cached"]
    assert Path(second["layer_zip"]).read_bytes() == Path(first["layer_zip"]).read_bytes()
    third = json.loads(cli(str(project), "--python", "3.12", "--json", "--zip-level", "1").stdout)
    assert "zip" in third["steps"]  # another level: zipped again from the cached tree


# -- killed container builds leave no container behind ----------------------------------------------------------
@pytest.mark.docker
@pytest.mark.network
def test_a_killed_container_build_leaves_no_container(project_copy):
    import docker
    from docker_helpers import standin_image

    image = standin_image()
    client = docker.from_env()
    label = {"label": "cdk-lambda-layer.owner"}
    project = project_copy("poetry_app")
    build = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdk_lambda_layer",
            "build",
            str(project),
            "--python",
            "3.11",
            "--build",
            "container",
            "--image",
            image,
            "--no-cache",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not client.containers.list(all=True, filters=label):
        time.sleep(0.1)
    assert client.containers.list(all=True, filters=label), "the container should be running"
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert client.containers.list(all=True, filters=label)  # left behind by the kill
    again = cli(str(project), "--python", "3.11", "--build", "container", "--image", image, "--no-cache")
    assert again.returncode == 0, again.stderr
    assert not client.containers.list(all=True, filters=label)  # the dead build's container was removed
    assert not list((project / "build" / "lambda").glob(".tmp-layer-*"))  # and its staging folder


# -- found in this change's own review ------------------------------------------------------------------------
@pytest.mark.network
def test_the_import_check_runs_package_code_without_our_credentials(tmp_path, monkeypatch):
    """Importing runs the packages' code on the build machine: it must not see AWS keys or index tokens."""
    from cdk_lambda_layer import BasedLambdaLayerLocalBuilder

    hatch_package(
        tmp_path / "acme-snoop",
        "acme-snoop",
        "import os\nleaked = [k for k in os.environ if 'SECRET' in k or 'TOKEN' in k or 'PASSWORD' in k]\n"
        "if leaked:\n    raise ImportError(f'saw {leaked}')\n",
        version="1.0",
    )
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../acme-snoop\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-packages")
    monkeypatch.setenv("CDK_LAYER_INDEX_CORP_PASSWORD", "not-for-packages-either")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = BasedLambdaLayerLocalBuilder(service, python=python, cache_dir=False).run()
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["imported"] == 1


def test_a_login_a_tool_prints_is_redacted_in_the_error():
    script = (
        "import sys; sys.stderr.write('error: could not fetch https://ci:hunter2@corp.example/simple/x/'); sys.exit(1)"
    )
    with pytest.raises(CommandError) as info:
        run(Command(argv=(sys.executable, "-c", script), label="tool"))
    assert "hunter2" not in str(info.value) and "hunter2" not in info.value.stderr
    assert "https://***@corp.example/simple/x/" in str(info.value)


@pytest.mark.network
def test_a_requirements_include_outside_the_project_is_not_copied(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "base.txt").write_text("six==1.17.0\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (project / "requirements.txt").write_text("-r ../elsewhere/base.txt\n")
    done = cli(str(project), "--python", "3.12", "--no-cache")
    assert done.returncode == 0, done.stderr
    copied = sorted(
        p.relative_to(project / "build/lambda/layer/repo/project").as_posix()
        for p in (project / "build/lambda/layer/repo/project").rglob("*")
        if p.is_file()
    )
    assert copied == ["pyproject.toml", "requirements.txt"]


def test_a_local_path_that_is_a_whole_tree_is_refused(tmp_path, monkeypatch):
    import cdk_lambda_layer.identity.sources as sources
    from cdk_lambda_layer import LambdaTarget, LayerOptions, ProjectError, load_project
    from cdk_lambda_layer.identity.fingerprint import fingerprint

    monkeypatch.setattr(sources, "MAX_SOURCE_FILES", 50)
    wide = tmp_path / "home"
    for index in range(60):
        (wide / f"d{index}").mkdir(parents=True)
        (wide / f"d{index}" / "f.txt").write_text("x")
    project = tmp_path / "service"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (project / "requirements.txt").write_text("../home\n")
    with pytest.raises(ProjectError) as info:
        fingerprint(load_project(project), LambdaTarget(python="3.12"), LayerOptions())
    assert "has 60 source files (more than 50)" in str(info.value) and "is the path" in str(info.value)
