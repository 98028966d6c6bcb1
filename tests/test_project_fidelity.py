"""The layer is built as the project declares it, whatever the machine around it says.

Hash pins are enforced on local wheels, and a sha512 pin is accepted as pip accepts it. A pip project's
own [tool.uv] settings apply, while the user's uv.toml does not change the wheels of its local packages.
setuptools libraries build from their own folder (a setup.py reading its requirements file, a
pyproject.toml without build-backend), and a module deleted from one leaves the layer.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from cli_helpers import HOST, cli
from package_helpers import SVC
from package_helpers import unzipped as _unzipped

from cdk_lambda_layer import PipBasedLambdaLayerLocalBuilder


# -- setuptools libraries build from their own folder --------------------------------------------------------
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


# -- the project's uv settings apply, the user's do not ------------------------------------------------------
def test_a_pip_projects_tool_uv_settings_still_apply(tmp_path):
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(SVC + '\n[tool.uv]\nexclude-newer = "2021-01-01T00:00:00Z"\n')
    (project / "requirements.txt").write_text("six\n")
    result = PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    assert {p.name: p.version for p in result.packages}["six"] == "1.15.0"  # what uv resolves there itself


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


# -- hash pins -----------------------------------------------------------------------------------------------
def _six_wheel(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "six==1.17.0", "-d", str(folder)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(folder.glob("six-1.17.0-*.whl"))


def test_a_hash_pin_on_a_local_wheel_is_enforced(tmp_path):
    project = tmp_path / "app"
    wheel = _six_wheel(project / "wheels")
    (project / "pyproject.toml").write_text(SVC)
    (project / "requirements.txt").write_text(f"./wheels/{wheel.name} --hash=sha256:{'0' * 64}\n")
    done = cli("build", str(project), "--python", HOST, "--no-cache")
    assert done.returncode != 0, "a wheel whose bytes are not the pinned hash was installed (pip refuses it)"


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
