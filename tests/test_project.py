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
