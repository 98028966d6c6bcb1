"""Pruning the layer cache: it deletes only what it can prove it made.

Entries unused for a number of days, or the least recently used beyond a size, each removed under
its fingerprint's lock (one a build holds right now is kept); incomplete entries, lock files of
entries that are gone, and leftovers of stores killed mid-write. A folder without this cache's
marker is refused: a mistyped ``--cache-dir`` loses nothing.
"""

from __future__ import annotations

import logging
import os
import time

from ..core.locking import sweep
from ..errors import CacheFolderError
from .entry import CacheEntry
from .ownership import _FINGERPRINT, _TMP_PREFIX, MARKER
from .packages.entry import PackageEntry
from .packages.store import PackageCache
from .store import LayerCache

logger = logging.getLogger(__name__)


def prune(
    cache: LayerCache,
    *,
    older_than_days: float | None = None,
    keep_bytes: int | None = None,
    removed_packages: list[PackageEntry] | None = None,
) -> list[CacheEntry]:
    """Remove entries unused for ``older_than_days``, then the least recently used beyond
    ``keep_bytes``, incomplete ones and dead stores' leftovers; return the entries removed.

    The package cache in the same folder (cache/packages/) is pruned by the same rules after the
    layers, within what ``keep_bytes`` leaves once the layers kept are counted; the package entries
    removed are added to ``removed_packages``.

    Each entry is removed under its lock; one in use by a build right now is skipped.
    Refuses a folder without this cache's marker: it deletes only what it made.
    """
    if not cache.root.exists():
        return []
    if not cache.is_ours():
        raise CacheFolderError(
            f"{cache.root} is not a cdk-lambda-layer cache (no {MARKER} in it): nothing was removed. "
            "Check --cache-dir / CDK_LAYER_CACHE_DIR."
        )
    removed: list[CacheEntry] = []
    now, total = time.time(), 0
    for entry in cache.entries():  # most recently used first
        size = entry.size if entry.complete else 0
        too_old = older_than_days is not None and now - entry.last_used > older_than_days * 86400
        over = keep_bytes is not None and total + size > keep_bytes
        if entry.complete and not (too_old or over):
            total += size
            continue
        with cache.lock(entry.fingerprint, blocking=False) as free:
            if free:
                entry.remove()
                cache.lock_path(entry.fingerprint).unlink(missing_ok=True)  # held: see lock()
                removed.append(entry)
            else:
                logger.warning("layer %s is in use by a build; kept", entry.fingerprint[:12])
    _forget_locks(cache)
    sweep(cache.root, (_TMP_PREFIX,))
    left = None if keep_bytes is None else max(0, keep_bytes - total)
    packages = prune_packages(PackageCache(cache.root), older_than_days=older_than_days, keep_bytes=left)
    if removed_packages is not None:
        removed_packages.extend(packages)
    return removed


def prune_packages(
    packages: PackageCache, *, older_than_days: float | None = None, keep_bytes: int | None = None
) -> list[PackageEntry]:
    """The package cache's share of ``prune``: the same rules, each entry under its key's lock."""
    root = packages.root
    if not root.is_dir() or root.is_symlink():
        return []
    removed: list[PackageEntry] = []
    now, total = time.time(), 0
    for entry in packages.entries():  # most recently used first
        size = entry.size if entry.complete else 0
        too_old = older_than_days is not None and now - entry.last_used > older_than_days * 86400
        over = keep_bytes is not None and total + size > keep_bytes
        if entry.complete and not (too_old or over):
            total += size
            continue
        with packages.lock(entry.key, blocking=False) as free:
            if free:
                entry.remove()
                packages.lock_path(entry.key).unlink(missing_ok=True)  # held: see LayerCache.lock
                removed.append(entry)
            else:
                logger.warning("package %s is in use by a build; kept", entry.key[:12])
    for path in root.glob(".*.lock"):  # locks whose entry is gone
        key = path.name[1:-5]
        if _FINGERPRINT.fullmatch(key) and not os.path.lexists(root / key):
            with packages.lock(key, blocking=False) as free:
                if free and not os.path.lexists(root / key):
                    path.unlink(missing_ok=True)
    sweep(root, (_TMP_PREFIX,))
    return removed


def _forget_locks(cache: LayerCache) -> None:
    """Delete lock files whose entry is gone (a build that failed, a prune of an older version)."""
    for path in cache.root.glob(".*.lock"):
        fingerprint = path.name[1:-5]
        if not _FINGERPRINT.fullmatch(fingerprint) or os.path.lexists(cache.root / fingerprint):
            continue
        with cache.lock(fingerprint, blocking=False) as free:
            if free and not os.path.lexists(cache.root / fingerprint):
                path.unlink(missing_ok=True)
