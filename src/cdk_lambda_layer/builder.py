"""The layer builders: project + lock -> plan -> install -> trim -> bytecode -> verify -> zip.

A builder holds the choices and runs the steps in order, each in its own module, timed
and logged, in a private staging folder that is moved into build/lambda/layer only when
every step passed: export (the tool's pylock.toml), plan (markers and wheels for the
target, every refusal named), local packages (built by their own backends), install
(exact pins, --no-deps), trim, bytecode and the import check (the target's Python),
verify (links, tags, native code, requirements, size). Subclasses change where the
install runs (the host here, a container in the container builders) and which tool owns
the project.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import install as installers
from .archive import DEFAULT_ZIP_LEVEL, write_layer_zip
from .cache import LayerCache, Restored, open_session, resolve_cache_dir
from .credentials import IndexCredentials
from .errors import BuildFolderError, LayerBuildError, ProjectError, TargetError, ToolNotFoundError
from .export import ExportedLock, export_lock
from .fingerprint import covered_local_paths, fingerprint
from .install import InstallSettings
from .interpreter import find_interpreter, how_to_get
from .inventory import InstalledPackage, installed_packages, walk_files
from .layout import LayerPathLayout, copy_tree, is_fresh_folder, move_tree, staging
from .local_build import BuiltPackage, build_local_packages
from .manifest import ToolVersions, build_manifest, write_manifest
from .options import LAMBDA_UNZIPPED_LIMIT, Bytecode, Installer, Invalidation, LayerOptions
from .plan import InstallPlan, make_plan
from .project import Project, Tool, load_project
from .project_plan import empty_note, shape, source_only, unpinned_notes
from .redact import redact_urls
from .reuse import rebuild_reason
from .target import DEFAULT_PYTHON, Architecture, LambdaTarget
from .target_python import BytecodeOutcome, ImportOutcome, check_imports, compile_bytecode
from .tools import find_poetry, find_uv, pip_version, tool_version
from .trim import trim
from .verify import VerifyReport, verify
from .verify.requires import check_requirements
from .verify.size import check_size

logger = logging.getLogger(__name__)

#: Called after each step with its name and duration in seconds (the CLI prints them).
StepCallback = Callable[[str, float], None]


@dataclass(frozen=True, kw_only=True)
class LayerBuildResult:
    """What a build produced; paths point into the final build folder."""

    fingerprint: str
    layout: LayerPathLayout
    layer_zip: Path | None
    packages: tuple[InstalledPackage, ...]
    unzipped_bytes: int
    zipped_bytes: int | None
    manifest: dict[str, Any]
    steps: tuple[tuple[str, float], ...] = field(default=())
    #: True when the layer came from the layer cache (no build ran).
    cached: bool = False
    #: What the user should know: no bytecode, import check skipped, a pip or container fallback.
    warnings: tuple[str, ...] = field(default=())

    @property
    def python_dir(self) -> Path:
        return self.layout.python


@dataclass(frozen=True)
class Prepared:
    """What the steps before the install produced."""

    exported: ExportedLock
    plan: InstallPlan
    local: tuple[BuiltPackage, ...]


def check_project(project: Project, target: LambdaTarget, options: LayerOptions) -> None:
    """What can be refused from the files alone, before any tool runs (also at construct time)."""
    project.check_options(options.extras, options.groups)
    supported = project.requires_python
    if supported is not None and not any(supported.contains(f"{target.python}.{p}") for p in (0, 99)):
        raise TargetError(
            f"{target.runtime_name} is outside the Python versions {project.name} supports (requires-python "
            f"{supported} in {project.pyproject_path}). Pick a runtime it supports, or widen requires-python "
            "and lock again."
        )
    if options.include_project and not project.packaged:
        raise ProjectError(
            f"{project.name} cannot be built into a wheel for include_project=True / --include-project (no "
            f"[build-system], or package = false / package-mode = false in {project.pyproject_path}). Give it a "
            "build backend, or leave the project out (drop include_project / --include-project)."
        )


def _strings(values: Iterable[str] | str, what: str) -> tuple[str, ...]:
    """A list of names; a bare string (``groups="dev"``) would be read letter by letter."""
    if isinstance(values, str):
        raise ProjectError(f"{what} takes a list of names, got the string {values!r}: write {what}=[{values!r}].")
    return tuple(values)


class BasedLambdaLayerLocalBuilder:
    """Build a layer on this machine for any Lambda target (cross-platform, wheels only).

    :param path_pyproject_toml: the project's pyproject.toml, or its folder.
    :param python: Lambda Python version, "3.10" to "3.14". Default: the newest.
    :param architecture: "x86_64" or "arm64". Default: "x86_64".
    :param tool: "auto" detects it from the lock (uv.lock, poetry.lock, requirements.txt, or the
        uv workspace the folder belongs to).
    :param package: the uv workspace member to build when the path is the workspace. Default:
        the project at the path.
    :param groups: dependency groups to include besides the main ones. Default: none.
    :param extras: optional-dependency extras to include. Default: none.
    :param exclude: distributions to leave out (e.g. AWS_RUNTIME_PACKAGES); each must be in the
        layer, and none may be needed by a package that stays unless the runtime provides it.
        Default: none.
    :param provided: distributions another layer or the function provides: left out, and trusted
        to satisfy the packages that need them. Default: none.
    :param include_project: put the project's own package into the layer. Default: False (its
        dependencies only).
    :param installer: "uv" (default) or "pip"; either installs exact pins for the target.
    :param locked: fail when the lock is stale. Default: True.
    :param build_dir: where build/lambda/layer goes. Default: next to pyproject.toml.
    :param make_zip: write layer.zip (the CDK construct does not need it). Default: True.
    :param zip_level: zlib level of layer.zip, 0-9. Default: 6 (as the zip tool).
    :param credentials: IndexCredentials for private indexes (never written anywhere, not hashed).
    :param cache_dir: layer cache folder, or False to turn it off. Default: $CDK_LAYER_CACHE_DIR,
        else ~/.cache/cdk-lambda-layer/layers (see cache.py).
    :param max_unzipped_bytes: size limit checked after trimming. Default: Lambda's 250 MB.
    :param bytecode: "auto" (hash-based .pyc when a CPython of the target's version is at hand),
        True (required) or False. Default: "auto".
    :param invalidation: "unchecked-hash" or "checked-hash" .pyc. Default: "unchecked-hash".
    :param import_check: import the layer's modules with the target's Python where one runs.
        Default: True.
    :param on_step: called with (step name, seconds) after every step.
    """

    #: The tool this class builds for; None means detect it.
    tool: ClassVar[Tool | None] = None
    #: How the fingerprint and manifest name where the install ran.
    build_mode: ClassVar[str] = "local"

    def __init__(
        self,
        path_pyproject_toml: str | os.PathLike[str],
        *,
        python: str = DEFAULT_PYTHON,
        architecture: str | Architecture = Architecture.X86_64,
        tool: str = "auto",
        package: str | None = None,
        groups: Iterable[str] = (),
        extras: Iterable[str] = (),
        exclude: Iterable[str] = (),
        provided: Iterable[str] = (),
        include_project: bool = False,
        installer: Installer = "uv",
        locked: bool = True,
        build_dir: str | os.PathLike[str] | None = None,
        make_zip: bool = True,
        zip_level: int = DEFAULT_ZIP_LEVEL,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        credentials: Iterable[IndexCredentials] = (),
        max_unzipped_bytes: int = LAMBDA_UNZIPPED_LIMIT,
        bytecode: Bytecode = "auto",
        invalidation: Invalidation = "unchecked-hash",
        import_check: bool = True,
        on_step: StepCallback | None = None,
    ) -> None:
        self.target = LambdaTarget(python=python, architecture=architecture)
        self.options = LayerOptions(
            groups=_strings(groups, "groups"),
            extras=_strings(extras, "extras"),
            exclude=_strings(exclude, "exclude"),
            provided=_strings(provided, "provided"),
            include_project=include_project,
            installer=installer,
            locked=locked,
            max_unzipped_bytes=max_unzipped_bytes,
            bytecode=bytecode,
            invalidation=invalidation,
            import_check=import_check,
        )
        self.project: Project = load_project(path_pyproject_toml, self.tool or tool, package=package)
        check_project(self.project, self.target, self.options)
        root = Path(build_dir) / "lambda" / "layer" if build_dir else None
        self.layout = LayerPathLayout(root) if root else LayerPathLayout.for_project(self.project.root)
        self.make_zip = make_zip
        self.zip_level = zip_level
        self.credentials = tuple(credentials)
        cache_root = resolve_cache_dir(cache_dir)
        self.cache = LayerCache(cache_root) if cache_root else None
        self.on_step = on_step
        self._steps: list[tuple[str, float]] = []
        self._warnings: list[str] = []
        #: What the plan installs (name -> version), which verify holds the layer to.
        self._expected: dict[str, str] | None = None

    # -- identity -------------------------------------------------------------------------
    @property
    def image(self) -> str | None:
        return None

    @property
    def fingerprint(self) -> str:
        """Hash of exactly what determines this layer (the CDK asset hash)."""
        return fingerprint(self.project, self.target, self.options, build=self.build_mode, image=self.image)

    def describe(self) -> str:
        """The build's first line: tool, project and lock, target, where it runs."""
        arch = self.target.architecture.value
        return f"{self.project.describe()} -> {self.target.runtime_name} {arch} ({self.build_mode} build)"

    # -- the pipeline ---------------------------------------------------------------------
    def run(self, *, copy_python_to: str | os.PathLike[str] | None = None, publish: bool = True) -> LayerBuildResult:
        """Build the layer into build/lambda/layer (or take it from the layer cache) and return it.

        :param copy_python_to: also place the finished python/ folder here (a copy).
        :param publish: move the finished build folder into place. The construct passes False:
            its only output is the asset folder, so a synth leaves nothing in the project.
        """
        self._steps, self._warnings = [], []
        logger.info("%s", self.describe())
        fingerprint = self.fingerprint
        output = Path(copy_python_to) if copy_python_to is not None else None
        if output is not None:
            _check_fresh(output)
        direct = output if output is not None and not publish else None  # a hit goes straight there
        with staging(self.layout, publish=publish) as work, open_session(self.cache, fingerprint) as cache:
            zip_to = work.layer_zip if self.make_zip else None
            hit_dir = direct or work.python
            if self._better_now(cache.peek()):
                cache.discard()
            restored = (
                self._step("cache", lambda: cache.restore(hit_dir, zip_to=zip_to, zip_level=self.zip_level))
                if cache.active
                else None
            )
            layer_dir = hit_dir if restored is not None else work.python
            installed: list[InstalledPackage] | None = None  # a hit reads them once, for its size check
            if restored is not None:
                manifest, installed = self._restored(restored, work, layer_dir)
            else:
                manifest = self._build(fingerprint, work)
            if self.make_zip and not (restored and restored.zipped):
                zipped = self._step("zip", lambda: write_layer_zip(layer_dir, work.layer_zip, self.zip_level))
                manifest["sizes"]["zipped_bytes"] = zipped
                if restored is not None:
                    cache.add_zip(work.layer_zip, self.zip_level)
            if restored is None:
                metadata = {"manifest": manifest, "requirements": _read(work.requirements)}
                self._step("cache store", lambda: cache.store(work.python, metadata, zip_to, self.zip_level))
            write_manifest(work.manifest, manifest)
            if output is not None and layer_dir != output and direct is not None:
                # Not published: the staging folder is deleted next, so its tree moves (one copy less).
                self._step("move", lambda: move_tree(work.python, output))
                layer_dir = output
            elif output is not None and layer_dir != output:
                self._step("copy", lambda: copy_tree(work.python, output))
            shown = self.layout.python if publish else (output or layer_dir)
            installed = installed if installed is not None else installed_packages(layer_dir)
            packages = tuple(_rebase(p, layer_dir, shown) for p in installed)
            cache_warnings = tuple(cache.warnings)
        return LayerBuildResult(
            fingerprint=fingerprint,
            layout=self.layout,
            layer_zip=self.layout.layer_zip if self.make_zip else None,
            packages=packages,
            unzipped_bytes=manifest["sizes"]["unzipped_bytes"],
            zipped_bytes=manifest["sizes"]["zipped_bytes"],
            manifest=manifest,
            steps=tuple(self._steps),
            cached=restored is not None,
            warnings=(*(self._warnings if restored is None else manifest.get("warnings", ())), *cache_warnings),
        )

    def _better_now(self, cached: dict[str, Any] | None) -> bool:
        """Whether a cached layer must be built again although its fingerprint matches (see reuse.py)."""
        reason = self._rebuild_reason((cached or {}).get("manifest") or {}) if cached is not None else None
        if reason:
            logger.info("the cached layer %s: building it again", reason)
        return reason is not None

    def _rebuild_reason(self, manifest: dict[str, Any]) -> str | None:
        return rebuild_reason(manifest, self.target, self.options, local=self.build_mode == "local")

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
        check_size(tree, installed, self.options.max_unzipped_bytes, files=files)
        self._copy_inputs(work)
        work.requirements.write_text(restored.metadata.get("requirements", ""))
        return dict(restored.metadata["manifest"]), installed

    def _build(self, fingerprint: str, work: LayerPathLayout) -> dict[str, Any]:
        """Every step from the lock to a verified layer, in the staging folder."""
        # Asking each tool its version costs a process start (~0.5 s for Poetry): do it
        # beside the export and install, and let a missing or too old tool win over the
        # error that the missing tool then caused.
        self.locate_tools()
        with ThreadPoolExecutor(max_workers=1) as pool:
            versions = pool.submit(self.tool_versions)
            try:
                prepared = self.prepare(work)
                self._step("install", lambda: self.install(prepared, work))
            except LayerBuildError:
                if isinstance(versions.exception(), ToolNotFoundError):
                    raise versions.exception() from None
                raise
            tools = versions.result()
        walk_files(work.python)  # before anything reads the tree: only regular files, no links
        bytecode = self.finish(work)
        imports = self.import_check(work)
        # After the import check, which ran the packages' code: it must not have changed the layer.
        report = self._step("verify", lambda: self.verify(work))
        self._note(bytecode, imports)
        self._warnings += list(report.warnings)
        if not report.packages:
            self._warnings.append(empty_note(self.project, prepared.exported.source))
        manifest = build_manifest(
            fingerprint=fingerprint,
            project=self.project,
            target=self.target,
            options=self.options,
            tools=tools,
            build=self.build_mode,
            packages=report.packages,
            local=prepared.local,
            bytecode=bytecode,
            imports=imports,
            unzipped_bytes=report.unzipped_bytes,
            zipped_bytes=None,
            warnings=tuple(self._warnings),
        )
        return {**manifest, **self.build_facts()}

    def build_facts(self) -> dict[str, Any]:
        """What else a cached layer must match to be served (the container builders: the image's ID)."""
        return {}

    def prepare(self, work: LayerPathLayout) -> Prepared:
        """Export, plan and build the local packages: everything decided before an install."""
        self._copy_inputs(work)
        exported = self._step("export", lambda: self.export(work))
        self._warnings += list(exported.warnings)
        plan = self._step("plan", lambda: self.plan(exported))
        self._warnings += [*plan.warnings, *unpinned_notes(plan, self.project, work.repo / "requirements.in")]
        local = self._step("local packages", lambda: self.build_local(plan, work)) if plan.local else ()
        pip_pins = plan.channel("pip") if self.options.installer == "uv" else ()
        if pip_pins:
            self._warnings.append(
                f"{', '.join(p.name for p in pip_pins)}: wheels for glibc above 2.17 installed with pip "
                "(uv has no platform for them)"
            )
        self._expected = {p.name: p.version for p in plan.pins} | {b.name: b.version for b in local}
        return Prepared(exported=exported, plan=plan, local=local)

    def finish(self, work: LayerPathLayout) -> BytecodeOutcome:
        """Trim and compile the installed layer on this machine."""
        self._step("trim", lambda: trim(work.python, self.options.left_out))
        return self._step("bytecode", lambda: compile_bytecode(work.python, self.target, self.options))

    def import_check(self, work: LayerPathLayout) -> ImportOutcome:
        """Import every top-level module of the layer with the target's Python, where one runs.

        Its requirements are checked first (cheap, no code run): a package missing for the runtime,
        or excluded while needed, is named as such, not as the ImportError it would cause.
        """
        check_requirements(installed_packages(work.python), self.target, self.options)
        return self._step("import check", lambda: check_imports(work.python, self.target, self.options))

    def _note(self, bytecode: BytecodeOutcome, imports: ImportOutcome) -> None:
        """One warning per thing the user can fix (a missing interpreter explains both steps once)."""
        no_bytecode = not bytecode.included and self.options.bytecode is not False
        no_imports = not imports.ran and self.options.import_check
        python = self.target.python
        if no_bytecode and no_imports and find_interpreter(python) is None:
            self._warnings.append(
                f"no CPython {python} here, so no bytecode (slower cold starts) and no import check: "
                f"{how_to_get(python)}"
            )
            return
        if no_bytecode:
            self._warnings.append(f"no bytecode: {bytecode.reason}")
        if no_imports:
            self._warnings.append(f"import check skipped: {imports.reason}")
        self._warnings += [f"importing {w['module']} raised {w['error']}" for w in imports.warnings]
        if imports.ran and not imports.sandboxed and self.build_mode == "local" and self._holds_logins():
            self._warnings.append(
                "the import check ran the packages' code without namespaces of its own (unshare is not allowed "
                "here, e.g. in a default Docker container): that code could read this process's environment, "
                "index logins included. Pass logins as IndexCredentials in code rather than in the environment, "
                "or build in the container, or skip the check (import_check=False)"
            )
        if imports.removed:
            shown = ", ".join(imports.removed[:5]) + (" ..." if len(imports.removed) > 5 else "")
            self._warnings.append(
                f"importing the layer's modules wrote into it ({shown}): removed again, as Lambda's /opt is "
                "read-only (the package would not find those files there)"
            )

    def _holds_logins(self) -> bool:
        """Index logins in this process's environment (the CLI's --index, CDK_LAYER_INDEX_*, a URL with one)."""
        named = any(k.startswith("CDK_LAYER_INDEX_") and k.endswith("_PASSWORD") for k in os.environ)
        return named or any(redact_urls(v) != v for v in os.environ.values())

    def _step(self, name: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
        self._steps.append((name, seconds))
        logger.info("step %s: %.2fs", name, seconds)
        if self.on_step:
            self.on_step(name, seconds)
        return result

    def locate_tools(self) -> None:
        """Find the tools first, on this thread: a missing one fails before any work
        (and sysconfig, which uv's locator reads, is not safe to initialise from two threads)."""
        find_uv()  # the plan's compile, local builds and the default installer
        if self.project.tool is Tool.POETRY:
            find_poetry()

    def tool_versions(self) -> ToolVersions:
        """Versions of the project's tool and the installer (and a check they are new enough)."""
        installer = self.options.installer
        installer_version = tool_version(find_uv(), "uv") if installer == "uv" else pip_version()
        tool = self.project.tool
        if tool is Tool.POETRY:
            tool_ver = tool_version(find_poetry(), "poetry")
        elif tool is Tool.UV:
            tool_ver = installer_version if installer == "uv" else tool_version(find_uv(), "uv")
        else:
            tool_ver = pip_version()
        return ToolVersions(
            tool=tool.value, tool_version=tool_ver, installer=installer, installer_version=installer_version
        )

    def _copy_inputs(self, work: LayerPathLayout) -> None:
        """repo/project/: the project's inputs as the build read them (by path from the lock's folder),
        logins removed; only files inside the project's tree are copied."""
        for source in self.project.input_files:
            relative = self.project.relative(source)
            if relative.startswith("../"):
                continue  # a file outside the project (a -r include elsewhere): counted in the fingerprint only
            target = work.inputs / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(redact_urls(source.read_text(errors="replace")))

    def export(self, work: LayerPathLayout) -> ExportedLock:
        """The project's pylock.toml, from its own tool (kept in repo/ for the record)."""
        exported = export_lock(self.project, self.options, self.target, work.repo, self.credentials)
        (work.repo / "pylock.toml").write_text(redact_urls(exported.text))
        return exported

    def plan(self, exported: ExportedLock, *, in_image: bool = False) -> InstallPlan:
        locked = exported.read(self.project)
        plan = make_plan(locked, self.target, self.options, in_image=in_image, source_only=source_only(self.project))
        shaped = shape(plan, self.project, self.options)
        self._warnings += list(shaped.warnings)
        self._all_hashed(shaped.plan)
        return shaped.plan

    def _all_hashed(self, plan: InstallPlan) -> None:
        """Every local package the plan installs must be one whose sources the fingerprint hashed: one the
        resolver reached some other way would reach the layer unhashed (stale after its next edit)."""
        covered = covered_local_paths(self.project, self.options)
        missing = sorted({pin.path.resolve() for pin in plan.local} - {path.resolve() for path in covered})
        if missing:
            shown = ", ".join(self.project.relative(path) for path in missing)
            raise ProjectError(
                f"The resolution installs local packages the fingerprint does not cover ({shown}): a change to them "
                "would not rebuild the layer. Name them where this library reads local packages (a line in "
                "requirements.txt, a [tool.uv.sources] path of a local package, a path dependency in the lock)."
            )

    def build_local(self, plan: InstallPlan, work: LayerPathLayout) -> tuple[BuiltPackage, ...]:
        local, folder = plan.local, work.repo / "local"
        return build_local_packages(local, folder, self.target, in_image=False, where=self.project.anchor)

    def install_settings(self, prepared: Prepared) -> InstallSettings:
        return InstallSettings(
            installer=self.options.installer,
            credentials=self.credentials,
            index_options=prepared.exported.index_options,
            lock_indexes=prepared.plan.indexes,
        )

    def install(self, prepared: Prepared, work: LayerPathLayout) -> None:
        """Install for the target on this host: exact pins, wheels only."""
        settings = self.install_settings(prepared)
        installers.install(prepared.plan, prepared.local, work.python, work.repo, self.target, settings)

    def verify(self, work: LayerPathLayout) -> VerifyReport:
        return verify(work.python, self.target, self.options, expected=self._expected)


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


def _rebase(package: InstalledPackage, old: Path, new: Path) -> InstalledPackage:
    def move(path: Path) -> Path:
        return new / path.relative_to(old)

    return InstalledPackage(
        name=package.name,
        version=package.version,
        dist_info=move(package.dist_info),
        files=tuple(move(f) for f in package.files),
        size=package.size,
    )


class PipBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A pip project: requirements.txt, or [project].dependencies when there is none."""

    tool = Tool.PIP


class PoetryBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A Poetry project: poetry.lock exported with `poetry export` (main group by default)."""

    tool = Tool.POETRY


class UVBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A uv project: uv.lock exported with `uv export` (dev groups left out by default)."""

    tool = Tool.UV
