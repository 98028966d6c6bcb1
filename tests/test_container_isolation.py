"""What package code run in a build container can and cannot do to the host and to other layers.

It cannot swap python/ for a link to a host folder: not during the step, not from a process it leaves
behind once the step's checks are done (through CDK's own Docker bundling, and with an init as the
image's entrypoint, where the step is not PID 1). It cannot hang or crash the host through the report
path, and what it leaves beside python/ is never published. It cannot write into the host's uv cache,
nor poison another project's layer, or a later build once it is gone, through the container's uv cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest
from cli_helpers import cli
from package_helpers import local_package_project
from package_helpers import unzipped as _unzipped

from cdk_lambda_layer import PipBasedLambdaLayerContainerBuilder, VerificationError


# -- python/ is never swapped for a link to a host folder ----------------------------------------------------
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


TINI_IMAGE = "cdk-lambda-layer-test/standin-tini:bookworm"


def _tini_image() -> str:
    """The stand-in with a common init as ENTRYPOINT (tini, as many custom build images have)."""
    from docker_helpers import standin_image

    base = standin_image()
    if subprocess.run(["docker", "image", "inspect", TINI_IMAGE], capture_output=True).returncode != 0:
        tini = shutil.which("tini") or shutil.which("docker-init")  # docker.io brings tini along
        if tini is None:
            pytest.skip("no tini or docker-init binary on this machine to make an image with an init entrypoint")
        with tempfile.TemporaryDirectory() as ctx:
            shutil.copy(tini, Path(ctx) / "tini")
            (Path(ctx) / "Dockerfile").write_text(
                f'FROM {base}\nCOPY tini /usr/local/bin/tini\nENTRYPOINT ["/usr/local/bin/tini", "--"]\n'
            )
            subprocess.run(["docker", "build", "-q", "-t", TINI_IMAGE, ctx], check=True)
    return TINI_IMAGE


@pytest.mark.docker
def test_cdk_bundling_with_an_init_entrypoint_never_gives_cdk_a_python_link(tmp_path):
    links = links_after_python_swap(tmp_path, _tini_image())
    assert not links, links


# -- the report path and files beside python/ ----------------------------------------------------------------
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


# -- uv caches: the host's is never written, the container's poisons no layer --------------------------------
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


CACHE_POISON = """
import base64, hashlib
from pathlib import Path
digest = lambda b: base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=")
for src in Path("/tmp/cdk-lambda-layer-uv-cache").glob("archive-v0/*/six.py"):
    record = next(src.parent.glob("six-*.dist-info")) / "RECORD"
    old = src.read_bytes()
    if b"POISONED" not in old:
        new = old + b"\\nPOISONED = True\\n"
        src.write_bytes(new)
        record.write_bytes(record.read_bytes().replace(
            digest(old) + b"," + str(len(old)).encode(), digest(new) + b"," + str(len(new)).encode()))
"""


@pytest.mark.docker
def test_a_removed_dependency_leaves_no_poison_in_the_projects_container_cache(tmp_path, monkeypatch):
    from docker_helpers import standin_image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = local_package_project(tmp_path / "app", CACHE_POISON, extra="six==1.17.0\n")
    args = ("build", str(project), "--python", "3.11", "--no-cache", "--build", "container", "--image", standin_image())
    assert cli(*args).returncode == 0
    (project / "requirements.txt").write_text("six==1.17.0\n")  # the bad dependency is gone
    done = cli(*args)
    assert done.returncode != 0 or b"POISONED" not in _unzipped(
        project / "build/lambda/layer/layer.zip", "python/six.py"
    ), "six from the poisoned cache passed the RECORD check"
