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

import hashlib
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from .errors import CommandError, ProjectError
from .plan import LocalPin, Refusal, no_wheel_error
from .project.pyproject import read_pyproject, table
from .runner import Command, cause_line, run, without_user_config
from .sources import source_files
from .target import LambdaTarget
from .tools import find_uv

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


def build_command(source: Path, out: Path, kind: str) -> Command:
    """``uv build`` of one local package. Not ``--quiet``: uv then drops the backend's own output,
    which holds the only useful cause when the backend fails (see _build_failure)."""
    argv = (find_uv(), "build", f"--{kind}", "--out-dir", str(out), "--no-python-downloads", "--python", sys.executable)
    # Run in the package's folder, so that the settings uv finds are those of its project or workspace
    # (hashed with it), never a uv.toml where the build was started from, nor the user's.
    folder = source if source.is_dir() else source.parent
    return Command(argv=(*argv, str(source)), label=f"uv build --{kind}", cwd=folder, env=without_user_config())


def _built(out: Path, suffix: str) -> Path:
    found = sorted(out.glob(f"*{suffix}"))
    if len(found) != 1:
        raise ProjectError(f"uv build left {len(found)} {suffix} files in {out}; expected one.")
    return found[0]


def _run_build(pin: LocalPin, out: Path, kind: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    source = clean_copy(pin.path, out.parent / f"source-{kind}") if builds_in_place(pin.path) else pin.path
    try:
        run(build_command(source, out, kind))
    except CommandError as exc:
        raise _build_failure(pin, kind, exc.stderr, copied=source != pin.path) from exc
    return _built(out, ".whl" if kind == "wheel" else ".tar.gz")


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
    same name: exactly what was hashed is built, and nothing is written into the user's folder."""
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
        "left in build/): a file it needs may be one of those left out (build/, dist/, *.egg-info, caches)."
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
    local: tuple[LocalPin, ...], out: Path, target: LambdaTarget, *, in_image: bool
) -> tuple[BuiltPackage, ...]:
    """A wheel (or, for native code in the build image, an sdist) for every local package."""
    built: list[BuiltPackage] = []
    native: list[Refusal] = []
    for pin in local:
        folder = out / pin.name
        if pin.path.is_file() and pin.path.name.endswith(".whl"):
            wheel = folder / pin.path.name
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pin.path, wheel)
        else:
            wheel = _run_build(pin, folder / "wheel", "wheel")
        if _wheel_fits(wheel, target):
            package = _described(wheel, pin.name)
        elif in_image and not pin.path.name.endswith(".whl"):
            sdist = pin.path if pin.path.is_file() else _run_build(pin, folder / "sdist", "sdist")
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
