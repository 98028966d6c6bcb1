"""A content-addressed cache of finished layers, keyed by the fingerprint, outside cdk.out.

CI jobs start with an empty cdk.out and CDK's own skip works only inside one cdk.out;
with this cache a layer whose fingerprint was built once on the machine (or restored by
a CI cache step) costs a copy, not a build, and a cached ``layer.zip`` is not zipped again.

Layout: ``<root>/CACHEDIR.TAG`` (https://bford.info/cachedir/: marks the folder as ours and
tells backup tools to skip it), ``<root>/<fingerprint>/{python/, layer.zip, entry.json}``
and ``<root>/.<fingerprint>.lock``. An entry is written in a private, locked folder
(``.tmp-…``) and renamed into place only when complete, under the fingerprint's lock.
``entry.json`` lists every file with its size and sha256; an entry that does not match it
(partial copy, edited or truncated file, an added link) is detected on use, removed and
rebuilt. Files are copied in and out, so no cache file ever shares an inode with a build
folder or an asset folder.

The cache deletes only what it can prove it made: folders named by a fingerprint or by
its own temporary pattern, inside a folder that carries its marker. A folder that is not
empty and has no marker is never used (a mistyped ``--cache-dir`` pointing at a project
or ``~/.cache`` loses nothing).

Where: ``cache_dir=`` (builders, construct prop), else the ``CDK_LAYER_CACHE_DIR``
environment variable, else the ``cdk-lambda-layer:cacheDir`` context key (construct),
else ``$XDG_CACHE_HOME/cdk-lambda-layer/layers`` (``~/.cache/...``). ``False``, or the
variable set to ``off``, turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CacheFolderError, VerificationError
from .inventory import open_regular, read_regular, walk_files
from .layout import copy_file, copy_tree, is_fresh_folder
from .locking import held_folder, is_abandoned, open_lock_file, remove_held, sweep, try_lock

logger = logging.getLogger(__name__)

CACHE_ENV = "CDK_LAYER_CACHE_DIR"
ENTRY_FILE = "entry.json"
ZIP_FILE = "layer.zip"
MARKER = "CACHEDIR.TAG"
MARKER_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder is a cache of AWS Lambda layers made by cdk-lambda-layer.\n"
    "# Every entry can be rebuilt; `cdk-lambda-layer cache prune` manages it.\n"
)
_TMP_PREFIX = ".tmp-"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_OFF = ("", "0", "off", "false", "no")


def cache_home() -> Path:
    """This library's folder under the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdk-lambda-layer"


def default_cache_dir() -> Path:
    return cache_home() / "layers"


def resolve_cache_dir(option: str | os.PathLike[str] | bool | None = None, context: Any = None) -> Path | None:
    """The cache folder: the option, else $CDK_LAYER_CACHE_DIR, else the context value, else the default.

    None when turned off. An empty or blank path given as the option is an error, not "here".
    """
    if option is False:
        return None
    if option not in (None, True):
        text = os.fspath(option)  # type: ignore[arg-type]
        if not str(text).strip():
            raise CacheFolderError(
                "The layer cache folder is an empty path: give a folder (--cache-dir DIR / cache_dir=...), "
                "or turn the cache off (--no-cache / cache_dir=False)."
            )
        return Path(text)
    from_env = os.environ.get(CACHE_ENV)
    if from_env is not None:
        return None if from_env.strip().lower() in _OFF else Path(from_env)
    if context is not None and context is not True:
        return None if context is False or str(context).strip().lower() in _OFF else Path(str(context))
    return default_cache_dir()


def _sha256(path: Path) -> str:
    """sha256 of a regular file; a link or fifo swapped in meanwhile is refused, never followed or waited on."""
    with os.fdopen(open_regular(path), "rb") as handle:
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_listing(root: Path) -> dict[str, list[Any]]:
    """relative path -> [size, sha256] for every file under ``root`` (a link or special file raises)."""
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

    @property
    def layer_zip(self) -> Path:
        return self.path / ZIP_FILE

    @property
    def complete(self) -> bool:
        return (self.path / ENTRY_FILE).is_file()

    def metadata(self) -> dict[str, Any]:
        return json.loads(read_regular(self.path / ENTRY_FILE))

    def remove(self) -> None:
        """Delete the entry; one that is a link loses the link only, never what it points at."""
        if self.path.is_symlink():
            self.path.unlink()
        else:
            shutil.rmtree(self.path, ignore_errors=True)

    @property
    def size(self) -> int:
        try:
            return sum(size for _p, size in walk_files(self.path))
        except (OSError, VerificationError):
            return 0

    @property
    def last_used(self) -> float:
        try:
            return (self.path / ENTRY_FILE).stat().st_mtime
        except OSError:
            return 0.0

    def is_intact(self) -> bool:
        """Every listed file is there with its size and content, nothing else, and no link anywhere
        (the entry's own folder included)."""
        try:
            document = self.checked_metadata()
            return document is not None and tree_listing(self.python) == document["files"]
        except (OSError, ValueError, KeyError, TypeError, VerificationError):
            return False

    def checked_metadata(self, *, zip_too: bool = True) -> dict[str, Any] | None:
        """The metadata, if the entry is a real folder holding only its own files (and, with
        ``zip_too``, an intact zip); None otherwise. The python/ tree is checked against ``files``
        by whoever reads it."""
        try:
            if not stat.S_ISDIR(os.lstat(self.path).st_mode):
                return None
            document = self.metadata()
            extra = {p.name for p in self.path.iterdir()} - {"python", ENTRY_FILE, ZIP_FILE, ".lock"}
            if extra or not _well_formed(document) or (zip_too and not self.zip_intact(document)):
                return None
            return document
        except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError):
            return None

    def zip_intact(self, document: dict[str, Any]) -> bool:
        """The entry's layer.zip is the one its metadata describes (or absent, when it names none)."""
        expected = document.get("zip")
        try:
            if expected is None:
                return not os.path.lexists(self.layer_zip)
            info = self.layer_zip.lstat()
            regular = stat.S_ISREG(info.st_mode)
            return regular and [info.st_size, _sha256(self.layer_zip)] == [expected["size"], expected["sha256"]]
        except (OSError, KeyError, TypeError, VerificationError):
            return False


def _copy_checked(source: Path, destination: Path, expected: dict[str, Any]) -> bool:
    """Copy a cached tree out, checking it on the way; False if it is not exactly ``expected``.

    One read per file instead of a check pass and a copy pass. On False (a changed, extra, missing
    or unreadable file, a link, a special file) the destination is emptied again.
    """
    try:
        copy_tree(source, destination, expected)
        return True
    except VerificationError:  # damaged (errors writing the destination are the disk's: they propagate)
        _empty(destination)
        return False


def _copy_zip_checked(source: Path, target: Path, expected: dict[str, Any]) -> bool:
    """Copy the cached layer.zip out, hashing it on the way; False (nothing left behind) if it differs."""
    done = False
    try:
        done = copy_file(source, target) == [expected["size"], expected["sha256"]]
    except FileExistsError:
        raise  # not ours to remove
    except VerificationError:
        pass
    finally:
        if not done:
            target.unlink(missing_ok=True)
    return done


def _empty(folder: Path) -> None:
    """Leave the restore's destination (a fresh folder of the build, never a link) empty."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def _check_destination(folder: Path, zip_to: Path | None) -> None:
    if not is_fresh_folder(folder):
        raise ValueError(f"restore needs a new or empty folder, not {folder}")
    if zip_to is not None and os.path.lexists(zip_to):
        raise ValueError(f"restore writes a new layer.zip, and {zip_to} exists")


def _well_formed(document: Any) -> bool:
    """entry.json has the shape this library writes: a listing of [size, sha256] and a zip or none."""
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return False
    listed = all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], str)
        for v in document["files"].values()
    )
    zip_info = document.get("zip")
    zip_ok = zip_info is None or (
        isinstance(zip_info, dict) and isinstance(zip_info.get("size"), int) and isinstance(zip_info.get("sha256"), str)
    )
    return listed and zip_ok and isinstance(document.get("manifest", {}), dict)


@dataclass(frozen=True)
class Restored:
    """What a cache hit gives back: the entry's metadata, and whether layer.zip was copied too."""

    metadata: dict[str, Any]
    zipped: bool


class LayerCache:
    """Finished layers by fingerprint. Safe for parallel processes on one machine."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- ownership ---------------------------------------------------------------------------
    def claim(self) -> None:
        """Make sure the root is this library's cache (create it with its marker), or raise.

        A folder with content but without this library's marker is refused, unless everything in
        it is a finished entry of this cache (one made before the marker existed): a name alone
        (``.tmp-…``, a 64-hex folder) proves nothing, and another tool's CACHEDIR.TAG is not ours.
        """
        if self.is_ours():
            return
        if os.path.lexists(self.root) and not self.root.is_dir():
            raise CacheFolderError(f"The layer cache {self.root} is a file, not a folder: pick another folder.")
        self.root.mkdir(parents=True, exist_ok=True)
        foreign = [p.name for p in self.root.iterdir() if not _proven_ours(p)]
        if foreign:
            shown = ", ".join(sorted(foreign)[:5])
            raise CacheFolderError(
                f"{self.root} is not a cdk-lambda-layer cache: it holds other files ({shown}) and not this "
                f"library's {MARKER}. Point the cache at a new or empty folder (--cache-dir / cache_dir= / "
                "CDK_LAYER_CACHE_DIR); nothing in this folder was changed."
            )
        _write_atomically(self.root / MARKER, MARKER_TEXT)

    def is_ours(self) -> bool:
        """The root holds this library's marker (a regular file saying so; another tool's tag is not it)."""
        return _is_our_marker(self.root / MARKER)

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
        path = self._lock_path(fingerprint)
        while True:
            with open_lock_file(path) as handle:
                if not try_lock(handle, blocking=blocking):
                    yield False
                    return
                if _still_at(handle, path):
                    yield True
                    return

    def _lock_path(self, fingerprint: str) -> Path:
        return self.root / f".{self._entry(fingerprint).fingerprint}.lock"

    # -- use ---------------------------------------------------------------------------------
    def restore(
        self, fingerprint: str, destination: Path, *, zip_to: Path | None = None, zip_level: int | None = None
    ) -> Restored | None:
        """Copy the cached python/ tree (and layer.zip, when asked and cached at that level) out; None on a miss.

        Call under ``lock(fingerprint)``. A damaged entry is removed and reported as a miss.
        """
        entry = self._entry(fingerprint)
        if not entry.complete:
            return None
        _check_destination(destination, zip_to)
        document = entry.checked_metadata(zip_too=False)
        cached_zip = (document or {}).get("zip") or {}
        zipped = zip_to is not None and cached_zip.get("level") == zip_level
        # Checked while copied (one read per file); the zip only when it is used (is_intact checks all).
        intact = document is not None and _copy_checked(entry.python, destination, document["files"])
        if intact and zipped and not _copy_zip_checked(entry.layer_zip, zip_to, cached_zip):  # type: ignore[arg-type]
            intact = False
            _empty(destination)  # the tree alone must not stay: a rebuild would install on top of it
        if not intact:
            logger.warning("layer cache entry %s is damaged; removing it and building again", fingerprint[:12])
            entry.remove()
            return None
        with contextlib.suppress(OSError):  # a read-only cache still serves hits
            os.utime(entry.path / ENTRY_FILE)  # last use, for prune
        return Restored(metadata=document, zipped=zipped)  # type: ignore[arg-type]

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
        """Add a finished layer (and its zip). Call under ``lock(fingerprint)``."""
        entry = self._entry(fingerprint)
        if entry.complete:
            return
        sweep(self.root, (_TMP_PREFIX,))
        with held_folder(self.root, f"{_TMP_PREFIX}{fingerprint[:12]}-{uuid.uuid4().hex[:8]}") as temp:
            try:
                files = copy_tree(python, temp / "python")
                document = {**metadata, "fingerprint": fingerprint, "files": files}
                document["zip"] = self._copy_zip(layer_zip, temp, level=zip_level) if layer_zip else None
                (temp / ENTRY_FILE).write_text(json.dumps(document, sort_keys=True))
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
        return {"size": target.stat().st_size, "sha256": _sha256(target), "level": level}

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

    def prune(self, *, older_than_days: float | None = None, keep_bytes: int | None = None) -> list[CacheEntry]:
        """Remove entries unused for ``older_than_days``, then the least recently used beyond
        ``keep_bytes``, incomplete ones and dead stores' leftovers; return the entries removed.

        Each entry is removed under its lock; one in use by a build right now is skipped.
        Refuses a folder without this cache's marker: it deletes only what it made.
        """
        if not self.root.exists():
            return []
        if not self.is_ours():
            raise CacheFolderError(
                f"{self.root} is not a cdk-lambda-layer cache (no {MARKER} in it): nothing was removed. "
                "Check --cache-dir / CDK_LAYER_CACHE_DIR."
            )
        removed: list[CacheEntry] = []
        now, total = time.time(), 0
        for entry in self.entries():  # most recently used first
            size = entry.size if entry.complete else 0
            too_old = older_than_days is not None and now - entry.last_used > older_than_days * 86400
            over = keep_bytes is not None and total + size > keep_bytes
            if entry.complete and not (too_old or over):
                total += size
                continue
            with self.lock(entry.fingerprint, blocking=False) as free:
                if free:
                    entry.remove()
                    self._lock_path(entry.fingerprint).unlink(missing_ok=True)  # held: see lock()
                    removed.append(entry)
                else:
                    logger.warning("layer %s is in use by a build; kept", entry.fingerprint[:12])
        self._forget_locks()
        sweep(self.root, (_TMP_PREFIX,))
        return removed

    def _forget_locks(self) -> None:
        """Delete lock files whose entry is gone (a build that failed, a prune of an older version)."""
        for path in self.root.glob(".*.lock"):
            fingerprint = path.name[1:-5]
            if not _FINGERPRINT.fullmatch(fingerprint) or os.path.lexists(self.root / fingerprint):
                continue
            with self.lock(fingerprint, blocking=False) as free:
                if free and not os.path.lexists(self.root / fingerprint):
                    path.unlink(missing_ok=True)


def _still_at(handle: Any, path: Path) -> bool:
    """The open file ``handle`` is still the file at ``path`` (not unlinked or replaced meanwhile)."""
    try:
        return os.fstat(handle.fileno()).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _is_our_marker(path: Path) -> bool:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
            return False
        text = read_regular(path).decode(errors="replace")
    except (OSError, VerificationError):
        return False
    return text.startswith(MARKER_TEXT.splitlines()[0]) and "cdk-lambda-layer" in text


def _proven_ours(path: Path) -> bool:
    """What a cache made before the marker existed holds: finished entries and their lock files."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISDIR(info.st_mode) and _FINGERPRINT.fullmatch(path.name):
        try:
            return json.loads(read_regular(path / ENTRY_FILE)).get("fingerprint") == path.name
        except (OSError, ValueError, AttributeError, VerificationError):
            return False
    return stat.S_ISREG(info.st_mode) and bool(re.fullmatch(r"\.[0-9a-f]{64}\.lock", path.name))


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


class CacheSession:
    """The cache as one build uses it, under the fingerprint's lock.

    A cache that cannot be used (read-only, full, not ours) must not fail a build that could
    succeed without it: every failure here is a warning and the build goes on uncached.
    """

    def __init__(self, cache: LayerCache | None, fingerprint: str) -> None:
        self.cache = cache
        self.fingerprint = fingerprint
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
        self, destination: Path, *, zip_to: Path | None = None, zip_level: int | None = None
    ) -> Restored | None:
        if self.cache is None:
            return None
        try:
            return self.cache.restore(self.fingerprint, destination, zip_to=zip_to, zip_level=zip_level)
        except OSError as exc:
            self._unusable(exc, "copying a cached layer out")
            _empty(destination)
            if zip_to is not None:
                zip_to.unlink(missing_ok=True)
            return None

    def peek(self) -> dict[str, Any] | None:
        return self.cache.peek(self.fingerprint) if self.cache is not None else None

    def discard(self) -> None:
        if self.cache is not None:
            self.cache.discard(self.fingerprint)

    def store(self, python: Path, metadata: dict[str, Any], layer_zip: Path | None, zip_level: int | None) -> None:
        if self.cache is not None:
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
def open_session(cache: LayerCache | None, fingerprint: str) -> Iterator[CacheSession]:
    """A CacheSession holding the fingerprint's lock; without a usable cache, an inactive one."""
    with contextlib.ExitStack() as stack:
        session = CacheSession(None, fingerprint)
        if cache is not None:
            try:
                stack.enter_context(cache.lock(fingerprint))
                session = CacheSession(cache, fingerprint)
            except (OSError, CacheFolderError) as exc:
                session._unusable(exc, "locking", cache.root)
        yield session
