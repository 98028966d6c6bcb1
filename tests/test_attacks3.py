"""A fourth review's attacks, on the third review's fixes (each failed before its fix): an image whose
entrypoint is an init (the step not PID 1), import-time code rewriting bytecode or a file and its
RECORD in place, a dependency poisoning the project's container uv cache, setuptools packages
built from an incomplete sdist, a pip project's [tool.uv] and the user's uv.toml, hash pins on
local wheels and in sha512, a moved tag between images of one creation time, times with offsets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from test_attacks2 import links_after_python_swap, local_package_project
from test_private_index import private_index  # noqa: F401

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


# -- T1: stop_stragglers is skipped silently when the step is not PID 1 (an image with an init entrypoint) --
@pytest.mark.docker
def test_cdk_bundling_with_an_init_entrypoint_never_gives_cdk_a_python_link(tmp_path):
    links = links_after_python_swap(tmp_path, _tini_image())
    assert not links, links


# -- probe: can import-time code in the container find the login on disk (installer caches, output)? --
FILE_SNOOP = """import base64, os
needles = [TOKEN.encode(), base64.b64encode(f"builder:{TOKEN}".encode())]
found = []
for top in ("/tmp", "/asset-output", "/root", "/etc"):
    for folder, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                data = open(path, "rb").read()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(path)
if found:
    raise ImportError(f"saw the login in {sorted(found)[:5]}")
"""


@pytest.mark.docker
@pytest.mark.parametrize("host_uv", [True, False])
def test_import_time_code_in_the_container_finds_no_login_on_disk(tmp_path, private_index, host_uv, monkeypatch):  # noqa: F811
    from docker_helpers import standin_image
    from package_helpers import hatch_package
    from test_private_index import TOKEN, make_project

    from cdk_lambda_layer import BasedLambdaLayerContainerBuilder, ContainerOptions

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = make_project(tmp_path, "pip", private_index)
    hatch_package(project / "snoop", "snoop", f"TOKEN = {TOKEN[::-1]!r}[::-1]\n" + FILE_SNOOP)
    (project / "requirements.txt").write_text("corp-greeting==0.1.0\nsix==1.17.0\n./snoop\n")
    for _ in range(2):  # the second build finds the first one's caches
        result = BasedLambdaLayerContainerBuilder(
            project, python="3.11", cache_dir=False, credentials=[private_index.credentials()],
            container=ContainerOptions(image=standin_image(), network="host", host_uv=host_uv),
        ).run()  # fmt: skip
        assert result.manifest["import_check"]["ran"]
    hits = [p for p in (tmp_path / "xdg").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not hits, hits


from test_data_safety import cli  # noqa: E402

from cdk_lambda_layer import PipBasedLambdaLayerLocalBuilder, VerificationError  # noqa: E402

HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
SVC = '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
SIX_WHEEL_SHA256 = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


def _unzipped(layer_zip: Path, name: str) -> bytes:
    with zipfile.ZipFile(layer_zip) as archive:
        return archive.read(name)


def _import_from_layer(layer_zip: Path, tmp: Path, code: str) -> str:
    out = tmp / "unzipped"
    shutil.rmtree(out, ignore_errors=True)
    with zipfile.ZipFile(layer_zip) as archive:
        archive.extractall(out)
    return subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(out / 'python')!r}); {code}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


# -- T2: import-time code rewrites another package's compiled bytecode; undo_writes and RECORD miss it --
PYC_POISON = """
import os, sys
from pathlib import Path
from importlib._bootstrap_external import _code_to_hash_pyc
site = Path(__file__).resolve().parents[1]
pyc = site / "__pycache__" / f"six.{sys.implementation.cache_tag}.pyc"
if pyc.is_file():
    st = os.lstat(pyc)
    data = _code_to_hash_pyc(compile("POISONED = True\\n", "/opt/python/six.py", "exec"), b"\\0" * 8, checked=False)
    with open(pyc, "r+b") as handle:  # same size, same inode, mtime put back: the snapshot sees nothing
        handle.write(data + b"\\0" * (st.st_size - len(data)))
    os.utime(pyc, ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_import_time_code_cannot_replace_another_packages_bytecode(tmp_path):
    project = local_package_project(tmp_path / "app", PYC_POISON, extra="six==1.17.0\n")
    with pytest.raises(VerificationError) as info:  # the content changed, whatever its size and time
        PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    assert "changed or deleted files of the layer: __pycache__/six.cpython" in str(info.value)
    assert not (project / "build" / "lambda" / "layer").exists()


# -- T3: ... or its source and its RECORD line together (same sizes, times put back) -------------------
SOURCE_AND_RECORD = """
import base64, hashlib, os
from pathlib import Path
site = Path(__file__).resolve().parents[1]
src = site / "six.py"
if src.is_file():
    record = next(site.glob("six-*.dist-info")) / "RECORD"
    keep = {p: os.lstat(p) for p in (src, record)}
    old = src.read_bytes()
    new = b"POISONED = True\\n" + b"#" * (len(old) - 16)
    digest = lambda b: base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=")
    src.write_bytes(new)
    record.write_bytes(record.read_bytes().replace(digest(old), digest(new)))
    for p, st in keep.items():
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_import_time_code_cannot_rewrite_a_file_and_its_record(tmp_path):
    project = local_package_project(tmp_path / "app", SOURCE_AND_RECORD, extra="six==1.17.0\n")
    with pytest.raises(VerificationError) as info:
        PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False, bytecode=False).run()
    assert "six.py" in str(info.value) and "RECORD" in str(info.value)


# -- T4: a dependency's import-time code poisons the project's container uv cache, RECORD included; ------
# -- the poison outlives the dependency ---------------------------------------------------------------
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


# -- T5: setuptools packages whose setup.py reads a file the sdist does not carry no longer build ---------
def test_a_setuptools_package_reading_its_requirements_file_still_builds(tmp_path):
    project = tmp_path / "app"
    acme = project / "libs" / "acme"
    (acme / "acme").mkdir(parents=True)
    (acme / "setup.py").write_text(
        'from setuptools import setup\nsetup(name="acme", version="0.1.0", packages=["acme"],\n'
        '      install_requires=open("requirements.txt").read().split())\n'
    )
    (acme / "requirements.txt").write_text("six==1.17.0\n")
    (acme / "acme" / "__init__.py").write_text("VALUE = 1\n")
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text("./libs/acme\nsix==1.17.0\n")
    done = cli("build", str(project), "--python", HOST, "--no-cache")
    assert done.returncode == 0, done.stderr[-600:]  # pip install ./libs/acme and `uv build --wheel` both work


# -- T6: a setuptools package without a build-backend key (PEP 517's default) still builds in place ------
def test_a_deleted_module_of_a_setuptools_library_without_build_backend_leaves_the_layer(tmp_path):
    project = tmp_path / "app"
    ledger = project / "libs" / "ledger"
    (ledger / "src" / "ledger").mkdir(parents=True)
    (ledger / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\n\n[project]\nname = "ledger"\nversion = "0.1.0"\n'
    )
    (ledger / "src" / "ledger" / "__init__.py").write_text("X = 1\n")
    (ledger / "src" / "ledger" / "old.py").write_text("OLD = 1\n")
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text("./libs/ledger\n")
    PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    (ledger / "src" / "ledger" / "old.py").unlink()
    (ledger / "src" / "ledger" / "__init__.py").write_text("X = 2\n")
    result = PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    with zipfile.ZipFile(result.layer_zip) as archive:
        assert "python/ledger/old.py" not in archive.namelist()


# -- T7: a pip project's [tool.uv] settings in its own pyproject.toml are dropped by --no-config --------
def test_a_pip_projects_tool_uv_settings_still_apply(tmp_path):
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(SVC + '\n[tool.uv]\nexclude-newer = "2021-01-01T00:00:00Z"\n')
    (project / "requirements.txt").write_text("six\n")
    result = PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    assert {p.name: p.version for p in result.packages}["six"] == "1.15.0"  # what uv resolves there itself


# -- T8: the user's uv.toml still steers the local packages' builds (same fingerprint, another layer) ---
def test_the_users_uv_config_does_not_change_local_package_wheels(tmp_path, monkeypatch):
    from package_helpers import hatch_package

    project = tmp_path / "app"
    hatch_package(project / "libs" / "ledger", "ledger", "X = 1\n")
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text("./libs/ledger\n")
    first = PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    wheel_meta = _unzipped(first.layer_zip, "python/ledger-0.1.0.dist-info/WHEEL")
    (tmp_path / "xdg" / "uv").mkdir(parents=True)
    (tmp_path / "xdg" / "uv" / "uv.toml").write_text('build-constraint-dependencies = ["hatchling==1.25.0"]\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    second = PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    assert second.fingerprint == first.fingerprint
    assert _unzipped(second.layer_zip, "python/ledger-0.1.0.dist-info/WHEEL") == wheel_meta


def _six_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six==1.17.0", "-d", str(folder)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(folder.glob("six-1.17.0-*.whl"))


# -- T9: a --hash pin on a local wheel is not enforced ------------------------------------------------
def test_a_hash_pin_on_a_local_wheel_is_enforced(tmp_path):
    project = tmp_path / "app"
    wheel = _six_wheel(project / "wheels")
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text(f"./wheels/{wheel.name} --hash=sha256:{'0' * 64}\n")
    done = cli("build", str(project), "--python", HOST, "--no-cache")
    assert done.returncode != 0, "a wheel whose bytes are not the pinned hash was installed (pip refuses it)"


# -- T10: a sha512 --hash pin (pip accepts it) is called a replaced file -------------------------------
def test_a_sha512_hash_pin_is_accepted(tmp_path):
    import hashlib

    project = tmp_path / "app"
    wheel = _six_wheel(tmp_path / "dl")
    (project).mkdir()
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text(
        f"six==1.17.0 --hash=sha512:{hashlib.sha512(wheel.read_bytes()).hexdigest()}\n"
    )
    done = cli("build", str(project), "--python", HOST, "--no-cache")
    assert done.returncode == 0, done.stderr[-500:]


# -- T11: images with a fixed creation time (Nix, Bazel, ko: 1970-01-01): a moved tag is never rebuilt --
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
