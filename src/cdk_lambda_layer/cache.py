"""A content-addressed cache of finished layers, keyed by the fingerprint, outside cdk.out.

CI jobs start with an empty cdk.out and CDK's own skip works only inside one cdk.out;
with this cache a layer whose fingerprint was built once on the machine (or restored by
a CI cache step) costs a copy — hard links where the file system allows — not a build.

Layout: ``<root>/<fingerprint>/{python/, entry.json}``. An entry is written in a private
folder and renamed into place only when complete, under a per-fingerprint lock, so
parallel synths share it safely. ``entry.json`` lists every file with its size and
sha256; an entry that does not match it (partial copy, edited or truncated file) is
detected on use, removed, and rebuilt.

Where: ``cache_dir=`` (builders, construct), else the ``CDK_LAYER_CACHE_DIR`` environment
variable, else the ``cdk-lambda-layer:cacheDir`` context key (construct), else
``$XDG_CACHE_HOME/cdk-lambda-layer/layers`` (``~/.cache/...``). ``False`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inventory import walk_files
from .layout import link_tree

logger = logging.getLogger(__name__)

CACHE_ENV = "CDK_LAYER_CACHE_DIR"
ENTRY_FILE = "entry.json"
_TMP_PREFIX = ".tmp-"


def cache_home() -> Path:
    """This library's folder under the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdk-lambda-layer"


def default_cache_dir() -> Path:
    return cache_home() / "layers"


def resolve_cache_dir(option: str | os.PathLike[str] | bool | None = None) -> Path | None:
    """The cache folder from the option, the environment or the default; None when turned off."""
    if option is False:
        return None
    if option not in (None, True):
        return Path(option)  # type: ignore[arg-type]
    from_env = os.environ.get(CACHE_ENV)
    if from_env is not None:
        return None if from_env.strip().lower() in ("", "0", "off", "false") else Path(from_env)
    return default_cache_dir()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_listing(root: Path) -> dict[str, list[Any]]:
    """relative path -> [size, sha256] for every file under ``root``."""
    return {p.relative_to(root).as_posix(): [size, _sha256(p)] for p, size in sorted(walk_files(root))}


@dataclass(frozen=True)
class CacheEntry:
    path: Path

    @property
    def fingerprint(self) -> str:
        return self.path.name

    @property
    def python(self) -> Path:
        return self.path / "python"

    def metadata(self) -> dict[str, Any]:
        return json.loads((self.path / ENTRY_FILE).read_text())

    @property
    def size(self) -> int:
        return sum(size for _p, size in walk_files(self.path))

    @property
    def last_used(self) -> float:
        return (self.path / ENTRY_FILE).stat().st_mtime

    def is_intact(self) -> bool:
        """Every listed file is there with its size and content, and nothing else."""
        try:
            expected = self.metadata()["files"]
            return tree_listing(self.python) == expected
        except (OSError, ValueError, KeyError, TypeError):
            return False


class LayerCache:
    """Finished layers by fingerprint. Safe for parallel processes on one machine."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _entry(self, fingerprint: str) -> CacheEntry:
        return CacheEntry(self.root / fingerprint)

    @contextlib.contextmanager
    def lock(self, fingerprint: str) -> Iterator[None]:
        """An exclusive lock per fingerprint (POSIX flock; a no-op where there is none)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{fingerprint}.lock").open("a") as handle:
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows
                pass
            yield

    def restore(self, fingerprint: str, destination: Path) -> dict[str, Any] | None:
        """Place the cached python/ tree into ``destination`` and return the entry's metadata
        (manifest, requirements); None when missing or damaged."""
        entry = self._entry(fingerprint)
        if not (entry.path / ENTRY_FILE).is_file():
            return None
        if not entry.is_intact():
            logger.warning("layer cache entry %s is damaged; removing it and building again", fingerprint[:12])
            shutil.rmtree(entry.path, ignore_errors=True)
            return None
        link_tree(entry.python, destination)
        os.utime(entry.path / ENTRY_FILE)  # last use, for prune
        return entry.metadata()

    def store(self, fingerprint: str, python: Path, manifest: dict[str, Any], requirements: str = "") -> None:
        """Add a finished layer; a concurrent writer of the same fingerprint wins harmlessly."""
        entry = self._entry(fingerprint)
        if (entry.path / ENTRY_FILE).is_file():
            return
        temp = self.root / f"{_TMP_PREFIX}{fingerprint[:12]}-{uuid.uuid4().hex[:8]}"
        try:
            link_tree(python, temp / "python")
            document = {
                "fingerprint": fingerprint,
                "manifest": manifest,
                "requirements": requirements,
                "files": tree_listing(temp / "python"),
            }
            (temp / ENTRY_FILE).write_text(json.dumps(document, sort_keys=True))
            if entry.path.exists():  # a damaged leftover
                shutil.rmtree(entry.path, ignore_errors=True)
            temp.rename(entry.path)
        except OSError as exc:
            logger.warning("could not store layer %s in the cache at %s: %s", fingerprint[:12], self.root, exc)
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def entries(self) -> list[CacheEntry]:
        if not self.root.is_dir():
            return []
        found = [CacheEntry(p) for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(found, key=lambda e: e.last_used if (e.path / ENTRY_FILE).exists() else 0, reverse=True)

    def prune(self, *, older_than_days: float | None = None, keep_bytes: int | None = None) -> list[CacheEntry]:
        """Remove entries unused for ``older_than_days``, then the least recently used beyond
        ``keep_bytes``, and incomplete leftovers; return what was removed."""
        removed: list[CacheEntry] = []
        now, total = time.time(), 0
        for entry in self.entries():  # most recently used first
            complete = (entry.path / ENTRY_FILE).is_file()
            too_old = older_than_days is not None and complete and now - entry.last_used > older_than_days * 86400
            size = entry.size if complete else 0
            over = keep_bytes is not None and total + size > keep_bytes
            if not complete or too_old or over:
                removed.append(entry)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                total += size
        for leftover in self.root.glob(f"{_TMP_PREFIX}*") if self.root.is_dir() else ():
            if now - leftover.stat().st_mtime > 3600:  # an interrupted store, not one under way
                shutil.rmtree(leftover, ignore_errors=True)
        return removed
