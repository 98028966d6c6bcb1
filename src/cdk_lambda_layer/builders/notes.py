"""What a build tells the user about its bytecode and import check: one warning per thing to fix.

A missing interpreter explains both steps at once; a check that ran the packages' code without
namespaces of its own while logins are in the environment is said, as are files the import wrote
into the layer (removed again: Lambda's /opt is read-only).
"""

from __future__ import annotations

import os

from ..core.redact import redact_urls
from ..install.target_python import BytecodeOutcome, ImportOutcome
from ..options import LayerOptions
from ..plan.interpreter import find_interpreter, how_to_get
from ..target import LambdaTarget


def outcome_warnings(
    bytecode: BytecodeOutcome, imports: ImportOutcome, target: LambdaTarget, options: LayerOptions, *, local: bool
) -> list[str]:
    """The warnings for what the bytecode step and the import check did (or could not do)."""
    no_bytecode = not bytecode.included and options.bytecode is not False
    no_imports = not imports.ran and options.import_check
    python = target.python
    if no_bytecode and no_imports and find_interpreter(python) is None:
        return [
            f"no CPython {python} here, so no bytecode (slower cold starts) and no import check: {how_to_get(python)}"
        ]
    warnings = []
    if no_bytecode:
        warnings.append(f"no bytecode: {bytecode.reason}")
    if no_imports:
        warnings.append(f"import check skipped: {imports.reason}")
    warnings += [f"importing {w['module']} raised {w['error']}" for w in imports.warnings]
    if imports.ran and not imports.sandboxed and local and holds_logins():
        warnings.append(
            "the import check ran the packages' code without namespaces of its own (unshare is not allowed "
            "here, e.g. in a default Docker container): that code could read this process's environment, "
            "index logins included. Pass logins as IndexCredentials in code rather than in the environment, "
            "or build in the container, or skip the check (import_check=False)"
        )
    if imports.removed:
        shown = ", ".join(imports.removed[:5]) + (" ..." if len(imports.removed) > 5 else "")
        warnings.append(
            f"importing the layer's modules wrote into it ({shown}): removed again, as Lambda's /opt is "
            "read-only (the package would not find those files there)"
        )
    return warnings


def holds_logins() -> bool:
    """Index logins in this process's environment (the CLI's --index, CDK_LAYER_INDEX_*, a URL with one)."""
    named = any(k.startswith("CDK_LAYER_INDEX_") and k.endswith("_PASSWORD") for k in os.environ)
    return named or any(redact_urls(v) != v for v in os.environ.values())
