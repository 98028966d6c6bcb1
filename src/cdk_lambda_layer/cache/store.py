"""A content-addressed cache of finished layers, keyed by the fingerprint, outside cdk.out.

CI jobs start with an empty cdk.out and CDK's own skip works only inside one cdk.out;
with this cache a layer whose fingerprint was built once on the machine (or restored by
a CI cache step) costs a copy, not a build, and a cached ``layer.zip`` is not zipped again.

Layout: ``<root>/CACHEDIR.TAG`` (ownership.py), ``<root>/<fingerprint>/{python/, layer.zip,
entry.json}`` (entry.py; a build that made a zip keeps the zip alone, which a hit unpacks) and
``<root>/.<fingerprint>.lock``. An entry is written in a private,
locked folder (``.tmp-…``) and renamed into place only when complete, under the fingerprint's lock.
``entry.json`` lists every file with its size and sha256; an entry that does not match it
(partial copy, edited or truncated file, an added link) is detected on use, removed and
rebuilt. Files are copied in and out, so no cache file ever shares an inode with a build
folder or an asset folder. Taking an entry out: restore.py; where the cache lives: location.py;
pruning: prune.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.copy import copy_tree
from ..core.locking import held_folder, is_abandoned, open_lock_file, remove_held, sweep, try_lock
from ..errors import VerificationError
from ..package.unpack import unpack_layer_zip
from . import ownership
from .entry import (
    ENTRY_FILE,
    ZIP_FILE,
    ZIP_FORM,
    CacheEntry,
    _well_formed,
    executables,
    file_sha256,
    private_folders,
)
from .ownership import (
    _FINGERPRINT,
    _TMP_PREFIX,
    _still_at,
    _write_atomically,
)
from .restore import Restored, take_out

logger = logging.getLogger(__name__)


class LayerCache:
    """Finished layers by fingerprint. Safe for parallel processes on one machine."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- ownership ---------------------------------------------------------------------------
    def claim(self) -> None:
        """Make sure the root is this library's cache (create it with its marker), or raise (ownership.py)."""
        ownership.claim(self.root)

    def is_ours(self) -> bool:
        """The root holds this library's marker (a regular file saying so; another tool's tag is not it)."""
        return ownership.is_ours(self.root)

    def _entry(self, fingerprint: str) -> CacheEntry:
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ValueError(f"not a fingerprint: {fingerprint!r}")
        return CacheEntry(self.root / fingerprint)

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, fingerprint: str, *, blocking: bool = True) -> Iterator[bool]:
        """An exclusive lock per fingerprint (POSIX flock); yields False if not blocking and taken.

        ``prune`` deletes the lock files of the entries it removes, while holding them; a process that
        was waiting on such a file then holds a lock nobody else can see, so after taking a lock it
        checks that the file is still the one at the path, and starts again if not.
        """
        self.claim()
        path = self.lock_path(fingerprint)
        while True:
            with open_lock_file(path) as handle:
                if not try_lock(handle, blocking=blocking):
                    yield False
                    return
                if _still_at(handle, path):
                    yield True
                    return

    def lock_path(self, fingerprint: str) -> Path:
        return self.root / f".{self._entry(fingerprint).fingerprint}.lock"

    # -- use ---------------------------------------------------------------------------------
    def restore(
        self,
        fingerprint: str,
        destination: Path,
        *,
        zip_to: Path | None = None,
        zip_level: int | None = None,
        scratch: Path | None = None,
    ) -> Restored | None:
        """Copy the cached python/ tree (and layer.zip, when asked and cached at that level) out; None on a miss.

        Call under ``lock(fingerprint)``. A damaged entry is removed and reported as a miss. ``scratch``: a
        folder of the build's for the copy of a zip-form entry's zip that is not ``zip_to`` (default: the
        system's temporary folder).
        """
        entry = self._entry(fingerprint)
        if not entry.complete:
            return None
        restored = take_out(entry, destination, zip_to=zip_to, zip_level=zip_level, scratch=scratch)
        if restored is None:
            logger.warning("layer cache entry %s is damaged; removing it and building again", fingerprint[:12])
            entry.remove()
            return None
        with contextlib.suppress(OSError):  # a read-only cache still serves hits
            os.utime(entry.path / ENTRY_FILE)  # last use, for prune
        return restored

    def peek(self, fingerprint: str) -> dict[str, Any] | None:
        """The metadata of a complete entry (not checked against its files), or None."""
        entry = self._entry(fingerprint)
        try:
            document = entry.metadata() if entry.complete else None
        except (OSError, ValueError, VerificationError):
            return None
        return document if _well_formed(document) else None

    def discard(self, fingerprint: str) -> None:
        """Remove an entry (to build it again, better). Call under ``lock(fingerprint)``."""
        self._entry(fingerprint).remove()

    def store(
        self,
        fingerprint: str,
        python: Path,
        metadata: dict[str, Any],
        layer_zip: Path | None = None,
        zip_level: int | None = None,
    ) -> None:
        """Add a finished layer. Call under ``lock(fingerprint)``.

        With its zip, the entry is the zip alone (entry.py, ``ZIP_FORM``): one file copied instead of the
        tree's thousands (0.5-0.9 s of every build of the ~15-package layer), and a hit unpacks it, which
        costs about what copying the tree out did. Without one (the construct's asset is the tree), the tree.
        """

        def fill(temp: Path) -> dict[str, Any]:
            if layer_zip is not None:
                return {"form": ZIP_FORM, "files": None, "zip": self._copy_zip(layer_zip, temp, level=zip_level)}
            files = copy_tree(python, temp / "python")
            return {"files": files, "executables": executables(temp / "python"), "zip": None}

        self._add(fingerprint, metadata, fill)

    def store_zip(
        self,
        fingerprint: str,
        fetch: Callable[[Path], None],
        metadata: dict[str, Any],
        *,
        zip_level: int,
        max_bytes: int,
        check: Callable[[Path, dict[str, list[Any]]], None] | None = None,
    ) -> None:
        """Add a layer from its zip (a remote hit): ``fetch`` writes the zip into the entry's private folder
        (and checks it), which is then unpacked there, listed as it is written, held to ``check`` (the
        tree, its listing), and kept at its level. Anything wrong with the zip is a VerificationError, and
        nothing is added. Call under ``lock``."""

        def fill(temp: Path) -> dict[str, Any]:
            fetch(temp / ZIP_FILE)
            files = unpack_layer_zip(temp / ZIP_FILE, temp / "python", max_bytes=max_bytes)
            if check is not None:
                check(temp / "python", files)
            info = (temp / ZIP_FILE).stat()
            return {
                "files": files,
                "executables": executables(temp / "python"),
                "zip": {"size": info.st_size, "sha256": file_sha256(temp / ZIP_FILE), "level": zip_level},
            }

        self._add(fingerprint, metadata, fill)

    def _add(self, fingerprint: str, metadata: dict[str, Any], fill: Callable[[Path], dict[str, Any]]) -> None:
        """Write an entry in a private, locked folder (``fill`` puts its files there) and rename it into place."""
        entry = self._entry(fingerprint)
        if entry.complete:
            return
        sweep(self.root, (_TMP_PREFIX,))
        with held_folder(self.root, f"{_TMP_PREFIX}{fingerprint[:12]}-{uuid.uuid4().hex[:8]}") as temp:
            try:
                document = {**metadata, "fingerprint": fingerprint, **fill(temp)}
                (temp / ENTRY_FILE).write_text(json.dumps(document, sort_keys=True))
                (temp / ENTRY_FILE).chmod(0o644)
                private_folders(temp)
                if os.path.lexists(entry.path):  # a damaged leftover
                    entry.remove()
                temp.rename(entry.path)
                (entry.path / ".lock").unlink(missing_ok=True)
            finally:
                remove_held(temp)

    def add_zip(self, fingerprint: str, layer_zip: Path, zip_level: int | None = None) -> None:
        """Keep a layer.zip made from a cached entry that had none. Call under ``lock(fingerprint)``."""
        entry = self._entry(fingerprint)
        if not entry.complete or entry.layer_zip.exists():
            return
        document = entry.metadata()
        partial = entry.path / f".{ZIP_FILE}.{uuid.uuid4().hex[:8]}"
        try:
            document["zip"] = self._copy_zip(layer_zip, entry.path, name=partial.name, level=zip_level)
            partial.replace(entry.layer_zip)
            _write_atomically(entry.path / ENTRY_FILE, json.dumps(document, sort_keys=True))
        finally:
            partial.unlink(missing_ok=True)

    @staticmethod
    def _copy_zip(source: Path, folder: Path, name: str = ZIP_FILE, level: int | None = None) -> dict[str, Any]:
        target = folder / name
        shutil.copyfile(source, target, follow_symlinks=False)
        target.chmod(0o644)  # whatever the umask: a cache file writable by others is not used
        return {"size": target.stat().st_size, "sha256": file_sha256(target), "level": level}

    # -- listing and pruning -----------------------------------------------------------------
    def entries(self) -> list[CacheEntry]:
        """Entries (folders named by a fingerprint), most recently used first."""
        if not self.root.is_dir():
            return []
        found = [CacheEntry(p) for p in self.root.iterdir() if _FINGERPRINT.fullmatch(p.name) and not p.is_symlink()]
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def leftovers(self) -> list[Path]:
        """Temporary folders of stores whose process died (their lock is free)."""
        if not self.root.is_dir():
            return []
        return [
            p
            for p in sorted(self.root.iterdir())
            if p.name.startswith(_TMP_PREFIX) and p.is_dir() and not p.is_symlink() and is_abandoned(p)
        ]
