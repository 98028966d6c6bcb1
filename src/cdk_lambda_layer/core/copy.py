"""Copies of a layer's tree that are checked as they are made: regular files only, each read once and
hashed on the way, never through a link, never sharing an inode with the source (an edit in one
asset folder, build folder or cache entry must never show up in another).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ..errors import VerificationError
from .digests import KnownDigests
from .files import open_regular, walk_stats

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
    ``known``: where each copy's sha256 is noted with the copy's stamp (core/digests.py), for checks of
    the destination that would otherwise read it again.
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
    with _Copier(workers, source, expected, known) as copier:
        for folder, _dirs, names, dir_fd in os.fwalk(source, follow_symlinks=False):
            relative = Path(folder).relative_to(source)
            if refuse is not None and (reason := refuse(_folder_name(relative), os.fstat(dir_fd))):
                raise VerificationError(f"{folder} is {reason}")
            if names:
                (destination / relative).mkdir(parents=True, exist_ok=True)
            keys = [(relative / name).as_posix() for name in names]
            for key in keys:
                if key not in seen:
                    raise VerificationError(f"{source} changed while it was copied ({key} appeared)")
            wanted = [(name, key) for name, key in zip(names, keys, strict=True) if key not in skip]
            if wanted:
                copier.folder(Path(folder), dir_fd, [(name, key, destination / key, seen[key]) for name, key in wanted])
        listing = copier.finish()
    if listing.keys() != seen.keys() - skip:  # a folder swapped or gone mid-copy: fwalk did not enter it
        raise VerificationError(f"{source} changed while it was copied")
    return dict(sorted(listing.items()))


def _folder_name(relative: Path) -> str:
    return "" if relative == Path() else relative.as_posix()


class _Copier:
    """Copies of one tree's files on a few threads (creating files is most of a copy's cost, and it waits
    on the kernel, not on Python). Each folder's files are opened relative to a duplicate of the walk's
    descriptor of that folder, held until they are copied; at most a few folders are held at once (a low
    open-file limit must not fail a big tree)."""

    _HELD = 4

    def __init__(
        self, workers: int, source: Path, expected: dict[str, list[Any]] | None, known: KnownDigests | None
    ) -> None:
        self.known = known
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self.source = source
        self.expected = expected
        self.pending: list[tuple[int, list[tuple[str, Future[list[Any]]]]]] = []
        self.done: dict[str, list[Any]] = {}

    def folder(self, folder: Path, dir_fd: int, files: list[tuple[str, str, Path, os.stat_result]]) -> None:
        """Copy ``files`` (name, relative path, target, the walk's lstat) of ``folder``, open as ``dir_fd``."""
        if self.pool is None:
            for name, key, target, seen in files:
                self._check(key, copy_file(folder / name, target, seen=seen, dir_fd=dir_fd, known=self.known))
            return
        while len(self.pending) >= self._HELD:
            self._settle(self.pending.pop(0))
        held = os.dup(dir_fd)
        pool = self.pool
        known = self.known
        jobs = [(k, pool.submit(copy_file, folder / n, t, seen=s, dir_fd=held, known=known)) for n, k, t, s in files]
        self.pending.append((held, jobs))

    def _check(self, key: str, written: list[Any]) -> None:
        """A copied file against the listing, right after its copy."""
        if self.expected is not None and written != self.expected[key]:
            raise VerificationError(f"{self.source / key} is not the file its listing names")
        self.done[key] = written

    def _settle(self, held_jobs: tuple[int, list[tuple[str, Future[list[Any]]]]]) -> None:
        held, jobs = held_jobs
        try:
            for key, future in jobs:
                self._check(key, future.result())
        finally:
            wait([future for _key, future in jobs])
            os.close(held)

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
            os.close(held)
        self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _first_walk(source: Path) -> dict[str, os.stat_result]:
    try:
        return {path.relative_to(source).as_posix(): info for path, info in walk_stats(source)}
    except OSError as exc:  # changed under the walk
        raise VerificationError(f"{source} changed while it was read ({exc.strerror})") from exc


def copy_file(
    source: Path,
    target: Path,
    seen: os.stat_result | None = None,
    *,
    dir_fd: int | None = None,
    known: KnownDigests | None = None,
) -> list[Any]:
    """Copy one regular file with its permission bits (setuid/setgid/sticky dropped: a layer needs
    none); [size, sha256] of the bytes copied. ``seen``: the lstat the caller's walk made; the file
    opened must be that one, mode unchanged. ``dir_fd``: open ``source``'s name relative to that folder descriptor.
    ``known``: the copy's sha256 is noted there with its stamp (taken once its mode is set)."""
    fd = open_regular(source.name if dir_fd is not None else source, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if seen is not None and (_identity(info) != _identity(seen) or info.st_mode != seen.st_mode):
            # Another file, or a chmod since the walk (whose lstat the caller's ``refuse`` judged): the copy
            # gets the mode it opens, which must be the one that was checked.
            raise VerificationError(f"{source} is not the file it was a moment ago")
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            digest, size = hashlib.sha256(), 0
            while block := _read_source(fd, source):
                digest.update(block)
                size += len(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(out, view) :]
            os.fchmod(out, stat.S_IMODE(info.st_mode) & 0o777)
            if known is not None:
                known.note(target, os.fstat(out), digest.hexdigest())
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return [size, digest.hexdigest()]


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _read_source(fd: int, source: Path) -> bytes:
    try:
        return os.read(fd, _BLOCK)
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
