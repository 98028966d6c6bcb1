"""Local packages (workspace members, path dependencies, archives on disk) built into wheels.

Each is built by its own build backend through ``uv build`` (PEP 517, isolated), and the
layer gets the wheel installed like any other: never an editable install, so no ``.pth``
file, no ``__editable__`` hook and no path of the build machine reaches the layer.

A pure-Python wheel (``py3-none-any``) runs on every target, so it is built on the host
for local and container builds alike. A package with native code builds into a wheel for
the host's platform, which Lambda cannot load: a local build then refuses it (``auto``
falls back to the container, saying why), and a container build hands its source
distribution to the build image, which compiles it for the runtime.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..core.runner import Command, cause_line, run, without_user_config
from ..core.tools import find_uv
from ..errors import CommandError, ProjectError
from ..identity.sources import source_files, tree_digest
from ..plan.machine_config import index_environment
from ..plan.model import LocalPin, Refusal
from ..plan.wheels import no_wheel_error
from ..project.pyproject import read_pyproject, table
from ..target import LambdaTarget

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class BuiltPackage:
    """A local package ready to install: a wheel, or (for the build image) a source distribution."""

    name: str
    version: str
    file: Path
    #: Where it came from, for the manifest (absolute; shown relative to the project).
    source: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.file.read_bytes()).hexdigest()

    def requirement(self, path: str | None = None) -> str:
        """``name @ file:///…/x.whl --hash=sha256:…`` (``path`` replaces the file's location, e.g. in a container)."""
        location = path or self.file.resolve().as_uri()
        if path is not None and not location.startswith("file:"):
            location = "file://" + location
        return f"{self.name} @ {location} --hash=sha256:{self.sha256}"


def build_command(source: Path, out: Path, kind: str, *, where: Path | None = None) -> Command:
    """``uv build`` of one local package. Not ``--quiet``: uv then drops the backend's own output,
    which holds the only useful cause when the backend fails (see _build_failure).

    ``where``: the folder uv runs in (the lock's, a uv workspace root), so that the settings it finds
    are the project's own (hashed with it: its index for build requirements, say), never those of the
    folder the build was started from. The user's uv.toml is hidden (its build settings, such as
    ``build-constraint-dependencies``, would change the wheel under the same fingerprint), except
    where packages come from (the user's mirror), which is handed over as uv's variables.
    """
    argv = (find_uv(), "build", f"--{kind}", "--out-dir", str(out), "--no-python-downloads", "--python", sys.executable)
    env = {**index_environment(), **without_user_config()}
    return Command(argv=(*argv, str(source)), label=f"uv build --{kind}", cwd=where, env=env)


def _built(out: Path, suffix: str) -> Path:
    found = sorted(out.glob(f"*{suffix}"))
    if len(found) != 1:
        raise ProjectError(f"uv build left {len(found)} {suffix} files in {out}; expected one.")
    return found[0]


class _BuiltWheels:
    """Wheels this process built, by what determines them: a uv workspace's services that share a library
    build it once per synth, not once per layer. Kept in a private folder of this process (removed when
    it ends) and checked against their hash when handed out again. The key holds the uv settings the build
    reads (the settings folder's pyproject.toml and uv.toml: build constraints, indexes). Packages whose
    version is computed when built (from git, or any dynamic version) are always built again: their files'
    digest does not see what the version comes from. Layers built side by side (cdk/side_by_side.py)
    wait for one build of a wheel they share instead of each running it."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.wheels: dict[tuple[str, ...], tuple[Path, str]] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def building(self, key: tuple[str, ...]) -> threading.Lock:
        """The lock held while the wheel for ``key`` is looked up and built: one build per key at a time."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def key(self, pin: LocalPin, where: Path | None) -> tuple[str, ...] | None:
        if versions_from_git(pin.path) or _dynamic_version(pin.path):
            return None
        settings = hashlib.sha256(json.dumps(sorted(index_environment().items())).encode())
        for name in ("pyproject.toml", "uv.toml"):  # the build settings uv reads there (constraints, indexes)
            found = (where or pin.path) / name
            settings.update(name.encode() + (found.read_bytes() if found.is_file() else b"-"))
        return (
            pin.name,
            pin.version or "",
            tree_digest(pin.path),
            str(where),
            sys.executable,
            find_uv(),
            settings.hexdigest(),
        )

    def get(self, key: tuple[str, ...], out: Path) -> Path | None:
        kept = self.wheels.get(key)
        if kept is None or not kept[0].is_file():
            return None
        out.mkdir(parents=True, exist_ok=True)
        wheel = out / kept[0].name
        shutil.copyfile(kept[0], wheel)
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != kept[1]:
            wheel.unlink()
            del self.wheels[key]
            return None
        return wheel

    def put(self, key: tuple[str, ...], wheel: Path) -> None:
        with self._guard:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="cdk-lambda-layer-wheels-"))
                atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        kept = Path(tempfile.mkdtemp(dir=self.folder)) / wheel.name
        shutil.copyfile(wheel, kept)
        self.wheels[key] = (kept, hashlib.sha256(kept.read_bytes()).hexdigest())


_BUILT = _BuiltWheels()


def _dynamic_version(folder: Path) -> bool:
    """Whether the package computes its version when built (hatch-vcs, pdm's scm source, versioningit, a
    setup.py): its wheel may differ though its files did not, so it is never reused."""
    pyproject = folder / "pyproject.toml"
    try:
        data = read_pyproject(pyproject, strict=False) if pyproject.is_file() else None
    except ProjectError:
        return True
    return data is None or "version" in (table(data, "project").get("dynamic") or [])


def _wheel(pin: LocalPin, out: Path, where: Path | None) -> Path:
    """The local package's wheel: built now, or the one this process built from the very same inputs."""
    key = _BUILT.key(pin, where)
    if key is None:
        # Built anew each time, but never twice at once from one folder: a git-versioned package's sdist
        # is made in its own folder (setuptools writes its egg-info there), and layers build side by side.
        with _BUILT.building(("folder", str(pin.path.resolve()))):
            return _run_build(pin, out, "wheel", where)
    with _BUILT.building(key):
        reused = _BUILT.get(key, out)
        if reused is not None:
            logger.info("local package %s: the wheel built earlier in this process from the same files", pin.name)
            return reused
        wheel = _run_build(pin, out, "wheel", where)
        _BUILT.put(key, wheel)
        return wheel


def _run_build(pin: LocalPin, out: Path, kind: str, where: Path | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    source = pin.path
    if builds_in_place(pin.path):
        if versions_from_git(pin.path):
            # setuptools-scm needs the repository: a source distribution (which records the version)
            # is made in place, and the wheel from it in a fresh folder, as `python -m build` does.
            source = _run_build(pin, out.parent / "sdist", "sdist", where) if kind == "wheel" else pin.path
        else:
            source = clean_copy(pin.path, out.parent / f"source-{kind}")
    try:
        run(build_command(source, out, kind, where=where))
    except CommandError as exc:
        raise _build_failure(pin, kind, exc.stderr, copied=source.is_dir() and source != pin.path) from exc
    return _built(out, ".whl" if kind == "wheel" else ".tar.gz")


def versions_from_git(folder: Path) -> bool:
    """Whether the package takes its version from git (setuptools-scm), which a copy without .git lacks."""
    pyproject = folder / "pyproject.toml"
    try:
        data = read_pyproject(pyproject, strict=False) if pyproject.is_file() else {}
    except ProjectError:
        data = {}
    requires = " ".join(str(r) for r in table(data, "build-system").get("requires") or [])
    setup = folder / "setup.py"
    scm_in_setup = setup.is_file() and "use_scm_version" in setup.read_text(errors="replace")
    return bool(table(data, "tool", "setuptools_scm")) or "setuptools_scm" in requires.replace("-", "_") or scm_in_setup


def builds_in_place(folder: Path) -> bool:
    """Whether the package's backend builds a wheel in its own folder and reuses what it left there.

    setuptools copies into ``build/lib`` and packs whatever is there into the next wheel, so a module
    deleted from the sources would stay in the layer (and ``build/`` is not part of the fingerprint);
    it also writes ``*.egg-info`` into the folder. Such packages are built from a clean copy of their
    sources (clean_copy). A pyproject.toml naming no backend means setuptools (PEP 517's default), as
    does a setup.py alone. Other backends (hatchling, flit, pdm, poetry-core, uv) select their files
    from the sources on every build, and may need files beside the folder (hatch's force-include).
    """
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return (folder / "setup.py").is_file()
    try:
        backend = table(read_pyproject(pyproject, strict=False), "build-system").get("build-backend")
    except ProjectError:
        return False  # its build will say what is wrong with it
    return backend is None or str(backend).startswith("setuptools")


def clean_copy(folder: Path, into: Path) -> Path:
    """The package's sources as the fingerprint sees them (sources.py), copied into a fresh folder of the
    same name: what its folder holds that was hashed is what is built, and nothing is written into the
    user's folder. (Sources outside the folder are hashed but cannot be reached from the copy.)"""
    copy = into / folder.name
    shutil.rmtree(into, ignore_errors=True)
    for relative, path in source_files(folder):
        if relative.endswith("/"):
            continue  # a link hashed by its text (a loop, or dangling): nothing to copy
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        shutil.copymode(path, target)
    return copy


#: uv's hook line names the backend: "Call to `hatchling.build.build_wheel` failed".
_HOOK = re.compile(r"Call to `(?P<backend>[\w.:]+)\.\w+` failed")
#: Lines of the backend's output shown under its exception line.
_BACKEND_TAIL_LINES = 8


def _build_failure(pin: LocalPin, kind: str, stderr: str, *, copied: bool = False) -> ProjectError:
    """The backend's own error first (its exception line), then the end of its output: uv's lines
    after it ("Build failures usually indicate a problem...") say nothing about this package."""
    output = _backend_output(stderr)
    cause = _exception_line(output) or cause_line(stderr) or "no output"
    tail = [line for line in _without_traceback(output)[-_BACKEND_TAIL_LINES:] if line.strip() != cause]
    hook = _HOOK.search(stderr)
    backend = f" ({hook.group('backend')})" if hook else ""
    files = "pyproject.toml" + (", setup.py" if (pin.path / "setup.py").is_file() else "")
    shown = "".join(f"\n    {line.rstrip()}" for line in tail)
    where = (
        " It was built from a copy of the files its fingerprint covers (setuptools reuses what earlier builds "
        "left in build/): a file it needs may be one of those left out (build/, dist/, *.egg-info, caches, "
        ".git), or outside the package's folder (package-dir = ../src, a ../README), which a copy cannot reach."
        if copied
        else ""
    )
    return ProjectError(
        f"The local package {pin.name} at {pin.path} could not be built into a {kind} by its build backend"
        f"{backend}: {cause}{shown}\nFix the package's build configuration (its {files}) and check with "
        f"`uv build --{kind} {pin.path}`.{where}"
    )


def _backend_output(stderr: str) -> list[str]:
    """What the backend printed: the lines before uv's own "Failed to build", without uv's progress lines."""
    lines = stderr.rstrip().splitlines()
    marks = ("error: Failed to build", "\N{MULTIPLICATION SIGN} Failed to build")
    end = next((i for i, line in enumerate(lines) if line.startswith(marks)), len(lines))
    progress = ("Building wheel", "Building source distribution")
    return [line for line in lines[:end] if line.strip() and not line.startswith(progress)]


def _exception_line(output: list[str]) -> str | None:
    """The line after the backend's last traceback (``ValueError: ...``), else its last line
    (``raise SystemExit("...")`` and setuptools' ``error: ...`` print no traceback)."""
    starts = [i for i, line in enumerate(output) if line.startswith("Traceback (most recent call last)")]
    after = output[starts[-1] + 1 :] if starts else []
    found = next((line.strip() for line in after if not line.startswith((" ", "\t"))), None)
    return found or (output[-1].strip() if output else None)


def _without_traceback(output: list[str]) -> list[str]:
    """The backend's output without traceback frames (the indented lines under "Traceback")."""
    kept, inside = [], False
    for line in output:
        if line.startswith("Traceback (most recent call last)"):
            inside = True
            continue
        inside = inside and line.startswith((" ", "\t"))
        if not inside:
            kept.append(line)
    return kept


def _same_version(pin: LocalPin, built: str) -> None:
    try:
        differs = bool(pin.version) and Version(pin.version) != Version(built)
    except InvalidVersion:
        differs = pin.version != built
    if differs:
        raise ProjectError(
            f"The local package {pin.name} at {pin.path} built as version {built}, but the lock expects {pin.version}: "
            "its version is computed when it is built (setuptools-scm, hatch-vcs, a version file) and came out "
            "otherwise here. Lock again, or fix what the version is read from (a git tag, a file)."
        )


def _wheel_fits(wheel: Path, target: LambdaTarget) -> bool:
    return bool(parse_wheel_filename(wheel.name)[3] & target.supported_tags)


def _described(path: Path, name: str) -> BuiltPackage:
    try:
        if path.name.endswith(".whl"):
            parsed_name, version = parse_wheel_filename(path.name)[:2]
        else:
            parsed_name, version = parse_sdist_filename(path.name)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        raise ProjectError(f"{path} is not a wheel or source distribution file name: {exc}") from exc
    return BuiltPackage(name=name or str(parsed_name), version=str(version), file=path, source=path)


def build_local_packages(
    local: tuple[LocalPin, ...], out: Path, target: LambdaTarget, *, in_image: bool, where: Path | None = None
) -> tuple[BuiltPackage, ...]:
    """A wheel (or, for native code in the build image, an sdist) for every local package.

    ``where``: the folder the builds run in (the lock's). A package whose build gives another version
    than the lock records for it (a version from git that the build could not see) is refused.
    """
    built: list[BuiltPackage] = []
    native: list[Refusal] = []
    for pin in local:
        folder = out / pin.name
        if pin.path.is_file() and pin.path.name.endswith(".whl"):
            wheel = folder / pin.path.name
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pin.path, wheel)
        else:
            wheel = _wheel(pin, folder / "wheel", where)
        _same_version(pin, str(parse_wheel_filename(wheel.name)[1]))
        if _wheel_fits(wheel, target):
            package = _described(wheel, pin.name)
        elif in_image and not pin.path.name.endswith(".whl"):
            sdist = pin.path if pin.path.is_file() else _run_build(pin, folder / "sdist", "sdist", where)
            package = _described(sdist, pin.name)
        else:
            tags = ", ".join(sorted(str(t) for t in parse_wheel_filename(wheel.name)[3]))
            native.append(
                Refusal(
                    name=pin.name,
                    version=str(parse_wheel_filename(wheel.name)[1]),
                    reason=f"a local package with native code (its wheel built here is {tags}), which must be "
                    "compiled in the Lambda build image",
                    buildable=not pin.path.name.endswith(".whl"),
                )
            )
            continue
        built.append(BuiltPackage(name=package.name, version=package.version, file=package.file, source=pin.path))
        logger.info("local package %s %s from %s", package.name, package.version, pin.path)
    if native:
        raise no_wheel_error(native, target, in_image=in_image)
    return tuple(built)
