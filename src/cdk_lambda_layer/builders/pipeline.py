"""One build, from the fingerprint to a published layer: the layer cache first, else every step.

``LayerRun`` drives what every builder shares: a private, locked staging folder (package/layout.py)
under the fingerprint's cache lock (cache/session.py); a cache hit held to the rules the fingerprint
cannot know (cache/reuse.py, this build's size limit); else the builder's own steps (``Builder``:
prepare, install, finish, import check, verify), the manifest and the cache store; then the zip, and
the python/ tree delivered where the caller wants it. Builders differ only in their steps.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from ..cache.remote.location import RemoteLocation
from ..cache.remote.session import RemoteSession, scratch_cache
from ..cache.restore import Restored
from ..cache.session import CacheSession, open_session
from ..cache.store import LayerCache
from ..core.copy import copy_tree, is_fresh_folder, move_tree
from ..core.files import walk_files
from ..errors import BuildFolderError, LayerBuildError, ToolNotFoundError
from ..install.inventory import InstalledPackage, installed_packages
from ..install.target_python import BytecodeOutcome, ImportOutcome
from ..options import LayerOptions
from ..package.archive import DEFAULT_ZIP_LEVEL
from ..package.layout import LayerPathLayout, staging
from ..package.manifest import ToolVersions, build_manifest, write_manifest
from ..plan.shape import empty_note
from ..project.load import Project
from ..target import LambdaTarget
from ..verify.layer import VerifyReport
from ..verify.size import check_size
from .notes import outcome_warnings
from .prepare import copy_inputs
from .result import LayerBuildResult, Prepared, rebase
from .steps import StepLog

logger = logging.getLogger(__name__)


class Builder(Protocol):
    """What a builder gives the run: its choices and its steps (see builders/local.py)."""

    project: Project
    target: LambdaTarget
    options: LayerOptions
    layout: LayerPathLayout
    make_zip: bool
    zip_level: int
    cache: LayerCache | None
    remote_cache: RemoteLocation | None
    build_mode: str
    log: StepLog

    @property
    def fingerprint(self) -> str: ...
    def describe(self) -> str: ...
    def rebuild_reason(self, manifest: dict[str, Any]) -> str | None: ...
    def locate_tools(self) -> None: ...
    def tool_versions(self) -> ToolVersions: ...
    def prepare(self, work: LayerPathLayout) -> Prepared: ...
    def install(self, prepared: Prepared, work: LayerPathLayout) -> None: ...
    def finish(self, work: LayerPathLayout) -> BytecodeOutcome: ...
    def import_check(self, work: LayerPathLayout) -> ImportOutcome: ...
    def verify(self, work: LayerPathLayout) -> VerifyReport: ...
    def normalize_modes(self, work: LayerPathLayout) -> None: ...
    def build_facts(self) -> dict[str, Any]: ...
    def zip_layer(self, layer_dir: Path, destination: Path) -> int: ...
    def store_packages(self, work: LayerPathLayout) -> list[str]: ...


class LayerRun:
    """One run of a builder: take the layer from the cache or build it, then publish or deliver it."""

    def __init__(self, builder: Builder) -> None:
        self.builder = builder
        self.log = builder.log
        self.fingerprint = builder.fingerprint

    def run(self, copy_python_to: Path | None, publish: bool) -> LayerBuildResult:
        b = self.builder
        logger.info("%s", b.describe())
        if copy_python_to is not None:
            _check_fresh(copy_python_to)
        direct = copy_python_to if not publish else None  # a hit goes straight there
        with staging(b.layout, publish=publish) as work, self._caches() as (cache, remote):
            restored, source = self._from_caches(cache, remote, direct or work.python, work)
            layer_dir = (direct or work.python) if restored is not None else work.python
            read_at = layer_dir  # where ``installed`` was read: the tree may move to its destination below
            if restored is not None:
                manifest, installed = self._restored(restored, work, layer_dir)
            else:
                manifest, installed = self._build(work)
            self._zip(cache, restored, layer_dir, work, manifest)
            if restored is None:
                self._keep(cache, remote, work, manifest)
            write_manifest(work.manifest, manifest)
            layer_dir = self._deliver(work, layer_dir, copy_python_to, moved=direct is not None)
            shown = b.layout.python if publish else (copy_python_to or layer_dir)
            packages = tuple(rebase(p, read_at, shown) for p in installed)
            built = self.log.warnings if restored is None else manifest.get("warnings", ())
            warnings = (*built, *cache.warnings, *remote.warnings)
        return LayerBuildResult(
            fingerprint=self.fingerprint,
            layout=b.layout,
            layer_zip=b.layout.layer_zip if b.make_zip else None,
            packages=packages,
            unzipped_bytes=manifest["sizes"]["unzipped_bytes"],
            zipped_bytes=manifest["sizes"]["zipped_bytes"],
            manifest=manifest,
            steps=tuple(self.log.steps),
            cached=restored is not None,
            source=source,
            remote=remote.outcome,
            warnings=warnings,
        )

    @contextlib.contextmanager
    def _caches(self) -> Iterator[tuple[CacheSession, RemoteSession]]:
        """The local cache under the fingerprint's lock, and the remote one. A remote hit needs a local
        cache to land in: a throwaway one when the local cache is off or unusable."""
        b = self.builder
        remote = RemoteSession(b.remote_cache, self.fingerprint, b.target)
        with contextlib.ExitStack() as stack:
            stack.callback(remote.close)
            cache = stack.enter_context(open_session(b.cache, self.fingerprint))
            if not cache.active and remote.active:
                scratch, cleanup = scratch_cache()
                stack.callback(cleanup)
                unusable = cache.warnings
                cache = stack.enter_context(open_session(scratch, self.fingerprint, ephemeral=True))
                cache.warnings[:0] = unusable
            yield cache, remote

    def _from_caches(
        self, cache: CacheSession, remote: RemoteSession, destination: Path, work: LayerPathLayout
    ) -> tuple[Restored | None, str]:
        """The layer from the local cache, else from the remote one (through the local cache, held to the
        same rules); with where it came from: "local", "remote" or "built"."""
        restored = self._from_cache(cache, destination, work)
        if restored is not None:
            return restored, "local"
        if not (remote.active and cache.active and cache.cache is not None):
            return None, "built"
        local, b = cache.cache, self.builder
        if not self.log.run("remote", lambda: remote.fetch(local, b.rebuild_reason, b.options.max_unzipped_bytes)):
            return None, "built"
        restored = self._from_cache(cache, destination, work)
        return restored, "remote" if restored is not None else "built"

    def _keep(
        self, cache: CacheSession, remote: RemoteSession, work: LayerPathLayout, manifest: dict[str, Any]
    ) -> None:
        """A built layer goes into the local cache, and up to the remote one (read-write mode): the zip made
        for the upload, when the build made none, is kept in the local cache too."""
        b = self.builder
        metadata = {"manifest": manifest, "requirements": _read(work.requirements)}
        zip_to = work.layer_zip if b.make_zip else None
        level = b.zip_level
        if remote.wants_upload():
            uploaded = self.log.run("upload", lambda: remote.upload(work.python, zip_to, b.zip_level, metadata))
            if zip_to is None and uploaded is not None:
                zip_to, level = uploaded, DEFAULT_ZIP_LEVEL
        self.log.run("cache store", lambda: cache.store(work.python, metadata, zip_to, level))
        self.log.warn(self.log.run("package store", lambda: b.store_packages(work)))

    # -- the layer cache -------------------------------------------------------------------
    def _from_cache(self, cache: CacheSession, destination: Path, work: LayerPathLayout) -> Restored | None:
        """The cached layer copied to ``destination``, unless a build now would make a better one."""
        b = self.builder
        cached = cache.peek()
        reason = b.rebuild_reason(cached.get("manifest") or {}) if cached is not None else None
        if reason:
            logger.info("the cached layer %s: building it again", reason)
            cache.discard()
        if not cache.active:
            return None
        zip_to = work.layer_zip if b.make_zip else None
        # A zip-form hit's copy of the zip in the build's own folder (swept after a kill; not the system's /tmp).
        return self.log.run(
            "cache", lambda: cache.restore(destination, zip_to=zip_to, zip_level=b.zip_level, scratch=work.root)
        )

    def _restored(
        self, restored: Restored, work: LayerPathLayout, tree: Path
    ) -> tuple[dict[str, Any], list[InstalledPackage]]:
        """Finish the build folder around a cache hit: inputs and requirements as the build used them;
        the manifest and the restored tree's packages.

        The size limit is this build's option, not part of the fingerprint: the restored tree is held to it.
        """
        logger.info("layer %s taken from the layer cache", self.fingerprint[:12])
        files = walk_files(tree)
        installed = installed_packages(tree, files)
        check_size(tree, installed, self.builder.options.max_unzipped_bytes, files=files)
        copy_inputs(self.builder.project, work)
        work.requirements.write_text(restored.metadata.get("requirements", ""))
        return dict(restored.metadata["manifest"]), installed

    # -- a build -----------------------------------------------------------------------------
    def _build(self, work: LayerPathLayout) -> tuple[dict[str, Any], tuple[InstalledPackage, ...]]:
        """Every step from the lock to a verified layer, in the staging folder; its manifest and packages
        (verification's inventory of the finished tree: nothing after it changes a file but its mode)."""
        b = self.builder
        # Asking a tool its version can cost a process start (uv's; Poetry's is read from its metadata where
        # it can be, core/tools.py): do it beside the export and install, and let a missing or too old tool
        # win over the error that the missing tool caused.
        b.locate_tools()
        with ThreadPoolExecutor(max_workers=1) as pool:
            versions = pool.submit(b.tool_versions)
            try:
                prepared = b.prepare(work)
                self.log.run("install", lambda: b.install(prepared, work))
            except LayerBuildError:
                if isinstance(versions.exception(), ToolNotFoundError):
                    raise versions.exception() from None
                raise
            tools = versions.result()
        walk_files(work.python)  # before anything reads the tree: only regular files, no links
        bytecode = b.finish(work)
        imports = b.import_check(work)
        # After the import check, which ran the packages' code: it must not have changed the layer.
        report = self.log.run("verify", lambda: b.verify(work))
        b.normalize_modes(work)  # the modes the zip (and a remote hit) gives them
        self.log.warn(outcome_warnings(bytecode, imports, b.target, b.options, local=b.build_mode == "local"))
        self.log.warn(report.warnings)
        if not report.packages:
            self.log.warn([empty_note(b.project, prepared.exported.source)])
        manifest = build_manifest(
            fingerprint=self.fingerprint,
            project=b.project,
            target=b.target,
            options=b.options,
            tools=tools,
            build=b.build_mode,
            packages=report.packages,
            local=prepared.local,
            bytecode=bytecode,
            imports=imports,
            unzipped_bytes=report.unzipped_bytes,
            zipped_bytes=None,
            warnings=tuple(self.log.warnings),
        )
        return {**manifest, **b.build_facts()}, report.packages

    # -- the outputs -------------------------------------------------------------------------
    def _zip(
        self,
        cache: CacheSession,
        restored: Restored | None,
        layer_dir: Path,
        work: LayerPathLayout,
        manifest: dict[str, Any],
    ) -> None:
        """layer.zip, unless the cache gave it; a hit that had no zip at this level keeps the new one."""
        b = self.builder
        if not b.make_zip or (restored is not None and restored.zipped):
            return
        zipped = self.log.run("zip", lambda: b.zip_layer(layer_dir, work.layer_zip))
        manifest["sizes"]["zipped_bytes"] = zipped
        if restored is not None:
            cache.add_zip(work.layer_zip, b.zip_level)

    def _deliver(self, work: LayerPathLayout, layer_dir: Path, output: Path | None, *, moved: bool) -> Path:
        """Put the python/ tree where the caller wants it (``copy_python_to``); where it now is."""
        if output is None or layer_dir == output:
            return layer_dir
        if moved:
            # Not published: the staging folder is deleted next, so its tree moves (one copy less).
            self.log.run("move", lambda: move_tree(work.python, output))
            return output
        self.log.run("copy", lambda: copy_tree(work.python, output))
        return layer_dir


def _check_fresh(folder: Path) -> None:
    """copy_python_to gets the layer's python/ tree and nothing else: it must be new or an empty folder
    (never a link), so that nothing of the caller's is merged with the layer, or lost if a copy fails."""
    if not is_fresh_folder(folder):
        raise BuildFolderError(
            f"copy_python_to={folder} must be a new or empty folder (it is a link, a file or holds files): "
            "nothing was changed. Give a folder of its own."
        )


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""
