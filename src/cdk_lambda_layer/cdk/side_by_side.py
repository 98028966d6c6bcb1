"""The layers of one synth built side by side instead of one after another.

CDK bundles an asset inside its construct: the app's layers would build one after another while the
rest of the app waits, and a cold synth of five layers costs five builds end to end. Here
``try_bundle`` starts the build on a small pool and answers at once, leaving an empty ``python/``
in CDK's bundling folder; the construct's validation (``node.add_validation``: ``app.synth()`` runs
it before it writes any template or manifest) waits for the build and moves the finished ``python/``
into the asset folder, or reports the build's error under the construct's path, as CDK reports its
own. So a synth that succeeds has every layer in place before the assembly exists, and one that fails
leaves no asset folder behind.

What could go wrong, and what stops it:

- *The process dies before the move* (killed, out of memory). CDK would find ``asset.<hash>`` next
  time and skip bundling it: an empty layer. Each pending build therefore holds a locked folder
  ``.cdk-lambda-layer-pending-asset.<hash>`` beside it (core/locking.py); the next construct in that
  cdk.out finds it with its lock free, deletes the unfinished asset folder and the pending folder,
  and CDK bundles the layer again. The build's output lives in that folder until the move, so it is
  never inside the asset folder unfinished.
- *Validation never runs* (``app.synth(skip_validation=True)``, an app that never synthesizes): an
  exit hook moves what finished into place, and for a build that failed prints the error and ends
  the process with status 1, so no empty layer is deployed in silence.
- *Code that must not run on a worker thread*: the build is this library's Python and its
  subprocesses; it never calls into jsii (whose kernel serves one thread) or changes process-wide
  state (umask, signal handlers, the working folder).

``cdk-lambda-layer:parallel=false`` (context) builds inside the construct as before: a build error is
then raised by the constructor (inside CDK's "Failed to bundle asset") rather than by ``app.synth()``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import aws_cdk as cdk
import jsii
from constructs import Construct, IValidation

from ..core.locking import held_folder, if_abandoned, remove_held, wait_for_owner
from ..errors import LayerBuildError

logger = logging.getLogger(__name__)

PENDING_PREFIX = ".cdk-lambda-layer-pending-"
#: CDK's name for a bundled asset folder; its bundling folder adds ``-building`` (as aws-cdk-lib 2.275 does).
#: A CDK that bundles into the asset folder itself works too: that folder is used as it is.
_ASSET_NAME = re.compile(r"asset\.[0-9a-f]{64}")
_BUILDING = "-building"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_pending: list[PendingLayer] = []
#: This process's pending builds by (cdk.out, asset name): a second construct of the same asset waits on it.
#: cdk.out as a real path: CDK bundles into an absolute one, a stage's asset_outdir is spelled as given.
_by_asset: dict[tuple[str, str], PendingLayer] = {}
_swept: set[str] = set()


def workers() -> int:
    """Builds at once: one more than the CPUs, at most 8. Each build compiles and checks on every CPU
    but spends part of its time waiting on a tool (an export, a copy); on 2 CPUs the example app's
    five layers synthesized fastest with 3 at once (9.1-9.3 s against 9.7 s with 2 and 9.5-9.8 s with 5)."""
    return min(8, (os.cpu_count() or 1) + 1)


def _submit(work: Callable[[], object]) -> Future[object]:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(workers(), thread_name_prefix="cdk-lambda-layer")
            atexit.register(finish_all_at_exit)
        return _pool.submit(work)


def staged_asset(construct: Construct) -> tuple[Path, str] | None:
    """(cdk.out, asset.<hash>) of the asset CDK staged for ``construct`` (its "Code" child); None when
    staging is off or the name is not one CDK gives a bundled asset."""
    code, stage = construct.node.try_find_child("Code"), cdk.Stage.of(construct)
    path = getattr(code, "asset_path", None)
    if stage is None or not path or not _ASSET_NAME.fullmatch(Path(path).name):
        return None
    return Path(stage.asset_outdir), Path(path).name


def _asset_key(outdir: Path, name: str) -> tuple[str, str]:
    return os.path.realpath(outdir), name


def _own_pending(outdir: Path, name: str, marker: Path) -> PendingLayer | None:
    """This process's build of the asset: by its cdk.out, else by its pending folder (a lock of our own
    is never waited on: this process lets go of it only in a validation after this one, or at exit)."""
    own = _by_asset.get(_asset_key(outdir, name))
    if own is not None:
        return own
    try:
        here = marker.lstat()
    except OSError:
        return None
    for pending in list(_pending):
        with contextlib.suppress(OSError):
            if os.path.samestat(pending.folder.lstat(), here):
                return pending
    return None


def asset_name(bundle_dir: Path) -> str | None:
    """The asset folder CDK renames its bundling folder to; None for a name CDK does not give."""
    name = bundle_dir.name.removesuffix(_BUILDING)
    return name if _ASSET_NAME.fullmatch(name) else None


class PendingLayer:
    """One layer building beside the synth, until its validation (or the exit hook) finishes it."""

    def __init__(self, construct_path: str, bundle_dir: Path, name: str) -> None:
        self.construct_path = construct_path
        self.bundle_dir = bundle_dir
        self.outdir = bundle_dir.parent
        self.name = name
        self._hold = contextlib.ExitStack()
        self.folder = self._hold.enter_context(held_folder(self.outdir, PENDING_PREFIX + name))
        self._future: Future[object] | None = None
        self._lock = threading.Lock()
        self._message: str | None = None
        self._finished = False
        self.reported = False

    @classmethod
    def start(cls, construct_path: str, bundle_dir: Path, build: Callable[[Path], object]) -> PendingLayer | None:
        """Start ``build(folder)`` (it leaves ``folder/python``) and mark CDK's folder as bundled; None
        when this folder cannot be deferred (an unknown name, a pending folder already there)."""
        name = asset_name(bundle_dir)
        if name is None:
            return None
        try:
            pending = cls(construct_path, bundle_dir, name)
        except OSError as exc:
            logger.info("%s: building inside the construct (%s)", construct_path, exc)
            return None
        (bundle_dir / "python").mkdir()  # CDK refuses an empty bundling folder
        pending._future = _submit(lambda: build(pending.folder))
        _pending.append(pending)
        _by_asset[_asset_key(pending.outdir, name)] = pending
        return pending

    def finish(self) -> str | None:
        """Wait for the build and put its python/ into the asset folder; the error message, if it failed.
        Safe to call again (the validation, then the exit hook): the second call only answers. An
        interrupt while waiting changes nothing (the exit hook, or the next synth's sweep, settles it)."""
        with self._lock:
            if not self._finished:
                self._message = self._settle()
                self._finished = True
            return self._message

    def _settle(self) -> str | None:
        assert self._future is not None
        error = self._future.exception()  # waits
        target = self.bundle_dir if self.bundle_dir.exists() else self.outdir / self.name
        if error is None:
            try:
                _replace_placeholder(target / "python", self.folder / "python")
                message = None
            except LayerBuildError as exc:
                message = str(exc)
        elif isinstance(error, LayerBuildError):
            message = str(error)
        else:  # a bug (or a SystemExit on the worker) must not leave an empty layer behind either
            logger.debug("%s: layer build failed", self.construct_path, exc_info=error)
            message = f"the layer build failed: {error!r}"
        if message is not None:
            # No asset folder survives a failed build: CDK would take it as bundled. Removed while the
            # pending folder still says it is unfinished, so a synth killed meanwhile leaves it to the sweep.
            _remove_asset(target)
        if message is None or not os.path.lexists(target):
            remove_held(self.folder)
        self._hold.close()
        return message


def _replace_placeholder(placeholder: Path, built: Path) -> None:
    """The empty python/ left for CDK gives way to the finished one (a rename within cdk.out)."""
    try:
        placeholder.rmdir()  # only an empty folder: anything put there meanwhile makes this fail
        built.rename(placeholder)
    except OSError as exc:
        raise LayerBuildError(
            f"the finished layer could not be moved into {placeholder.parent} ({exc.strerror or exc}): "
            "something else wrote into the asset folder during the synth. Run the synth again."
        ) from exc


def _remove_asset(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def sweep_unfinished(outdir: Path) -> list[str]:
    """Remove the asset folders a synth that died left unfinished in ``outdir`` (their pending folder's
    lock is free), so CDK bundles them again; once per folder and process, at construct time (one
    listing of cdk.out). The names removed."""
    key = os.fspath(outdir)
    if key in _swept or not outdir.is_dir():
        return []
    _swept.add(key)
    removed = []
    for child in sorted(outdir.iterdir()):
        name = child.name.removeprefix(PENDING_PREFIX)
        if name == child.name or not _ASSET_NAME.fullmatch(name) or child.is_symlink() or not child.is_dir():
            continue
        with if_abandoned(child) as free:
            if free:
                _remove_asset(outdir / name)
                _remove_asset(outdir / f"{name}{_BUILDING}")
                remove_held(child)
                removed.append(name)
    if removed:
        logger.warning("removed %d layer asset(s) a stopped synth left unfinished in %s", len(removed), outdir)
    return removed


def wait_for_other_build(outdir: Path, name: str) -> str | None:
    """For an asset CDK found in place and did not bundle: wait for a build of it still running, in this
    process (the same layer declared twice) or in another synth into the same cdk.out (apps run
    directly; the CDK CLI locks cdk.out), so this synth never finishes naming an unfinished layer.
    The error message when that build did not finish it."""
    marker = outdir / f"{PENDING_PREFIX}{name}"
    own = _own_pending(outdir, name, marker)
    if own is not None:
        return own.finish()
    if marker.is_symlink() or not marker.is_dir():
        return None

    def waiting() -> None:
        print(
            f"[cdk-lambda-layer] waiting for another synth building {name} into {outdir} (its marker: {marker})",
            file=sys.stderr,
            flush=True,
        )

    if wait_for_owner(marker, waiting):
        return (
            f"its asset folder {outdir / name} was left unfinished by another synth that stopped: run the "
            "synth again (it builds the layer anew)."
        )
    # Its owner let go without dying: it moved the finished python/ in (empty for a layer with no
    # packages), or it failed and removed the asset folder.
    python = outdir / name / "python"
    if python.is_symlink() or not python.is_dir():
        return (
            f"another synth building this layer into {outdir} at the same time did not finish it: run the "
            "synth again, one synth per cdk.out at a time."
        )
    return None


@jsii.implements(IValidation)
class FinishLayer:
    """The construct's validation: the layer's build is finished (or its error reported) before
    ``app.synth()`` writes the assembly."""

    def __init__(self) -> None:
        self.pending: PendingLayer | None = None
        #: Where CDK staged the asset, (cdk.out, asset.<hash>), asked at validation (set by the construct).
        self.locate: Callable[[], tuple[Path, str] | None] = lambda: None

    def validate(self) -> list[str]:
        if self.pending is None:
            located = self.locate()
            message = wait_for_other_build(*located) if located else None
            return [message] if message else []
        message = self.pending.finish()
        self.pending.reported = True
        if message:
            # CDK keeps what it staged for the process: an app synthesized again in it (the same outdir)
            # would be handed the asset folder just removed, and never bundle it.
            cdk.AssetStaging.clear_asset_hash_cache()
        return [message] if message else []


def finish_all_at_exit() -> None:
    """Builds no validation finished: moved into place, or their errors printed and the exit status 1."""
    failed = [(p.construct_path, m) for p in list(_pending) if (m := p.finish()) and not p.reported]
    for path, message in failed:
        print(f"[cdk-lambda-layer] ERROR {path}: {message}", file=sys.stderr, flush=True)
    if failed:
        os._exit(1)
