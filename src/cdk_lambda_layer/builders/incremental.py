"""Per-package reuse for local builds: a changed pin costs one package, not the layer.

Before the install, each planned package gets its key (cache/packages/key.py: the exact file, the
target, the installer, the bytecode, the trim). Entries found are copied into the layer folder,
checked against their listings as they are copied; the rest (the misses) are installed into a
folder of their own, trimmed and compiled there, and moved in. Every check then runs on the
assembled layer as on one built from nothing: the import check, RECORD hashes, the ELF audit,
exactly-the-plan, sizes. The zip takes the entries' raw deflate streams (each shown to be the
one made from its file by the CRC-32s recorded when it was stored, and inflated then) and
compresses only the rest, so it is byte-identical to a zip of a layer built from nothing. After
the layer passed, each miss is stored as an entry (its files and its streams, read back out of
layer.zip), and hits that had no streams at this zip level get them.

A package cache that cannot be used (read-only, full, not ours) is a warning and the build goes on
without it; a damaged or foreign entry is removed and its package installed again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ..cache.packages.key import PackageKey, file_sha256, members_key
from ..cache.packages.store import PackageCache
from ..core.digests import KnownDigests
from ..core.tools import find_uv, pip_version, tool_version
from ..errors import CacheFolderError
from ..install.local_packages import BuiltPackage
from ..install.target_python import BytecodeOutcome
from ..options import LayerOptions
from ..package.archive import Stream
from ..plan.interpreter import TargetInterpreter
from ..plan.model import InstallPlan, Pin
from ..target import LambdaTarget

logger = logging.getLogger(__name__)

#: Entries copied at once, each on a thread of its own that copies its files one after another. Part of
#: each file's copy holds the interpreter (the rest is the kernel's, the hash's and the checksum's), so
#: threads past the cores only wait for it: on 2 cores, 2 copied the layers measured fastest (4: about 10%
#: slower; a pool shared by the entries' files, a future per file: 50% slower). At most 4.
_COPIERS = min(4, max(2, os.cpu_count() or 2))


@dataclass(frozen=True)
class Planned:
    """One package of the plan, with its key (None: the lock does not say which hash is its file's)."""

    name: str
    key: PackageKey | None
    pin: Pin | None = None
    local: BuiltPackage | None = None


@dataclass
class Reused:
    """What the restore found: entries copied in, packages left to install, streams for the zip."""

    hits: dict[str, tuple[PackageKey, dict[str, Any]]] = field(default_factory=dict)
    misses: list[Planned] = field(default_factory=list)
    members: dict[str, Stream] = field(default_factory=dict)


def bytecode_id(interpreter: TargetInterpreter | None, options: LayerOptions) -> str:
    """How the packages' .pyc are made, for the key: the interpreter's version and the invalidation."""
    return f"cpython-{interpreter.version} {options.invalidation}" if interpreter is not None else "none"


def _installer(pin_channel: str, options: LayerOptions) -> str:
    """Who installs the package, with its version: uv and pip write different RECORD and INSTALLER files."""
    if options.installer == "pip" or pin_channel == "pip":
        return f"pip {pip_version()}"
    return f"uv {tool_version(find_uv(), 'uv')}"


class PackageReuse:
    """One build's use of the package cache."""

    def __init__(
        self,
        cache: PackageCache,
        target: LambdaTarget,
        options: LayerOptions,
        bytecode: str,
        zip_level: int | None,
        pyc: tuple[bytes, int] | None = None,
    ) -> None:
        #: What every reused .pyc must carry (the target's magic number, the flags), when there is bytecode.
        self.pyc = pyc
        self.cache = cache
        self.target = target
        self.options = options
        self.bytecode = bytecode
        self.members_key = members_key(zip_level) if zip_level is not None else None
        self.reused = Reused()
        #: The sha256 of every file copied in, while it stays as copied (for the RECORD check of the layer).
        self.known = KnownDigests()
        self.warnings: list[str] = []
        self.active = True

    # -- keys --------------------------------------------------------------------------------
    def _key(self, name: str, version: str, file: str | None, sha256: str | None, installer: str) -> PackageKey | None:
        if not file or not file.endswith(".whl") or sha256 is None:
            return None
        return PackageKey(
            name=canonicalize_name(name),
            version=version,
            file=file,
            sha256=sha256,
            python=self.target.python,
            architecture=self.target.architecture.value,
            bytecode=f"{self.bytecode}; installed by {installer}",
            trim=tuple(sorted(self.options.left_out)),
        )

    def planned(self, plan: InstallPlan, local: Sequence[BuiltPackage]) -> list[Planned]:
        found = [
            Planned(
                p.name,
                self._key(p.name, p.version, p.wheel, file_sha256(p.file_hashes), _installer(p.channel, self.options)),
                pin=p,
            )
            for p in plan.pins
        ]
        for built in local:
            installer = _installer("uv", self.options)
            key = self._key(built.name, built.version, built.file.name, built.sha256, installer)
            found.append(Planned(built.name, key, local=built))
        return found

    # -- before the install ------------------------------------------------------------------
    def look_up(self, planned: list[Planned]) -> list[tuple[Planned, dict[str, Any]]]:
        """The entries found for the plan (checked, not yet copied); the rest become misses."""
        documents = self._lookups(planned)
        clashing = _clashes(documents)
        found = []
        for item in planned:
            document = documents.get(item.name)
            if item.key is None or document is None or item.name in clashing or not self.active:
                self.reused.misses.append(item)
            else:
                found.append((item, document))
        return found

    def copy_in(self, found: list[tuple[Planned, dict[str, Any]]], destination: Path) -> list[Planned]:
        """Copy the entries found into ``destination`` (beside the install of the misses, a few entries at a
        time: creating files is most of a copy's cost, and it waits on the kernel, not on Python); the
        packages whose entry turned out damaged on the way, which must be installed as well. A path that
        two entries bring (the same file: _clashes refused others) is copied from the first only; if that
        entry is damaged, its new install brings the file back."""
        claimed: set[str] = set()
        jobs = []
        for item, document in found:
            jobs.append((item, document, frozenset(claimed & set(document["files"]))))
            claimed.update(document["files"])

        def one(job: tuple[Planned, dict[str, Any], frozenset[str]]) -> bool:
            item, document, skip = job
            return item.key is not None and self._restore_one(item.key, document, destination, skip)

        with ThreadPoolExecutor(max_workers=_COPIERS) as pool:
            copied = list(pool.map(one, jobs))
        late = [item for (item, _document, _skip), ok in zip(jobs, copied, strict=True) if not ok]
        for (item, document, _skip), ok in zip(jobs, copied, strict=True):
            if ok and item.key is not None:
                self.reused.hits[item.name] = (item.key, document)
        logger.info(
            "package cache: %d of %d packages reused", len(self.reused.hits), len(found) + len(self.reused.misses)
        )
        return late

    def _lookups(self, planned: list[Planned]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        try:
            self.cache.claim()
            for item in planned:
                if item.key is not None:
                    with self.cache.lock(item.key.digest):
                        document = self.cache.lookup(item.key)
                    if document is not None:
                        found[item.name] = document
        except (OSError, CacheFolderError) as exc:
            self.unusable(exc, "reading")
        return found

    def _restore_one(self, key: PackageKey, document: dict[str, Any], destination: Path, skip: frozenset[str]) -> bool:
        try:
            with self.cache.lock(key.digest):
                if self.cache.lookup(key) is None or not self.cache.restore(
                    key, document, destination, skip, self.pyc, self.known
                ):
                    return False
                if self.members_key is not None:
                    for name, blob in (self.cache.read_members(key, document, self.members_key) or {}).items():
                        self.reused.members.setdefault(name, blob)
                self.cache.touch(key)
            return True
        except OSError as exc:
            self.unusable(exc, "copying a package out")
            return False

    def misses_plan(
        self, plan: InstallPlan, misses: Sequence[Planned] | None = None
    ) -> tuple[InstallPlan, tuple[BuiltPackage, ...]]:
        """The plan reduced to what is left to install (``misses``: these only)."""
        misses = self.reused.misses if misses is None else misses
        pins = tuple(m.pin for m in misses if m.pin is not None)
        local = tuple(m.local for m in misses if m.local is not None)
        return replace(plan, pins=pins), local

    def bytecode_outcome(self, fresh: BytecodeOutcome) -> BytecodeOutcome:
        """The bytecode step's outcome for the whole layer: what it compiled now and what the hits carry."""
        compiled = sum(int(d["bytecode"].get("compiled", 0)) for _key, d in self.reused.hits.values())
        failed = [f for _key, d in self.reused.hits.values() for f in d["bytecode"].get("failed", [])]
        if not fresh.included and self.bytecode == "none":
            return fresh
        return replace(
            fresh,
            included=True,
            compiled=fresh.compiled + compiled,
            failed=tuple(sorted({*fresh.failed, *failed})),
            reason=None,
        )

    def unusable(self, exc: Exception, doing: str) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        message = (
            f"the package cache at {self.cache.root} cannot be used ({doing}: {reason}); built without it. Fix the "
            "folder, point CDK_LAYER_CACHE_DIR / --cache-dir elsewhere, or turn it off (--no-package-cache)"
        )
        logger.info("%s", message)
        self.warnings.append(message)
        self.active = False


def _clashes(documents: dict[str, dict[str, Any]]) -> set[str]:
    """Packages whose entries name one path with different content: installed instead (verify names them)."""
    seen: dict[str, tuple[str, list[Any]]] = {}
    clashing: set[str] = set()
    for name, document in sorted(documents.items()):
        for path, listed in document["files"].items():
            other = seen.setdefault(path, (name, listed))
            if other[1] != listed:
                clashing.update({name, other[0]})
    return clashing
