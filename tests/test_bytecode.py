"""Bytecode in the layer: PEP 552 hash-based .pyc for the target's Python, naming Lambda's paths,
the same bytes from any build folder, and loaded from a read-only tree without compiling."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, UVBasedLambdaLayerLocalBuilder

pytestmark = pytest.mark.network

#: This machine's own Python: a target whose interpreter is always here.
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag  # e.g. cpython-311


def pyc_files(python_dir: Path) -> list[Path]:
    return sorted(python_dir.rglob("*.pyc"))


def test_the_layer_carries_hash_based_bytecode_naming_lambdas_paths(project_copy):
    result = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python=PY).run()
    python = result.python_dir
    sources = [p for p in python.rglob("*.py") if "tests" not in p.relative_to(python).parts]
    compiled = pyc_files(python)
    assert compiled and all(p.name.endswith(f".{TAG}.pyc") for p in compiled)
    missing = [s for s in sources if not (s.parent / "__pycache__" / f"{s.stem}.{TAG}.pyc").is_file()]
    assert not missing  # every module of the layer has its bytecode
    for pyc in compiled[:50]:
        data = pyc.read_bytes()
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
        code = marshal.loads(data[16:])
        relative = pyc.parent.parent.relative_to(python) / f"{pyc.name.split('.')[0]}.py"
        assert code.co_filename == f"/opt/python/{relative.as_posix()}"
    assert result.manifest["bytecode"]["included"] and result.manifest["bytecode"]["python"].startswith(PY)


def test_checked_hash_is_an_option(project_copy):
    result = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python=PY, invalidation="checked-hash").run()
    data = pyc_files(result.python_dir)[0].read_bytes()
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked against the source


def test_two_builds_in_two_folders_give_the_same_zip(project_copy, tmp_path):
    one = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app", "a"), python=PY, cache_dir=False).run()
    two = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app", "deeper/b"), python=PY, cache_dir=False).run()
    assert pyc_files(one.python_dir)
    assert one.layer_zip.read_bytes() == two.layer_zip.read_bytes()


def test_a_read_only_layer_loads_its_modules_from_the_shipped_bytecode(project_copy, tmp_path):
    result = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python=PY).run()
    opt = tmp_path / "opt" / "python"
    with zipfile.ZipFile(result.layer_zip) as archive:
        archive.extractall(tmp_path / "opt")
    for path in [opt, *opt.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    code = f"import sys; sys.path.insert(0, {str(opt)!r}); import pydantic, orjson, annotated_types"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-v", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    loaded = [line for line in done.stderr.splitlines() if line.startswith("# code object from") and str(opt) in line]
    assert loaded, done.stderr[-2000:]
    compiled_here = [line for line in loaded if line.rstrip().endswith(".py")]
    assert not compiled_here  # nothing of the layer was compiled at import
    assert any("pydantic/__pycache__/" in line for line in loaded)


def test_no_interpreter_builds_without_bytecode_and_says_so(project_copy, monkeypatch):
    monkeypatch.setenv("CDK_LAYER_PYTHON_3_14", "/nonexistent/python3.14")
    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", str(project_copy("uv_app")), "--python", "3.14", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bytecode"]["included"] is False and "CDK_LAYER_PYTHON_3_14" in result["bytecode"]["reason"]
    assert any("no CPython 3.14 here, so no bytecode" in w for w in result["warnings"])
    assert "WARNING: no CPython 3.14 here" in done.stderr
    with zipfile.ZipFile(result["layer_zip"]) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]


def test_bytecode_false_ships_none_and_is_another_layer(project_copy):
    project = project_copy("uv_app")
    with_bytecode = UVBasedLambdaLayerLocalBuilder(project, python=PY)
    without = UVBasedLambdaLayerLocalBuilder(project, python=PY, bytecode=False)
    assert with_bytecode.fingerprint != without.fingerprint
    result = without.run()
    assert not pyc_files(result.python_dir) and result.manifest["bytecode"]["included"] is False


def test_a_host_interpreter_of_the_target_version_is_used_when_named(project_copy, tmp_path, monkeypatch):
    """CDK_LAYER_PYTHON_X_Y names an interpreter (here: this one, as if installed elsewhere)."""
    from cdk_lambda_layer.plan.interpreter import find_interpreter

    other = "3.12" if PY != "3.12" else "3.13"
    found = find_interpreter(other)
    if found is None:
        pytest.skip(f"no CPython {other} on this machine to name")
    named = tmp_path / "elsewhere" / f"python{other}"  # as if installed somewhere only the variable names
    named.parent.mkdir()
    named.symlink_to(found.path)
    monkeypatch.setenv(f"CDK_LAYER_PYTHON_{other.replace('.', '_')}", str(named))
    result = BasedLambdaLayerLocalBuilder(project_copy("uv_app"), python=other, cache_dir=False).run()
    tag = f"cpython-{other.replace('.', '')}"
    assert result.manifest["bytecode"]["python"].startswith(other)
    assert all(p.name.endswith(f".{tag}.pyc") for p in pyc_files(result.python_dir))
    assert result.manifest["import_check"]["ran"]


def test_a_layer_cached_without_bytecode_is_built_again_once_the_interpreter_is_here(project_copy, monkeypatch):
    """bytecode="auto" on a machine without the target's Python caches a layer without .pyc; once that
    Python is installed, the next build (same fingerprint) builds it again with bytecode, no prune needed."""
    project = project_copy("uv_app")
    variable = f"CDK_LAYER_PYTHON_{PY.replace('.', '_')}"
    monkeypatch.setenv(variable, "/nonexistent/python")
    first = UVBasedLambdaLayerLocalBuilder(project, python=PY).run()
    assert not first.manifest["bytecode"]["included"] and not pyc_files(first.python_dir)
    assert UVBasedLambdaLayerLocalBuilder(project, python=PY).run().cached  # nothing changed: a hit
    monkeypatch.delenv(variable)
    upgraded = UVBasedLambdaLayerLocalBuilder(project, python=PY).run()
    assert upgraded.fingerprint == first.fingerprint and not upgraded.cached
    assert upgraded.manifest["bytecode"]["included"] and pyc_files(upgraded.python_dir)
    assert upgraded.manifest["import_check"]["ran"]
    again = UVBasedLambdaLayerLocalBuilder(project, python=PY).run()
    assert again.cached and pyc_files(again.python_dir)  # the better layer replaced the cached one
