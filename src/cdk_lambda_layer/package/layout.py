"""The build folder: build/lambda/layer/{repo/,artifacts/python/,layer.zip,manifest.json}.

A build is written in a private temporary folder beside the final one and moved into
place only when complete, so an interrupted build never leaves something that looks
finished; the folder it replaces is moved aside first and then deleted. Only folders
this module created are ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core.files import read_regular
from ..core.locking import LOCK_NAME, held_folder, remove_held, sweep
from ..errors import BuildFolderError, VerificationError

_TMP_PREFIX = ".tmp-layer-"


_OLD_PREFIX = ".old-layer-"


@dataclass(frozen=True)
class LayerPathLayout:
    """Paths of one layer build, rooted at ``root`` (default <project>/build/lambda/layer).

    ``root`` is kept absolute and normalised (``<app>/../build`` as ``build``): the checks match the
    layer's RECORD rows, which they normalise, against its walk, which starts at ``root``; a ``..`` left
    in it would match none of them, and those checks would pass without reading a file."""

    root: Path

    def __post_init__(self) -> None:
        # by name, as the checks normalise (resolve() would also swap a linked folder for its target)
        object.__setattr__(self, "root", Path(os.path.abspath(self.root)))  # noqa: PTH100

    @classmethod
    def for_project(cls, project_root: Path) -> LayerPathLayout:
        return cls(project_root / "build" / "lambda" / "layer")

    @property
    def repo(self) -> Path:
        """What the build read and decided: inputs, the exported pylock.toml, the pins it installed."""
        return self.root / "repo"

    @property
    def inputs(self) -> Path:
        """Copies of the project's inputs (pyproject.toml, the lock, includes), logins removed."""
        return self.repo / "project"

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


def sweep_abandoned(parent: Path) -> list[Path]:
    """Delete staging folders of builds that died, and moved-aside old layers.

    A staging folder is swept only when its owner's lock can be taken (see locking.py), so a
    build running in another PID namespace keeps its folder.
    """
    return sweep(parent, (_TMP_PREFIX, _OLD_PREFIX))


@contextlib.contextmanager
def staging(final: LayerPathLayout, *, publish: bool = True) -> Iterator[LayerPathLayout]:
    """Yield a private, locked layout beside ``final``; on success move it into place.

    ``publish=False`` (the CDK construct: the asset folder is the only output) deletes the
    staging folder instead, so nothing is left in the project.
    """
    parent = final.root.parent
    if publish:
        check_replaceable(final.root)
    with _writable(parent):
        parent.mkdir(parents=True, exist_ok=True)
        sweep_abandoned(parent)
    name = f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as held:
        with _writable(parent):
            temp = LayerPathLayout(held.enter_context(held_folder(parent, name)))
        try:
            with _writable(parent):
                temp.python.mkdir(parents=True)
                temp.repo.mkdir()
            with _writable(parent, only=_FOLDER_ERRNOS):
                yield temp
            if publish:
                with _writable(parent):
                    publish_folder(temp.root, final.root)
                    (final.root / LOCK_NAME).unlink(missing_ok=True)
        finally:
            remove_held(temp.root)


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


#: What every published layer folder holds: the sign that a folder in the way was made by a build.
PUBLISHED_MARK = "manifest.json"


def check_replaceable(final: Path) -> None:
    """A build replaces ``final`` only when it is a layer folder a build published (or empty): a folder
    of the user's at that path (a mistyped --build-dir) is never deleted."""
    if not os.path.lexists(final):
        return
    if final.is_symlink() or not final.is_dir():
        kind = "a link" if final.is_symlink() else "a file"
        raise BuildFolderError(
            f"{final} is {kind}, not a layer folder a build made: nothing was changed. Remove it, or build "
            "elsewhere with build_dir= / --build-dir DIR."
        )
    if _published_by_us(final / PUBLISHED_MARK) or not any(final.iterdir()):
        return
    raise BuildFolderError(
        f"{final} holds files that no build put there (it has no {PUBLISHED_MARK}), and a build replaces that "
        "folder: nothing was changed. Move them, or build elsewhere with build_dir= / --build-dir DIR."
    )


def _published_by_us(manifest: Path) -> bool:
    """A manifest.json that this library wrote (a regular file naming it as the builder), not merely a
    file of that name (a folder of the user's may well have one)."""
    try:
        if not stat.S_ISREG(os.lstat(manifest).st_mode) or os.lstat(manifest).st_size > 16 * 1024 * 1024:
            return False
        document = json.loads(read_regular(manifest))
    except (OSError, ValueError, VerificationError):
        return False
    return isinstance(document, dict) and (document.get("builder") or {}).get("name") == "cdk-lambda-layer"


def publish_folder(built: Path, final: Path, attempts: int = 5) -> None:
    """Replace ``final`` with ``built`` by renames; tolerate a concurrent build doing the same.

    The folder replaced is first moved into a locked folder of our own (``.old-layer-…``), so that a
    deletion cut short leaves something the next sweep recognises, and nothing else ever is swept.
    """
    for _ in range(attempts):
        if os.path.lexists(final):
            check_replaceable(final)  # again: a folder may have appeared there while this build ran
            with held_folder(final.parent, f"{_OLD_PREFIX}{uuid.uuid4().hex[:8]}") as aside:
                with contextlib.suppress(FileNotFoundError):
                    final.rename(aside / "layer")
                remove_held(aside)
        try:
            built.rename(final)
            return
        except OSError:
            continue  # another build published between our two renames: go round again
    built.rename(final)
