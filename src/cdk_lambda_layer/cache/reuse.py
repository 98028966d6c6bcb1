"""When a cached layer may be served, although its fingerprint matches.

The fingerprint holds what construct time can know from files. A cached layer was also shaped by
what it cannot know: whether the target's Python was on the machine (bytecode and the import check,
which ``bytecode="auto"`` lets go without), whether the import check was asked for at all, and, for
container builds, which image a tag named then (container_builder.py adds that rule). When this
build would make a better or a different layer, it builds again and replaces the entry.
"""

from __future__ import annotations

import platform
from typing import Any

from ..options import LayerOptions
from ..plan.interpreter import find_interpreter
from ..target import LambdaTarget


def _runs_here(target: LambdaTarget) -> bool:
    return platform.machine().lower() in (target.architecture.machine, target.architecture.value)


def rebuild_reason(manifest: dict[str, Any], target: LambdaTarget, options: LayerOptions, *, local: bool) -> str | None:
    """Why the cached layer described by ``manifest`` must be built again for this build, or None."""
    checked = manifest.get("import_check") or {}
    if options.import_check and not checked.get("ran") and "turned off" in str(checked.get("reason")):
        return "was built without the import check, which this build asks for"
    if not local:
        return None  # the image always has its Python
    no_bytecode = options.bytecode == "auto" and not (manifest.get("bytecode") or {}).get("included")
    no_check = options.import_check and not checked.get("ran") and _runs_here(target)
    if not (no_bytecode or no_check):
        return None
    found = find_interpreter(target.python)
    if found is None or not (no_bytecode or (no_check and found.runs(target))):
        return None
    return f"has no bytecode or import check, and CPython {found.version} is here now"
