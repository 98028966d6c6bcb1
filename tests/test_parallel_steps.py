"""Steps on every core and side by side: the bytecode workers write exactly what one process (and
compileall) writes, overlapping the checks and the zip with bytecode and the import check changes no
byte of the layer, and a failure while a side task runs leaves nothing behind."""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.errors import VerificationError
from cdk_lambda_layer.install.bytecode import compile_tree, shares

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def source_tree(folder: Path, count: int = 120) -> Path:
    for i in range(count):
        package = folder / f"pkg{i % 7}" / ("sub" if i % 3 else "")
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{i}.py").write_text(f"VALUE = {i}\n" + "def f(x):\n    return x * 2\n" * (i % 40))
    (folder / "pkg0" / "broken.py").write_text("print 'python 2'\n")
    return folder


def pycs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.pyc"))}


def test_bytecode_on_every_core_writes_what_one_process_and_compileall_write(tmp_path):
    one, many, reference = (source_tree(tmp_path / name) for name in ("one", "many", "reference"))
    first = compile_tree(one, jobs=1)
    second = compile_tree(many, jobs=4)
    compileall.compile_dir(
        str(reference),
        quiet=2,
        force=True,
        stripdir=str(reference),
        prependdir="/opt/python",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    assert pycs(one) == pycs(many) == pycs(reference) and len(pycs(one)) == 120
    assert first["failed"] == second["failed"] == ["pkg0/broken.py"]
    assert first["compiled"] == second["compiled"] == 120 and second["jobs"] == 4


def test_files_are_dealt_by_size_each_once(tmp_path):
    files = []
    for i, size in enumerate([900, 10, 500, 400, 20, 30]):
        path = tmp_path / f"m{i}.py"
        path.write_text("#" * size)
        files.append(path)
    dealt = shares(files, 2)
    assert sorted(p for share in dealt for p in share) == sorted(files)
    sizes = [sum(p.stat().st_size for p in share) for share in dealt]
    assert sorted(sizes) == [930, 930]  # largest first, each to the lighter share


@pytest.mark.network
def test_overlap_and_worker_count_change_no_byte_of_the_layer(project_copy, monkeypatch, tmp_path):
    project = project_copy("uv_app")
    zips = {}
    for overlap, jobs in (("1", ""), ("0", "1"), ("1", "1")):
        monkeypatch.setenv("CDK_LAYER_OVERLAP", overlap)
        monkeypatch.setenv("CDK_LAYER_JOBS", jobs)
        out = tmp_path / f"build-{overlap}-{jobs or 'all'}"
        result = UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False, build_dir=out).run()
        assert result.manifest["bytecode"]["included"] and result.manifest["import_check"]["ran"]
        zips[(overlap, jobs)] = result.layer_zip.read_bytes()
    assert len(set(zips.values())) == 1


@pytest.mark.network
def test_an_import_failure_while_the_zip_is_compressed_beside_it_leaves_nothing(tmp_path):
    from package_helpers import hatch_package

    hatch_package(tmp_path / "broken", "brokenlib", "raise ImportError('needs libfoo.so.1')\n")
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["brokenlib", "idna==3.7"]\n[tool.uv.sources]\nbrokenlib = { path = "../broken" }\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    out = tmp_path / "out"
    with pytest.raises(VerificationError, match=r"(?s)do not import.*brokenlib: ImportError: needs libfoo\.so\.1"):
        UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False, build_dir=out).run()
    left = [p for p in out.rglob("*")] if out.exists() else []
    assert not [p for p in left if ".partial" in p.name or p.name.startswith(".tmp-layer-")]
    assert not (out / "lambda" / "layer" / "layer.zip").exists()


def test_bytecode_workers_env_is_read_as_a_count(monkeypatch):
    from cdk_lambda_layer.builders import parallel

    monkeypatch.setenv("CDK_LAYER_JOBS", "3")
    assert parallel.jobs() == 3
    for value in ("", "0", "many"):
        monkeypatch.setenv("CDK_LAYER_JOBS", value)
        assert parallel.jobs() is None
    monkeypatch.setenv("CDK_LAYER_OVERLAP", "off")
    assert not parallel.overlap()
    monkeypatch.delenv("CDK_LAYER_OVERLAP")
    assert parallel.overlap()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers need fork()")
def test_a_bytecode_run_without_sources_does_nothing(tmp_path):
    assert compile_tree(tmp_path, jobs=2)["compiled"] == 0
    shutil.rmtree(tmp_path)
