"""The package cache: one entry per installed distribution and target (key.py), beside the layers.

Layout: ``<layer cache>/packages/<key>/`` (entry.py), ``<layer cache>/packages/.<key>.lock`` and
``.tmp-…`` folders of stores under way. The same rules as the layer cache (cache/store.py): the
root must be this library's (CACHEDIR.TAG, ownership.py); every file is copied in and out, never
linked, and checked against the entry's listing as it is copied; an entry is written in a private,
locked folder and renamed into place complete, under its key's lock, so a build killed while it
writes leaves a ``.tmp-`` folder that no lookup ever reads and the next store or prune sweeps; a
damaged, truncated, linked or foreign entry is removed and built again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ...core.copy import copy_file, copy_tree, umask_keeps_modes
from ...core.digests import KnownDigests
from ...core.files import read_regular
from ...core.locking import held_folder, is_abandoned, open_lock_file, remove_held, sweep, try_lock
from ...errors import CacheFolderError, VerificationError
from ...install.inventory import record_hash, record_rows
from ...package.archive import Stream, layer_mode
from ...verify.native.elf import FACTS_READER
from .. import ownership
from ..entry import private_folders, refuse_changed
from ..ownership import _TMP_PREFIX, _still_at
from . import members
from .entry import ENTRY_FILE, TREE, PackageEntry
from .key import PackageKey

logger = logging.getLogger(__name__)

FOLDER = "packages"
_BLOCK = 1 << 20


class PackageCache:
    """Installed distributions by key, in the layer cache folder. Safe for parallel processes."""

    def __init__(self, layer_cache_root: Path) -> None:
        self.home = Path(layer_cache_root)
        self.root = self.home / FOLDER

    def claim(self) -> None:
        """The layer cache folder is ours (or made so), and packages/ in it is a real folder."""
        ownership.claim(self.home)
        if os.path.lexists(self.root) and (self.root.is_symlink() or not self.root.is_dir()):
            raise CacheFolderError(
                f"{self.root} is not a folder of this cache (a link or a file is in its place): remove it, or "
                "point the cache elsewhere (--cache-dir / CDK_LAYER_CACHE_DIR)."
            )
        self.root.mkdir(mode=ownership.FOLDER_MODE, exist_ok=True)

    def entry(self, digest: str) -> PackageEntry:
        if not ownership._FINGERPRINT.fullmatch(digest):
            raise ValueError(f"not a package key: {digest!r}")
        return PackageEntry(self.root / digest)

    @contextlib.contextmanager
    def lock(self, digest: str, *, blocking: bool = True) -> Iterator[bool]:
        """An exclusive lock per key (as LayerCache.lock: the file must still be the one at its path)."""
        path = self.lock_path(digest)
        while True:
            with open_lock_file(path) as handle:
                if not try_lock(handle, blocking=blocking):
                    yield False
                    return
                if _still_at(handle, path):
                    yield True
                    return

    def lock_path(self, digest: str) -> Path:
        return self.root / f".{self.entry(digest).key}.lock"

    # -- use ---------------------------------------------------------------------------------
    def lookup(self, key: PackageKey) -> dict[str, Any] | None:
        """The entry's checked metadata, or None (a miss; a damaged entry is removed). Under ``lock``."""
        entry = self.entry(key.digest)
        if not os.path.lexists(entry.path):
            return None
        document = entry.checked_metadata(key) if entry.complete or entry.path.is_symlink() else None
        if document is None:
            logger.warning(
                "package cache entry %s (%s) is damaged or foreign; building it again", key.name, key.digest[:12]
            )
            entry.remove()
        return document

    def restore(
        self,
        key: PackageKey,
        document: dict[str, Any],
        destination: Path,
        skip: frozenset[str],
        pyc: tuple[bytes, int] | None = None,
        known: KnownDigests | None = None,
    ) -> bool:
        """Copy the entry's tree into ``destination`` (the layer being assembled), checked against its
        listing as it is copied; paths in ``skip`` (the same file from another entry) are not copied.
        False when the tree is not exactly its listing: what was copied is removed again, and so is
        the entry. Under ``lock``. Errors writing ``destination`` (the disk's) propagate, after the
        same clean-up. ``pyc``: the target's magic number and the flags of its hash-based .pyc, which
        every .pyc beside its source must carry, with its source's hash. ``known``: gets the sha256 of each
        file copied (core/digests.py), once the whole tree passed."""
        entry = self.entry(key.digest)
        copied = KnownDigests()
        pycs = PycCheck(document["files"], *pyc) if pyc is not None else None
        try:
            copy_tree(
                entry.tree,
                destination,
                document["files"],
                skip=skip,
                refuse=refuse_changed(document["executable"]),
                workers=1,  # a few entries are copied at once already (builders/incremental.py)
                known=copied,
                inspect=pycs,
            )
            check_against_record(destination, document["files"])
            if pycs is not None:
                pycs.verify(destination, entry.tree, skip)
            if known is not None:
                known.update(copied)
            return True
        except VerificationError:
            _undo(destination, [name for name in document["files"] if name not in skip])
            logger.warning(
                "package cache entry %s (%s) does not match its listing; building it again", key.name, key.digest[:12]
            )
            entry.remove()
            return False
        except OSError:
            _undo(destination, [name for name in document["files"] if name not in skip])
            raise

    def read_members(self, key: PackageKey, document: dict[str, Any], members_key: str) -> dict[str, Stream] | None:
        """The entry's raw deflate streams at ``members_key`` (members.py). Under ``lock``."""
        return members.read_members(self.entry(key.digest), document, members_key)

    def store(
        self,
        key: PackageKey,
        site: Path,
        files: Sequence[str],
        bytecode: dict[str, Any],
        zipped: tuple[str, Path, Mapping[str, tuple[int, int]]] | None = None,
        native: Mapping[str, dict[str, Any] | None] | None = None,
    ) -> bool:
        """Add the package: its ``files`` (relative to ``site``, the verified layer), copied and hashed on
        the way, and its zip members (members key, layer.zip, relative path -> (offset, length) of each
        raw stream in it). ``native``: the ELF audit's facts of its shared libraries (ElfInfo.to_json, by
        relative path), which a reuse need not parse again. False when an entry is there already. Under
        ``lock``."""
        entry = self.entry(key.digest)
        if entry.complete and not entry.path.is_symlink():
            return False
        with held_folder(self.root, f"{_TMP_PREFIX}{key.digest[:12]}-{uuid.uuid4().hex[:8]}") as temp:
            try:
                listing, executable = _copy_in(site, temp / TREE, files)
                document = {"key": key.digest, "inputs": key.inputs(), "files": listing, "bytecode": bytecode}
                document["executable"], document["members"] = executable, {}
                document["native"] = {name: facts for name, facts in sorted((native or {}).items()) if name in listing}
                document["native_reader"] = FACTS_READER
                if zipped is not None:
                    members_key, layer_zip, spans = zipped
                    document["members"][members_key] = members.write_members(temp, members_key, layer_zip, spans, files)
                (temp / ENTRY_FILE).write_text(json.dumps(document, sort_keys=True))
                (temp / ENTRY_FILE).chmod(0o644)
                private_folders(temp)
                if os.path.lexists(entry.path):  # a damaged leftover
                    entry.remove()
                temp.rename(entry.path)
                (entry.path / ".lock").unlink(missing_ok=True)
            finally:
                remove_held(temp)
        return True

    def sweep_leftovers(self) -> None:
        """Remove the ``.tmp-`` folders of stores whose process died (their lock is free)."""
        sweep(self.root, (_TMP_PREFIX,))

    def add_members(
        self, key: PackageKey, members_key: str, layer_zip: Path, spans: Mapping[str, tuple[int, int, int]]
    ) -> None:
        """Keep the zip members at a level the entry had none for (members.py). Under ``lock``."""
        entry = self.entry(key.digest)
        document = entry.checked_metadata(key) if entry.complete else None
        if document is not None:
            members.add_members(entry, document, members_key, layer_zip, spans)

    def touch(self, key: PackageKey) -> None:
        with contextlib.suppress(OSError):  # a read-only cache still serves hits
            os.utime(self.entry(key.digest).path / ENTRY_FILE)  # last use, for prune

    # -- listing and pruning -----------------------------------------------------------------
    def entries(self) -> list[PackageEntry]:
        """Entries (folders named by a key), most recently used first."""
        if not self.root.is_dir() or self.root.is_symlink():
            return []
        found = [
            PackageEntry(p)
            for p in self.root.iterdir()
            if ownership._FINGERPRINT.fullmatch(p.name) and not p.is_symlink()
        ]
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def leftovers(self) -> list[Path]:
        """Temporary folders of stores whose process died (their lock is free)."""
        if not self.root.is_dir() or self.root.is_symlink():
            return []
        return [
            p
            for p in sorted(self.root.iterdir())
            if p.name.startswith(_TMP_PREFIX) and p.is_dir() and not p.is_symlink() and is_abandoned(p)
        ]


def _copy_in(site: Path, tree: Path, files: Sequence[str]) -> tuple[dict[str, list[Any]], list[str]]:
    """Copy the package's files into an entry's tree, each with the mode the zip gives it (0644 or 0755,
    whatever the installer or umask made); their listing, and which are executable."""
    listing, executable = {}, []
    keeps = umask_keeps_modes()  # once for the package's files, not once a file
    for name in sorted(files):
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        listing[name] = copy_file(site / name, target, keeps_modes=keeps)
        mode = layer_mode(stat.S_IMODE(os.lstat(target).st_mode))
        target.chmod(mode)
        if mode & stat.S_IXUSR:
            executable.append(name)
    return listing, executable


def check_against_record(tree: Path, files: Mapping[str, list[Any]]) -> None:
    """Every listed file that its distribution's RECORD names has the hash RECORD gives it: an entry whose
    listing was edited to match an edited file is refused here (the listing's hashes were computed on
    the copy; RECORD came with the wheel the key names)."""
    records = [name for name in files if name.endswith(".dist-info/RECORD") and name.count("/") == 1]
    if len(records) != 1:
        raise VerificationError(f"{tree}: a package entry holds {len(records)} distributions, not one")
    for path, digest in record_rows(tree / records[0].partition("/")[0]):
        name = os.path.normpath(path).replace(os.sep, "/")
        if not digest.startswith("sha256=") or name not in files:
            continue
        want = digest.removeprefix("sha256=")
        if record_hash(bytes.fromhex(files[name][1])) != want:
            raise VerificationError(f"{name} in a package entry is not the file its RECORD names")


class PycCheck:
    """Every .pyc beside its source is a hash-based .pyc of the target's Python for exactly that source
    (magic number, flags, and the source hash the target's Python would write: ``_imp.source_hash``
    keyed by the magic number, the same function in CPython 3.7 and later). A .pyc swapped for another
    module's, another version's or another Python's is refused; a code object edited behind an intact
    header is not something a header shows.

    Called by the copy with each file's bytes (copy_tree's ``inspect``), so that nothing is read twice;
    a file the copy did not hold whole (too large) is read from the copy, one it skipped (another entry
    brings it, copied at the same time or not at all) from the entry's own tree, checked against the listing.
    Not CPython (no ``_imp.source_hash``): nothing to compare with, nothing checked."""

    def __init__(self, files: Mapping[str, list[Any]], magic: bytes, flags: int) -> None:
        self.hash = getattr(__import__("_imp"), "source_hash", None)
        self.key = int.from_bytes(magic, "little")
        self.prefix = magic + flags.to_bytes(4, "little")
        #: .pyc -> its source, for every .pyc whose source the entry lists (a sourceless module a wheel
        #: ships has its RECORD row instead).
        self.pairs = {name: source for name in files if (source := _source_of(name)) in files}
        self.files = files
        self.sources = frozenset(self.pairs.values())
        self.hashes: dict[str, bytes] = {}
        self.headers: dict[str, bytes] = {}

    def __call__(self, name: str, data: bytes | None) -> None:
        if data is None or self.hash is None:
            return
        if name in self.sources:
            self.hashes[name] = self.hash(self.key, data)
        elif name in self.pairs:
            self.headers[name] = data[:16]

    def verify(self, tree: Path, entry_tree: Path | None = None, skip: frozenset[str] = frozenset()) -> None:
        """Check every pair: ``tree`` is the copy; a file in ``skip`` (another entry brings it, and may not have
        copied it yet) is read from ``entry_tree``, this entry's own, and must be the file its listing names."""
        if self.hash is None:
            return
        for name, source in self.pairs.items():
            header = self.headers.get(name)
            if header is None:
                header = self._read(name, tree, entry_tree, skip)[:16]
            digest = self.hashes.get(source)
            if digest is None:
                digest = self.hash(self.key, self._read(source, tree, entry_tree, skip))
            if header != self.prefix + digest:
                raise VerificationError(f"{name} in a package entry is not the bytecode of {source}")

    def _read(self, name: str, tree: Path, entry_tree: Path | None, skip: frozenset[str]) -> bytes:
        if name not in skip or entry_tree is None:
            return read_regular(tree / name)
        data = read_regular(entry_tree / name)
        if [len(data), hashlib.sha256(data).hexdigest()] != self.files[name]:
            raise VerificationError(f"{entry_tree / name} is not the file its listing names")
        return data


def _source_of(name: str) -> str | None:
    """The source a ``__pycache__/mod.cpython-3X.pyc`` is compiled from (``mod.py`` beside the folder)."""
    folder, _, file = name.rpartition("/")
    if not (file.endswith(".pyc") and (folder == "__pycache__" or folder.endswith("/__pycache__"))):
        return None
    return f"{folder[: -len('__pycache__')]}{file[:-4].rpartition('.')[0]}.py"


def _undo(destination: Path, names: Sequence[str]) -> None:
    """Remove what a restore cut short wrote (the files it names, then folders it left empty)."""
    folders = set()
    for name in names:
        path = destination / name
        with contextlib.suppress(OSError):
            if os.path.lexists(path) and not path.is_dir():
                path.unlink()
        folders.update(path.parents)
    for folder in sorted((f for f in folders if f.is_relative_to(destination) and f != destination), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
