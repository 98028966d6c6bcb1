"""Fuzzing the parsers: whatever pyproject.toml or requirements text holds, the answer is a
result or a ProjectError that names the file, never an unhandled exception."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdk_lambda_layer import LayerOptions, ProjectError, Tool, load_project
from cdk_lambda_layer.export import pip_requirements, without_packages
from cdk_lambda_layer.project import Project

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
    )
    try:
        pinned = pip_requirements(project, LayerOptions(extras=tuple(extras), groups=tuple(chosen)))
    except ProjectError as exc:
        assert "/nowhere/pyproject.toml" in str(exc)
    else:
        assert pinned.text.endswith("\n")


@FUZZ
@given(text=st.text(max_size=500), names=st.lists(st.text(min_size=1, max_size=10), max_size=4))
def test_exclusion_filter_takes_any_requirements_text(text, names):
    kept = without_packages(text, names)
    assert isinstance(kept, str)
