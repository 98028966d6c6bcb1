"""Reading what the in-image step left: its report (never through a link), nothing beside python/,
and its failures as this library's errors.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ...core.files import read_regular
from ...core.tool_errors import explain_install_failure
from ...errors import CommandError, LayerBuildError, ProjectError, VerificationError

#: The step's outcomes (bytecode, imports), written beside python/ for the host and removed after.
REPORT_FILE = ".cdk-lambda-layer-report.json"


_STEP_ERRORS: dict[int, type[LayerBuildError]] = {5: VerificationError, 2: ProjectError}


def only_the_layer(artifacts: Path) -> None:
    """After the step, the mounted folder holds python/ and nothing else (the step removes its hand-off,
    the host its report): anything more was left there by code run in the container, and would be
    published beside the layer, so it is refused."""
    extra = sorted(p.name for p in artifacts.iterdir() if p.name != "python")
    if extra:
        raise VerificationError(
            f"The build image left {', '.join(extra[:10])} beside python/ in the output folder: something run "
            "in the container (a package's build or install step, or its code at import) wrote there. Nothing "
            "was published."
        )


def read_report(path: Path) -> dict[str, Any]:
    """The step's report, then gone. Code run in the container could have put a link (to a host file)
    or garbage there: it is read without following links, and anything but a JSON object is refused."""
    if not os.path.lexists(path):
        return {}
    try:
        report = json.loads(read_regular(path))
    except (ValueError, OSError) as exc:
        raise VerificationError(
            f"The build image left an unreadable report ({exc}): something run in the container (a package's "
            "build or install step) wrote into the output folder. Nothing was published."
        ) from exc
    finally:
        with contextlib.suppress(OSError):  # a folder planted there stays: refused above, the staging goes
            path.unlink(missing_ok=True)
    if not isinstance(report, dict) or not all(isinstance(report.get(k, {}), dict) for k in ("bytecode", "imports")):
        raise VerificationError(
            "The build image left a report of another shape than its step writes: something "
            "run in the container wrote into the output folder. Nothing was published."
        )
    return report


def step_failure(exc: CommandError) -> LayerBuildError:
    """The in-image step's own error (its "error: ..." line and exit code), or the installer's, explained."""
    explained = explain_install_failure(exc, "the build image's output folder")
    if explained is not None:
        return explained
    own = [line.removeprefix("error: ") for line in exc.stderr.splitlines() if line.startswith("error: ")]
    kind = _STEP_ERRORS.get(exc.returncode)
    if own and kind is not None:
        return kind(own[-1] + "".join("\n" + line for line in exc.stderr.split(own[-1], 1)[-1].splitlines()[1:]))
    return exc
