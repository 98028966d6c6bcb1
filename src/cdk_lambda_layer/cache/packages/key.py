"""What names a package entry: the exact file installed and everything that shapes its tree.

An entry's name is the sha256 of its inputs: the distribution's name and version, the file the
installer takes (its name and sha256: from the plan for a pin, the built wheel's for a local
package), the target's Python version and CPU, the bytecode (the interpreter's full version and
the invalidation mode, or none), the trim (the rules' version and what the build leaves out) and
this library's formats. A same-named package from another index is another file, so another hash
and another entry; a pin whose lock does not say which hash is its file's has no key and is always
installed (never cached). Zip members are kept per zlib level and zlib version inside the entry
(``members_key``): deflate is deterministic for one zlib at one level, not across them.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from ...identity.fingerprint import LAYER_FORMAT_VERSION

#: Bump when a change in this library changes the tree or members stored for the same inputs.
PACKAGE_FORMAT_VERSION = "2"
#: Bump when trim.py's rules change (what a layer never needs).
TRIM_RULES_VERSION = "1"

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class PackageKey:
    """The inputs of one package entry (see the module docstring)."""

    name: str
    version: str
    #: The file installed: a wheel's name.
    file: str
    #: Its sha256 (hex).
    sha256: str
    python: str
    architecture: str
    #: "cpython-3.12.1 unchecked-hash", or "none" when the layer carries no bytecode.
    bytecode: str
    #: What the build leaves out (canonical names), with the trim rules' version.
    trim: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"not a sha256: {self.sha256!r}")

    def inputs(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "trim": [f"rules-{TRIM_RULES_VERSION}", *self.trim],
            "format": PACKAGE_FORMAT_VERSION,
            "layer_format": LAYER_FORMAT_VERSION,
        }

    @property
    def digest(self) -> str:
        """The entry's folder name."""
        return hashlib.sha256(json.dumps(self.inputs(), sort_keys=True).encode()).hexdigest()


def file_sha256(file_hashes: tuple[str, ...]) -> str | None:
    """The sha256 among a pin's hashes of its own file ("sha256:<hex>"), or None."""
    found = {h.partition(":")[2].lower() for h in file_hashes if h.lower().startswith("sha256:")}
    return found.pop() if len(found) == 1 and _SHA256.fullmatch(next(iter(found))) else None


def members_key(level: int) -> str:
    """Which compressed members: the zlib level and the zlib that deflated them (e.g. "6-1.3.1")."""
    return f"{level}-{zlib.ZLIB_RUNTIME_VERSION}"
