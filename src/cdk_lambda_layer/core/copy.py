"""Copies of a layer's tree that are checked as they are made: regular files only, each read once and
hashed on the way, never through a link, never sharing an inode with the source (an edit in one
asset folder, build folder or cache entry must never show up in another).
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ..errors import VerificationError
from .digests import KnownDigests
from .files import open_regular, walk_relative

_BLOCK = 1 << 20


def is_fresh_folder(folder: Path) -> bool:
    """Absent, or an empty real folder (not a link, not a file): somewhere a tree can be put that
    merges with nothing of anybody's, and may be emptied again if the copy fails."""
    if not os.path.lexists(folder):
        return True
    return not folder.is_symlink() and folder.is_dir() and not any(folder.iterdir())


def copy_tree(
    source: Path,
    destination: Path,
    expected: dict[str, list[Any]] | None = None,
    *,
    skip: frozenset[str] = frozenset(),
    refuse: Callable[[str, os.stat_result], str | None] | None = None,
    workers: int = 4,
    known: KnownDigests | None = None,
    inspect: Inspect | None = None,
) -> dict[str, list[Any]]:
    """Copy the layer tree ``source`` into ``destination`` (regular files only, links refused) and
    return what was written: relative path -> [size, sha256].

    Copies, not hard links: an edit in one asset folder, build folder or cache entry must
    never show up in another. Each file is read once, hashed as its bytes pass and created
    exclusively, so the listing describes the copy itself and file creation (the dominant cost on
    most disks) happens once. Files are opened relative to descriptors of their folders
    (``os.fwalk``, no link followed) and must be the files the first walk saw, so a folder swapped
    for a link mid-copy is never read through. With ``expected`` (a cache entry's listing) the tree
    is checked as it is copied: a missing, extra or resized file is refused before anything is
    written, other content right after that file's copy. Anything wrong with or unreadable in
    ``source`` is a VerificationError; errors writing the destination stay OSErrors (the disk's).
    ``skip``: relative paths checked by the walk but not copied (the destination has them already,
    from another tree: a package entry's file that another entry brings too); they are not listed.
    ``refuse``: (relative path, lstat of a file or of a folder, ``""`` for ``source``) -> why it must not
    be used, or None; a reason is a VerificationError (files before anything is written, folders as
    they are entered).
    ``workers``: threads copying files at once (1: this thread only, for callers that copy several
    trees at once already).
    ``known``: where each copy's sha256 and CRC-32 are noted with the copy's stamp (core/digests.py), for
    checks of the destination (and its zip) that would otherwise read it again.
    ``inspect``: called with each copied file's relative path and its bytes (None for a file too large to
    hold whole, which the caller reads from the copy if it must), so a check of the contents needs no
    second read.

    Strings, not Paths, on the way: a layer has thousands of files, and on a slow core the objects
    made per file cost more than the file's system calls.
    """
    seen = _first_walk(source)
    for name, info in seen.items() if refuse is not None else ():
        if (reason := refuse(name, info)) is not None:
            raise VerificationError(f"{source}/{name} is {reason}")
    if expected is not None and {name: info.st_size for name, info in seen.items()} != {
        name: entry[0] for name, entry in expected.items()
    }:
        raise VerificationError(f"{source} does not hold the files its listing names")
    destination.mkdir(parents=True, exist_ok=True)
    top, into = os.fspath(source), os.fspath(destination)
    with _Copier(workers, source, expected, known, inspect, umask_keeps_modes()) as copier:
        for folder, _dirs, names, dir_fd in os.fwalk(top, follow_symlinks=False):
            relative = folder[len(top) + 1 :] if folder != top else ""
            if refuse is not None and (reason := refuse(relative, os.fstat(dir_fd))):
                raise VerificationError(f"{folder} is {reason}")
            prefix = f"{relative}/" if relative else ""
            wanted = []
            for name in names:
                key = prefix + name
                if key not in seen:
                    raise VerificationError(f"{source} changed while it was copied ({key} appeared)")
                if key not in skip:
                    wanted.append((name, key, seen[key]))
            if wanted:
                target = f"{into}/{relative}" if relative else into
                os.makedirs(target, exist_ok=True)  # noqa: PTH103 (strings on purpose, see the docstring)
                copier.folder(dir_fd, target, wanted)
        listing = copier.finish()
    if listing.keys() != seen.keys() - skip:  # a folder swapped or gone mid-copy: fwalk did not enter it
        raise VerificationError(f"{source} changed while it was copied")
    return dict(sorted(listing.items()))


#: (relative path, the file's bytes or None when it was too large to hold whole) -> None.
Inspect = Callable[[str, "bytes | None"], None]

#: Files up to this size are read in one call (and handed whole to ``inspect``); larger ones in blocks.
_WHOLE = 32 << 20


def umask_keeps_modes() -> bool:
    """Whether the process's umask leaves 0644 and 0755 alone (a copy is then created with its final mode and
    needs no chmod), read without changing it (os.umask would, for every thread). Read anew for each tree or
    file copied, never kept: the process may change its umask between two copies (a tighter one would
    otherwise leave files 0600)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:  # noqa: PTH123
            line = next((row for row in status if row.startswith("Umask:")), "")
        return bool(line) and int(line.split()[1], 8) & 0o755 == 0
    except (OSError, ValueError):
        return False


class _Copier:
    """Copies of one tree's files on a few threads (creating files is most of a copy's cost, and it waits
    on the kernel, not on Python). Each folder's files are opened relative to a duplicate of the walk's
    descriptor of that folder, and created relative to one of the destination folder, both held until
    they are copied; at most a few folders are held at once (a low open-file limit must not fail a big
    tree)."""

    _HELD = 4

    def __init__(
        self,
        workers: int,
        source: Path,
        expected: dict[str, list[Any]] | None,
        known: KnownDigests | None,
        inspect: Inspect | None,
        keeps_modes: bool,
    ) -> None:
        self.keeps_modes = keeps_modes
        self.known = known
        self.inspect = inspect
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self.source = source
        self.expected = expected
        self.pending: list[tuple[tuple[int, int], list[tuple[str, Future[list[Any]]]]]] = []
        self.done: dict[str, list[Any]] = {}

    def folder(self, dir_fd: int, target: str, files: list[tuple[str, str, os.stat_result]]) -> None:
        """Copy ``files`` (name, relative path, the walk's lstat) of the folder open as ``dir_fd`` into the
        folder ``target``."""
        held = os.dup(dir_fd) if self.pool is not None else dir_fd
        try:
            into = os.open(target, _FOLDER_FLAGS)
        except BaseException:
            if held != dir_fd:
                os.close(held)
            raise
        if self.pool is None:
            try:
                for name, key, seen in files:
                    self._check(key, self._one(held, into, target, name, key, seen))
            finally:
                os.close(into)
            return
        while len(self.pending) >= self._HELD:
            self._settle(self.pending.pop(0))
        pool = self.pool
        jobs = [(key, pool.submit(self._one, held, into, target, name, key, seen)) for name, key, seen in files]
        self.pending.append(((held, into), jobs))

    def _one(self, dir_fd: int, into: int, target: str, name: str, key: str, seen: os.stat_result) -> list[Any]:
        inspect = self.inspect
        peek = (lambda data: inspect(key, data)) if inspect is not None else None
        return _copy(
            name,
            dir_fd,
            name,
            into,
            seen=seen,
            shown=f"{self.source}/{key}",
            known=self.known,
            noted=f"{target}/{name}",
            peek=peek,
            keeps_modes=self.keeps_modes,
        )

    def _check(self, key: str, written: list[Any]) -> None:
        """A copied file against the listing, right after its copy."""
        if self.expected is not None and written != self.expected[key]:
            raise VerificationError(f"{self.source / key} is not the file its listing names")
        self.done[key] = written

    def _settle(self, held_jobs: tuple[tuple[int, int], list[tuple[str, Future[list[Any]]]]]) -> None:
        held, jobs = held_jobs
        try:
            for key, future in jobs:
                self._check(key, future.result())
        finally:
            wait([future for _key, future in jobs])
            for fd in held:
                os.close(fd)

    def finish(self) -> dict[str, list[Any]]:
        while self.pending:
            self._settle(self.pending.pop(0))
        return self.done

    def __enter__(self) -> _Copier:
        return self

    def __exit__(self, *exc: object) -> None:
        """On the way out, even on an error: no copy still running, no descriptor left open."""
        for held, jobs in self.pending:
            wait([future for _target, future in jobs])
            for fd in held:
                os.close(fd)
        self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def _first_walk(source: Path) -> dict[str, os.stat_result]:
    try:
        return dict(walk_relative(source))
    except OSError as exc:  # changed under the walk
        raise VerificationError(f"{source} changed while it was read ({exc.strerror})") from exc


def copy_file(
    source: Path,
    target: Path,
    seen: os.stat_result | None = None,
    *,
    dir_fd: int | None = None,
    known: KnownDigests | None = None,
    keeps_modes: bool | None = None,
) -> list[Any]:
    """Copy one regular file with its permission bits (setuid/setgid/sticky dropped: a layer needs
    none); [size, sha256] of the bytes copied. ``seen``: the lstat the caller's walk made; the file
    opened must be that one, mode unchanged. ``dir_fd``: open ``source``'s name relative to that folder descriptor.
    ``known``: the copy's sha256 is noted there with its stamp (taken once its mode is set).
    ``keeps_modes``: umask_keeps_modes(), read once by a caller that copies many files (else read here)."""
    if keeps_modes is None:
        keeps_modes = umask_keeps_modes()
    opened = source.name if dir_fd is not None else os.fspath(source)
    return _copy(
        opened,
        dir_fd,
        os.fspath(target),
        None,
        seen=seen,
        shown=source,
        known=known,
        noted=os.fspath(target),
        keeps_modes=keeps_modes,
    )


def _copy(
    name: str,
    dir_fd: int | None,
    target: str,
    into: int | None,
    *,
    seen: os.stat_result | None,
    shown: Path | str,
    known: KnownDigests | None,
    noted: str,
    peek: Callable[[bytes | None], None] | None = None,
    keeps_modes: bool = False,
) -> list[Any]:
    """copy_file's work, on names relative to folder descriptors (``dir_fd`` for the source, ``into`` for
    the target; None: the names are paths). ``shown``: the source as errors name it; ``noted``: the target
    as ``known`` keys it; ``peek``: gets the bytes copied (see copy_tree's ``inspect``); ``keeps_modes``:
    umask_keeps_modes(), read by the caller."""
    fd = open_regular(name, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if seen is not None and (_identity(info) != _identity(seen) or info.st_mode != seen.st_mode):
            # Another file, or a chmod since the walk (whose lstat the caller's ``refuse`` judged): the copy
            # gets the mode it opens, which must be the one that was checked.
            raise VerificationError(f"{shown} is not the file it was a moment ago")
        mode = stat.S_IMODE(info.st_mode) & 0o777
        exact = mode in (0o644, 0o755) and keeps_modes
        out = os.open(target, _CREATE_FLAGS, mode if exact else 0o600, dir_fd=into)
        try:
            crc: int | None = None
            if info.st_size <= _WHOLE:
                data = _read_whole(fd, info.st_size, shown)
                digest = hashlib.sha256(data)
                _write_all(out, data)
                if peek is not None:
                    peek(data)
                if known is not None:
                    crc = zlib.crc32(data)
                size = len(data)
            else:
                digest, size = _stream(fd, out, shown)
                if peek is not None:
                    peek(None)
            if not exact:
                os.fchmod(out, mode)
            if known is not None:
                known.note(noted, os.fstat(out), digest.hexdigest(), crc)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return [size, digest.hexdigest()]


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_whole(fd: int, size: int, source: Path | str) -> bytes:
    """The file's bytes in one read where it gives them all (a regular file's read returns what was asked
    unless the end comes first); asked for one byte more, so a file that grew since its fstat is read on."""
    data = _read_source(fd, source, size + 1)
    if len(data) == size:
        return data
    rest = [data]
    while block := _read_source(fd, source, _BLOCK):
        rest.append(block)
    return b"".join(rest)


def _stream(fd: int, out: int, source: Path | str) -> tuple[Any, int]:
    digest, size = hashlib.sha256(), 0
    while block := _read_source(fd, source, _BLOCK):
        digest.update(block)
        size += len(block)
        _write_all(out, block)
    return digest, size


def _write_all(out: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(out, view) :]


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _read_source(fd: int, source: Path | str, size: int) -> bytes:
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise VerificationError(f"{source} cannot be read ({exc.strerror})") from exc


def move_tree(source: Path, destination: Path) -> None:
    """Move the layer tree ``source`` to ``destination`` (absent or an empty folder) by a rename, or
    copy it (copy_tree's rules) where a rename cannot (another file system, a folder in the way)."""
    try:
        if destination.is_dir() and not destination.is_symlink():
            destination.rmdir()  # only an empty folder: anything in it stays, and the copy below merges
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.rename(destination)
    except OSError:
        copy_tree(source, destination)
