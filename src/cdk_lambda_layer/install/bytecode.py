"""Compiling the layer's modules to PEP 552 hash-based .pyc, with the target's own Python.

Lambda mounts layers read-only under /opt, so a module without a usable .pyc is compiled
in memory at every cold start. Timestamp-based .pyc (what pip writes) go stale once the
asset zip resets file times; hash-based ones stay valid: ``unchecked-hash`` (the default)
is never checked against the source, ``checked-hash`` hashes the source on import.
Code objects name the file where Lambda will see it (``/opt/python/<relative path>``), so
tracebacks point at real files and the bytes do not depend on the build folder.

Standard library only, run as a script by the target interpreter (on the host, or in the
build image by the in-container step):

    python3.X -I -S -B bytecode.py SITE [--invalidation unchecked-hash] [--prefix /opt/python]

prints one JSON object: {"python": "3.X.Y", "compiled": N, "failed": [paths]}.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import py_compile
import sys
from collections.abc import Sequence
from pathlib import Path

#: Where Lambda puts a layer's python/ folder.
LAMBDA_PREFIX = "/opt/python"
_MODES = {
    "unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH,
    "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
}


def compile_tree(site: Path, invalidation: str = "unchecked-hash", prefix: str = LAMBDA_PREFIX) -> dict[str, object]:
    """Compile every .py under ``site``; a file that does not compile (e.g. Python 2 syntax) is listed."""
    compileall.compile_dir(
        str(site),
        quiet=2,
        force=True,
        stripdir=str(site),
        prependdir=prefix,
        invalidation_mode=_MODES[invalidation],
        workers=0 if (os.cpu_count() or 1) > 1 else 1,
    )
    tag = sys.implementation.cache_tag
    sources = sorted(p for p in site.rglob("*.py") if p.is_file() and not p.is_symlink())
    failed = [
        p.relative_to(site).as_posix()
        for p in sources
        if not (p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").is_file()
    ]
    return {"python": platform.python_version(), "compiled": len(sources) - len(failed), "failed": failed}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bytecode")
    parser.add_argument("site")
    parser.add_argument("--invalidation", choices=sorted(_MODES), default="unchecked-hash")
    parser.add_argument("--prefix", default=LAMBDA_PREFIX)
    args = parser.parse_args(argv)
    print(json.dumps(compile_tree(Path(args.site), args.invalidation, args.prefix)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
