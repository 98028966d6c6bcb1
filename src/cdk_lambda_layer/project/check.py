"""What can be refused from the project's files alone, before any tool runs (also at construct time)."""

from __future__ import annotations

from ..errors import ProjectError, TargetError
from ..options import LayerOptions
from ..target import LambdaTarget
from .load import Project


def check_project(project: Project, target: LambdaTarget, options: LayerOptions) -> None:
    """Refuse an unknown extra or group, a runtime outside requires-python, and include_project for a
    project that cannot be built into a wheel: each named with its file and the way out."""
    project.check_options(options.extras, options.groups)
    supported = project.requires_python
    if supported is not None and not any(supported.contains(f"{target.python}.{p}") for p in (0, 99)):
        raise TargetError(
            f"{target.runtime_name} is outside the Python versions {project.name} supports (requires-python "
            f"{supported} in {project.pyproject_path}). Pick a runtime it supports, or widen requires-python "
            "and lock again."
        )
    if options.include_project and not project.packaged:
        raise ProjectError(
            f"{project.name} cannot be built into a wheel for include_project=True / --include-project (no "
            f"[build-system], or package = false / package-mode = false in {project.pyproject_path}). Give it a "
            "build backend, or leave the project out (drop include_project / --include-project)."
        )
