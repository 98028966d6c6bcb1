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

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, NoWheelError, VerificationError
from cdk_lambda_layer.project.pyproject import tomllib

pytestmark = pytest.mark.network
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def interpreter(version: str) -> str | None:
    """A CPython ``version`` on this machine (PATH or pyenv's versions), to run the import check."""
    if version == PY:
        return sys.executable
    candidates = [shutil.which(f"python{version}")] + [
        str(p) for p in sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python{version}"))
    ]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "1"], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


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
    project.mkdir()
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
    broken = tmp_path / "acme-broken"
    (broken / "src" / "acme_broken").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(
        '[project]\nname = "acme-broken"\nversion = "1.0"\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    (broken / "src" / "acme_broken" / "__init__.py").write_text("import acme_missing_dependency\n")
    project = requirements_project(tmp_path, "../acme-broken", "six==1.17.0")
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(project, python=PY, cache_dir=False).run()
    message = str(info.value)
    assert "acme_broken: ModuleNotFoundError: No module named 'acme_missing_dependency'" in message
    assert "import_check=False" in message
    done = cli(str(project), "--python", PY, "--no-cache", "--no-import-check", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["import_check"]["ran"] is False
