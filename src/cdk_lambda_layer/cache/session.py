"""The cache as one build uses it, under the fingerprint's lock: a cache that cannot be used (read-only,
full, not ours) is a warning, and the build goes on without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CacheFolderError
from .restore import Restored, empty
from .store import LayerCache

logger = logging.getLogger(__name__)


class CacheSession:
    """The cache as one build uses it, under the fingerprint's lock.

    A cache that cannot be used (read-only, full, not ours) must not fail a build that could
    succeed without it: every failure here is a warning and the build goes on uncached.
    """

    def __init__(self, cache: LayerCache | None, fingerprint: str, *, ephemeral: bool = False) -> None:
        self.cache = cache
        self.fingerprint = fingerprint
        #: A throwaway cache (for a remote hit while the local cache is off): builds are not stored in it.
        self.ephemeral = ephemeral
        #: Why the cache could not be used, for the build's warnings (CLI, synth line, result).
        self.warnings: list[str] = []

    @property
    def active(self) -> bool:
        return self.cache is not None

    def _unusable(self, exc: Exception, doing: str, root: Path | None = None) -> None:
        root = root or (self.cache.root if self.cache is not None else None)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        message = (
            f"the layer cache at {root} cannot be used ({doing}: {reason}); built without it. Fix the folder, "
            "point CDK_LAYER_CACHE_DIR / --cache-dir elsewhere, or turn the cache off (--no-cache)"
        )
        logger.info("%s", message)
        self.warnings.append(message)
        self.cache = None

    def restore(
        self,
        destination: Path,
        *,
        zip_to: Path | None = None,
        zip_level: int | None = None,
        scratch: Path | None = None,
    ) -> Restored | None:
        if self.cache is None:
            return None
        try:
            return self.cache.restore(
                self.fingerprint, destination, zip_to=zip_to, zip_level=zip_level, scratch=scratch
            )
        except OSError as exc:
            self._unusable(exc, "copying a cached layer out")
            empty(destination)
            if zip_to is not None:
                zip_to.unlink(missing_ok=True)
            return None

    def peek(self) -> dict[str, Any] | None:
        return self.cache.peek(self.fingerprint) if self.cache is not None else None

    def discard(self) -> None:
        if self.cache is not None:
            self.cache.discard(self.fingerprint)

    def store(self, python: Path, metadata: dict[str, Any], layer_zip: Path | None, zip_level: int | None) -> None:
        if self.cache is not None and not self.ephemeral:
            try:
                self.cache.store(self.fingerprint, python, metadata, layer_zip, zip_level)
            except (OSError, CacheFolderError) as exc:
                self._unusable(exc, "storing")

    def add_zip(self, layer_zip: Path, zip_level: int) -> None:
        if self.cache is not None:
            try:
                self.cache.add_zip(self.fingerprint, layer_zip, zip_level)
            except OSError as exc:
                self._unusable(exc, "storing layer.zip")


@contextlib.contextmanager
def open_session(cache: LayerCache | None, fingerprint: str, *, ephemeral: bool = False) -> Iterator[CacheSession]:
    """A CacheSession holding the fingerprint's lock; without a usable cache, an inactive one."""
    with contextlib.ExitStack() as stack:
        session = CacheSession(None, fingerprint)
        if cache is not None:
            try:
                stack.enter_context(cache.lock(fingerprint))
                session = CacheSession(cache, fingerprint, ephemeral=ephemeral)
            except (OSError, CacheFolderError) as exc:
                session._unusable(exc, "locking", cache.root)
        yield session
