"""The build folder: build/lambda/layer/{repo/,artifacts/python/,layer.zip,manifest.json}.

A build is written in a private temporary folder beside the final one and moved into
place only when complete, so an interrupted build never leaves something that looks
finished; the folder it replaces is moved aside first and then deleted. Only folders
this module created are ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildFolderError

_TMP_PREFIX = ".tmp-layer-"
_OLD_PREFIX = ".old-layer-"


@dataclass(frozen=True)
class LayerPathLayout:
    """Paths of one layer build, rooted at ``root`` (default <project>/build/lambda/layer)."""

    root: Path

    @classmethod
    def for_project(cls, project_root: Path) -> LayerPathLayout:
        return cls(project_root / "build" / "lambda" / "layer")

    @property
    def repo(self) -> Path:
        """Copies of pyproject.toml, the lock and the pinned requirements the build used."""
        return self.root / "repo"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def python(self) -> Path:
        """The installed, trimmed layer content (what goes under python/ in the zip)."""
        return self.artifacts / "python"

    @property
    def layer_zip(self) -> Path:
        return self.root / "layer.zip"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def requirements(self) -> Path:
        return self.repo / "requirements.txt"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # be conservative: never sweep another process's folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_abandoned(parent: Path) -> None:
    """Delete temporary folders left by builds that were killed (their process is gone)."""
    if not parent.is_dir():
        return
    for folder in parent.iterdir():
        name = folder.name
        if name.startswith(_OLD_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)
        elif name.startswith(_TMP_PREFIX):
            pid = name[len(_TMP_PREFIX) :].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staging(final: LayerPathLayout) -> Iterator[LayerPathLayout]:
    """Yield a temporary layout beside ``final``; on success move it into place."""
    parent = final.root.parent
    temp = LayerPathLayout(parent / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with _writable(parent):
        parent.mkdir(parents=True, exist_ok=True)
        sweep_abandoned(parent)
        temp.python.mkdir(parents=True)
        temp.repo.mkdir()
    try:
        with _writable(parent, only=_FOLDER_ERRNOS):
            yield temp
        with _writable(parent):
            publish(temp.root, final.root)
    finally:
        shutil.rmtree(temp.root, ignore_errors=True)


#: Failures of the build itself that mean "this folder cannot take the build".
_FOLDER_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


@contextlib.contextmanager
def _writable(folder: Path, only: frozenset[int] | None = None) -> Iterator[None]:
    """Turn file-system failures on the build folder into an error that says what to do."""
    try:
        yield
    except OSError as exc:
        if only is not None and exc.errno not in only:
            raise
        reason = exc.strerror or str(exc)
        raise BuildFolderError(
            f"Cannot write the build folder {folder} ({reason}"
            f"{': ' + str(exc.filename) if exc.filename else ''}). Free disk space or fix the "
            "permissions, or build elsewhere with build_dir= / --build-dir DIR."
        ) from exc


def publish(built: Path, final: Path, attempts: int = 5) -> None:
    """Replace ``final`` with ``built`` by renames; tolerate a concurrent build doing the same."""
    for _ in range(attempts):
        if final.exists():
            aside = final.parent / f"{_OLD_PREFIX}{uuid.uuid4().hex[:8]}"
            with contextlib.suppress(FileNotFoundError):
                final.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            built.rename(final)
            return
        except OSError:
            continue  # another build published between our two renames: go round again
    built.rename(final)


def link_tree(source: Path, destination: Path) -> None:
    """Mirror ``source`` into ``destination`` with hard links, copying where links fail
    (another file system). Safe because nothing here ever rewrites a file in place."""
    for folder, _dirs, names in os.walk(source):
        for name in sorted(names):
            path = Path(folder, name)
            target = destination / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
