"""Standalone container builders against a real engine and the stand-in build image."""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from cli_helpers import cli
from docker_helpers import import_in_image, standin_image
from package_helpers import SVC, hatch_package

import cdk_lambda_layer
from cdk_lambda_layer import (
    BasedLambdaLayerContainerBuilder,
    ContainerOptions,
    DockerUnavailableError,
    NoWheelError,
    PipBasedLambdaLayerContainerBuilder,
    PoetryBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerContainerBuilder,
    UVBasedLambdaLayerLocalBuilder,
    VerificationError,
)
from cdk_lambda_layer.builders.modes import build_layer
from cdk_lambda_layer.core.tools import find_uv

# The stand-in image runs Debian's Python 3.11, so its layers target python3.11.
PY = "3.11"


@pytest.fixture(scope="module")
def image() -> str:
    return standin_image()


def install_for_another_user(site: Path) -> tuple[str, Path]:
    """This library and what its CLI needs, installed where any user can read it.

    The test interpreter may live under /root (not readable by others), so the other user
    runs the system Python with a --target install made by uv from its warm cache.
    """
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
    subprocess.run(
        [
            find_uv(),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(site),
            "--python",
            python,
            "packaging",
            "pyelftools",
            "tomli",
            "docker",
            "uv",
        ],
        check=True,
    )
    shutil.copytree(Path(cdk_lambda_layer.__file__).parent, site / "cdk_lambda_layer")
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o055)
    return python, site


def names(result):
    return {p.name.lower().replace("_", "-") for p in result.packages}


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize(
    ("builder", "fixture", "code", "expected"),
    [
        (UVBasedLambdaLayerContainerBuilder, "uv_sdist", "import docopt, six; print(docopt.__version__)", "0.6.2"),
        (
            PoetryBasedLambdaLayerContainerBuilder,
            "poetry_app",
            "import requests, orjson; print(orjson.dumps(2).decode())",
            "2",
        ),
        (PipBasedLambdaLayerContainerBuilder, "pip_requirements", "import pydantic_core; print('ok')", "ok"),
    ],
)
def test_container_builders_make_layers_that_import_in_the_image(project_copy, image, builder, fixture, code, expected):
    result = builder(project_copy(fixture), python=PY, image=image).run()
    assert result.layer_zip.is_file()
    assert result.manifest["builder"]["build"] == "container"
    assert result.manifest["installer"]["name"] == f"uv in {image}"  # the host's uv, lent to the container
    assert not (result.layout.artifacts / ".cdk-lambda-layer").exists()  # hand-off gone
    assert not (result.layout.artifacts / ".cdk-lambda-layer-report.json").exists()
    compiled = list(result.python_dir.rglob("*.pyc"))
    assert compiled and all(p.name.endswith(".cpython-311.pyc") for p in compiled)  # the image's Python
    assert result.manifest["bytecode"]["included"] and result.manifest["bytecode"]["python"].startswith("3.11.")
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["imported"] >= 1
    assert import_in_image(image, result.python_dir, code) == expected


@pytest.mark.docker
@pytest.mark.network
def test_sdist_only_dependency_needs_the_container(project_copy, image):
    project = project_copy("uv_sdist")
    with pytest.raises(NoWheelError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python=PY).run()
    assert info.value.package == "docopt"
    result = build_layer(project, build="auto", python=PY, image=image)
    assert {"docopt", "six"} == names(result)
    assert result.manifest["builder"]["build"] == "container"


@pytest.mark.docker
@pytest.mark.network
def test_two_container_builds_at_once_both_succeed(project_copy, image):
    projects = [project_copy("pip_pyproject", f"p{i}") for i in range(2)]
    results, errors = [None, None], []

    def build(index):
        try:
            # cache_dir=False: two containers really run side by side (with the cache, one would wait)
            results[index] = PipBasedLambdaLayerContainerBuilder(
                projects[index], python=PY, image=image, cache_dir=False
            ).run()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results[0].layer_zip.read_bytes() == results[1].layer_zip.read_bytes()


@pytest.fixture
def other_user_dir():
    """A folder another user can reach (pytest's tmp_path sits under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="cdk-layer-owner-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user to prove ownership needs root")
def test_output_belongs_to_the_calling_user(image, other_user_dir, tmp_path):
    """A non-root user runs the CLI; everything the container wrote belongs to that user. Another user's
    build container is running meanwhile, its staging folder unreadable to this one: left alone."""
    import docker

    from cdk_lambda_layer.install.container.docker import OWNER_LABEL

    uid = 4321
    private = tmp_path / "root-only"
    (private / ".tmp-layer-1-abc").mkdir(parents=True)
    private.chmod(0o700)
    others = docker.from_env().containers.run(
        image, ["sleep", "120"], labels={OWNER_LABEL: str(private / ".tmp-layer-1-abc")}, detach=True
    )
    project = Path(shutil.copytree(Path(__file__).parent / "projects" / "pip_pyproject", other_user_dir / "p"))
    home = other_user_dir / "home"
    home.mkdir()
    for path in [project, home, *project.rglob("*")]:
        os.chown(path, uid, uid)
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    python, pythonpath = install_for_another_user(other_user_dir / "site")
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(pythonpath),
        "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE", ""),
        "PIP_INDEX_URL": os.environ.get("PIP_INDEX_URL", ""),
    }
    done = subprocess.run(
        [
            python,
            "-m",
            "cdk_lambda_layer",
            "build",
            str(project),
            "--python",
            PY,
            "--build",
            "container",
            "--image",
            image,
            "--json",
        ],
        user=uid,
        group=uid,
        extra_groups=[socket_gid],
        env={k: v for k, v in env.items() if v},
        capture_output=True,
        text=True,
        check=False,
    )
    others.reload()
    status = others.status
    others.remove(force=True)
    assert done.returncode == 0, done.stderr
    assert status == "running"  # another user's build: not ours to remove
    layer = project / "build" / "lambda" / "layer"
    owners = {p.stat().st_uid for p in layer.rglob("*")}
    assert owners == {uid}, f"files owned by {owners}"
    assert (home / ".cache" / "cdk-lambda-layer" / "pip").is_dir()  # persistent download cache
    assert json.loads(done.stdout)["layer_zip"] == str(layer / "layer.zip")
    assert grp.getgrgid(socket_gid)  # the socket's group exists (documents how access was given)


def test_docker_unreachable_says_what_to_do(project_copy, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailableError) as info:
        PipBasedLambdaLayerContainerBuilder(project_copy("pip_pyproject"), python=PY).run()
    message = str(info.value)
    for words in (
        "Cannot reach a Docker engine at unix:///nonexistent/docker.sock",
        "Start Docker",
        "DOCKER_HOST",
        "build='local'",
    ):
        assert words in message


@pytest.mark.network
def test_auto_builds_locally_without_docker_when_wheels_exist(project_copy, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = build_layer(project_copy("uv_app"), build="auto", python="3.12")
    assert result.manifest["builder"]["build"] == "local"


@pytest.mark.network
def test_auto_without_docker_keeps_the_no_wheel_explanation(project_copy, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(NoWheelError) as info:
        build_layer(project_copy("uv_sdist"), build="auto", python=PY)
    assert "docopt 0.6.2: it publishes only a source distribution" in str(info.value)
    assert "container fallback (build=auto) is not possible" in str(info.value)
    assert "Start Docker" in str(info.value)


def test_cli_build_container_with_missing_engine_exits_6(project_copy):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cdk_lambda_layer",
            "build",
            str(project_copy("pip_pyproject")),
            "--build",
            "container",
            "--image",
            "some/image:tag",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 6
    assert "Cannot reach a Docker engine" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.docker
@pytest.mark.network
def test_image_pip_when_the_host_uv_is_not_lent(project_copy, image):
    container = ContainerOptions(image=image, host_uv=False)
    result = PipBasedLambdaLayerContainerBuilder(project_copy("pip_pyproject"), python=PY, container=container).run()
    assert result.manifest["installer"]["name"] == f"pip in {image}"
    assert {"six", "attrs"} == names(result)
    assert import_in_image(image, result.python_dir, "import six, attrs; print('ok')") == "ok"


@pytest.mark.docker
@pytest.mark.network
def test_arm64_container_build_holds_aarch64_code_and_imports_under_qemu(project_copy):
    from docker_helpers import standin_image_for

    from cdk_lambda_layer.core.elf import elf_machine, native_files

    image = standin_image_for("3.11", "arm64")
    result = UVBasedLambdaLayerContainerBuilder(
        project_copy("uv_app"), python="3.11", architecture="arm64", image=image, cache_dir=False
    ).run()
    assert {elf_machine(p) for p in native_files(result.python_dir)} == {183}  # AArch64
    assert result.manifest["installer"]["name"] == f"pip in {image}"  # the host's x86_64 uv cannot run there
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["python"].startswith("3.11.")
    assert all(p.name.endswith(".cpython-311.pyc") for p in result.python_dir.rglob("*.pyc"))
    code = "import platform, pydantic_core; print(platform.machine())"
    assert import_in_image(image, result.python_dir, code, platform="linux/arm64") == "aarch64"


@pytest.mark.docker
@pytest.mark.network
def test_python313_container_build_compiles_with_the_images_python(project_copy):
    from docker_helpers import standin_image_for

    image = standin_image_for("3.13")
    result = PoetryBasedLambdaLayerContainerBuilder(
        project_copy("poetry_app"), python="3.13", image=image, cache_dir=False
    ).run()
    compiled = list(result.python_dir.rglob("*.pyc"))
    assert compiled and all(p.name.endswith(".cpython-313.pyc") for p in compiled)
    assert result.manifest["bytecode"]["python"].startswith("3.13.")
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["python"].startswith("3.13.")
    assert import_in_image(image, result.python_dir, "import requests, orjson; print(orjson.dumps(3).decode())") == "3"


@pytest.mark.docker
@pytest.mark.network
def test_a_native_local_package_is_compiled_in_the_image(tmp_path, image):
    """auto: the local build refuses a local package with a C extension, the container compiles it."""
    from test_repository_shapes import native_project

    service = native_project(tmp_path)
    result = build_layer(service, build="auto", python=PY, image=image, cache_dir=False)
    assert result.manifest["builder"]["build"] == "container"
    assert "acme-native: no wheel for the target; built in the container instead (build=auto)" in result.warnings
    (extension,) = list((result.python_dir / "acme_native").glob("_speed.cpython-311-*.so"))
    assert extension.is_file()
    assert result.manifest["local_packages"][0]["name"] == "acme-native"
    assert import_in_image(image, result.python_dir, "import acme_native._speed as s; print(s.__name__)") == (
        "acme_native._speed"
    )


@pytest.mark.docker
@pytest.mark.network
def test_a_link_planted_by_code_run_in_the_container_never_reaches_the_layer(tmp_path, image):
    """A package's build runs in the image with the output folder mounted: its setup.py leaves
    python/evil -> /etc/hostname there. The build is refused, and no host file is read."""
    from test_repository_shapes import NATIVE_C, NATIVE_PYPROJECT

    library = tmp_path / "acme-native"
    (library / "src" / "acme_native").mkdir(parents=True)
    (library / "pyproject.toml").write_text(NATIVE_PYPROJECT)
    (library / "src" / "speed.c").write_text(NATIVE_C)
    (library / "src" / "acme_native" / "__init__.py").write_text("")
    (library / "setup.py").write_text(
        "import os\nfrom setuptools import Extension, setup\n"
        "os.makedirs('/asset-output/python', exist_ok=True)\n"
        "if not os.path.lexists('/asset-output/python/evil'):\n"
        "    os.symlink('/etc/hostname', '/asset-output/python/evil')\n"
        "setup(ext_modules=[Extension('acme_native._speed', ['src/speed.c'])])\n"
    )
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../acme-native\n")
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerContainerBuilder(service, python=PY, image=image, cache_dir=False).run()
    assert "evil -> /etc/hostname (symlink)" in str(info.value)
    assert "only regular files and folders" in str(info.value)
    assert not (service / "build" / "lambda" / "layer").exists()


@pytest.mark.docker
@pytest.mark.network
def test_a_link_planted_at_the_report_never_makes_the_host_read_a_host_file(tmp_path, image):
    """Package code run by the import check in the image leaves its report path as a link to a host
    file; the host never reads that file (its content must not reach the manifest) and never crashes."""
    secret = tmp_path / "host.json"
    secret.write_text('{"bytecode": {"failed": ["HOST-FILE-CONTENT"]}}')
    hatch_package(
        tmp_path / "planter",
        "planter",
        "import os\n"
        "report = '/asset-output/.cdk-lambda-layer-report.json'\n"
        "if os.path.isdir('/asset-output') and not os.path.lexists(report):\n"
        f"    os.symlink({str(secret)!r}, report)\n",
    )
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../planter\n")
    try:
        result = BasedLambdaLayerContainerBuilder(service, python=PY, image=image, cache_dir=False).run()
    except VerificationError as exc:
        assert "HOST-FILE-CONTENT" not in str(exc)
        return
    assert "HOST-FILE-CONTENT" not in json.dumps(result.manifest)
    assert result.manifest["import_check"]["ran"]


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.parametrize("host_uv", [True, False], ids=["lent-uv", "image-pip"])
def test_the_image_installs_the_wheel_planned_for_the_runtime(tmp_path, image, host_uv):
    """cryptography 49 publishes manylinux_2_17, 2_28 and 2_34 wheels. The stand-in image (glibc 2.36)
    would pick 2_34, which python3.11's Amazon Linux 2 cannot load; the plan chose 2_17 for the runtime,
    and only that file's hash is handed to the image's installer, so that is what it installs."""
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["cryptography==49.0.0", "cffi==2.0.0"]\n[tool.uv]\npackage = false\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)  # uv.lock lists every file of a version
    container = ContainerOptions(image=image, host_uv=host_uv)
    result = BasedLambdaLayerContainerBuilder(project, python=PY, container=container, cache_dir=False).run()
    (wheel,) = result.python_dir.glob("cryptography-49.0.0.dist-info/WHEEL")
    assert "manylinux_2_17_x86_64" in wheel.read_text() and "manylinux_2_34" not in wheel.read_text()


@pytest.mark.docker
@pytest.mark.network
def test_volumes_you_give_reach_the_import_check_too(tmp_path, image):
    """The second container (bytecode, import check) gets no cache and no network, but the volumes given
    in ContainerOptions: a package that needs a mounted file at import still imports."""
    from package_helpers import hatch_package

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "needed.txt").write_text("here")
    hatch_package(tmp_path / "needs", "needs-mount", "open('/opt/extra/needed.txt').read()\n")
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../needs\n")
    container = ContainerOptions(image=image, volumes={str(extra): "/opt/extra"})
    result = BasedLambdaLayerContainerBuilder(service, python=PY, container=container, cache_dir=False).run()
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["imported"] == 1


def _epoch_images() -> tuple[str, str]:
    """Two images of different IDs (one more variable in b) with the same creation time, from the stand-in."""
    import hashlib
    import json

    from docker_helpers import IMAGES, standin_image

    standin_image()
    base = IMAGES[("3.13", "x86_64")][1]
    tags = ("cdk-lambda-layer-test/epoch:a", "cdk-lambda-layer-test/epoch:b")
    if all(subprocess.run(["docker", "image", "inspect", t], capture_output=True).returncode == 0 for t in tags):
        return tags
    work = Path(tempfile.mkdtemp(prefix="epoch-images-"))
    src = work / "x"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    subprocess.run(f"docker save {base} | tar -x -C {src}", shell=True, check=True)
    manifest = json.loads((src / "manifest.json").read_text())[0]
    config = json.loads((src / manifest["Config"]).read_text())
    for variant, tag in zip("ab", tags, strict=True):
        c = json.loads(json.dumps(config))
        c["created"] = "1970-01-01T00:00:00Z"
        c["config"]["Labels"] = {"variant": variant}
        if variant == "b":
            c["config"]["Env"] = [*(c["config"].get("Env") or []), "PIP_ONLY_BINARY=:all:"]
        raw = json.dumps(c).encode()
        out = work / f"out-{variant}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        (out / f"{hashlib.sha256(raw).hexdigest()}.json").write_bytes(raw)
        for layer in manifest["Layers"]:
            (out / layer).parent.mkdir(parents=True, exist_ok=True)
            os.link(src / layer, out / layer)
        (out / "manifest.json").write_text(
            json.dumps(
                [{"Config": f"{hashlib.sha256(raw).hexdigest()}.json", "RepoTags": [tag], "Layers": manifest["Layers"]}]
            )
        )
        subprocess.run(f"tar -C {out} -cf - . | docker load", shell=True, check=True, capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    return tags


@pytest.mark.docker
def test_a_moved_tag_between_images_of_one_creation_time_builds_again(tmp_path):
    a, b = _epoch_images()
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text("six==1.17.0\n")
    env = {"CDK_LAYER_CACHE_DIR": str(tmp_path / "cache")}
    moving = "cdk-lambda-layer-test/epoch:latest"
    args = ("build", str(project), "--python", "3.13", "--build", "container", "--image", moving, "--json")
    for image in (a, b):
        subprocess.run(["docker", "tag", image, moving], check=True)
        done = cli(*args, env=env)
        assert done.returncode == 0, done.stderr[-400:]
    import json

    built_in = json.loads((project / "build/lambda/layer/manifest.json").read_text())["image"]["id"]
    now = subprocess.check_output(["docker", "image", "inspect", "-f", "{{.Id}}", moving], text=True)
    assert built_in == now.strip(), "the layer of the image the tag named before was served"


def test_docker_times_with_an_offset_are_read():
    from cdk_lambda_layer.install.container.docker import docker_time

    assert docker_time("2026-12-01T08:35:09.183189132+01:00") == docker_time("2026-12-01T07:35:09.183189132Z")
