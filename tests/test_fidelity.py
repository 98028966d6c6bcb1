"""Fidelity: every layer that builds imports on its runtime, and every refusal is right and explained.

Real tools, real wheels from PyPI: markers are evaluated for the target whatever the installer,
pip installs the locked versions, a manylinux_2_24-only wheel is taken for Amazon Linux 2,
refusals from Poetry and forked uv locks name every package and why, and ``auto`` takes them to
the container; the import check catches a module that cannot import.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from package_helpers import hatch_package

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, NoWheelError, VerificationError
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.project.pyproject import tomllib

pytestmark = pytest.mark.network
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def interpreter(version: str) -> str | None:
    """A CPython ``version`` on this machine, found the way the builders find one, to run the import check."""
    from cdk_lambda_layer.plan.interpreter import find_interpreter

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


def locked_uv_project(tmp_path: Path, dependencies: str, uv: str = "package = false\n") -> Path:
    """A uv project ``svc`` (``dependencies``: the TOML list's text; ``uv``: its [tool.uv] lines), locked."""
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0"\nrequires-python = ">=3.10"\n'
        f"dependencies = {dependencies}\n[tool.uv]\n{uv}"
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    return project


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
    from cdk_lambda_layer.verify.layer import verify

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
    from cdk_lambda_layer.plan.export import export_lock
    from cdk_lambda_layer.plan.wheels import make_plan
    from cdk_lambda_layer.project.load import load_project

    project = locked_uv_project(tmp_path, '["six==1.17.0", "idna"]', 'package = false\nno-binary-package = ["six"]\n')
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


def test_uv_config_outside_the_project_cannot_steer_a_pip_project(tmp_path, monkeypatch):
    """A uv.toml in a folder above the project, or one named by UV_CONFIG_FILE (or the user's), would
    change what uv resolves (here: drop a pinned package, pick the lowest versions) with the same
    fingerprint. A pip project's uv settings are its own uv.toml, which the fingerprint holds."""
    project = requirements_project(tmp_path / "outer" / "repo", "six==1.17.0", "attrs>=22")
    clean = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    steering = tmp_path / "steer.toml"
    steering.write_text('[pip]\nno-emit-package = ["six"]\n')
    monkeypatch.setenv("UV_CONFIG_FILE", str(steering))
    (tmp_path / "outer" / "uv.toml").write_text('[pip]\nresolution = "lowest"\n')
    steered = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert {p.name: p.version for p in steered.packages} == {p.name: p.version for p in clean.packages}
    (project / "uv.toml").write_text('[pip]\nresolution = "lowest"\n')  # the project's own: applies, and counts
    own = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert own.fingerprint != clean.fingerprint
    assert {p.name: p.version for p in own.packages}["attrs"] == "22.1.0"


def _tampered_index(tmp_path: Path, pins: list[str]) -> str:
    """A PEP 503 index serving, for each pin, a wheel of the same name and version with other content."""
    downloads, simple = tmp_path / "dl", tmp_path / "idx" / "simple"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(downloads), *pins], check=True
    )
    for wheel in downloads.glob("*.whl"):
        files = {i.filename: z for z in [zipfile.ZipFile(wheel)] for i in z.infolist()}
        data = {n: z.read(n) for n, z in files.items()}
        module = next(n for n in data if n.endswith(".py"))
        data[module] += b"\nTAMPERED = True\n"
        record = next(n for n in data if n.endswith(".dist-info/RECORD"))
        rows = []
        for row in csv.reader(io.StringIO(data[record].decode())):
            if row and row[0] in data and row[0] != record:
                digest = base64.urlsafe_b64encode(hashlib.sha256(data[row[0]]).digest()).rstrip(b"=").decode()
                row = [row[0], f"sha256={digest}", str(len(data[row[0]]))]
            rows.append(row)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        data[record] = out.getvalue().encode()
        project = wheel.name.split("-")[0].lower()
        (simple / project).mkdir(parents=True)
        target = simple / project / wheel.name
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for n, content in data.items():
                z.writestr(n, content)
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
        (simple / project / "index.html").write_text(f'<a href="{target.as_uri()}#sha256={sha}">{wheel.name}</a>')
    return simple.as_uri()


def test_hashes_in_requirements_are_the_only_files_allowed(tmp_path):
    """requirements.txt pins files by hash; an index named next to them serves other files under the same
    names and versions. `uv pip install -r` refuses them (hash mismatch): so must the build, before
    anything is installed, whatever the resolution recorded."""
    from cdk_lambda_layer import PackageIndexError

    pins = ["six==1.17.0", "attrs==26.1.0"]
    index = _tampered_index(tmp_path, pins)
    hashed = subprocess.run(
        [find_uv(), "pip", "compile", "-", "--generate-hashes", "--no-header", "-q", "--python-version", "3.11"],
        input="\n".join(pins),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    project = requirements_project(tmp_path / "svc", f"--extra-index-url {index}", hashed)
    with pytest.raises(PackageIndexError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert "serves other files than requirements.txt pins by hash" in str(info.value)
    assert not (project / "build" / "lambda" / "layer").exists()
    clean = requirements_project(tmp_path / "clean", hashed)  # the same hashes, PyPI's files: fine
    result = BasedLambdaLayerLocalBuilder(clean, python="3.11", cache_dir=False).run()
    assert "TAMPERED" not in (result.python_dir / "six.py").read_text()
    assert not [w for w in result.warnings if "does not pin" in w]  # a hashed requirements file pins it all


@pytest.mark.parametrize("tool", ["pip", "poetry"])
def test_include_project_puts_a_pip_or_poetry_project_into_its_layer(tmp_path, tool):
    """uv export names the project when asked; pip's requirements and poetry export never do: the
    builder adds it, built from its folder like any local package (and says nothing else changed)."""
    if tool == "pip":
        project = hatch_package(tmp_path / "svc", "svc", "VALUE = 1\n")
        (project / "requirements.txt").write_text("six==1.17.0\n")
        module = project / "build" / "lambda" / "layer" / "artifacts" / "python" / "svc" / "__init__.py"
    else:
        root = Path(shutil.copytree(Path(__file__).parent / "repos" / "poetry_path", tmp_path / "repo"))
        project = root / "service"
        pyproject = project / "pyproject.toml"
        pyproject.write_text(
            pyproject.read_text().replace("package-mode = false", 'packages = [{ include = "handler.py" }]')
            + '\n[build-system]\nrequires = ["poetry-core>=2"]\nbuild-backend = "poetry.core.masonry.api"\n'
        )
        module = project / "build" / "lambda" / "layer" / "artifacts" / "python" / "handler.py"
    result = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False, include_project=True).run()
    assert module.is_file(), sorted(p.name for p in result.python_dir.iterdir())
    without = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert {p.name for p in result.packages} - {p.name for p in without.packages} == {result.manifest["project"]}


def test_a_module_deleted_from_a_setuptools_library_leaves_the_layer(tmp_path):
    """setuptools packs whatever it left in the library's build/lib into the next wheel (and build/ is
    not part of the fingerprint): such libraries are built sdist first, then the wheel from it."""
    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    pyproject = root / "libs" / "ledger" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text()
        .replace('requires = ["hatchling"]', 'requires = ["setuptools>=61"]')
        .replace('"hatchling.build"', '"setuptools.build_meta"')
    )
    old = root / "libs" / "ledger" / "src" / "ledger" / "old.py"
    old.write_text("GONE = True\n")
    first = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False).run()
    assert (first.python_dir / "ledger" / "old.py").is_file()
    old.unlink()
    after = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False).run()
    assert not (after.python_dir / "ledger" / "old.py").exists()


def test_what_the_import_check_writes_into_the_layer_is_removed_or_refused(tmp_path):
    """A module that writes next to itself on import (a generated table, a cache) would make two builds
    of the same inputs differ, and on Lambda's read-only /opt it would not happen: new files are removed
    and said; a changed or deleted file of the layer is refused."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    writer = "import pathlib, time\n(pathlib.Path(__file__).parent / '_tables.py').write_text(repr(time.time()))\n"
    project = requirements_project(tmp_path / "writes", "./lib")
    hatch_package(project / "lib", "writer", writer)
    one = BasedLambdaLayerLocalBuilder(project, python=python, cache_dir=False).run()
    assert not (one.python_dir / "writer" / "_tables.py").exists()
    assert any("wrote into it (writer/_tables.py): removed again" in w for w in one.warnings)
    two = BasedLambdaLayerLocalBuilder(project, python=python, cache_dir=False, build_dir=tmp_path / "b").run()
    assert one.layer_zip.read_bytes() == two.layer_zip.read_bytes()
    changer = "import pathlib\n(pathlib.Path(__file__).parent / '__init__.py').write_text('# changed')\n"
    other = requirements_project(tmp_path / "changes", "./lib")
    hatch_package(other / "lib", "changer", changer)
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(other, python=python, cache_dir=False).run()
    assert "changed or deleted files of the layer: changer/__init__.py" in str(info.value)


def hold_first_walk_until(monkeypatch, seen: Callable[[Path], bool]) -> list[bool]:
    """Hold the build's first walk of the layer (made beside the import check) until ``seen(python folder)``,
    so that it sees what an import does; each walk's ``seen`` is recorded in the list returned."""
    import time

    from cdk_lambda_layer.builders import host_steps

    walks: list[bool] = []
    real = host_steps.HostSteps._walk

    def late_walk(self, work):
        if not walks:
            deadline = time.monotonic() + 30
            while not seen(work.python) and time.monotonic() < deadline:
                time.sleep(0.01)
        walks.append(seen(work.python))
        real(self, work)

    monkeypatch.setattr(host_steps.HostSteps, "_walk", late_walk)
    return walks


def test_a_walk_that_saw_what_an_import_wrote_is_made_again(tmp_path, monkeypatch):
    """The build walks the layer while the import check runs; a walk that saw a file an import wrote (and the
    check then removed) is not the layer's: it is made again, and the zip and the checks are done on the
    layer as it is after the check, without the file."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    writer = "import pathlib, time\n(pathlib.Path(__file__).parent / '_tables.py').write_text('T = 1')\ntime.sleep(1)\n"
    project = requirements_project(tmp_path / "writes", "./lib")
    hatch_package(project / "lib", "writer", writer)
    walks = hold_first_walk_until(monkeypatch, lambda python: (python / "writer" / "_tables.py").exists())
    built = BasedLambdaLayerLocalBuilder(project, python=python, cache_dir=False).run()
    assert walks == [True, False]  # the walk that saw it was made again
    assert not (built.python_dir / "writer" / "_tables.py").exists()
    with zipfile.ZipFile(built.layer_zip) as archive:
        assert "python/writer/_tables.py" not in archive.namelist()
        assert "python/writer/__init__.py" in archive.namelist()
    assert any("wrote into it (writer/_tables.py): removed again" in w for w in built.warnings)


def test_a_link_an_import_plants_while_the_layer_is_walked_is_removed_not_refused(tmp_path, monkeypatch):
    """A link (or fifo) that package code makes in the layer while it is imported is the import check's to
    remove, as any file it adds: the walk made beside the check that saw it does not fail the build over
    it, and the layer is walked again after the check, without it."""
    planter = (
        "import os, pathlib, time\n"
        "os.symlink('/etc/hostname', pathlib.Path(__file__).parent.parent / 'planted')\n"
        "time.sleep(1)\n"
    )
    project = requirements_project(tmp_path / "plants", "./lib")
    hatch_package(project / "lib", "planter", planter)
    walks = hold_first_walk_until(monkeypatch, lambda python: os.path.lexists(python / "planted"))
    built = BasedLambdaLayerLocalBuilder(project, python=PY, cache_dir=False).run()
    assert walks == [True, False]
    assert not os.path.lexists(built.python_dir / "planted")
    with zipfile.ZipFile(built.layer_zip) as archive:
        assert "python/planted" not in archive.namelist()
        assert "python/planter/__init__.py" in archive.namelist()
    assert any("(planted): removed again" in w for w in built.warnings)


def test_a_folder_an_import_swaps_for_a_link_is_refused_though_the_walk_beside_it_saw_a_folder(tmp_path, monkeypatch):
    """The layer is walked beside the import check; a folder (an empty one an installer left) that package code
    replaces by a link to a host folder changes no file the walk saw, so the import check itself must say
    so: the build is refused, not published with the link in it."""
    from cdk_lambda_layer.builders import host_steps

    swapper = (
        "import os, pathlib\nsite = pathlib.Path(__file__).parent.parent\n"
        "os.rmdir(site / 'emptydir')\nos.symlink('/etc', site / 'emptydir')\n"
    )
    project = requirements_project(tmp_path / "swaps", "./lib")
    hatch_package(project / "lib", "swapper", swapper)
    finish = host_steps.HostSteps.finish

    def finish_with_an_empty_folder(self, work):
        outcome = finish(self, work)
        (work.python / "emptydir").mkdir()
        return outcome

    monkeypatch.setattr(host_steps.HostSteps, "finish", finish_with_an_empty_folder)
    with pytest.raises(VerificationError, match="changed or deleted files of the layer: emptydir"):
        BasedLambdaLayerLocalBuilder(project, python=PY, cache_dir=False, build_dir=tmp_path / "out").run()
    assert not os.path.lexists(tmp_path / "out" / "lambda" / "layer" / "artifacts" / "python" / "emptydir")


def test_source_only_settings_read_as_their_tools_read_them(project_copy):
    """pip applies --no-binary/--only-binary in order (:all: with exceptions); Poetry reads
    installer.no-binary from poetry.toml. Either way the plan never takes those packages' wheels."""
    from cdk_lambda_layer.project.settings import poetry_source_only, requirements_source_only

    assert requirements_source_only(["--no-binary :all:\n--only-binary six\n"]) == {"*", "!six"}
    assert requirements_source_only(["--no-binary=attrs,six\n", "--only-binary six\n"]) == {"attrs"}
    assert requirements_source_only(["--no-binary :all:\n--no-binary :none:\n"]) == set()
    project = project_copy("poetry_app")
    (project / "poetry.toml").write_text('[installer]\nno-binary = ["requests"]\n')
    assert poetry_source_only(project) == {"requests"}
    with pytest.raises(NoWheelError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=False).run()
    assert info.value.packages == ("requests",) and "wants it built from source" in str(info.value)


def test_two_distributions_writing_the_same_files_are_refused(tmp_path):
    """pyjwt and jwt both install jwt/: together the layer holds a mix of both; refused, naming them."""
    project = requirements_project(
        tmp_path, "pyjwt==2.10.1", "jwt==1.3.1", "cryptography==46.0.3", "cffi==2.0.0", "pycparser==2.23"
    )
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.12", cache_dir=False, import_check=False).run()
    message = str(info.value)
    assert "Two distributions install different files at the same paths (jwt/" in message
    assert "PyJWT and jwt" in message or "jwt and PyJWT" in message


def test_a_local_package_the_fingerprint_did_not_see_is_refused(tmp_path):
    """A library's setup.py can require another folder (install_requires with a file: URL), which no file
    this library reads at construct time names: the resolver would install it unhashed, so a later edit
    of it would be served stale. The build refuses instead, naming it."""
    core = hatch_package(tmp_path / "libs" / "core", "core", "VALUE = 1\n")
    acme = tmp_path / "libs" / "acme"
    (acme / "acme").mkdir(parents=True)
    (acme / "acme" / "__init__.py").write_text("")
    (acme / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name='acme', version='1.0', packages=['acme'], install_requires=['core @ {core.as_uri()}'])\n"
    )
    project = requirements_project(tmp_path / "svc", "../../libs/acme")
    from cdk_lambda_layer import ProjectError

    with pytest.raises(ProjectError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert "installs local packages the fingerprint does not cover" in str(info.value)
    assert "libs/core" in str(info.value)


def test_pip_installs_the_locked_version_not_the_newest(tmp_path):
    """The lock pins six 1.16.0 although 1.17.0 is on the index (and idna below its newest): with
    installer="pip" the layer still holds exactly those, since pip only ever gets exact pins."""
    project = locked_uv_project(tmp_path, '["six<1.17", "idna<3.10"]')
    result = BasedLambdaLayerLocalBuilder(project, python="3.12", installer="pip", cache_dir=False).run()
    versions = {p.name: p.version for p in result.packages}
    assert versions["six"] == "1.16.0" and versions["idna"] == "3.9"


def test_each_refusal_reason_names_what_is_missing():
    """The reasons a version's wheels do not fit, from the wheel file names alone, most specific first."""
    from cdk_lambda_layer import LambdaTarget
    from cdk_lambda_layer.plan.wheels import wheel_mismatch

    py314, arm = LambdaTarget(python="3.14"), LambdaTarget(python="3.12", architecture="arm64")
    cp313_only = ["orjson-3.10.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    assert wheel_mismatch(cp313_only, py314) == "no wheel for cp314 (its Linux x86_64 wheels are for cp313)"
    x86_only = ["orjson-3.10.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
    assert wheel_mismatch(x86_only, arm) == "no Linux wheel for aarch64 (only x86_64)"
    macos = ["x-1.0-cp312-cp312-macosx_11_0_arm64.whl", "x-1.0-cp312-cp312-win_amd64.whl"]
    assert wheel_mismatch(macos, arm) == "no wheel for Linux with glibc (only Windows, macOS)"
    assert wheel_mismatch([], arm, sdist=True) == "it publishes only a source distribution"


@pytest.mark.docker
def test_auto_takes_a_forked_uv_lock_refusal_to_the_container(tmp_path):
    """uv.lock forks docopt by Python version, and the version for 3.11 has no wheel at all: explained
    from the lock, and auto builds it from its sdist in the image, without a failed local install."""
    from docker_helpers import standin_image

    forked = "[\"docopt==0.6.2; python_version < '3.12'\", \"docopt==0.6.1; python_version >= '3.12'\"]"
    project = locked_uv_project(tmp_path, forked)
    local = cli(str(project), "--python", "3.11", "--build", "local")
    assert local.returncode == 4 and "docopt 0.6.2: it publishes only a source distribution" in local.stderr
    done = cli(str(project), "--python", "3.11", "--build", "auto", "--image", standin_image(), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["warnings"][0] == "docopt: no wheel for the target; built in the container instead (build=auto)"
    assert {p["name"]: p["version"] for p in result["packages"]} == {"docopt": "0.6.2"}


def test_hashes_on_some_lines_only_are_refused_as_pip_refuses_them(tmp_path):
    """pip's hash-checking mode is all or nothing: one --hash line means every package needs one."""
    from cdk_lambda_layer import ProjectError

    six = "six==1.17.0 --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"
    project = requirements_project(tmp_path, six, "attrs==26.1.0")
    with pytest.raises(ProjectError) as info:
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert "pins some packages by hash (--hash) but not attrs" in str(info.value)
    assert "uv pip compile --generate-hashes" in str(info.value)


def test_a_setuptools_scm_library_gets_its_version_from_git(tmp_path):
    """setuptools-scm reads the version from the repository: such a library is built from its folder
    (an sdist there, the wheel from it), where a copy without .git would fail or fall back."""
    library = tmp_path / "scmlib"
    (library / "scmlib").mkdir(parents=True)
    (library / "scmlib" / "__init__.py").write_text("VALUE = 1\n")
    (library / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61", "setuptools-scm>=8"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "scmlib"\ndynamic = ["version"]\n[tool.setuptools]\npackages = ["scmlib"]\n'
        "[tool.setuptools_scm]\n"
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(library)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"], ["tag", "v1.2.3"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    project = requirements_project(tmp_path / "svc", "../../scmlib")
    result = BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert {p.name: p.version for p in result.packages}["scmlib"] == "1.2.3"


def test_a_local_package_built_as_another_version_than_the_lock_says_is_refused(tmp_path):
    """The lock records the workspace library at 7.7.0; its pyproject now says 7.7.1 and the lock was not
    refreshed (built with locked=False): the layer would hold a version nobody locked. Refused, naming both."""
    from cdk_lambda_layer import ProjectError

    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    pyproject = root / "libs" / "ledger" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "7.7.0"', 'version = "7.7.1"'))
    with pytest.raises(ProjectError) as info:
        BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False, locked=False).run()
    assert "built as version 7.7.1, but the lock expects 7.7.0" in str(info.value)


def test_local_packages_build_with_the_projects_uv_settings_not_the_callers_folder(tmp_path, monkeypatch):
    """uv build runs where the lock is: the workspace root's uv.toml (part of the fingerprint) applies to
    the library's build; a uv.toml in the folder the build is started from does not."""
    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    (root / "uv.toml").write_text('build-constraint-dependencies = ["hatchling==1.25.0"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "uv.toml").write_text('build-constraint-dependencies = ["hatchling==1.26.3"]\n')
    monkeypatch.chdir(elsewhere)
    result = BasedLambdaLayerLocalBuilder(root / "services" / "orders", python="3.11", cache_dir=False).run()
    (wheel,) = result.python_dir.glob("ledger-*.dist-info/WHEEL")
    assert "hatchling 1.25.0" in wheel.read_text()


def test_the_machines_index_settings_still_reach_a_pip_projects_resolution(tmp_path, monkeypatch):
    """A pip project is resolved without the user's uv.toml, except where packages come from (a mirror):
    that is handed to uv as its variables."""
    from cdk_lambda_layer.plan.machine_config import index_environment

    config = tmp_path / "config"
    (config / "uv").mkdir(parents=True)
    (config / "uv" / "uv.toml").write_text(
        'index-strategy = "unsafe-best-match"\n[pip]\nresolution = "lowest"\n'
        '[[index]]\nname = "mirror"\nurl = "http://127.0.0.1:9/simple"\ndefault = true\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("UV_DEFAULT_INDEX", raising=False)
    env = index_environment()
    assert env["UV_DEFAULT_INDEX"] == "http://127.0.0.1:9/simple" and env["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    assert "resolution" not in str(env).lower()  # what is resolved stays the project's business
    project = requirements_project(tmp_path / "svc", "six==1.17.0")
    with pytest.raises(Exception) as info:  # the machine's (unreachable) mirror is the one asked
        BasedLambdaLayerLocalBuilder(project, python="3.11", cache_dir=False).run()
    assert "127.0.0.1:9" in str(info.value)
