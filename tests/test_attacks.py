"""A second review's attacks (data loss, host exposure, secret leaks), reproduced from the outside.

Each test failed before its fix: a user's own lambda/layer folder deleted, folders that only
looked like ours swept, another tool's cache adopted and pruned, a host folder swapped in for
python/ by code run in the container, the host's uv cache written from the container, logins
half redacted, the import check reading our environment through /proc, a fifo that hung the
sweep, a cache entry served through a link, a live build container of another build removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from package_helpers import hatch_package
from test_data_safety import cli

from cdk_lambda_layer import (
    BuildFolderError,
    PipBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerLocalBuilder,
    VerificationError,
)
from cdk_lambda_layer.cache.store import LayerCache
from cdk_lambda_layer.core.redact import redact_urls

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"


def local_package_project(root: Path, init_py: str) -> Path:
    """A pip project whose only requirement is a pure-Python local package running ``init_py`` on import."""
    hatch_package(root / "pkg", "evilpkg", init_py)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (root / "requirements.txt").write_text("./pkg\n")
    return root


# -- F1 data loss: <build-dir>/lambda/layer is deleted without proof it is ours ---------------------
def test_a_users_own_lambda_layer_folder_in_the_build_dir_survives(project_copy, tmp_path):
    infra = tmp_path / "infra"  # a CDK app folder: lambda/layer/ holds hand-written layer code
    (infra / "lambda" / "layer").mkdir(parents=True)
    (infra / "lambda" / "layer" / "handler.py").write_text("handwritten")
    with pytest.raises(BuildFolderError) as info:
        UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert "no build put there" in str(info.value) and "--build-dir" in str(info.value)
    assert (infra / "lambda" / "layer" / "handler.py").read_text() == "handwritten"
    assert sorted(p.name for p in (infra / "lambda").iterdir()) == ["layer"]  # no staging left behind


def test_folders_that_only_look_like_ours_survive_the_sweep(project_copy, tmp_path):
    infra = tmp_path / "infra"
    for name in (".tmp-layer-draft", ".old-layer-backup"):  # our prefixes, but no .lock: not made by us
        (infra / "lambda" / name).mkdir(parents=True)
        (infra / "lambda" / name / "notes.txt").write_text("mine")
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert (infra / "lambda" / ".tmp-layer-draft" / "notes.txt").is_file()
    assert (infra / "lambda" / ".old-layer-backup" / "notes.txt").is_file()


# -- F5 data loss: a cache folder is adopted / pruned on names and any CACHEDIR.TAG alone ----------
def test_a_foreign_tmp_folder_is_not_adopted_and_deleted_as_a_cache_leftover(project_copy, tmp_path):
    folder = tmp_path / "ci-cache"
    (folder / ".tmp-upload").mkdir(parents=True)
    (folder / ".tmp-upload" / "part").write_text("someone else's")
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", cache_dir=folder).run()
    assert (folder / ".tmp-upload" / "part").is_file()


def test_prune_in_another_tools_tagged_cache_deletes_nothing(tmp_path):
    other = tmp_path / "other-tool-cache"
    blob = other / ("a" * 64)
    blob.mkdir(parents=True)
    (blob / "data").write_text("content-addressed blob of another tool")
    (other / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# created by some-other-tool\n")
    done = cli("cache", "--cache-dir", str(other), "prune", "--older-than", "3650")
    assert (blob / "data").is_file(), done.stderr


# -- F2 host exposure: the container replaces python/ by a link to a host folder -------------------
@pytest.mark.docker
def test_a_container_cannot_swap_python_for_a_link_to_a_host_folder(tmp_path):
    from docker_helpers import standin_image

    secret = tmp_path / "dot-aws"
    secret.mkdir()
    (secret / "credentials").write_text("aws_secret_access_key = HOST-ONLY\n")
    project = local_package_project(
        tmp_path / "app",
        "import os, shutil\n"
        "site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))\n"
        "if site.startswith('/asset-output'):\n"
        f"    shutil.rmtree(site); os.symlink({str(secret)!r}, site)\n",
    )
    try:
        result = PipBasedLambdaLayerContainerBuilder(project, python="3.11", image=standin_image()).run()
    except VerificationError:
        return  # refused: what the README promises
    with zipfile.ZipFile(result.layer_zip) as archive:
        content = b"".join(archive.read(name) for name in archive.namelist())
    assert b"HOST-ONLY" not in content, archive.namelist()


# -- F3 host exposure: code run in the container writes into the host's uv cache --------------------
@pytest.mark.docker
def test_code_run_in_the_container_cannot_write_into_the_hosts_uv_cache(tmp_path, monkeypatch):
    from docker_helpers import standin_image

    uv_cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache))
    project = local_package_project(
        tmp_path / "app",
        "import pathlib\n"
        "c = pathlib.Path('/tmp/cdk-lambda-layer-uv-cache')\n"
        "if c.is_dir():\n    (c / 'PLANTED').write_text('from the container')\n",
    )
    PipBasedLambdaLayerContainerBuilder(project, python="3.11", image=standin_image(), cache_dir=False).run()
    assert not (uv_cache / "PLANTED").exists()


# -- F4 secret leak: logins that pip and uv accept are only half redacted ---------------------------
@pytest.mark.parametrize(
    "line",
    [
        "--extra-index-url https://ci@acme.com:EmailUserTok-42@pypi.corp.example/simple/",  # e-mail user name
        "--extra-index-url https://ci:p@ss-W0rd@pypi.corp.example/simple/",  # '@' in the password
    ],
)
def test_redaction_removes_the_whole_login(line):
    shown = redact_urls(line)
    assert "EmailUserTok" not in shown and "ss-W0rd" not in shown, shown


# -- F7 secret leak: the import check reads our credentials from /proc/<pid>/environ --------------
@pytest.mark.network
def test_the_import_check_cannot_read_the_builders_environment_through_proc(tmp_path):
    """The builder's own environment (here an index password for --index) is the initial environment of
    its process; package code run by the import check unmounts /proc if it can (as root it may), then
    looks for the password in every /proc/<pid>/environ and fails its import if it finds it. It must
    find nothing: the check runs in user and PID namespaces of its own."""
    project = local_package_project(
        tmp_path / "app",
        "import os, subprocess\n"
        "subprocess.run(['umount', '/proc'], capture_output=True)\n"
        "found = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    found += [pid for v in data.split(b'\\0') if b'not-for-packages' in v]\n"
        "if found:\n"
        "    raise ImportError(f'read the password in /proc/{found}/environ')\n",
    )
    done = cli(
        "build",
        str(project),
        "--python",
        HOST,
        "--no-cache",
        "--json",
        env={"CDK_LAYER_INDEX_CORP_PASSWORD": "not-for-packages"},
    )
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout)
    assert result["import_check"]["ran"] and result["import_check"]["sandboxed"]


# -- F8 denial of service: a fifo named .lock hangs every build and `cache list` -------------------
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


# -- F6 host exposure (hardening): a cache entry whose python/ is a link is served ------------------
def test_a_cache_entry_whose_python_folder_is_a_link_is_damaged(project_copy, isolated_layer_cache, tmp_path):
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    elsewhere = tmp_path / "elsewhere"
    shutil.move(entry.python, elsewhere)
    entry.python.symlink_to(elsewhere)
    assert not entry.is_intact()
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert not rebuilt.cached  # not served through the link, built again
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before  # what it pointed at stays


# -- F9 data loss: a container build removed another build's live container ------------------------
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
