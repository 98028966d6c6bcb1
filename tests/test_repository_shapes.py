"""Real repository shapes: a uv workspace, a uv path dependency, a Poetry path dependency and a
pip project naming a local folder, a local wheel and -r/-c includes (tests/repos/).

For each: the local package is in the layer at its own version with its own dependencies,
installed from a wheel (no .pth, no __editable__, no direct_url.json), the service's own code
is absent, and the layer's bytes do not depend on the caller's working directory. The
fingerprint follows the local packages' sources, and nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import SKIP_BUNDLING, layer_s3_key, synth_layer

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, NoWheelError, ProjectError, load_project
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.identity.fingerprint import covered_local_paths, fingerprint
from cdk_lambda_layer.options import LayerOptions
from cdk_lambda_layer.target import LambdaTarget

pytestmark = pytest.mark.network

REPOS = Path(__file__).parent / "repos"
TARGET = LambdaTarget(python="3.12")
#: Where each shape's project is, inside its repository copy.
SHAPES = {
    "uv_workspace": "services/orders",
    "uv_path": "service",
    "poetry_path": "service",
    "pip_local": ".",
}
#: The local packages each shape's layer must hold, with their versions and one dependency of theirs.
LOCAL = {
    "uv_workspace": {"ledger": "7.7.0", "shared-util": "0.3.0", "attrs": None},
    "uv_path": {"acme-lib": "0.2.0", "six": "1.17.0"},
    "poetry_path": {"acme-common": "1.4.0", "idna": "3.10"},
    "pip_local": {"acme-tools": "3.1.0", "acme-greet": "0.1.0", "six": "1.17.0", "attrs": "25.4.0"},
}
#: The service's own module, which must stay out of its dependency layer.
OWN_CODE = {"uv_workspace": "orders", "uv_path": "handler", "poetry_path": "handler", "pip_local": "pip_local"}


def build_wheel(repo: Path) -> None:
    """pip_local names ./wheels/acme_greet-0.1.0-py3-none-any.whl: build it from greet-src."""
    subprocess.run(
        [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(repo / "wheels"), str(repo / "greet-src")],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / "checkout" / name
        shutil.copytree(REPOS / name, target, ignore=shutil.ignore_patterns("build", "__pycache__", "*.whl"))
        if name == "pip_local":
            build_wheel(target)
        return target

    return copy


def cli(*args: str, cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def layer_files(zip_path: str) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_local_packages_are_built_into_the_layer(repo, tmp_path, shape):
    root = repo(shape)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli(os.path.relpath(root / SHAPES[shape], elsewhere), "--python", "3.12", cwd=elsewhere)
    versions = {p["name"].lower().replace("_", "-"): p["version"] for p in result["packages"]}
    for name, version in LOCAL[shape].items():
        assert name in versions, (name, versions)
        assert version is None or versions[name] == version, (name, versions[name])
    names = layer_files(result["layer_zip"])
    editable = [n for n in names if n.endswith((".pth", "direct_url.json")) or "__editable__" in n]
    assert not editable
    own = OWN_CODE[shape]
    assert not [n for n in names if n.startswith((f"python/{own}/", f"python/{own}.py"))]
    local = {p["name"] for p in result["local_packages"]}
    assert local == {n for n in LOCAL[shape] if n.startswith(("acme", "ledger", "shared"))}
    assert not [p["source"] for p in result["local_packages"] if p["source"].startswith("/")]  # no machine paths
    assert_covered(load_project(root / SHAPES[shape]), LayerOptions(), result["local_packages"])


def assert_covered(project, options: LayerOptions, built: list[dict]) -> None:
    """Every local package the build installed is one whose sources the fingerprint hashes."""
    installed = {(project.anchor / p["source"]).resolve() for p in built}
    assert installed and installed <= covered_local_paths(project, options)


def test_the_workspace_library_never_comes_from_the_index(repo):
    """ledger is also a package on PyPI (1.0.1): the layer holds the workspace's, with its dependencies."""
    root = repo("uv_workspace")
    result = cli("services/orders", "--python", "3.12", cwd=root)
    python = Path(result["python_dir"])
    assert "FROM_THE_WORKSPACE = True" in (python / "ledger" / "__init__.py").read_text()
    assert (python / "ledger-7.7.0.dist-info").is_dir() and not list(python.glob("ledger-1.0.1*"))
    assert (python / "shared_util" / "__init__.py").is_file()


def test_a_workspace_member_is_never_a_lockless_pip_project(repo):
    root = repo("uv_workspace")
    project = load_project(root / "services" / "billing")
    assert project.tool.value == "uv" and project.lock_path == root / "uv.lock" and project.member == "billing"
    with pytest.raises(ProjectError) as info:
        load_project(root / "services" / "billing", tool="pip")
    assert "[tool.uv.sources]" in str(info.value) and "the index's package of that name" in str(info.value)
    (root / "uv.lock").unlink()
    with pytest.raises(ProjectError) as info:
        load_project(root / "services" / "billing")
    assert "No uv.lock in" in str(info.value) and "(the workspace root of" in str(info.value)
    assert "uv lock" in str(info.value)


def test_package_names_a_member_of_the_workspace(repo, tmp_path):
    root = repo("uv_workspace")
    by_folder = BasedLambdaLayerLocalBuilder(root / "services" / "billing", python="3.12", build_dir=tmp_path / "a")
    by_name = BasedLambdaLayerLocalBuilder(root, package="billing", python="3.12", build_dir=tmp_path / "b")
    assert by_folder.fingerprint == by_name.fingerprint
    assert by_folder.run().layer_zip.read_bytes() == by_name.run().layer_zip.read_bytes()
    with pytest.raises(ProjectError) as info:
        load_project(root)
    assert "root of a uv workspace" in str(info.value) and "billing" in str(info.value)
    with pytest.raises(ProjectError) as info:
        load_project(root, package="payments")
    assert "No member named 'payments'" in str(info.value) and "orders" in str(info.value)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_arm64_layer_of_each_shape_holds_aarch64_code(repo, shape):
    """Every repository shape builds for arm64 on this x86_64 machine: its local packages are there, and
    all native code is AArch64 (the workspace's orjson; the other shapes' dependencies are pure Python)."""
    from cdk_lambda_layer.core.elf import elf_machine, native_files

    root = repo(shape)
    result = BasedLambdaLayerLocalBuilder(root / SHAPES[shape], python="3.12", architecture="arm64").run()
    machines = {elf_machine(p) for p in native_files(result.python_dir)}
    assert machines == ({183} if shape == "uv_workspace" else set())  # 183: EM_AARCH64
    names = {p.name.lower().replace("_", "-") for p in result.packages}
    assert {name for name in LOCAL[shape] if name.startswith(("acme", "ledger", "shared"))} <= names
    assert result.manifest["target"]["architecture"] == "arm64"
    checked = result.manifest["import_check"]  # this x86_64 machine cannot run arm64 code: said, not faked
    assert checked["ran"] is False and "not arm64" in checked["reason"]


def test_include_project_puts_the_service_in_its_own_layer(repo):
    root = repo("uv_workspace")
    result = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.12", include_project=True).run()
    assert (result.python_dir / "orders" / "__init__.py").is_file()
    assert not list(result.python_dir.glob("*.pth"))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_same_bytes_from_any_working_directory(repo, tmp_path, shape):
    root = repo(shape)
    project = root / SHAPES[shape]
    first = cli(str(project), "--python", "3.12", "--no-cache", cwd=Path("/"))
    zip_one = Path(first["layer_zip"]).read_bytes()
    second = cli(os.path.relpath(project, tmp_path), "--python", "3.12", "--no-cache", cwd=tmp_path)
    assert Path(second["layer_zip"]).read_bytes() == zip_one
    assert first["fingerprint"] == second["fingerprint"]


# -- the fingerprint follows the sources of what reaches the layer -------------------------------------
#: A source file of each shape's local package, and a file of the service itself.
LIBRARY_FILE = {
    "uv_workspace": "libs/shared-util/src/shared_util/__init__.py",  # reached through ledger
    "uv_path": "acme-lib/src/acme_lib/__init__.py",
    "poetry_path": "acme-common/src/acme_common/__init__.py",
    "pip_local": "libs/acme-tools/src/acme_tools/__init__.py",
}
HANDLER_FILE = {
    "uv_workspace": "services/orders/src/orders/__init__.py",
    "uv_path": "service/handler.py",
    "poetry_path": "service/handler.py",
    "pip_local": "app.py",
}


def fp(root: Path, shape: str) -> str:
    return fingerprint(load_project(root / SHAPES[shape]), TARGET, LayerOptions())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fingerprint_follows_the_library_not_the_handler(repo, tmp_path, shape):
    root = repo(shape)
    before = fp(root, shape)
    handler = root / HANDLER_FILE[shape]
    handler.write_text(handler.read_text() + "\n# edited\n" if handler.exists() else "print('handler')\n")
    assert fp(root, shape) == before  # a handler edit changes nothing
    library = root / LIBRARY_FILE[shape]
    library.write_text(library.read_text() + "CHANGED = 1\n")
    assert fp(root, shape) != before  # the library's code reaches the layer


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fingerprint_ignores_the_checkout_place_and_line_endings(repo, tmp_path, shape):
    root = repo(shape)
    before = fp(root, shape)
    moved = Path(shutil.copytree(root, tmp_path / "moved" / "deeper" / shape))
    assert fp(moved, shape) == before
    for path in moved.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".txt", ".lock"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert fp(moved, shape) == before


def test_fingerprint_follows_referenced_wheels_and_includes(repo):
    root = repo("pip_local")
    before = fp(root, "pip_local")
    (root / "greet-src" / "src" / "acme_greet" / "__init__.py").write_text("def hello():\n    return 'hi'\n")
    for wheel in (root / "wheels").glob("*.whl"):
        wheel.unlink()
    build_wheel(root)  # same name, other content
    after_wheel = fp(root, "pip_local")
    assert after_wheel != before
    (root / "requirements" / "constraints.txt").write_text("attrs==25.3.0\n")
    assert fp(root, "pip_local") != after_wheel


def test_the_constructs_s3_key_follows_the_workspace_library(repo, tmp_path):
    root = repo("uv_workspace")

    def key() -> str:
        template, _, _ = synth_layer(
            root / "services" / "orders", runtime=lambda_.Runtime.PYTHON_3_12, context=SKIP_BUNDLING
        )
        return layer_s3_key(template)

    before = key()
    (root / "services" / "orders" / "src" / "orders" / "__init__.py").write_text("def handler(e, c):\n    return 2\n")
    assert key() == before
    (root / "libs" / "ledger" / "src" / "ledger" / "__init__.py").write_text("FROM_THE_WORKSPACE = 2\n")
    assert key() != before
    # And the asset itself holds the workspace's library, as it is now (a real synth, bundling).
    template, _, _ = synth_layer(
        root / "services" / "orders", outdir=tmp_path / "cdk.out", runtime=lambda_.Runtime.PYTHON_3_12, build="local"
    )
    asset = tmp_path / "cdk.out" / f"asset.{layer_s3_key(template)[:-4]}"
    assert (asset / "python" / "ledger" / "__init__.py").read_text() == "FROM_THE_WORKSPACE = 2\n"
    assert not (asset / "python" / "orders").exists()  # the service's own code stays out


# -- a local package with native code ------------------------------------------------------------------
NATIVE_SETUP = """
from setuptools import Extension, setup

setup(ext_modules=[Extension("acme_native._speed", ["src/speed.c"])])
"""
NATIVE_PYPROJECT = """
[project]
name = "acme-native"
version = "0.5.0"
requires-python = ">=3.10"

[build-system]
requires = ["setuptools>=70"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
packages = ["acme_native"]
package-dir = {"" = "src"}
"""
NATIVE_C = """
#include <Python.h>
static struct PyModuleDef speed = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&speed); }
"""


def native_project(root: Path) -> Path:
    """A pip project whose requirements name a local package with a C extension."""
    library = root / "acme-native"
    (library / "src" / "acme_native").mkdir(parents=True)
    (library / "pyproject.toml").write_text(NATIVE_PYPROJECT)
    (library / "setup.py").write_text(NATIVE_SETUP)
    (library / "src" / "speed.c").write_text(NATIVE_C)
    (library / "src" / "acme_native" / "__init__.py").write_text("from . import _speed\n")
    service = root / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "native-service"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../acme-native\n")
    return service


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler to build the local extension")
def test_a_local_package_with_native_code_is_refused_locally_and_says_why(tmp_path):
    service = native_project(tmp_path)
    with pytest.raises(NoWheelError) as info:
        BasedLambdaLayerLocalBuilder(service, python="3.12").run()
    message = str(info.value)
    assert "acme-native 0.5.0: a local package with native code" in message
    assert "linux_x86_64" in message and "build='container'" in message
    assert info.value.buildable  # auto may take it to the container, which compiles it for the runtime


def test_a_poetry_path_dependency_with_develop_true_is_in_the_layer(repo, tmp_path):
    """Poetry exports develop = true as `-e file:///...`: built from its folder, never editable, never dropped."""
    root = repo("poetry_path")
    pyproject = root / "service" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("develop = false", "develop = true"))
    relock = Path(__file__).resolve().parents[1] / "scripts" / "relock.py"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, str(relock), str(root / "service")], check=True, capture_output=True, env=env)
    result = cli(str(root / "service"), "--python", "3.12", "--no-cache", cwd=tmp_path)
    assert {p["name"] for p in result["local_packages"]} == {"acme-common"}
    names = layer_files(result["layer_zip"])
    assert "python/acme_common/__init__.py" in names and not [n for n in names if n.endswith(".pth")]


# -- what the backend ships reaches the fingerprint (sources.py's rule, with real builds) ---------------
HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def assert_change_reaches_the_layer(project: Path, cache: Path, change, read) -> None:
    """Build, change a file the backend ships, build again: a new fingerprint, so the new content."""

    def build(cache_dir: Path | bool):
        return BasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=cache_dir).run()

    first = build(cache)
    assert read(first.python_dir) == "1"
    change()
    assert read(build(False).python_dir) == "2", "the backend ships the changed file"
    second = build(cache)
    assert second.fingerprint != first.fingerprint and not second.cached
    assert read(second.python_dir) == "2"


def assert_core_edit_reaches_the_layer(project: Path, cache: Path, core: Path) -> None:
    """assert_change_reaches_the_layer for a library ``core`` made by write_library (``core`` is its module)."""
    assert_change_reaches_the_layer(
        project,
        cache,
        lambda: core.write_text("V = '2'\n"),
        lambda site: (site / "core" / "__init__.py").read_text().split("'")[1],
    )


def test_content_behind_a_linked_folder_reaches_the_layer(repo, tmp_path):
    root = repo("uv_workspace")
    consts = root / "shared-code" / "consts.py"
    consts.parent.mkdir()
    consts.write_text("VALUE = '1'\n")
    (root / "libs/ledger/src/ledger/extra").symlink_to("../../../../shared-code")  # hatch follows it
    assert_change_reaches_the_layer(
        root / "services/orders",
        tmp_path / "cache",
        lambda: consts.write_text("VALUE = '2'\n"),
        lambda site: (site / "ledger/extra/consts.py").read_text().split("'")[1],
    )


def test_a_hidden_data_file_reaches_the_layer(repo, tmp_path):
    root = repo("uv_workspace")
    data = root / "libs/ledger/src/ledger/.defaults"
    data.write_text("1")
    assert_change_reaches_the_layer(
        root / "services/orders",
        tmp_path / "cache",
        lambda: data.write_text("2"),
        lambda site: (site / "ledger/.defaults").read_text(),
    )


def test_a_project_template_inside_a_package_reaches_the_layer(repo, tmp_path):
    root = repo("uv_workspace")
    template = root / "libs/ledger/src/ledger/templates/basic"
    template.mkdir(parents=True)
    (template / "pyproject.toml").write_text('[project]\nname = "{{name}}"\n')
    (template / "app.txt").write_text("1")
    assert_change_reaches_the_layer(
        root / "services/orders",
        tmp_path / "cache",
        lambda: (template / "app.txt").write_text("2"),
        lambda site: (site / "ledger/templates/basic/app.txt").read_text(),
    )


@pytest.mark.parametrize("where", ["../../proto/schema.txt", "build/gen.txt", "dist/asset.txt"])
def test_a_force_included_file_reaches_the_layer(repo, tmp_path, where):
    root = repo("uv_workspace")
    ledger = root / "libs/ledger"
    source = (ledger / where).resolve()
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("1")
    with (ledger / "pyproject.toml").open("a") as handle:
        handle.write(f'\n[tool.hatch.build.targets.wheel.force-include]\n"{where}" = "ledger/forced.txt"\n')
    assert_change_reaches_the_layer(
        root / "services/orders",
        tmp_path / "cache",
        lambda: source.write_text("2"),
        lambda site: (site / "ledger/forced.txt").read_text(),
    )


@pytest.mark.parametrize("reference", ["file:///${PROJECT_ROOT}/libs/acme", "ABSOLUTE", "./libs/acme"])
def test_a_local_package_in_pip_dependencies_reaches_the_layer(tmp_path, reference):
    project = tmp_path / "svc"
    library = project / "libs" / "acme"
    (library / "src" / "acme").mkdir(parents=True)
    (library / "pyproject.toml").write_text('[project]\nname = "acme"\nversion = "1.0.0"\n' + HATCH)
    (library / "src" / "acme" / "__init__.py").write_text("V = '1'\n")
    reference = library.as_uri() if reference == "ABSOLUTE" else reference
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        f'dependencies = ["acme @ {reference}"]\n'
    )
    assert_change_reaches_the_layer(
        project,
        tmp_path / "cache",
        lambda: (library / "src" / "acme" / "__init__.py").write_text("V = '2'\n"),
        lambda site: (site / "acme" / "__init__.py").read_text().split("'")[1],
    )


# -- R3: what a pip project's local packages bring in is hashed, as uv resolves it ------------------------
def write_library(folder: Path, name: str, tail: str = "", backend: str = HATCH) -> Path:
    (folder / "src" / name).mkdir(parents=True, exist_ok=True)
    (folder / "src" / name / "__init__.py").write_text("V = '1'\n")
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1.0.0"\n{tail}\n{backend}')
    return folder / "src" / name / "__init__.py"


#: How libs/acme brings in its dependency core, and where core's folder is (from tmp_path).
BRINGS_CORE = {
    "uv-source-path": ('dependencies = ["core"]\n[tool.uv.sources]\ncore = { path = "../core" }', "libs/core"),
    "uv-workspace-source": ('dependencies = ["core"]\n[tool.uv.sources]\ncore = { workspace = true }', "libs/core"),
    # hatch's {root} is the library's folder (uv asks hatch for the metadata)
    "hatch-root-uri": ('dependencies = ["core @ {root:uri}/../core"]', "libs/core"),
    # uv expands ${PROJECT_ROOT} where it runs (the service), not in the library declaring it
    "project-root": ('dependencies = ["core @ file:///${PROJECT_ROOT}/../libs/core"]', "libs/core"),
    "poetry-path": ('dynamic = ["dependencies"]\n[tool.poetry.dependencies]\ncore = { path = "../core" }', "libs/core"),
}
POETRY_CORE = '[build-system]\nrequires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"\n'
UV_BUILD = '[build-system]\nrequires = ["uv_build>=0.8"]\nbuild-backend = "uv_build"\n'
DIRECT = "[tool.hatch.metadata]\nallow-direct-references = true\n"


@pytest.mark.parametrize("brings", list(BRINGS_CORE))
def test_a_local_package_that_a_local_package_brings_in_reaches_the_layer(tmp_path, brings):
    tail, core_folder = BRINGS_CORE[brings]
    if brings == "uv-workspace-source":
        (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["libs/*"]\n')
    backend = {"poetry-path": POETRY_CORE, "project-root": UV_BUILD}.get(brings, HATCH + DIRECT)  # hatch refuses ${}
    write_library(tmp_path / "libs" / "acme", "acme", tail, backend)
    (tmp_path / "libs" / "acme" / "src" / "acme" / "__init__.py").write_text("from core import V\n")
    core = write_library(tmp_path / core_folder, "core")
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n')
    (project / "requirements.txt").write_text("../libs/acme\n")
    assert_core_edit_reaches_the_layer(project, tmp_path / "cache", core)
    built = BasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=tmp_path / "cache").run()
    assert_covered(load_project(project), LayerOptions(), built.manifest["local_packages"])


def test_dash_e_dot_brings_in_the_projects_direct_reference(tmp_path):
    """requirements.txt ``-e .``: the project is left out, but its dependencies are installed."""
    core = write_library(tmp_path / "libs" / "core", "core")
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["core @ file:///${PROJECT_ROOT}/../libs/core"]\n'
        + HATCH
        + DIRECT
        + "[tool.hatch.build.targets.wheel]\nbypass-selection = true\n"
    )
    (project / "requirements.txt").write_text("-e .\nsix==1.17.0\n")
    assert_core_edit_reaches_the_layer(project, tmp_path / "cache", core)


def test_a_local_package_left_out_still_brings_in_its_local_dependency(tmp_path):
    """exclude=["acme"] drops acme alone: core, which acme brings in, is in the layer and hashed; an
    edit to acme rebuilds nothing (R11)."""
    tail, _ = BRINGS_CORE["uv-source-path"]
    acme = write_library(tmp_path / "libs" / "acme", "acme", tail)
    core = write_library(tmp_path / "libs" / "core", "core")
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n')
    (project / "requirements.txt").write_text("../libs/acme\n")

    def build():
        return BasedLambdaLayerLocalBuilder(project, python="3.12", exclude=["acme"], cache_dir=tmp_path / "c").run()

    first = build()
    assert {p["name"] for p in first.manifest["local_packages"]} == {"core"}
    assert_covered(load_project(project), LayerOptions(exclude=("acme",)), first.manifest["local_packages"])
    acme.write_text("V = '2'\n")
    assert build().cached
    core.write_text("V = '2'\n")
    assert (build().python_dir / "core" / "__init__.py").read_text() == "V = '2'\n"


# -- R11: a provided library's edits rebuild nothing ----------------------------------------------------
def test_editing_a_provided_workspace_library_rebuilds_nothing(repo, tmp_path):
    root = repo("uv_workspace")

    def build():
        orders = root / "services" / "orders"
        return BasedLambdaLayerLocalBuilder(orders, python="3.12", provided=["ledger"], cache_dir=tmp_path / "c").run()

    first = build()
    assert not (first.python_dir / "ledger").exists() and (first.python_dir / "shared_util").is_dir()
    (root / "libs" / "ledger" / "src" / "ledger" / "__init__.py").write_text("FROM_THE_WORKSPACE = 2\n")
    second = build()
    assert second.cached and second.fingerprint == first.fingerprint


# -- R6: a backend's in-tree build folder is no change ---------------------------------------------------
def test_building_a_pdm_backend_library_does_not_change_its_fingerprint(repo, tmp_path):
    root = repo("uv_workspace")
    pyproject = root / "libs" / "ledger" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace('requires = ["hatchling"]', 'requires = ["pdm-backend"]')
        .replace('"hatchling.build"', '"pdm.backend"')
    )

    def build():
        return BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.12", cache_dir=tmp_path / "c").run()

    first = build()
    assert (root / "libs" / "ledger" / ".pdm-build").is_dir()  # what pdm-backend writes at each build
    assert (first.python_dir / "ledger" / "__init__.py").is_file()
    second = build()
    assert second.fingerprint == first.fingerprint and second.cached


# -- R12: include_project with a CDK outdir inside the project, whatever its name --------------------------
@pytest.mark.parametrize("outdir", ["infra/out", "synth"])
def test_a_synth_into_the_project_does_not_change_the_next_asset_hash(tmp_path, outdir):
    project = tmp_path / "svc"
    write_library(project, "svc", 'requires-python = ">=3.10"\ndependencies = ["six==1.17.0"]')
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True, capture_output=True)
    keys = []
    for _ in range(2):
        template, _layer, stack = synth_layer(
            project, outdir=project / outdir, runtime=lambda_.Runtime.PYTHON_3_12, include_project=True
        )
        stack.node.root.synth()
        keys.append(layer_s3_key(template))
    assert list((project / outdir).glob("asset.*"))  # the first synth's layer is in the project
    assert keys[0] == keys[1]


def test_services_sharing_a_library_build_it_once_per_process(repo, caplog):
    """A synth of a workspace's services builds their shared library once; a change to its files is
    built again, and the layers hold what a build of each alone holds."""
    root = repo("uv_workspace")
    caplog.set_level(logging.INFO, logger="cdk_lambda_layer")

    def layer(service: str) -> dict[str, bytes]:
        found = (
            BasedLambdaLayerLocalBuilder(root / "services" / service, python="3.12", cache_dir=False).run().python_dir
        )
        return {p.relative_to(found).as_posix(): p.read_bytes() for p in found.rglob("ledger*/*") if p.is_file()}

    first = layer("orders")
    caplog.clear()
    second = layer("billing")
    assert "ledger: the wheel built earlier in this process" in caplog.text
    assert first == second and any(name.startswith("ledger/") for name in first)
    source = root / "libs" / "ledger" / "src" / "ledger" / "__init__.py"
    source.write_text(source.read_text() + "\nCHANGED = True\n")
    caplog.clear()
    third = layer("billing")
    assert "ledger: the wheel built earlier" not in caplog.text
    assert b"CHANGED = True" in third["ledger/__init__.py"]
    settings = root / "pyproject.toml"  # the workspace root's uv settings (build constraints, indexes)
    settings.write_text(settings.read_text() + "\n# a build setting changed\n")
    caplog.clear()
    layer("billing")
    assert "ledger: the wheel built earlier" not in caplog.text


def test_layers_building_side_by_side_never_build_one_package_folder_at_once(tmp_path, monkeypatch):
    # A package versioned from git is built (its sdist) in its own folder, where setuptools writes its
    # egg-info: two layers of one app sharing it must not build it there at the same time.
    import threading
    import time

    from cdk_lambda_layer.install import local_packages
    from cdk_lambda_layer.plan.model import LocalPin

    library = tmp_path / "libs" / "common"
    library.mkdir(parents=True)
    (library / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools", "setuptools-scm"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    pin = LocalPin(name="common", path=library)
    running, most = [0], [0]
    guard = threading.Lock()

    def build(pin, out, kind, where=None):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with guard:
            running[0] -= 1
        out.mkdir(parents=True, exist_ok=True)
        wheel = out / "common-1.0-py3-none-any.whl"
        wheel.write_bytes(b"")
        return wheel

    monkeypatch.setattr(local_packages, "_run_build", build)
    threads = [
        threading.Thread(target=local_packages._wheel, args=(pin, tmp_path / f"layer{i}" / "wheels", None))
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
