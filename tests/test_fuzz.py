"""Fuzzing the parsers: whatever pyproject.toml or requirements text holds, the answer is a
result or a ProjectError that names the file, never an unhandled exception."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdk_lambda_layer import LayerOptions, ProjectError, TargetError, Tool, load_project
from cdk_lambda_layer.plan.export import pyproject_requirements
from cdk_lambda_layer.plan.locked import read_poetry, read_pylock
from cdk_lambda_layer.project.load import Project
from cdk_lambda_layer.project.local import uv_local_sources
from cdk_lambda_layer.project.requirements import requirement_files
from cdk_lambda_layer.target import LambdaTarget

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_ish = st.text(alphabet=string.printable + "[]=\"'{}.#é", max_size=400)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(content=st.one_of(toml_ish, st.binary(max_size=300)))
def test_any_pyproject_content_gives_a_project_or_a_project_error(tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "pyproject.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        project = load_project(folder)
    except ProjectError as exc:
        assert str(path) in str(exc) or str(folder) in str(exc)
    else:
        assert project.tool in Tool


@FUZZ
@given(
    table=st.dictionaries(st.sampled_from(["dependencies", "optional-dependencies", "name"]), values, max_size=3),
    groups=st.dictionaries(st.text(max_size=6), values, max_size=3),
    extras=st.lists(st.text(max_size=6), max_size=2),
    chosen=st.lists(st.text(max_size=6), max_size=2),
)
def test_any_dependency_tables_give_requirements_or_a_project_error(table, groups, extras, chosen):
    project = Project(
        root=Path("/nowhere"),
        pyproject_path=Path("/nowhere/pyproject.toml"),
        pyproject={"project": table, "dependency-groups": groups},
        tool=Tool.PIP,
        lock_path=None,
        anchor=Path("/nowhere"),
    )
    try:
        text = pyproject_requirements(project, LayerOptions(extras=tuple(extras), groups=tuple(chosen)))
    except ProjectError as exc:
        assert "/nowhere/pyproject.toml" in str(exc)
    else:
        assert text.endswith("\n")


requirement_lines = st.lists(
    st.one_of(
        st.text(alphabet=string.printable, max_size=40),
        st.sampled_from(["-r other.txt", "-c c.txt", "./lib", "-e ../x", "--find-links ./w", "x @ file:./y", "\\"]),
    ),
    max_size=8,
)


@FUZZ
@given(lines=requirement_lines)
def test_any_requirements_file_gives_references_or_a_project_error(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("reqs")
    (folder / "requirements.txt").write_text("\n".join(lines))
    try:
        found = requirement_files(folder / "requirements.txt", folder)
    except ProjectError as exc:
        assert "requirements file" in str(exc)
    else:
        assert found.includes[0] == (folder / "requirements.txt").resolve()


TARGET = LambdaTarget(python="3.12")


@FUZZ
@given(text=st.one_of(toml_ish, st.sampled_from(['lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname="a"'])))
def test_any_pylock_text_gives_pins_or_a_project_error(text):
    try:
        locked = read_pylock(text, Path("/nowhere"), "uv.lock")
        locked.for_target(TARGET)
    except (ProjectError, TargetError) as exc:
        assert "uv.lock" in str(exc)


@FUZZ
@given(export=st.text(alphabet=string.printable, max_size=300), lock=st.dictionaries(st.text(max_size=8), values))
def test_any_poetry_export_and_lock_give_pins_or_a_project_error(export, lock):
    try:
        read_poetry(export, lock, Path("/nowhere")).for_target(TARGET)
    except (ProjectError, TargetError) as exc:
        assert "poetry" in str(exc).lower()


@FUZZ
@given(lock=st.dictionaries(st.sampled_from(["package", "version"]), values), name=st.text(max_size=6))
def test_any_uv_lock_graph_gives_local_sources(lock, name):
    found = uv_local_sources(lock, Path("/nowhere"), name or "x", extras=("a",), groups=("dev",))
    assert isinstance(found, tuple)
