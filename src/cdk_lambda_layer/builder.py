"""The layer builders: project + lock -> pinned requirements -> install -> trim -> verify -> zip.

A builder plans nothing it cannot explain: each step is a method, timed and logged,
working in a private staging folder that is moved into build/lambda/layer only when
every step passed. Subclasses change where the install runs (the host here, a
container in the container builders) and which tool owns the project.
"""

from __future__ import annotations

import logging
import os
import shutil
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
from .errors import LayerBuildError, ToolNotFoundError
from .export import PinnedRequirements, export_requirements
from .fingerprint import fingerprint
from .inventory import InstalledPackage, installed_packages, walk_files
from .layout import LayerPathLayout, copy_tree, staging
from .manifest import ToolVersions, build_manifest, write_manifest
from .options import LAMBDA_UNZIPPED_LIMIT, Installer, LayerOptions
from .project import Project, Tool, load_project
from .target import DEFAULT_PYTHON, Architecture, LambdaTarget
from .tools import find_poetry, find_uv, pip_version, tool_version
from .trim import trim
from .verify import verify

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

    @property
    def python_dir(self) -> Path:
        return self.layout.python


class BasedLambdaLayerLocalBuilder:
    """Build a layer on this machine for any Lambda target (cross-platform, wheels only).

    :param path_pyproject_toml: the project's pyproject.toml, or its folder.
    :param python: Lambda Python version, "3.10" to "3.14". Default: the newest.
    :param architecture: "x86_64" or "arm64". Default: "x86_64".
    :param tool: "auto" detects it from the lock (uv.lock, poetry.lock, requirements.txt).
    :param groups: dependency groups to include besides the main ones. Default: none.
    :param extras: optional-dependency extras to include. Default: none.
    :param exclude: distributions to leave out (e.g. AWS_RUNTIME_PACKAGES). Default: none.
    :param installer: "uv" (default; resolves for the target from any host) or "pip".
    :param locked: fail when the lock is stale. Default: True.
    :param build_dir: where build/lambda/layer goes. Default: next to pyproject.toml.
    :param make_zip: write layer.zip (the CDK construct does not need it). Default: True.
    :param zip_level: zlib level of layer.zip, 0-9. Default: 6 (as the zip tool).
    :param credentials: IndexCredentials for private indexes (never written anywhere, not hashed).
    :param cache_dir: layer cache folder, or False to turn it off. Default: $CDK_LAYER_CACHE_DIR,
        else ~/.cache/cdk-lambda-layer/layers (see cache.py).
    :param max_unzipped_bytes: size limit checked after trimming. Default: Lambda's 250 MB.
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
        groups: Iterable[str] = (),
        extras: Iterable[str] = (),
        exclude: Iterable[str] = (),
        installer: Installer = "uv",
        locked: bool = True,
        build_dir: str | os.PathLike[str] | None = None,
        make_zip: bool = True,
        zip_level: int = DEFAULT_ZIP_LEVEL,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        credentials: Iterable[IndexCredentials] = (),
        max_unzipped_bytes: int = LAMBDA_UNZIPPED_LIMIT,
        on_step: StepCallback | None = None,
    ) -> None:
        self.target = LambdaTarget(python=python, architecture=architecture)
        self.options = LayerOptions(
            groups=tuple(groups),
            extras=tuple(extras),
            exclude=tuple(exclude),
            installer=installer,
            locked=locked,
            max_unzipped_bytes=max_unzipped_bytes,
        )
        self.project: Project = load_project(path_pyproject_toml, self.tool or tool)
        root = Path(build_dir) / "lambda" / "layer" if build_dir else None
        self.layout = LayerPathLayout(root) if root else LayerPathLayout.for_project(self.project.root)
        self.make_zip = make_zip
        self.zip_level = zip_level
        self.credentials = tuple(credentials)
        cache_root = resolve_cache_dir(cache_dir)
        self.cache = LayerCache(cache_root) if cache_root else None
        self.on_step = on_step
        self._steps: list[tuple[str, float]] = []

    # -- identity -------------------------------------------------------------------------
    @property
    def image(self) -> str | None:
        return None

    @property
    def fingerprint(self) -> str:
        """Hash of exactly what determines this layer (the CDK asset hash)."""
        return fingerprint(self.project, self.target, self.options, build=self.build_mode, image=self.image)

    # -- the pipeline ---------------------------------------------------------------------
    def run(self, *, copy_python_to: str | os.PathLike[str] | None = None, publish: bool = True) -> LayerBuildResult:
        """Build the layer into build/lambda/layer (or take it from the layer cache) and return it.

        :param copy_python_to: also place the finished python/ folder here (a copy), before the
            build folder is swapped into place.
        :param publish: move the finished build folder into place. The construct passes False:
            its only output is the asset folder, so a synth leaves nothing in the project.
        """
        self._steps = []
        fingerprint = self.fingerprint
        output = Path(copy_python_to) if copy_python_to is not None else None
        direct = output if output is not None and not publish else None  # a hit goes straight there
        with staging(self.layout, publish=publish) as work, open_session(self.cache, fingerprint) as cache:
            zip_to = work.layer_zip if self.make_zip else None
            hit_dir = direct or work.python
            restored = self._step("cache", lambda: cache.restore(hit_dir, zip_to=zip_to)) if cache.active else None
            layer_dir = hit_dir if restored is not None else work.python
            manifest = self._restored(restored, work) if restored is not None else self._build(fingerprint, work)
            if self.make_zip and not (restored and restored.zipped):
                zipped = self._step("zip", lambda: write_layer_zip(layer_dir, work.layer_zip, self.zip_level))
                manifest["sizes"]["zipped_bytes"] = zipped
                if restored is not None:
                    cache.add_zip(work.layer_zip)
            if restored is None:
                metadata = {"manifest": manifest, "requirements": work.requirements.read_text()}
                self._step("cache store", lambda: cache.store(work.python, metadata, zip_to))
            write_manifest(work.manifest, manifest)
            if output is not None and layer_dir != output:
                self._step("copy", lambda: copy_tree(work.python, output))
            shown = self.layout.python if publish else (output or layer_dir)
            packages = tuple(_rebase(p, layer_dir, shown) for p in installed_packages(layer_dir))
        return LayerBuildResult(
            fingerprint=fingerprint,
            layout=self.layout,
            layer_zip=self.layout.layer_zip if self.make_zip else None,
            packages=packages,
            unzipped_bytes=manifest["sizes"]["unzipped_bytes"],
            zipped_bytes=manifest["sizes"]["zipped_bytes"],
            manifest=manifest,
            steps=tuple(self._steps),
        )

    def _restored(self, restored: Restored, work: LayerPathLayout) -> dict[str, Any]:
        """Finish the build folder around a cache hit: inputs and requirements as the build used them."""
        logger.info("layer %s taken from the layer cache", self.fingerprint[:12])
        self._copy_inputs(work)
        work.requirements.write_text(restored.metadata.get("requirements", ""))
        return dict(restored.metadata["manifest"])

    def _build(self, fingerprint: str, work: LayerPathLayout) -> dict[str, Any]:
        """Export, install, trim and verify into the staging folder."""
        logger.info("building %s layer for %s (%s)", self.project.tool.value, self.target.describe(), self.build_mode)
        # Asking each tool its version costs a process start (~0.5 s for Poetry): do it
        # beside the export and install, and let a missing or too old tool win over the
        # error that the missing tool then caused.
        self.locate_tools()
        with ThreadPoolExecutor(max_workers=1) as pool:
            versions = pool.submit(self.tool_versions)
            try:
                pinned = self._step("export", lambda: self.export(work))
                self._step("install", lambda: self.install(pinned, work))
            except LayerBuildError:
                if isinstance(versions.exception(), ToolNotFoundError):
                    raise versions.exception() from None
                raise
            tools = versions.result()
        walk_files(work.python)  # before anything reads the tree: only regular files, no links
        self._step("trim", lambda: trim(work.python, self.options.exclude))
        report = self._step("verify", lambda: self.verify(work))
        return build_manifest(
            fingerprint=fingerprint,
            project=self.project,
            target=self.target,
            options=self.options,
            tools=tools,
            build=self.build_mode,
            packages=report.packages,
            unzipped_bytes=report.unzipped_bytes,
            zipped_bytes=None,
        )

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
        if self.options.installer == "uv" or self.project.tool is Tool.UV:
            find_uv()
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
        for source in self.project.input_files:
            shutil.copyfile(source, work.repo / source.name)

    def export(self, work: LayerPathLayout) -> PinnedRequirements:
        """Copy pyproject and lock into repo/ and write the pinned requirements there."""
        self._copy_inputs(work)
        pinned = export_requirements(self.project, self.options, self.credentials)
        work.requirements.write_text(pinned.text)
        return pinned

    def install(self, pinned: PinnedRequirements, work: LayerPathLayout) -> None:
        """Install for the target on this host, wheels only."""
        installers.install(
            self.options.installer,
            work.requirements,
            work.python,
            self.target,
            no_deps=pinned.complete,
            credentials=self.credentials,
        )

    def verify(self, work: LayerPathLayout):
        return verify(work.python, self.target, max_unzipped_bytes=self.options.max_unzipped_bytes)


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
