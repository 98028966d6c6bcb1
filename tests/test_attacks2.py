"""A third review's attacks, on the second review's fixes (each failed before its fix): a user's folder
taken for a published layer by a file name, logins with an apostrophe, package code reading the
container step's memory or leaving a process behind that swaps python/ or the report after the
checks, a fifo or link at a cache lock or entry file, one project's container build poisoning
another's layer, a caller's copy_python_to folder deleted, files left beside python/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from package_helpers import hatch_package
from test_data_safety import cli
from test_private_index import private_index  # noqa: F401 - the session fixture (pypiserver with a login)

from cdk_lambda_layer import (
    BuildFolderError,
    PipBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerLocalBuilder,
    VerificationError,
)
from cdk_lambda_layer.core.redact import redact_urls
from cdk_lambda_layer.core.tool_errors import without_userinfo

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"


def local_package_project(root: Path, init_py: str, *, name: str = "evilpkg", extra: str = "") -> Path:
    """A pip project whose requirements are ``extra`` plus a pure-Python local package running ``init_py``."""
    hatch_package(root / "pkg", name, init_py)
    (root / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (root / "requirements.txt").write_text(f"{extra}./pkg\n")
    return root


#: Package code that leaves a process behind in the build container, detached from the import check's
#: pipes, which runs ``ACTION`` once the step has removed its hand-off (its last act before exiting).
LEFTOVER = """
import os, shutil, time
OUT = "/asset-output"
if os.path.isdir(OUT + "/.cdk-lambda-layer") and os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for _ in range(200000):
            if WHEN():
                ACTION()
                break
            time.sleep(0.0005)
    os._exit(0)
"""


# -- R1 data loss: any file named manifest.json makes a user's folder "a layer a build made" ----------
def test_a_planted_manifest_json_does_not_make_a_users_folder_replaceable(project_copy, tmp_path):
    infra = tmp_path / "infra"
    (infra / "lambda" / "layer").mkdir(parents=True)
    (infra / "lambda" / "layer" / "handler.py").write_text("handwritten")
    (infra / "lambda" / "layer" / "manifest.json").write_text('{"name": "something else", "version": 1}')
    with pytest.raises(BuildFolderError):  # a manifest.json that this library did not write proves nothing
        UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", build_dir=infra, cache_dir=False).run()
    assert (infra / "lambda" / "layer" / "handler.py").read_text() == "handwritten"


# -- R1b data loss: the check is made before the build, the replacement after it ---------------------
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


# -- R2 secret leak: a login with an RFC 3986 sub-delimiter (') is not redacted ---------------------
@pytest.mark.parametrize(
    "text",
    [
        '--extra-index-url "http://quote:it\'s-Tok3n-99@127.0.0.1:18799/simple/"',  # pip and uv authenticate
        '[[tool.uv.index]]\nurl = "https://ci:it\'s-Tok3n-99@pypi.corp.example/simple/"',
        "corp-greeting @ http://quote:it's-Tok3n-99@127.0.0.1:18799/packages/corp_greeting-0.1.0-py3-none-any.whl",
    ],
)
def test_redaction_removes_a_login_with_an_apostrophe(text):
    assert "Tok3n" not in redact_urls(text), redact_urls(text)
    url = text[text.index("http") :].split('"')[0].split()[0]
    assert "Tok3n" not in without_userinfo(url), without_userinfo(url)  # error messages (plan.py, tool_errors.py)


# -- R3 secret leak: package code run in the build container reads the logins handed on stdin -------
@pytest.mark.docker
@pytest.mark.network
def test_package_code_in_the_container_cannot_read_the_index_login(tmp_path, private_index):  # noqa: F811
    from docker_helpers import standin_image

    snoop = (
        "import os, re, pathlib\n"
        "found = set()\n"
        "for line in open('/proc/1/maps').read().splitlines():\n"
        "    span, perms = line.split()[:2]\n"
        "    if not perms.startswith('r'):\n        continue\n"
        "    lo, hi = (int(x, 16) for x in span.split('-'))\n"
        "    try:\n"
        "        mem = open('/proc/1/mem', 'rb', buffering=0); mem.seek(lo); data = mem.read(hi - lo)\n"
        "    except (OSError, OverflowError, ValueError):\n        continue\n"
        f"    found |= {{m.decode() for m in re.findall(rb'{private_index.token}', data)}}\n"
        "if found:\n    raise ImportError(f'read the login in /proc/1/mem: {sorted(found)}')\n"
    )
    project = local_package_project(tmp_path / "app", snoop, name="snoop", extra="corp-greeting==0.1.0\n")
    result = PipBasedLambdaLayerContainerBuilder(
        project,
        python="3.11",
        image=standin_image(),
        network="host",
        credentials=[private_index.credentials()],
        cache_dir=False,
    ).run()
    assert result.manifest["import_check"]["ran"]  # snoop imported: it found no login (else ImportError)


# -- R4 secret leak: as root, the import check leaves its PID namespace by unmounting /proc ----------
@pytest.mark.skipif(os.geteuid() != 0, reason="the bypass needs root (in a user namespace the kernel refuses)")
def test_the_root_import_check_cannot_unmount_its_proc_and_read_the_builder(tmp_path):
    project = local_package_project(
        tmp_path / "app",
        "import ctypes, os, pathlib\n"
        "ctypes.CDLL(None).umount2(b'/proc', 2)\n"
        "found = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n        continue\n"
        "    found += [v.decode() for v in data.split(b'\\0') if b'not-for-packages' in v]\n"
        "if found:\n    raise ImportError(f'read the password: {found}')\n",
    )
    done = cli(
        "build", str(project), "--python", HOST, "--no-cache", "--json",
        env={"CDK_LAYER_INDEX_CORP_PASSWORD": "not-for-packages"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["import_check"]["ran"]  # evilpkg imported: it found no password (else ImportError)


# -- R5 supply chain: one project's container build poisons another project's layer (uv-container) ---
@pytest.mark.docker
@pytest.mark.network
def test_a_container_build_cannot_poison_the_layer_of_another_project(tmp_path, monkeypatch):
    from docker_helpers import standin_image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # this test's own uv-container cache
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "pyproject.toml").write_text('[project]\nname = "victim"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (victim / "requirements.txt").write_text("six==1.17.0\n")
    attacker = local_package_project(
        tmp_path / "attacker",
        "import os\n"
        "for folder, _d, files in os.walk('/tmp/cdk-lambda-layer-uv-cache'):\n"
        "    if 'six.py' in files:\n"
        "        open(os.path.join(folder, 'six.py'), 'a').write('\\nPOISONED = True\\n')\n",
        extra="six==1.17.0\n",
    )
    image = standin_image()
    PipBasedLambdaLayerContainerBuilder(victim, python="3.11", image=image, cache_dir=False).run()  # fills the cache
    PipBasedLambdaLayerContainerBuilder(attacker, python="3.11", image=image, cache_dir=False).run()
    shutil.rmtree(victim / "build")
    result = PipBasedLambdaLayerContainerBuilder(victim, python="3.11", image=image, cache_dir=False).run()
    with zipfile.ZipFile(result.layer_zip) as archive:
        assert b"POISONED" not in archive.read("python/six.py")


# -- R6 host exposure: CDK's own Docker bundling, python/ swapped for a link after the step's checks --
def links_after_python_swap(tmp_path: Path, image: str) -> list[tuple[Path, str]]:
    """Synthesize, through CDK's own Docker bundling in ``image``, a layer whose package leaves a
    process that swaps python/ for a link to a host folder once the step's checks are done; return
    the links CDK's asset then holds (there must be none)."""
    from aws_cdk import BundlingFileAccess
    from aws_cdk import aws_lambda as lambda_
    from cdk_helpers import synth_layer

    secret = tmp_path / "dot-aws"
    secret.mkdir()
    (secret / "credentials").write_text("aws_secret_access_key = HOST-ONLY\n")
    code = LEFTOVER.replace("WHEN()", "not os.path.exists(OUT + '/.cdk-lambda-layer')").replace(
        "ACTION()", f"(shutil.rmtree(OUT + '/python'), os.symlink({str(secret)!r}, OUT + '/python'))"
    )
    project = local_package_project(tmp_path / "app", code, name="swapper")
    out = tmp_path / "cdk.out"
    synth_layer(
        project, outdir=out, runtime=lambda_.Runtime.PYTHON_3_11, build="container", image=image,
        cache_dir=False, bundling_file_access=BundlingFileAccess.BIND_MOUNT,
    )  # fmt: skip
    return [(p, os.readlink(p)) for asset in out.glob("asset.*") for p in asset.rglob("*") if p.is_symlink()]


@pytest.mark.docker
def test_cdk_docker_bundling_never_gives_cdk_a_python_link(tmp_path):
    from docker_helpers import standin_image

    links = links_after_python_swap(tmp_path, standin_image())
    assert not links, links


# -- R7 denial of service: a process left in the container swaps the report for a fifo / a folder ---
@pytest.mark.docker
@pytest.mark.parametrize("plant", ["os.mkfifo", "os.mkdir"])
def test_a_process_left_in_the_container_cannot_hang_or_crash_the_host(tmp_path, plant):
    from docker_helpers import standin_image

    report = "/asset-output/.cdk-lambda-layer-report.json"
    code = LEFTOVER.replace("WHEN()", f"os.path.isfile({report!r})").replace(
        "ACTION()", f"(os.unlink({report!r}), {plant}({report!r}))"
    )
    project = local_package_project(tmp_path / "app", code)
    try:
        done = cli(
            "build", str(project), "--python", "3.11", "--no-cache", "--build", "container",
            "--image", standin_image(), timeout=90,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the host hung opening a fifo the container left at the report path")
    assert "Traceback" not in done.stderr, done.stderr[-800:]


# -- R8 denial of service: fifos at the cache's lock and entry paths -----------------------------------
def _cached_without_lock_file(project_copy, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(cache, project, lock path) after one CLI build filled the cache; the entry's lock file removed."""
    cache = tmp_path / "cache"
    project = project_copy("uv_app")
    assert cli("build", str(project), "--python", "3.12", "--cache-dir", str(cache)).returncode == 0
    (fingerprint,) = [p.name for p in cache.iterdir() if len(p.name) == 64]
    lock = cache / f".{fingerprint}.lock"
    lock.unlink()
    return cache, project, lock


def test_fifos_in_the_layer_cache_hang_nothing(project_copy, tmp_path):
    cache, project, lock = _cached_without_lock_file(project_copy, tmp_path)
    os.mkfifo(lock)  # e.g. restored from a CI cache archive
    other = "c" * 64
    (cache / other).mkdir()
    os.mkfifo(cache / other / "entry.json")
    shutil.rmtree(project / "build")
    for args in (
        ["build", str(project), "--python", "3.12", "--cache-dir", str(cache)],
        ["cache", "--cache-dir", str(cache), "list"],
        ["cache", "--cache-dir", str(cache), "prune", "--older-than", "3650"],
    ):
        try:
            cli(*args, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`cdk-lambda-layer {' '.join(args[:2])}` hung on a fifo in the cache")


def test_a_link_at_a_cache_lock_path_creates_nothing_through_it(project_copy, tmp_path):
    cache, project, lock = _cached_without_lock_file(project_copy, tmp_path)
    lock.symlink_to(tmp_path / "created-through-the-link")
    shutil.rmtree(project / "build")
    cli("build", str(project), "--python", "3.12", "--cache-dir", str(cache))
    assert not (tmp_path / "created-through-the-link").exists()


# -- R9 data loss (API): a cache hit that cannot be copied deletes the caller's copy_python_to folder ---
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


# -- R10 hardening: what code in the container leaves beside python/ is published ----------------------
@pytest.mark.docker
def test_files_the_container_leaves_beside_python_are_not_published(tmp_path):
    from docker_helpers import standin_image

    project = local_package_project(
        tmp_path / "app",
        "import os\n"
        "if os.path.isdir('/asset-output'):\n"
        "    os.symlink('/root/.ssh', '/asset-output/python.ssh'); os.mkfifo('/asset-output/pipe')\n",
    )
    with pytest.raises(VerificationError) as info:
        PipBasedLambdaLayerContainerBuilder(project, python="3.11", image=standin_image(), cache_dir=False).run()
    assert "left pipe, python.ssh beside python/" in str(info.value)
    assert not (project / "build" / "lambda" / "layer").exists()  # nothing published
