"""Fidelity: every layer that builds imports on its runtime, and every refusal is right and explained.

Real tools, real wheels from PyPI: markers are evaluated for the target whatever the installer,
pip installs the locked versions, a manylinux_2_24-only wheel is taken for Amazon Linux 2,
refusals from Poetry and forked uv locks name every package and why, and ``auto`` takes them to
the container; the import check catches a module that cannot import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from package_helpers import hatch_package

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, NoWheelError, VerificationError
from cdk_lambda_layer.project.pyproject import tomllib
from cdk_lambda_layer.tools import find_uv

pytestmark = pytest.mark.network
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def interpreter(version: str) -> str | None:
    """A CPython ``version`` on this machine, found the way the builders find one, to run the import check."""
    from cdk_lambda_layer.interpreter import find_interpreter

    found = find_interpreter(version)
    return found.path if found else None


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def requirements_project(tmp_path: Path, *lines: str) -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "fidelity"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (project / "requirements.txt").write_text("\n".join(lines) + "\n")
    return project


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_a_requirement_for_python_310_only_is_in_a_310_layer(tmp_path, monkeypatch, installer):
    """anyio needs exceptiongroup on Python 3.10 only; pip used to decide that for the host's Python."""
    found = interpreter("3.10")
    if found:
        monkeypatch.setenv("CDK_LAYER_PYTHON_3_10", found)
    project = requirements_project(tmp_path, "anyio==4.8.0")
    result = BasedLambdaLayerLocalBuilder(project, python="3.10", installer=installer, cache_dir=False).run()
    names = {p.name.lower().replace("_", "-") for p in result.packages}
    assert {"anyio", "exceptiongroup", "idna", "sniffio", "typing-extensions"} <= names
    if found:  # the layer imports with the runtime's Python
        assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["imported"] >= 4


def test_pip_installs_exactly_the_locked_versions(project_copy):
    project = project_copy("uv_forked")
    lock = tomllib.loads((project / "uv.lock").read_text())
    newest = max(
        (p["version"] for p in lock["package"] if p["name"] == "numpy"), key=lambda v: tuple(map(int, v.split(".")))
    )
    result = BasedLambdaLayerLocalBuilder(project, python="3.12", installer="pip", cache_dir=False).run()
    (numpy,) = [p for p in result.packages if p.name == "numpy"]
    assert numpy.version == newest  # the lock's version for >= 3.12, not what pip would pick


@pytest.mark.parametrize("python", ["3.10", "3.11"])
def test_a_wheel_for_glibc_2_24_is_taken_for_amazon_linux_2(tmp_path, python):
    """pandas 2.3.3 publishes only manylinux_2_24 (+2_28) wheels: they run on glibc 2.26, and uv cannot be
    told so. The plan gives pandas to pip with every manylinux tag up to 2.26, and says so."""
    # numpy is pinned to a version with wheels for Amazon Linux 2: unpinned, 3.11 resolves to numpy 2.4
    # (as a lock would), which has none, and the build is refused for that instead.
    project = requirements_project(tmp_path, "pandas==2.3.3", "numpy==2.2.6")
    done = cli(str(project), "--python", python, "--no-cache", "--json", "--build", "local")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {p["name"] for p in result["packages"]} >= {"pandas", "numpy"}
    assert any(w.startswith("pandas: wheels for glibc above 2.17 installed with pip") for w in result["warnings"])
    record = next(Path(result["python_dir"]).glob("pandas-2.3.3.dist-info/WHEEL")).read_text()
    assert "manylinux_2_24" in record


def test_a_forked_uv_lock_refusal_names_the_version_for_this_python(project_copy):
    done = cli(str(project_copy("uv_forked")), "--python", "3.11", "--build", "local")
    assert done.returncode == 4, done.stderr
    assert "numpy 2.4.6: only wheels for glibc 2.27 or newer" in done.stderr
    assert "python3.11 runs on Amazon Linux 2 with glibc 2.26" in done.stderr and "Traceback" not in done.stderr


def test_a_poetry_lock_refusal_is_explained(project_copy):
    done = cli(str(project_copy("poetry_sdist")), "--python", "3.12", "--build", "local")
    assert done.returncode == 4, done.stderr
    assert "docopt 0.6.2: it publishes only a source distribution" in done.stderr
    assert "build='container'" in done.stderr and "six" not in done.stderr.split("Ways out")[0]


def test_every_package_without_a_wheel_is_named_with_its_reason(tmp_path):
    project = requirements_project(tmp_path, "docopt==0.6.2", "numpy==2.4.6", "six==1.17.0")
    with pytest.raises(NoWheelError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    message = str(info.value)
    assert message.startswith("2 packages: no wheel runs on python3.11")
    assert "docopt 0.6.2: it publishes only a source distribution" in message
    assert "numpy 2.4.6: only wheels for glibc 2.27 or newer" in message
    assert set(info.value.packages) == {"docopt", "numpy"} and info.value.buildable


@pytest.mark.docker
def test_auto_takes_a_poetry_refusal_to_the_container(project_copy):
    from docker_helpers import standin_image

    image = standin_image()
    done = cli(str(project_copy("poetry_sdist")), "--python", "3.11", "--build", "auto", "--image", image, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["warnings"][0] == "docopt: no wheel for the target; built in the container instead (build=auto)"
    assert {p["name"] for p in result["packages"]} == {"docopt", "six"}


def test_the_import_check_names_a_module_that_cannot_import(tmp_path):
    hatch_package(tmp_path / "acme-broken", "acme-broken", "import acme_missing_dependency\n", version="1.0")
    project = requirements_project(tmp_path, "../acme-broken", "six==1.17.0")
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(project, python=PY, cache_dir=False).run()
    message = str(info.value)
    assert "acme_broken: ModuleNotFoundError: No module named 'acme_missing_dependency'" in message
    assert "import_check=False" in message
    done = cli(str(project), "--python", PY, "--no-cache", "--no-import-check", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["import_check"]["ran"] is False


def test_installer_variables_from_the_environment_cannot_change_the_layer(tmp_path, monkeypatch):
    """UV_OVERRIDE would swap a locked version (its hash check bypassed), UV_DEV add the dev group, and
    UV_COMPILE_BYTECODE host bytecode: none of them is in the fingerprint, so none may reach the tools."""
    root = tmp_path / "ws"
    shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", root)
    locked = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False).run()
    override = tmp_path / "override.txt"
    override.write_text("attrs==25.1.0\n")
    for name, value in {
        "UV_OVERRIDE": str(override),
        "UV_DEV": "1",
        "UV_NO_DEV": "0",
        "PIP_CONSTRAINT": str(override),
        "UV_COMPILE_BYTECODE": "1",
        "UV_RESOLUTION": "lowest",
    }.items():
        monkeypatch.setenv(name, value)
    steered = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False).run()
    versions = {p.name: p.version for p in steered.packages}
    assert versions == {p.name: p.version for p in locked.packages}
    assert steered.fingerprint == locked.fingerprint
    assert steered.layer_zip.read_bytes() == locked.layer_zip.read_bytes()


def test_a_layer_that_is_not_exactly_the_plan_is_refused(project_copy):
    """Whatever steers an installer (its own config files included), the layer must hold the pins: the
    check compares what is installed with what was planned."""
    from cdk_lambda_layer import LambdaTarget, LayerOptions
    from cdk_lambda_layer.verify import verify

    result = BasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.11", cache_dir=False).run()
    planned = {p.name: p.version for p in result.packages}
    target, options = LambdaTarget(python="3.11"), LayerOptions()
    verify(result.python_dir, target, options, expected=planned)  # the real plan passes
    swapped = {**planned, "pydantic": "1.0", "left-pad": "1.0"}
    del swapped["orjson"]
    with pytest.raises(VerificationError) as info:
        verify(result.python_dir, target, options, expected=swapped)
    message = str(info.value)
    assert "does not hold exactly what the lock pins" in message
    assert f"pydantic {planned['pydantic']} is installed, the lock pins 1.0" in message
    assert "left-pad 1.0 was planned but is not installed" in message
    assert f"orjson {planned['orjson']} is not in the plan" in message


def test_a_requirements_file_naming_the_project_itself_gives_its_dependencies_only(tmp_path):
    """`uv export` writes `-e .` into requirements.txt: the service's dependencies belong in its layer,
    the service's own package does not (unless include_project)."""
    project = tmp_path / "svc"
    (project / "src" / "svc").mkdir(parents=True)
    (project / "src" / "svc" / "__init__.py").write_text("")
    (project / "src" / "svc" / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["six==1.17.0"]\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    (project / "requirements.txt").write_text("-e .\nsix==1.17.0\n")
    result = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert {p.name for p in result.packages} == {"six"}
    assert not (result.python_dir / "svc").exists()
    assert any("names the project itself (svc)" in w for w in result.warnings)
    included = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False, include_project=True).run()
    assert {p.name for p in included.packages} == {"six", "svc"}


def test_packages_the_project_wants_from_source_are_never_taken_as_wheels(tmp_path):
    """[tool.uv] no-binary-package: uv.lock still lists the wheels; the plan must not take them. Locally
    that is a refusal that says why (and auto's way to the image); in the image, the sdist alone is allowed."""
    from cdk_lambda_layer import LambdaTarget, LayerOptions
    from cdk_lambda_layer.export import export_lock
    from cdk_lambda_layer.plan import make_plan
    from cdk_lambda_layer.project import load_project

    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = ["six==1.17.0", "idna"]\n'
        '[tool.uv]\npackage = false\nno-binary-package = ["six"]\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    with pytest.raises(NoWheelError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert "six 1.17.0: the project wants it built from source (no-binary)" in str(info.value)
    assert info.value.packages == ("six",) and info.value.buildable
    loaded, target = load_project(project), LambdaTarget(python="3.11")
    exported = export_lock(loaded, LayerOptions(), target, tmp_path)
    plan = make_plan(exported.read(loaded), target, LayerOptions(), in_image=True, source_only=frozenset({"six"}))
    (six,) = [p for p in plan.pins if p.name == "six"]
    assert six.wheel is None and len(six.file_hashes) == 1 and set(six.file_hashes) < set(six.hashes)
    assert "--hash=" in six.requirement(exact=True) and six.requirement(exact=True).count("--hash=") == 1


def test_the_import_check_sees_only_the_layer(tmp_path):
    """The import check runs with only the layer and the standard library on sys.path (-I -S): a module
    that imports something the layer does not hold fails it, even where this machine's Python has it."""
    import pytest as present_here  # noqa: F401 - installed for this Python, never in the layer

    project = tmp_path / "svc"
    hatch_package(project / "lib", "needs-pytest", "import pytest\n")
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (project / "requirements.txt").write_text("./lib\n")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(project, python=python, cache_dir=False).run()
    assert "needs_pytest: ModuleNotFoundError: No module named 'pytest'" in str(info.value)


def test_a_marker_on_the_patch_level_is_decided_for_a_recent_patch_and_said(tmp_path):
    """Lambda's python3.11 is 3.11.x with a recent x, not 3.11.0: a lock that forks on the patch level
    gets the recent branch, and the build says that this choice was made."""
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        "dependencies = [\"six==1.16.0; python_full_version < '3.11.4'\", "
        "\"six==1.17.0; python_full_version >= '3.11.4'\", \"attrs; python_full_version >= '3.11.2'\"]\n"
        "[tool.uv]\npackage = false\n"
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    result = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    versions = {p.name: p.version for p in result.packages}
    assert versions["six"] == "1.17.0" and "attrs" in versions
    assert any("picks by the runtime's patch level" in w and "six" in w for w in result.warnings)
    other = BasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=False).run()
    assert not any("patch level" in w for w in other.warnings)  # on 3.12 every patch gets the same


def test_a_pip_project_resolved_at_build_time_says_which_packages_are_open(tmp_path):
    """Unpinned requirements are resolved when the layer is built: the same inputs (fingerprint) can give
    another layer after a release, and the cache keeps the first. Not an error, but said; a compiled
    requirements.txt (every package pinned) says nothing."""
    loose = requirements_project(tmp_path / "loose", "requests==2.34.2")  # its dependencies are open
    result = BasedLambdaLayerLocalBuilder(loose, python="3.12", cache_dir=False).run()
    (warning,) = [w for w in result.warnings if "does not pin every package" in w]
    assert "certifi" in warning and "urllib3" in warning and "requests," not in warning
    assert "uv pip compile" in warning
    pinned = requirements_project(tmp_path / "pinned", *(f"{p.name}=={p.version}" for p in result.packages))
    again = BasedLambdaLayerLocalBuilder(pinned, python="3.12", cache_dir=False).run()
    assert not [w for w in again.warnings if "does not pin" in w]
