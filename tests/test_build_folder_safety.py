"""Build folders: a folder of the user's is never replaced or deleted, and nothing half-built is taken for finished.

A build replaces <build-dir>/lambda/layer only when a build published it there: a link, hand-written
files or a planted manifest.json are refused, a folder made there while the build ran is kept, and so is
the caller's copy_python_to folder. A file in the way and a full disk say so; a read-only project builds
elsewhere; a synth writes nothing into the project. The sweeps at a build's start remove the leftovers
of killed builds (staging folders, replaced layers, their containers) and only those: folders that only
look like ours, a fifo at a lock, another build's live container stay. Two builds at once, in one or two
PID namespaces, both complete and agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import synth_layer
from cli_helpers import HOST, cli, snapshot
from package_helpers import local_package_project

from cdk_lambda_layer import BuildFolderError, UVBasedLambdaLayerLocalBuilder


# -- the user's folders are never replaced or deleted --------------------------------------------------------
def test_a_file_in_the_way_of_the_build_folder(project_copy):
    project = project_copy("uv_app")
    (project / "build").write_text("not a folder")
    with pytest.raises(BuildFolderError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert f"Cannot write the build folder {project / 'build' / 'lambda'}" in str(info.value)
    assert "--build-dir" in str(info.value)
    assert (project / "build").read_text() == "not a folder"  # nothing of the user's deleted


@pytest.mark.network
def test_a_build_folder_of_the_users_is_never_replaced(project_copy, tmp_path):
    """--build-dir DIR replaces DIR/lambda/layer: only when a build made it (it has manifest.json)."""
    project = project_copy("uv_app")
    mine = tmp_path / "out" / "lambda" / "layer"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "todo.md").write_text("keep me")
    before = snapshot(tmp_path / "out")
    done = cli("build", str(project), "--python", "3.12", "--build-dir", str(tmp_path / "out"))
    assert done.returncode == 7, done.stderr
    assert "holds files that no build put there" in done.stderr and "nothing was changed" in done.stderr
    assert snapshot(tmp_path / "out") == before and "Traceback" not in done.stderr
    (tmp_path / "elsewhere").mkdir()
    shutil.rmtree(mine)
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.symlink_to(tmp_path / "elsewhere")
    done = cli("build", str(project), "--python", "3.12", "--build-dir", str(tmp_path / "out"))
    assert done.returncode == 7 and "is a link" in done.stderr, done.stderr
    mine.unlink()
    for _ in range(2):  # a folder a build published is replaced by the next build
        done = cli("build", str(project), "--python", "3.12", "--build-dir", str(tmp_path / "out"))
        assert done.returncode == 0, done.stderr
    assert (mine / "manifest.json").is_file() and not list((tmp_path / "out" / "lambda").glob(".*layer-*"))


def test_a_users_own_lambda_layer_folder_in_the_build_dir_survives(project_copy, tmp_path):
    infra = tmp_path / "infra"  # a CDK app folder: lambda/layer/ holds hand-written layer code
    (infra / "lambda" / "layer").mkdir(parents=True)
    (infra / "lambda" / "layer" / "handler.py").write_text("handwritten")
    with pytest.raises(BuildFolderError) as info:
        UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert "no build put there" in str(info.value) and "--build-dir" in str(info.value)
    assert (infra / "lambda" / "layer" / "handler.py").read_text() == "handwritten"
    assert sorted(p.name for p in (infra / "lambda").iterdir()) == ["layer"]  # no staging left behind


def test_a_planted_manifest_json_does_not_make_a_users_folder_replaceable(project_copy, tmp_path):
    infra = tmp_path / "infra"
    (infra / "lambda" / "layer").mkdir(parents=True)
    (infra / "lambda" / "layer" / "handler.py").write_text("handwritten")
    (infra / "lambda" / "layer" / "manifest.json").write_text('{"name": "something else", "version": 1}')
    with pytest.raises(BuildFolderError):  # a manifest.json that this library did not write proves nothing
        UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert (infra / "lambda" / "layer" / "handler.py").read_text() == "handwritten"


def test_a_folder_made_at_the_layer_path_during_the_build_is_not_deleted_at_publish(tmp_path):
    project = local_package_project(tmp_path / "app", "import time\ntime.sleep(6)\n")  # the host import check waits
    final = project / "build" / "lambda" / "layer"

    def meanwhile():
        time.sleep(3)
        final.mkdir(parents=True)
        (final / "notes.txt").write_text("written by something else while the build ran")

    thread = threading.Thread(target=meanwhile)
    thread.start()
    done = cli("build", str(project), "--python", HOST, "--no-cache")
    thread.join()
    assert (final / "notes.txt").is_file(), done.stderr


def test_a_failed_cache_restore_does_not_delete_the_callers_folder(project_copy, tmp_path):
    cache = tmp_path / "cache"
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=cache).run()
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "notes.txt").write_text("the caller's")
    (destination / "typing_extensions.py").mkdir()  # the copy fails here (on a full disk it fails the same way)
    with pytest.raises(BuildFolderError) as info:  # refused before anything is copied or deleted
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=cache).run(
            copy_python_to=destination, publish=False
        )
    assert "must be a new or empty folder" in str(info.value)
    assert (destination / "notes.txt").is_file()


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


def test_synth_writes_nothing_into_the_project(project_copy, tmp_path):
    project = project_copy("uv_app")
    before = snapshot(project)
    synth_layer(project, outdir=tmp_path / "out", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert snapshot(project) == before
    assert not (project / "build").exists()
    assert not list((tmp_path / "out").glob(".cdk-lambda-layer-*"))  # its staging is gone too
    (asset,) = (tmp_path / "out").glob("asset.*")
    assert (asset / "python" / "pydantic").is_dir()


# -- a full disk is a build-folder error ---------------------------------------------------------------------
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


# -- sweeps: the leftovers of killed builds, and only those --------------------------------------------------
def test_folders_that_only_look_like_ours_survive_the_sweep(project_copy, tmp_path):
    infra = tmp_path / "infra"
    for name in (".tmp-layer-draft", ".old-layer-backup"):  # our prefixes, but no .lock: not made by us
        (infra / "lambda" / name).mkdir(parents=True)
        (infra / "lambda" / name / "notes.txt").write_text("mine")
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert (infra / "lambda" / ".tmp-layer-draft" / "notes.txt").is_file()
    assert (infra / "lambda" / ".old-layer-backup" / "notes.txt").is_file()


def test_a_fifo_planted_as_a_staging_lock_does_not_hang_the_build(project_copy):
    project = project_copy("uv_app")
    planted = project / "build" / "lambda" / ".tmp-layer-planted"
    planted.mkdir(parents=True)
    os.mkfifo(planted / ".lock")
    try:
        done = cli("build", str(project), "--python", "3.12", "--no-cache", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the build hung opening a fifo named .lock")
    assert done.returncode == 0, done.stderr


@pytest.mark.network
def test_leftovers_of_a_killed_publish_are_swept_and_only_those(project_copy):
    """A build killed while it deleted the layer it replaced leaves `.old-layer-*` (its lock file inside,
    free once the process is gone): the next build removes it. A folder of that name without the lock
    file is not provably ours and stays."""
    from cdk_lambda_layer.core.locking import LOCK_NAME

    project = project_copy("uv_app")
    lambda_dir = project / "build" / "lambda"
    (lambda_dir / ".old-layer-0badf00d" / "layer" / "artifacts").mkdir(parents=True)
    (lambda_dir / ".old-layer-0badf00d" / LOCK_NAME).write_text("")
    (lambda_dir / ".old-layer-mine").mkdir()
    (lambda_dir / ".old-layer-mine" / "notes.txt").write_text("keep")
    done = cli("build", str(project), "--python", "3.12", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in lambda_dir.iterdir()) == [".old-layer-mine", "layer"]


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


@pytest.mark.docker
def test_a_live_build_container_of_another_build_is_never_removed(tmp_path):
    """A build that shares the engine but not the file system (a CI job or devcontainer mounting the
    socket) cannot see the other build's staging folder: that proves nothing, so its running
    container stays. A container whose staging folder is here with a free lock is removed."""
    import docker
    from docker_helpers import standin_image

    from cdk_lambda_layer.core.locking import LOCK_NAME
    from cdk_lambda_layer.install.container.docker import OWNER_LABEL, sweep_containers

    client = docker.from_env()
    dead_owner = tmp_path / ".tmp-layer-dead"
    dead_owner.mkdir()
    (dead_owner / LOCK_NAME).write_text("")  # its lock file, held by nobody: that build died
    labels = {
        "elsewhere": {OWNER_LABEL: "/another/mount/namespace/build/lambda/.tmp-layer-1-abc"},
        "dead": {OWNER_LABEL: str(dead_owner)},
    }
    handles = {
        key: client.containers.run(standin_image(), ["sleep", "60"], labels=label, detach=True)
        for key, label in labels.items()
    }
    try:
        removed = sweep_containers(client)
        assert handles["dead"].name in removed and handles["elsewhere"].name not in removed
        handles["elsewhere"].reload()
        assert handles["elsewhere"].status == "running"
    finally:
        for handle in handles.values():
            with contextlib.suppress(Exception):
                handle.remove(force=True)


# -- builds at once ------------------------------------------------------------------------------------------
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


def _unshare_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.network
@pytest.mark.skipif(not _unshare_available(), reason="needs root and unshare --pid (CI runs as root)")
def test_builds_in_two_pid_namespaces_both_complete(project_copy, tmp_path):
    project = project_copy("uv_numpy")
    command = [
        sys.executable,
        "-m",
        "cdk_lambda_layer",
        "build",
        str(project),
        "--python",
        "3.12",
        "--no-cache",
        "--json",
    ]
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "cold-uv-cache")}  # a slow, downloading first build
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    staging = project / "build" / "lambda"
    deadline = time.time() + 60
    while time.time() < deadline and not list(staging.glob(".tmp-layer-*/repo")):
        time.sleep(0.02)
    assert list(staging.glob(".tmp-layer-*")), "the first build should be under way"
    # The second build sweeps at its start; in its own PID namespace the first build's pid means nothing.
    second = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *command], capture_output=True, text=True, check=False
    )
    out, err = first.communicate(timeout=600)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, err
    reference = json.loads(cli("build", str(project), "--python", "3.12", "--no-cache", "--json").stdout)
    # Each of the two concurrent builds made the whole layer (its own inventory, taken before it published).
    for result in (json.loads(out), json.loads(second.stdout)):
        assert result["packages"] == reference["packages"] and result["unzipped_bytes"] == reference["unzipped_bytes"]
    assert [p["name"] for p in reference["packages"]] == ["numpy"]
    with __import__("zipfile").ZipFile(project / "build/lambda/layer/layer.zip") as archive:
        assert any(n.startswith("python/numpy/") for n in archive.namelist())
