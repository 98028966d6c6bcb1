"""The steps of a local build after the plan, with the package cache and side by side where that pays.

Without the package cache (or for a layer none of whose packages has a key) the layer is installed,
trimmed and compiled in place, and the content checks run while it compiles. With it, entries found
are copied in first (builders/incremental.py), the misses are installed, trimmed and compiled in a
folder of their own (``fresh``), all while the entries are still being copied, and moved in; the
content checks then run while the import check does. Either way layer.zip is compressed beside the
import check (builders/parallel.py).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from ..cache.packages.store import PackageCache
from ..core.files import walk_files, walk_stats
from ..errors import VerificationError
from ..install import host as installers
from ..install.host import InstallSettings, merge_tree
from ..install.inventory import InstalledPackage, installed_packages
from ..install.layer_snapshot import snapshot_fields, tree_digest
from ..install.target_python import (
    PYC_FLAGS,
    BytecodeOutcome,
    ImportOutcome,
    bytecode_wanted,
    check_imports,
    compile_bytecode,
    interpreter_for,
    pyc_magic,
)
from ..install.trim import trim
from ..options import LayerOptions
from ..package.archive import Entry, layer_entries, normalize_modes, write_layer_zip
from ..package.layout import LayerPathLayout
from ..target import LambdaTarget
from ..verify.layer import ContentReport, VerifyReport, check_content, final_report
from ..verify.native.elf import FACTS_READER, ElfInfo
from ..verify.requires import check_requirements
from . import parallel
from .incremental import PackageReuse, Planned, bytecode_id
from .package_store import store_new
from .result import Prepared
from .steps import StepLog

logger = logging.getLogger(__name__)


class HostSteps:
    """One local build's install, finish, import check, verify and zip (see the module docstring)."""

    def __init__(self, target: LambdaTarget, options: LayerOptions, log: StepLog) -> None:
        self.target = target
        self.options = options
        self.log = log
        self.side = parallel.SideTasks()
        self.reuse: PackageReuse | None = None
        self.fresh: Path | None = None
        self.expected: dict[str, str] | None = None
        self._content: Future[ContentReport] | None = None
        self._storing: Future[int] | None = None
        self._zip_level: int | None = None
        self._zip: Future[int] | None = None
        #: Paths whose cached zip stream was not the file's (their entries are removed).
        self.rejected: list[str] = []
        #: The finished tree's walk and packages (_walk).
        self._stats: list[tuple[Path, os.stat_result]] = []
        self._packages: list[InstalledPackage] = []
        #: The ELF audit's facts, for the package cache to keep (verify).
        self._elf: dict[Path, ElfInfo | None] = {}
        #: The new packages' trim and bytecode, when install could do them beside the copy.
        self._fresh_outcome: BytecodeOutcome | None = None
        #: Where each member's stream lies in layer.zip, as its writer noted (for the package cache).
        self._spans: dict[str, tuple[int, int, int]] = {}

    # -- install -----------------------------------------------------------------------------
    def start_reuse(self, cache_root: Path | None, zip_level: int | None) -> None:
        """Use the package cache in the layer cache folder (None: no cache)."""
        if cache_root is None:
            return
        interpreter = interpreter_for(self.target, self.options) if bytecode_wanted(self.options) else None
        pyc = (pyc_magic(interpreter.path), PYC_FLAGS[self.options.invalidation]) if interpreter else None
        bytecode = bytecode_id(interpreter, self.options)
        self.reuse = PackageReuse(PackageCache(cache_root), self.target, self.options, bytecode, zip_level, pyc)

    def install(self, prepared: Prepared, work: LayerPathLayout, settings: InstallSettings) -> None:
        self.expected = prepared.expected
        if self.reuse is None:
            installers.install(prepared.plan, prepared.local, work.python, work.repo, self.target, settings)
            return
        reuse = self.reuse
        found = reuse.look_up(reuse.planned(prepared.plan, prepared.local))
        installers.write_requirements(prepared.plan, prepared.local, work.repo, settings)  # the whole plan's record
        self.fresh = work.root / "fresh"
        scratch = work.root / "fresh-repo"
        self.fresh.mkdir()
        scratch.mkdir()
        copied = self._copy_beside(lambda: reuse.copy_in(found, work.python))
        plan, local = reuse.misses_plan(prepared.plan)
        # run even with nothing left to install (it then does nothing): one path for every build
        self._settling(lambda: installers.install(plan, local, self.fresh, scratch, self.target, settings))
        self._fresh_outcome = self._settling(self._finish_fresh)  # while the copy goes on
        late = self._settling(copied)
        if late:  # entries found damaged while copied: installed after all
            reuse.reused.misses.extend(late)
            plan, local = reuse.misses_plan(prepared.plan, late)
            later = work.root / "fresh-repo-late"
            later.mkdir()
            installers.install(plan, local, self.fresh, later, self.target, settings)
            self._fresh_outcome = self._finish_fresh()  # all the new packages again, these with them

    def _copy_beside(self, copy: Callable[[], list[Planned]]) -> Callable[[], list[Planned]]:
        """Start the entries' copy beside the install (what waits for its outcome); with the steps one after
        another (CDK_LAYER_OVERLAP=0), copy them first."""
        if parallel.overlap():
            return self.side.start(copy).result
        late = copy()
        return lambda: late

    # -- finish ------------------------------------------------------------------------------
    def finish(self, work: LayerPathLayout) -> BytecodeOutcome:
        if self.fresh is None or self.reuse is None:
            self.log.run("trim", lambda: trim(work.python, self.options.left_out))
            if parallel.overlap():
                files = walk_files(work.python)  # before the bytecode step writes a file
                self._content = self.side.start(lambda: self._check_content(work, files))
            return self.log.run("bytecode", lambda: self._compile(work.python))
        fresh, reuse = self.fresh, self.reuse
        outcome = self._fresh_outcome if self._fresh_outcome is not None else self._finish_fresh()
        merge_tree(fresh, work.python)
        shutil.rmtree(fresh, ignore_errors=True)
        for scratch in ("fresh-repo", "fresh-repo-late"):
            shutil.rmtree(work.root / scratch, ignore_errors=True)
        return reuse.bytecode_outcome(outcome)

    def _start_content(self, work: LayerPathLayout) -> None:
        """The content checks of a layer assembled from the package cache, on the build's walk, beside."""
        files, packages, known = self._files(), self._packages, self._known(self._stats)
        elf = self._known_elf(work, known)
        self._content = self.side.start(lambda: self._check_content(work, files, packages, known, elf))

    def _finish_fresh(self) -> BytecodeOutcome:
        """The new packages trimmed and compiled in their own folder: done in ``install`` while the entries
        are still being copied in (creating their files waits on the disk, compiling on the CPU). Their
        steps run inside the install's, so they are reported after it, once each (builders/steps.py)."""
        fresh = self.fresh
        assert fresh is not None
        walk_files(fresh)  # only regular files, no links, before anything reads the new packages
        self.log.run("trim", lambda: trim(fresh, self.options.left_out))
        return self.log.run("bytecode", lambda: self._compile(fresh))

    def _walk(self, work: LayerPathLayout) -> None:
        """The finished tree's one walk (after bytecode: the import check removes what it adds, and fails
        the build if it changes a file, so the walk holds to the end), and its packages."""
        self._stats = walk_stats(work.python)
        self._packages = installed_packages(work.python, self._files())

    def _walked_as_imports_began(self, work: LayerPathLayout, outcome: ImportOutcome) -> bool:
        """Whether the walk, made while the import check ran, saw the files its snapshot saw before the first
        import (tree_digest): none that an import wrote and removed again, none that an import left."""
        if not outcome.ran or outcome.tree is None:
            return not outcome.ran  # it did not run: nothing ran beside the walk
        root = os.fspath(work.python).rstrip(os.sep) + os.sep
        walked = ((os.fspath(path)[len(root) :], info) for path, info in self._stats)
        return tree_digest((name, snapshot_fields(info)) for name, info in walked) == outcome.tree

    def _files(self) -> list[tuple[Path, int]]:
        return [(path, info.st_size) for path, info in self._stats]

    def _known(self, stats: list[tuple[Path, os.stat_result]]) -> dict[Path, str] | None:
        """The sha256 of the files copied out of the package cache that this walk shows unchanged since."""
        if self.reuse is None or not len(self.reuse.known):
            return None
        known = self.reuse.known
        return {path: digest for path, info in stats if (digest := known.get(path, info)) is not None}

    def _known_elf(self, work: LayerPathLayout, known: dict[Path, str] | None) -> dict[Path, ElfInfo | None] | None:
        """The ELF facts the hits' entries kept, for their files unchanged since the copy (``known``): the
        copy checked those bytes against the listing the facts were stored with. Facts another reader kept
        (an older entry's, or another pyelftools') are not used: those libraries are parsed again."""
        if self.reuse is None or not known:
            return None
        facts: dict[Path, ElfInfo | None] = {}
        for _key, document in self.reuse.reused.hits.values():
            if document.get("native_reader") != FACTS_READER:
                continue
            for name, value in (document.get("native") or {}).items():
                if (path := work.python / name) in known:
                    facts[path] = ElfInfo.from_json(value) if value is not None else None
        return facts

    def _compile(self, site: Path) -> BytecodeOutcome:
        return compile_bytecode(site, self.target, self.options, jobs=parallel.jobs())

    # -- import check, verify, zip ---------------------------------------------------------
    def import_check(self, work: LayerPathLayout, zip_level: int | None) -> ImportOutcome:
        """The import check, and beside it (once its process runs, so that this process does not slow its
        start): the finished tree's walk and packages, their requirements (a package missing for the
        runtime is named as such, not as the ImportError it causes: the import check is stopped), then
        layer.zip and, for a layer assembled from the package cache, the content checks.

        The walk may see a file an import writes and removes again; it is used only if it saw exactly what
        the import check's snapshot saw before the first import (``_walked_as_imports_began``). Otherwise
        what was started on it is set aside, and the tree is walked again, checked and zipped after."""
        self._zip_level = zip_level
        beside = parallel.overlap()
        walked: list[bool] = []  # the walk beside the check was made (not cut short by what the imports did)

        def before() -> None:
            try:
                self._walk(work)
            except (VerificationError, OSError) as exc:
                # A link or fifo an import planted, a file it removed under the walk: the check removes what
                # the imports added, so only a walk after it says what the layer holds (and refuses).
                logger.info("the layer changed while it was walked beside the import check (%s)", exc)
                self._stats, self._packages = [], []
                return
            walked.append(True)
            check_requirements(self._packages, self.target, self.options)
            if self.reuse is not None and self.fresh is not None:
                self._start_content(work)
            if zip_level is not None:
                self._start_zip(work, zip_level, layer_entries(work.python, self._stats))

        if not beside:
            self._walk(work)
            check_requirements(self._packages, self.target, self.options)

        def check() -> ImportOutcome:
            return check_imports(
                work.python, self.target, self.options, jobs=parallel.jobs(), started=before if beside else None
            )

        try:
            outcome = self._settling(lambda: self.log.run("import check", check))
        except VerificationError:
            if beside and not walked:  # what the walk would have refused, or named, before the import check's error
                self._walk(work)
                check_requirements(self._packages, self.target, self.options)
            raise
        if beside and not (walked and self._walked_as_imports_began(work, outcome)):
            logger.info("the import check changed the tree while it was walked: walking it again")
            self._set_aside(work)
        return outcome

    def _set_aside(self, work: LayerPathLayout) -> None:
        """The zip and the content checks started on a walk that is not the tree's: awaited, dropped, and the
        tree walked again (verify and zip_layer then do their work on it, one after another)."""
        started_content = self.reuse is not None and self.fresh is not None
        self.side.settle()
        self._zip = None
        if started_content:
            self._content = None
        self._walk(work)
        check_requirements(self._packages, self.target, self.options)  # of the packages the layer holds

    def normalize_modes(self, work: LayerPathLayout) -> None:
        """The modes the zip gives, by the build's walk where there was one (the import check, the one step
        after it that runs code, fails the build if a file's mode changed), else by a walk now."""
        normalize_modes(work.python, self._stats or None)

    def _start_zip(self, work: LayerPathLayout, level: int, entries: list[Entry]) -> None:
        self._zip = self.side.start(lambda: self._write_zip(work.python, work.layer_zip, level, entries))

    def verify(self, work: LayerPathLayout) -> VerifyReport:
        if not self._stats:  # the import check did not get as far as its walk
            self._walk(work)
        content = self._content
        self._content = None
        report = self._settling(lambda: content.result() if content is not None else self._check_now(work))
        self._elf = dict(report.elf)
        verified = self._settling(
            lambda: final_report(work.python, self.options, report, self._files(), packages=self._packages)
        )
        if self._zip_level is None:  # no zip to wait for: the packages go to the cache beside what follows
            self._start_store(work, zipped=False)
        return verified

    def zip_layer(self, layer_dir: Path, destination: Path, level: int) -> int:
        """layer.zip: the one compressed beside the import check, or written now; then the new packages
        start for the package cache, beside the layer cache's store (the layer passed every check)."""
        started, self._zip = self._zip, None
        if started is not None:
            size = self._settling(started.result)
        else:
            self.side.settle()
            size = self._write_zip(layer_dir, destination, level, None)
        if self.reuse is not None and layer_dir == destination.parent / "artifacts" / "python":
            self._start_store(LayerPathLayout(destination.parent), zipped=True)
        return size

    def _start_store(self, work: LayerPathLayout, *, zipped: bool) -> None:
        reuse, files, packages, elf = self.reuse, self._files(), self._packages, self._elf
        if reuse is not None and self._storing is None:
            zip_path = work.layer_zip if zipped else None
            spans = self._spans if zipped else None
            self._storing = self.side.start(
                lambda: store_new(reuse, work.python, zip_path, self.rejected, files, packages, elf, spans)
            )

    def store_packages(self, work: LayerPathLayout, zipped: bool) -> None:
        """Wait for the package cache's store (started after the zip or the checks), or store now."""
        if self.reuse is not None and self._storing is None:
            self._start_store(work, zipped=zipped)
        self.side.settle()

    @property
    def warnings(self) -> list[str]:
        return self.reuse.warnings if self.reuse is not None else []

    def _write_zip(self, site: Path, destination: Path, level: int, entries: list[Entry] | None) -> int:
        """layer.zip of ``site``; ``entries``: of the build's walk (``_stats``), else walked now. The package
        cache's members go in as they are, without a read of their files where the copy checksummed them."""
        stats = self._stats
        if entries is None:
            stats = walk_stats(site)
            entries = layer_entries(site, stats)
        members = self.reuse.reused.members if self.reuse is not None else None
        known = self.reuse.known if self.reuse is not None and members else None
        crcs = {path: crc for path, info in stats if (crc := known.crc(path, info)) is not None} if known else None
        return write_layer_zip(
            site,
            destination,
            level,
            workers=parallel.jobs(),
            precompressed=members,
            rejected=self.rejected,
            entries=entries,
            crcs=crcs,
            spans=self._spans,
        )

    def _check_content(
        self,
        work: LayerPathLayout,
        files: list[tuple[Path, int]],
        packages: list[InstalledPackage] | None = None,
        known: dict[Path, str] | None = None,
        elf: dict[Path, ElfInfo | None] | None = None,
    ) -> ContentReport:
        return check_content(
            work.python,
            self.target,
            self.options,
            files,
            expected=self.expected,
            packages=packages,
            known=known,
            elf=elf,
        )

    def _check_now(self, work: LayerPathLayout) -> ContentReport:
        """The content checks after the import check, on a walk of their own (steps one after another)."""
        stats = walk_stats(work.python)
        files = [(path, info.st_size) for path, info in stats]
        known = self._known(stats)
        return self._check_content(work, files, known=known, elf=self._known_elf(work, known))

    def _settling(self, action: Callable[[], object]):  # type: ignore[no-untyped-def]
        """Run ``action``; if it fails, wait for the side tasks first (none may outlive the build)."""
        try:
            return action()
        except BaseException:
            self.side.settle()
            raise
