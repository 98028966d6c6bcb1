"""What the host hands to the build image: the pins, the local package files, the CA bundle and the
step package, staged in ``<output>/.cdk-lambda-layer/``; and the one command (``step_command``) the
image runs, whether CDK's Docker bundling starts the container (the construct) or docker.py does.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ...options import AWS_RUNTIME_PACKAGES, LayerOptions
from ...plan.model import InstallPlan
from ...target import LambdaTarget
from ..local_packages import BuiltPackage
from .step import CA_FILE, HANDOFF_DIR, STEP_PACKAGE

#: Modules copied into the image, at their paths in this package (so that their relative imports
#: hold there too): the step and what it imports, all standard library only.
STEP_MODULES = (
    "errors.py",
    "core/files.py",
    "core/elf.py",
    "install/inventory.py",
    "install/trim.py",
    "install/bytecode.py",
    "install/import_check.py",
    "install/import_plan.py",
    "install/layer_snapshot.py",
    "install/container/step.py",
)
#: This package's folder, which the copied step package mirrors.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]

#: Where the hand-off's local package files are, as the container sees them.
CONTAINER_LOCAL = f"/asset-output/{HANDOFF_DIR}/local"


CONTAINER_OUTPUT = "/asset-output"


def copy_step_package(package: Path) -> None:
    """The step's modules under ``package`` at their paths here, each folder a package of its own whose
    ``__init__`` is empty (the real ones import what the image does not have)."""
    for module in STEP_MODULES:
        target = package / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_PACKAGE_ROOT / module, target)
        for folder in Path(module).parents:  # install/container, install, . (written over below)
            init = package / folder / "__init__.py"
            if not init.exists():
                init.write_text("")
    (package / "__init__.py").write_text('"""cdk-lambda-layer\'s in-container step (copied)."""\n')
    (package / "__main__.py").write_text("from .install.container.step import main\n\nraise SystemExit(main())\n")


def stage_handoff(output: Path, plan: InstallPlan, local: Sequence[BuiltPackage], ca_bundle: Path | None) -> Path:
    """Write the pins, the local package files, the host's CA bundle and the step package under
    ``output``/.cdk-lambda-layer, which the container sees at /asset-output/.cdk-lambda-layer."""
    handoff = output / HANDOFF_DIR
    package = handoff / STEP_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    copy_step_package(package)
    (handoff / "local").mkdir(exist_ok=True)
    lines = [pin.requirement(exact=True) for pin in sorted(plan.pins, key=lambda p: p.name)]
    for built in local:
        shutil.copyfile(built.file, handoff / "local" / built.file.name)
        lines.append(built.requirement(f"{CONTAINER_LOCAL}/{built.file.name}"))
    (handoff / "requirements.txt").write_text("\n".join(lines) + "\n")
    if ca_bundle is not None:
        shutil.copyfile(ca_bundle, handoff / CA_FILE)
    return handoff


Phase = Literal["all", "install", "finish"]


def step_command(
    target: LambdaTarget,
    options: LayerOptions,
    *,
    report: str | None = None,
    environment_on_stdin: bool = False,
    phase: Phase = "all",
    expect_python: bool = False,
) -> list[str]:
    """The argv run in the image; no shell, so nothing needs quoting. Its first word, ``env``, is meant
    as the container's entrypoint (an image's own entrypoint, an init say, would make the step not the
    container's first process; see container_step.stop_stragglers).

    ``environment_on_stdin``: the step reads the installer's variables (index logins, proxies) as one
    JSON line on its standard input (the Docker SDK path; CDK's own Docker bundling has no stdin).
    ``phase``: "install" and "finish" split the step over two containers (the Docker SDK path, see
    run_step); CDK's Docker bundling runs "all" in one.
    """
    argv = [
        "env",
        f"PYTHONPATH={CONTAINER_OUTPUT}/{HANDOFF_DIR}",
        "python",
        "-m",
        STEP_PACKAGE,
        "--output",
        CONTAINER_OUTPUT,
        "--elf-machine",
        str(target.architecture.elf_machine),
        "--describe",
        target.describe(),
        "--max-bytes",
        str(options.max_unzipped_bytes),
        "--no-deps",
        "--bytecode",
        "none" if options.bytecode is False else options.invalidation,
    ]
    for name in sorted(options.left_out):
        argv += ["--exclude", name]
    for name in sorted(set(options.provided) | set(AWS_RUNTIME_PACKAGES)):
        argv += ["--provided", name]
    if options.import_check:
        argv.append("--import-check")
    if report:
        argv += ["--report", report]
    if environment_on_stdin:
        argv.append("--environment-on-stdin")
    if expect_python:  # the Docker SDK path: CDK's own bundling keeps the command its asset hash was made with
        argv += ["--expect-python", target.python]
    return [*argv, "--phase", phase]
