"""Real layer builds: real uv, Poetry and pip, real PyPI packages, real wheels checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import synth_layer
from cli_helpers import cli

from cdk_lambda_layer import (
    BasedLambdaLayerLocalBuilder,
    LayerTooLargeError,
    NoWheelError,
    PipBasedLambdaLayerLocalBuilder,
    PoetryBasedLambdaLayerLocalBuilder,
    StaleLockError,
    ToolNotFoundError,
    UVBasedLambdaLayerLocalBuilder,
)
from cdk_lambda_layer.core.elf import elf_machine, native_files

pytestmark = pytest.mark.network


def names(result):
    return {p.name.lower().replace("_", "-") for p in result.packages}


def zip_names(result):
    with zipfile.ZipFile(result.layer_zip) as archive:
        return archive.namelist()


def test_uv_layer_with_binary_dependencies_imports_on_python(project_copy):
    # python3.11 x86_64 is this machine's own interpreter: the layer must import here.
    project = project_copy("uv_app")
    result = UVBasedLambdaLayerLocalBuilder(project, python="3.11", architecture="x86_64").run()
    assert names(result) == {
        "annotated-types",
        "orjson",
        "pydantic",
        "pydantic-core",
        "typing-extensions",
        "typing-inspection",
    }
    entries = zip_names(result)
    assert all(name.startswith("python/") for name in entries)
    assert not [n for n in entries if n.endswith(".pyc") and ".cpython-311." not in n]  # only the target's bytecode
    assert any(n.startswith("python/pydantic_core-") and n.endswith(".dist-info/METADATA") for n in entries)
    assert {elf_machine(p) for p in native_files(result.python_dir)} == {62}
    code = "import pydantic, orjson; print(pydantic.BaseModel.__name__, orjson.dumps({'a': 1}).decode())"
    script = f"import sys; sys.path.insert(0, {str(result.python_dir)!r}); {code}"
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == 'BaseModel {"a":1}'


def test_arm64_layer_built_on_x86_64_holds_aarch64_code(project_copy):
    project = project_copy("uv_numpy")
    result = UVBasedLambdaLayerLocalBuilder(project, python="3.12", architecture="arm64").run()
    assert names(result) == {"numpy"}
    machines = {elf_machine(p) for p in native_files(result.python_dir)}
    assert machines == {183}, machines  # EM_AARCH64
    assert result.manifest["target"] == {
        "runtime": "python3.12",
        "python": "3.12",
        "architecture": "arm64",
        "os": "Amazon Linux 2023",
        "glibc": "2.34",
    }


def test_python311_refuses_numpy_with_only_manylinux_2_28_wheels(project_copy):
    project = project_copy("uv_numpy")
    with pytest.raises(NoWheelError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python="3.11").run()
    message = str(info.value)
    assert info.value.package == "numpy"
    words_expected = (
        "numpy 2.4.",
        "only wheels for glibc 2.27 or newer",
        "python3.11 runs on Amazon Linux 2 with glibc 2.26",
        "a source distribution exists",
        "python3.12+",
        "build='container'",
    )
    for words in words_expected:
        assert words in message, message
    assert not (project / "build" / "lambda" / "layer").exists()  # nothing half-built published


def test_uv_dev_group_left_out_and_chosen_groups_and_extras_included(project_copy):
    project = project_copy("uv_app")
    plain = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert not names(plain) & {"pytest", "six", "click", "pluggy", "iniconfig"}
    chosen = UVBasedLambdaLayerLocalBuilder(project, python="3.12", groups=["extra-tools"], extras=["cli"]).run()
    assert {"six", "click"} <= names(chosen)
    assert "pytest" not in names(chosen)
    assert chosen.fingerprint != plain.fingerprint


def test_poetry_main_group_only_by_default(project_copy):
    project = project_copy("poetry_app")
    result = PoetryBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert {"requests", "orjson", "urllib3", "certifi", "idna", "charset-normalizer"} == names(result)
    with_dev = PoetryBasedLambdaLayerLocalBuilder(project, python="3.12", groups=["dev"], extras=["cli"]).run()
    assert {"pytest", "click"} <= names(with_dev)
    assert result.manifest["tool"]["name"] == "poetry"
    assert result.manifest["tool"]["version"].startswith("2.")


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_pip_project_with_requirements_txt(project_copy, installer):
    project = project_copy("pip_requirements")
    result = PipBasedLambdaLayerLocalBuilder(project, python="3.10", installer=installer).run()
    assert {"requests", "pydantic-core", "urllib3", "typing-extensions"} <= names(result)
    assert result.manifest["installer"]["name"] == installer
    assert {elf_machine(p) for p in native_files(result.python_dir)} == {62}


def test_pip_project_without_requirements_uses_pyproject_dependencies(project_copy):
    project = project_copy("pip_pyproject")
    result = PipBasedLambdaLayerLocalBuilder(project, python="3.13").run()
    assert names(result) == {"six", "attrs"}
    more = PipBasedLambdaLayerLocalBuilder(project, python="3.13", extras=["cli"], groups=["dev"]).run()
    assert {"six", "attrs", "click", "pytest"} <= names(more)


def test_two_builds_give_byte_identical_zips(project_copy):
    # cache_dir=False: two real builds, not a build and a cache hit
    first = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app", "one"), python="3.12", cache_dir=False).run()
    second = UVBasedLambdaLayerLocalBuilder(
        project_copy("uv_app", "two/elsewhere"), python="3.12", cache_dir=False
    ).run()
    assert first.layer_zip.read_bytes() == second.layer_zip.read_bytes()
    assert first.fingerprint == second.fingerprint
    assert first.layout.manifest.read_text() == second.layout.manifest.read_text()


def test_excluded_packages_are_not_in_the_layer(project_copy):
    project = project_copy("uv_app")
    result = UVBasedLambdaLayerLocalBuilder(
        project, python="3.12", exclude=["orjson"], provided=["Pydantic_Core"]
    ).run()
    assert not names(result) & {"pydantic-core", "orjson"}
    assert not [n for n in zip_names(result) if "pydantic_core" in n or "orjson" in n]
    assert result.manifest["exclude"] == ["orjson"]
    assert result.manifest["provided"] == ["pydantic-core"]


def test_manifest_records_fingerprint_tools_and_packages(project_copy):
    project = project_copy("uv_app")
    builder = UVBasedLambdaLayerLocalBuilder(project, python="3.12")
    result = builder.run()
    manifest = json.loads((project / "build/lambda/layer/manifest.json").read_text())
    assert manifest["fingerprint"] == builder.fingerprint == result.fingerprint
    assert manifest["tool"]["name"] == manifest["installer"]["name"] == "uv"
    assert {p["name"] for p in manifest["packages"]} >= {"pydantic", "orjson"}
    assert manifest["sizes"]["zipped_bytes"] == result.layer_zip.stat().st_size
    assert str(project) not in json.dumps(manifest)  # no absolute paths
    repo = project / "build/lambda/layer/repo"
    assert sorted(p.name for p in repo.iterdir()) == ["project", "pylock.toml", "requirements.txt"]
    assert sorted(p.name for p in (repo / "project").iterdir()) == ["pyproject.toml", "uv.lock"]


def test_only_the_build_folder_is_written(project_copy):
    project = project_copy("uv_app")
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()  # rebuild replaces it
    after = {p for p in project.rglob("*") if p.is_file() and "build" not in p.relative_to(project).parts}
    assert after == set(before)
    assert all(p.read_bytes() == data for p, data in before.items())
    assert sorted(p.name for p in (project / "build/lambda").iterdir()) == ["layer"]


@pytest.mark.network
def test_a_requirements_include_outside_the_project_is_not_copied(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "base.txt").write_text("six==1.17.0\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (project / "requirements.txt").write_text("-r ../elsewhere/base.txt\n")
    done = cli(str(project), "--python", "3.12", "--no-cache")
    assert done.returncode == 0, done.stderr
    copied = sorted(
        p.relative_to(project / "build/lambda/layer/repo/project").as_posix()
        for p in (project / "build/lambda/layer/repo/project").rglob("*")
        if p.is_file()
    )
    assert copied == ["pyproject.toml", "requirements.txt"]


@pytest.mark.parametrize(
    ("fixture", "builder", "lock", "advice", "can_override"),
    [
        ("uv_app", UVBasedLambdaLayerLocalBuilder, "uv.lock", "uv lock", True),
        # poetry export itself refuses a stale lock, so locked=False cannot help there
        ("poetry_app", PoetryBasedLambdaLayerLocalBuilder, "poetry.lock", "poetry lock", False),
    ],
)
def test_stale_lock_is_an_error(project_copy, fixture, builder, lock, advice, can_override):
    project = project_copy(fixture)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
    with pytest.raises(StaleLockError) as info:
        builder(project, python="3.12").run()
    assert f"{project / lock} is out of date" in str(info.value)
    assert f"`{advice}`" in str(info.value)
    if can_override:
        assert builder(project, python="3.12", locked=False).run().layer_zip.exists()
    else:
        with pytest.raises(StaleLockError):
            builder(project, python="3.12", locked=False).run()


@pytest.mark.network
def test_a_stale_lock_is_refused_even_after_a_no_locked_build_was_cached(project_copy, tmp_path):
    project = project_copy("uv_app")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
    assert cli(str(project), "--python", "3.12", "--no-locked").returncode == 0  # cached, as asked
    locked = cli(str(project), "--python", "3.12")
    assert locked.returncode == 2, locked.stderr
    assert "uv.lock is out of date" in locked.stderr and "taken from the layer cache" not in locked.stderr
    with pytest.raises(Exception) as info:  # and through the construct, which always wants a fresh lock
        synth_layer(project, outdir=tmp_path / "out", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert "out of date" in str(info.value)
    assert StaleLockError.exit_code == 2


def test_missing_poetry_says_how_to_install_it(project_copy, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("cdk_lambda_layer.core.tools._beside_interpreter", lambda name: None)
    with pytest.raises(ToolNotFoundError) as info:
        BasedLambdaLayerLocalBuilder(project_copy("poetry_app"), python="3.12").run()
    assert "Poetry is not installed" in str(info.value)
    assert "poetry-plugin-export" in str(info.value)


def test_too_old_tool_is_refused(monkeypatch, project_copy, tmp_path):
    fake = tmp_path / "poetry"
    fake.write_text("#!/bin/sh\necho 'Poetry (version 1.4.2)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ToolNotFoundError) as info:
        PoetryBasedLambdaLayerLocalBuilder(project_copy("poetry_app"), python="3.12").run()
    assert "poetry 1.4.2" in str(info.value) and "2.0.0 or newer" in str(info.value)


def test_oversize_layer_is_refused_and_not_published(project_copy):
    project = project_copy("uv_app")
    with pytest.raises(LayerTooLargeError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", max_unzipped_bytes=1_000_000).run()
    assert "Largest packages: pydantic_core" in str(info.value)
    assert not (project / "build/lambda/layer").exists()


def test_layer_files_share_no_inode_with_the_installer_cache(project_copy):
    # uv hard-links from its cache by default; an in-place edit of a layer file (in cdk.out,
    # say) would then corrupt uv's cache for every later build. The layer must own its files.
    result = UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", cache_dir=False).run()
    shared = [p for p in result.python_dir.rglob("*") if p.is_file() and p.stat().st_nlink > 1]
    assert shared == []
