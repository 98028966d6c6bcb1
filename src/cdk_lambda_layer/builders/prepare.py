"""The steps before an install, shared by every builder: inputs, export, plan, local packages.

The exported lock and the plan are decided on the host for local and container builds alike (the
tool and the lock are here; the image only needs its Python), so this runs the same for both; the
container builders only plan for the image (a package without a wheel there is built from its sdist).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.credentials import IndexCredentials
from ..core.redact import redact_urls
from ..errors import ProjectError
from ..identity.fingerprint import covered_local_paths
from ..install.local_packages import build_local_packages
from ..options import LayerOptions
from ..package.layout import LayerPathLayout
from ..plan.export import ExportedLock, export_lock
from ..plan.model import InstallPlan
from ..plan.shape import shape, source_only, unpinned_notes
from ..plan.wheels import make_plan
from ..project.load import Project
from ..target import LambdaTarget
from .result import Prepared
from .steps import StepLog


def prepare(
    project: Project,
    target: LambdaTarget,
    options: LayerOptions,
    work: LayerPathLayout,
    log: StepLog,
    *,
    credentials: Sequence[IndexCredentials] = (),
    in_image: bool = False,
) -> Prepared:
    """Export, plan and build the local packages: everything decided before an install."""
    copy_inputs(project, work)
    exported = log.run("export", lambda: export(project, options, target, work, credentials))
    log.warn(exported.warnings)
    plan = log.run("plan", lambda: checked_plan(project, target, options, exported, log, in_image=in_image))
    log.warn([*plan.warnings, *unpinned_notes(plan, project, work.repo / "requirements.in")])
    local = ()
    if plan.local:
        folder = work.repo / "local"
        local = log.run(
            "local packages",
            lambda: build_local_packages(plan.local, folder, target, in_image=in_image, where=project.anchor),
        )
    pip_pins = plan.channel("pip") if options.installer == "uv" else ()
    if pip_pins:
        log.warn(
            [
                f"{', '.join(p.name for p in pip_pins)}: wheels for glibc above 2.17 installed with pip "
                "(uv has no platform for them)"
            ]
        )
    return Prepared(exported=exported, plan=plan, local=local)


def copy_inputs(project: Project, work: LayerPathLayout) -> None:
    """repo/project/: the project's inputs as the build read them (by path from the lock's folder),
    logins removed; only files inside the project's tree are copied."""
    for source in project.input_files:
        relative = project.relative(source)
        if relative.startswith("../"):
            continue  # a file outside the project (a -r include elsewhere): counted in the fingerprint only
        target = work.inputs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(redact_urls(source.read_text(errors="replace")))


def export(
    project: Project,
    options: LayerOptions,
    target: LambdaTarget,
    work: LayerPathLayout,
    credentials: Sequence[IndexCredentials],
) -> ExportedLock:
    """The project's pylock.toml, from its own tool (kept in repo/ for the record)."""
    exported = export_lock(project, options, target, work.repo, tuple(credentials))
    (work.repo / "pylock.toml").write_text(redact_urls(exported.text))
    return exported


def checked_plan(
    project: Project,
    target: LambdaTarget,
    options: LayerOptions,
    exported: ExportedLock,
    log: StepLog,
    *,
    in_image: bool,
) -> InstallPlan:
    """The plan for the target, shaped by the project's files, covering only local packages the
    fingerprint hashed."""
    locked = exported.read(project)
    plan = make_plan(locked, target, options, in_image=in_image, source_only=source_only(project))
    shaped = shape(plan, project, options)
    log.warn(shaped.warnings)
    check_all_hashed(project, options, shaped.plan)
    return shaped.plan


def check_all_hashed(project: Project, options: LayerOptions, plan: InstallPlan) -> None:
    """Every local package the plan installs must be one whose sources the fingerprint hashed: one the
    resolver reached some other way would reach the layer unhashed (stale after its next edit)."""
    covered = covered_local_paths(project, options)
    missing = sorted({pin.path.resolve() for pin in plan.local} - {path.resolve() for path in covered})
    if missing:
        shown = ", ".join(project.relative(path) for path in missing)
        raise ProjectError(
            f"The resolution installs local packages the fingerprint does not cover ({shown}): a change to them "
            "would not rebuild the layer. Name them where this library reads local packages (a line in "
            "requirements.txt, a [tool.uv.sources] path of a local package, a path dependency in the lock)."
        )
