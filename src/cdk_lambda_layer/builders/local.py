"""The local builders: a layer for any Lambda target built on this machine (wheels for the target).

A builder holds the choices (project, target, options, build folder, caches) and its steps; the
run itself (cache, staging, manifest, zip) is shared by every builder (pipeline.py). The steps:
export and plan (prepare.py), install on this host (install/host.py), trim and bytecode, the
import check with the target's Python (install/target_python.py), verify (verify/). The container
builders (container.py) change where the install runs; the subclasses here fix the tool.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from ..cache.location import resolve_cache_dir
from ..cache.remote.location import resolve_remote
from ..cache.reuse import rebuild_reason
from ..cache.store import LayerCache
from ..core.credentials import IndexCredentials
from ..identity.fingerprint import fingerprint
from ..install.host import InstallSettings
from ..install.target_python import BytecodeOutcome, ImportOutcome
from ..options import LAMBDA_UNZIPPED_LIMIT, Bytecode, Installer, Invalidation, LayerOptions, name_list
from ..package.archive import DEFAULT_ZIP_LEVEL
from ..package.layout import LayerPathLayout
from ..package.manifest import ToolVersions
from ..project.check import check_project
from ..project.discover import Tool
from ..project.load import Project, load_project
from ..target import DEFAULT_PYTHON, Architecture, LambdaTarget
from ..verify.layer import VerifyReport
from . import versions
from .host_steps import HostSteps
from .pipeline import LayerRun
from .prepare import prepare
from .result import LayerBuildResult, Prepared
from .steps import StepCallback, StepLog


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
    :param remote_cache: ``s3://bucket/prefix`` of a layer cache shared by machines (CI runners, laptops):
        looked up after the local cache, filled by every build (see cache/remote/). False turns it off.
        Default: $CDK_LAYER_REMOTE_CACHE, else none.
    :param remote_cache_read_only: read hits, never write (untrusted branches, forks). Default:
        $CDK_LAYER_REMOTE_CACHE_READ_ONLY, else False.
    :param max_unzipped_bytes: size limit checked after trimming. Default: Lambda's 250 MB.
    :param bytecode: "auto" (hash-based .pyc when a CPython of the target's version is at hand),
        True (required) or False. Default: "auto".
    :param invalidation: "unchecked-hash" or "checked-hash" .pyc. Default: "unchecked-hash".
    :param import_check: import the layer's modules with the target's Python where one runs.
        Default: True.
    :param package_cache: keep each installed package (its files, bytecode and zip members) in the
        layer cache folder, and reuse it in later builds of any project for the same target, so that a
        changed pin costs one package (builders/incremental.py). Default: True (off with the cache).
    :param on_step: called with (step name, seconds) after every step.
    """

    #: The tool this class builds for; None means detect it.
    tool: ClassVar[Tool | None] = None
    #: How the fingerprint and manifest name where the install ran.
    build_mode: ClassVar[str] = "local"
    #: Whether the install runs in the build image (a package without a wheel is then built from its sdist).
    in_image: ClassVar[bool] = False

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
        remote_cache: str | bool | None = None,
        remote_cache_read_only: bool | None = None,
        credentials: Iterable[IndexCredentials] = (),
        max_unzipped_bytes: int = LAMBDA_UNZIPPED_LIMIT,
        bytecode: Bytecode = "auto",
        invalidation: Invalidation = "unchecked-hash",
        import_check: bool = True,
        package_cache: bool = True,
        on_step: StepCallback | None = None,
    ) -> None:
        self.target = LambdaTarget(python=python, architecture=architecture)
        self.options = LayerOptions(
            groups=name_list(groups, "groups"),
            extras=name_list(extras, "extras"),
            exclude=name_list(exclude, "exclude"),
            provided=name_list(provided, "provided"),
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
        self.remote_cache = resolve_remote(remote_cache, remote_cache_read_only)
        self.on_step = on_step
        self.log = StepLog(on_step)
        self.package_cache = package_cache
        #: What the plan installs (name -> version), which verify holds the layer to.
        self._expected: dict[str, str] | None = None
        self._steps = HostSteps(self.target, self.options, self.log)

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

    def run(self, *, copy_python_to: str | os.PathLike[str] | None = None, publish: bool = True) -> LayerBuildResult:
        """Build the layer into build/lambda/layer (or take it from the layer cache) and return it.

        :param copy_python_to: also place the finished python/ folder here (a copy).
        :param publish: move the finished build folder into place. The construct passes False:
            its only output is the asset folder, so a synth leaves nothing in the project.
        """
        self.log = StepLog(self.on_step)
        self._steps = HostSteps(self.target, self.options, self.log)
        output = Path(copy_python_to) if copy_python_to is not None else None
        try:
            return LayerRun(self).run(output, publish)
        finally:
            self._steps.side.settle()

    # -- what a cached layer is held to --------------------------------------------------------
    def rebuild_reason(self, manifest: dict[str, Any]) -> str | None:
        """Why a cached layer must be built again although its fingerprint matches (see cache/reuse.py)."""
        return rebuild_reason(manifest, self.target, self.options, local=self.build_mode == "local")

    def build_facts(self) -> dict[str, Any]:
        """What else a cached layer must match to be served (the container builders: the image's ID); for
        the record, which packages came from the package cache."""
        reuse = self._steps.reuse
        if reuse is None:
            return {}
        hits, misses = sorted(reuse.reused.hits), sorted(m.name for m in reuse.reused.misses)
        return {"package_cache": {"reused": hits, "installed": misses}}

    # -- the steps ------------------------------------------------------------------------
    def locate_tools(self) -> None:
        versions.locate_tools(self.project.tool)

    def tool_versions(self) -> ToolVersions:
        return versions.tool_versions(self.project.tool, self.options.installer)

    def prepare(self, work: LayerPathLayout) -> Prepared:
        """Export, plan and build the local packages: everything decided before an install."""
        prepared = prepare(
            self.project,
            self.target,
            self.options,
            work,
            self.log,
            credentials=self.credentials,
            in_image=self.in_image,
        )
        self._expected = prepared.expected
        return prepared

    def install_settings(self, prepared: Prepared) -> InstallSettings:
        return InstallSettings(
            installer=self.options.installer,
            credentials=self.credentials,
            index_options=prepared.exported.index_options,
            lock_indexes=prepared.plan.indexes,
        )

    def install(self, prepared: Prepared, work: LayerPathLayout) -> None:
        """Install for the target on this host: exact pins, wheels only; packages found in the package
        cache are copied in instead (host_steps.py)."""
        if self.package_cache and self.cache is not None:
            self._steps.start_reuse(self.cache.root, self.zip_level if self.make_zip else None)
        self._steps.install(prepared, work, self.install_settings(prepared))

    def finish(self, work: LayerPathLayout) -> BytecodeOutcome:
        """Trim and compile the installed layer on this machine."""
        return self._steps.finish(work)

    def import_check(self, work: LayerPathLayout) -> ImportOutcome:
        """Import every top-level module of the layer with the target's Python, where one runs.

        Its requirements are checked first (cheap, no code run): a package missing for the runtime,
        or excluded while needed, is named as such, not as the ImportError it would cause.
        """
        return self._steps.import_check(work, self.zip_level if self.make_zip else None)

    def verify(self, work: LayerPathLayout) -> VerifyReport:
        return self._steps.verify(work)

    def normalize_modes(self, work: LayerPathLayout) -> None:
        """Every file 0644 or 0755, as the zip and a remote hit give them (after the checks)."""
        self._steps.normalize_modes(work)

    def zip_layer(self, layer_dir: Path, destination: Path) -> int:
        """layer.zip at this build's level (compressed beside the import check where it could be)."""
        return self._steps.zip_layer(layer_dir, destination, self.zip_level)

    def store_packages(self, work: LayerPathLayout) -> list[str]:
        """Keep the new packages in the package cache (after the layer passed); the warnings of a
        package cache that could not be used."""
        self._steps.store_packages(work, self.make_zip)
        return self._steps.warnings


class PipBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A pip project: requirements.txt, or [project].dependencies when there is none."""

    tool = Tool.PIP


class PoetryBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A Poetry project: poetry.lock exported with `poetry export` (main group by default)."""

    tool = Tool.POETRY


class UVBasedLambdaLayerLocalBuilder(BasedLambdaLayerLocalBuilder):
    """A uv project: uv.lock exported with `uv export` (dev groups left out by default)."""

    tool = Tool.UV
