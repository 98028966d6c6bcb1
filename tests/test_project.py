"""Reading projects: tool detection from locks, and a clear error for each bad input."""

from __future__ import annotations

import pytest

from cdk_lambda_layer import ProjectError, Tool, load_project

PYPROJECT = '[project]\nname = "demo"\nversion = "0"\ndependencies = ["six"]\n'


def make(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "tool", "lock"),
    [
        ({"uv.lock": ""}, Tool.UV, "uv.lock"),
        ({"poetry.lock": ""}, Tool.POETRY, "poetry.lock"),
        ({"requirements.txt": "six\n"}, Tool.PIP, "requirements.txt"),
        ({}, Tool.PIP, None),
    ],
)
def test_tool_detected_from_lock(tmp_path, files, tool, lock):
    project = load_project(make(tmp_path, {"pyproject.toml": PYPROJECT, **files}))
    assert project.tool is tool
    assert (project.lock_path.name if project.lock_path else None) == lock


def test_pyproject_path_or_folder(tmp_path):
    make(tmp_path, {"pyproject.toml": PYPROJECT})
    assert load_project(tmp_path / "pyproject.toml").root == load_project(tmp_path).root == tmp_path.resolve()


def test_explicit_tool_wins_over_ambiguity(tmp_path):
    make(tmp_path, {"pyproject.toml": PYPROJECT, "uv.lock": "", "requirements.txt": "six\n"})
    assert load_project(tmp_path, tool="uv").tool is Tool.UV
    assert load_project(tmp_path, tool="pip").lock_path.name == "requirements.txt"


def _error(tmp_path, files, tool="auto", path=None):
    make(tmp_path, files)
    with pytest.raises(ProjectError) as info:
        load_project(path or tmp_path, tool=tool)
    return str(info.value)


@pytest.mark.parametrize(
    ("files", "tool", "words"),
    [
        ({}, "auto", ["No pyproject.toml", "pass the project folder"]),
        ({"setup.py": "from setuptools import setup\n"}, "auto", ["setup.py but no pyproject.toml", "[project]"]),
        (
            {"pyproject.toml": "[project\nname="},
            "auto",
            ["pyproject.toml is not valid TOML", "line 1", "Fix the syntax"],
        ),
        (
            {"pyproject.toml": "[tool.black]\nline-length = 100\n"},
            "auto",
            ["neither a [project] table nor a [tool.poetry] section", "Add [project]"],
        ),
        (
            {"pyproject.toml": PYPROJECT, "uv.lock": "", "poetry.lock": ""},
            "auto",
            ["poetry.lock and uv.lock", "Name the tool", "--tool poetry | uv"],
        ),
        ({"pyproject.toml": PYPROJECT}, "uv", ["No uv.lock", "uv lock"]),
        ({"pyproject.toml": PYPROJECT}, "poetry", ["No poetry.lock", "poetry lock"]),
        ({"pyproject.toml": '[tool.poetry]\nname = "x"\n'}, "auto", ["No poetry.lock", "poetry lock"]),
        ({"pyproject.toml": PYPROJECT}, "conda", ["Unknown tool 'conda'", "'auto', 'pip', 'poetry' or 'uv'"]),
        ({"pyproject.toml": b"\xff\xfe[project]".decode("latin-1")}, "auto", ["not valid TOML"]),
    ],
    ids=[
        "missing",
        "setup-py-only",
        "invalid-toml",
        "no-project-table",
        "several-locks",
        "uv-no-lock",
        "poetry-no-lock",
        "poetry-section-no-lock",
        "unknown-tool",
        "garbage",
    ],
)
def test_bad_project_input(tmp_path, files, tool, words):
    message = _error(tmp_path, files, tool)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("name", ["uv.lock", "poetry.lock", "requirements.txt", "setup.cfg"])
def test_a_file_other_than_pyproject_is_refused_as_the_project(tmp_path, name):
    """A lock or requirements file given as the project is never parsed as a pyproject.toml (whose
    advice would be to add [project] to it, or to fix its TOML)."""
    make(tmp_path, {"pyproject.toml": PYPROJECT, name: "six==1.17.0\n"})
    message = _error(tmp_path, {}, path=tmp_path / name)
    assert f"{tmp_path / name} is a file, not a project" in message
    assert f"pass the folder that holds the project's pyproject.toml ({tmp_path})" in message
    assert "[project]" not in message and "TOML" not in message


def test_a_build_system_only_pyproject_beside_requirements_is_a_pip_project(tmp_path):
    """The setuptools layout: pyproject.toml says how to build, requirements.txt what to install."""
    backend = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    project = load_project(make(tmp_path, {"pyproject.toml": backend, "requirements.txt": "six==1.17.0\n"}))
    assert project.tool is Tool.PIP and project.lock_path == tmp_path / "requirements.txt"
    (tmp_path / "requirements.txt").unlink()
    assert "declares no dependencies" in _error(tmp_path, {})
