"""Folders held by a lock for as long as the process that made them lives.

A build's staging folder and a cache store's temporary folder belong to one process.
When it dies (killed, out of memory) they stay behind, and a later build must sweep
them; but it must never sweep the folder of a build that is still running, even one in
another PID namespace (a devcontainer and its host, two CI containers sharing a
checkout), where a process id means nothing. So the owner holds an ``flock`` on
``.lock`` inside its folder for its whole life: the kernel drops that lock when the
owner dies, whatever namespace it ran in, and a sweeper deletes a folder only while it
holds the lock itself.

A folder is made under a name no sweeper looks at (``.init-…``), locked, and only then
renamed to its working name, so it never exists unlocked under a name that is swept.
Where there is no ``fcntl`` (Windows) nothing is ever swept: a leftover costs disk,
deleting a live build costs a broken layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
INIT_PREFIX = ".init-"
#: An ``.init-`` folder is swept only this long after it was made (its owner renames it within
#: microseconds; one this old lost its owner between mkdir and lock).
INIT_GRACE_SECONDS = 3600


def try_lock(handle: IO[str], *, blocking: bool) -> bool:
    """flock ``handle`` exclusively; False when not ``blocking`` and another process holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return blocking
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def open_lock_file(path: Path) -> IO[str]:
    """A lock file of ours, created if missing: never through a link, never a fifo or device (opened
    without blocking, then checked), so a file planted at that path can neither hang nor redirect us."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file: something else was put where the lock file goes")
    return os.fdopen(fd, "a")


@contextlib.contextmanager
def held_folder(parent: Path, name: str) -> Iterator[Path]:
    """Create ``parent/name`` and hold its lock until the block ends (the caller deletes or renames it)."""
    init = parent / f"{INIT_PREFIX}{uuid.uuid4().hex[:12]}"
    init.mkdir()
    with (init / LOCK_NAME).open("w") as handle:
        try_lock(handle, blocking=True)
        folder = parent / name
        init.rename(folder)
        yield folder


@contextlib.contextmanager
def if_abandoned(folder: Path) -> Iterator[bool]:
    """True (while holding its lock) when ``folder`` has a lock file that no live process holds.

    No lock file, or one that is not a regular file, is no proof that this library made the folder:
    False. The file is opened without following links and without blocking (a fifo planted there
    must not hang the sweeper); once locked, it must still be the folder's lock file (its owner may have
    finished and let go meanwhile).
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield False
        return
    with _lock_file(folder) as handle:
        yield handle is not None and try_lock(handle, blocking=False) and _still_there(handle.fileno(), folder)


@contextlib.contextmanager
def _lock_file(folder: Path) -> Iterator[IO[str] | None]:
    """``folder``'s lock file opened without following a link and without blocking, or None when it is
    missing or not a regular file (a fifo planted there must not hang us)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(folder / LOCK_NAME, flags)
    except OSError:
        yield None
        return
    with os.fdopen(fd) as handle:
        yield handle if stat.S_ISREG(os.fstat(fd).st_mode) else None


def wait_for_owner(folder: Path, waiting: Callable[[], object] = lambda: None) -> bool:
    """Wait until ``folder``'s owner lets go of it (``waiting()`` is called first when it still holds it,
    so a wait is never silent). True when the folder is then still there with nobody holding it (its
    owner died without finishing), False when the owner finished with it or there was none (no lock file,
    or not a regular one: never a fifo to hang on)."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    with _lock_file(folder) as handle:
        if handle is None:
            return False
        if not try_lock(handle, blocking=False):
            waiting()
            try_lock(handle, blocking=True)
        return _still_there(handle.fileno(), folder)


def _still_there(fd: int, folder: Path) -> bool:
    """The locked file is still ``folder``'s lock file: an owner that finished between our open and our
    lock has unlinked it (and removed its folder) before letting go, and is not a dead one."""
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(folder / LOCK_NAME))
    except OSError:
        return False


def is_abandoned(folder: Path) -> bool:
    """Whether ``folder``'s owner is gone (its lock can be taken right now)."""
    with if_abandoned(folder) as free:
        return free


def remove_held(folder: Path) -> None:
    """Delete a held folder, its lock file last: a deletion cut short leaves a folder a sweep still
    recognises as ours (its lock file is there, and free once this process is gone)."""
    for child in sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else ():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
    with contextlib.suppress(OSError):
        (folder / LOCK_NAME).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def sweep(parent: Path, prefixes: tuple[str, ...]) -> list[Path]:
    """Delete the folders under ``parent`` named with one of ``prefixes`` whose owner is gone.

    Only real folders (never a link) with those names and a lock file of their own, plus old
    ``.init-`` folders with their lock file, are ever considered; each is deleted while holding
    its lock, so a live owner cannot lose it, and a folder of somebody else's that merely has
    such a name is left alone.
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    now = time.time()
    for child in sorted(parent.iterdir()):
        name = child.name
        swept = name.startswith(prefixes) or (name.startswith(INIT_PREFIX) and now - _mtime(child) > INIT_GRACE_SECONDS)
        if not swept or child.is_symlink() or not child.is_dir():
            continue
        if name.startswith(INIT_PREFIX) and not os.path.lexists(child / LOCK_NAME):
            with contextlib.suppress(OSError):  # its owner died before locking it: empty, or left alone
                child.rmdir()
            continue
        with if_abandoned(child) as free:
            if free:
                remove_held(child)
                removed.append(child)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return time.time()
