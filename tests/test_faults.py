"""Faults: a folder that cannot take the build, an index that is down or says no, a build
killed half-way, two builds at once. Nothing half-built is ever taken for finished."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from cdk_lambda_layer import BuildFolderError, UVBasedLambdaLayerLocalBuilder


def cli(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_a_file_in_the_way_of_the_build_folder(project_copy):
    project = project_copy("uv_app")
    (project / "build").write_text("not a folder")
    with pytest.raises(BuildFolderError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert f"Cannot write the build folder {project / 'build' / 'lambda'}" in str(info.value)
    assert "--build-dir" in str(info.value)
    assert (project / "build").read_text() == "not a folder"  # nothing of the user's deleted


@pytest.mark.network
def test_read_only_project_builds_elsewhere(project_copy, tmp_path):
    project = project_copy("uv_app")
    before = {p: p.stat().st_mtime_ns for p in project.rglob("*")}
    for path in [project, *project.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        done = cli(str(project), "--python", "3.12", "--build-dir", str(tmp_path / "out"), "--json")
    finally:
        for path in [project, *project.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "lambda" / "layer" / "layer.zip").is_file()
    assert {p: p.stat().st_mtime_ns for p in project.rglob("*")} == before  # nothing written there


def test_index_unreachable_names_the_index(project_copy, tmp_path):
    done = cli(
        str(project_copy("uv_app")),
        "--python",
        "3.12",
        "--no-cache",
        env={"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    assert done.returncode == 8, done.stderr
    assert "Cannot reach the package index at http://127.0.0.1:9/simple/" in done.stderr
    assert "Traceback" not in done.stderr


def test_wrong_credentials_name_the_index_never_the_secret(project_copy, tmp_path, refusing_index, caplog):
    secret = "s3cr3t-T0ken-value"
    env = {"UV_INDEX_URL": f"http://builder:{secret}@{refusing_index}/simple", "UV_CACHE_DIR": str(tmp_path / "c")}
    project = project_copy("uv_app")
    done = cli(str(project), "--python", "3.12", "--no-cache", "-v", env=env)
    assert done.returncode == 8, done.stderr
    assert f"The package index at http://{refusing_index}/simple" in done.stderr
    assert "HTTP 401 Unauthorized" in done.stderr
    assert secret not in done.stderr + done.stdout
    written = [p for p in project.rglob("*") if p.is_file()]
    assert not [p for p in written if secret.encode() in p.read_bytes()]


@pytest.mark.network
def test_build_killed_mid_install_is_never_taken_for_finished(project_copy):
    project = project_copy("pip_requirements")
    first = cli(str(project), "--python", "3.12", "--no-cache")  # a good layer to keep
    assert first.returncode == 0, first.stderr
    good = (project / "build/lambda/layer/layer.zip").read_bytes()
    (project / "requirements.txt").write_text((project / "requirements.txt").read_text() + "six==1.17.0\n")
    # pip is slow enough (seconds) to be caught while it installs
    slow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdk_lambda_layer",
            "build",
            str(project),
            "--python",
            "3.12",
            "--installer",
            "pip",
            "--no-cache",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    staging = project / "build" / "lambda"
    deadline = time.time() + 60
    while time.time() < deadline and not list(staging.glob(".tmp-layer-*/repo/requirements.txt")):
        time.sleep(0.05)
    time.sleep(0.5)  # inside pip install now
    slow.send_signal(signal.SIGKILL)
    slow.wait()
    for child in subprocess.run(["pgrep", "-f", "pip install --target"], capture_output=True, text=True).stdout.split():
        os.kill(int(child), signal.SIGKILL)  # pip outlives its killed parent; stop it too
    assert list(staging.glob(".tmp-layer-*")), "the kill should have left the unfinished build behind"
    assert (project / "build/lambda/layer/layer.zip").read_bytes() == good  # the old layer, untouched
    again = cli(str(project), "--python", "3.12", "--no-cache", "--json")
    assert again.returncode == 0, again.stderr
    assert '"name": "six"' in again.stdout
    assert not list(staging.glob(".tmp-layer-*"))  # the dead build's folder was swept


@pytest.mark.network
def test_two_builds_of_one_project_at_once_both_succeed_and_agree(project_copy):
    project = project_copy("uv_app")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", "--no-cache"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _out, err in outputs]
    concurrent = (project / "build/lambda/layer/layer.zip").read_bytes()
    assert cli(str(project), "--python", "3.12", "--no-cache").returncode == 0
    assert (project / "build/lambda/layer/layer.zip").read_bytes() == concurrent
    assert sorted(p.name for p in (project / "build" / "lambda").iterdir()) == ["layer"]


def test_logged_commands_redact_secrets(caplog):
    from cdk_lambda_layer.core.runner import Command, run
    from cdk_lambda_layer.errors import CommandError

    secret = "hunter2-token"
    with caplog.at_level(logging.INFO, logger="cdk_lambda_layer"), pytest.raises(CommandError) as info:
        run(
            Command(argv=(sys.executable, "-c", f"import sys; sys.exit('denied for {secret}')", secret), label="probe"),
            secrets=[secret],
        )
    assert secret not in caplog.text and "***" in caplog.text
    assert secret not in str(info.value) and secret not in info.value.stderr
    assert secret not in " ".join(info.value.argv)
