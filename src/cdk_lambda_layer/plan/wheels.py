"""The install plan: what goes into the layer, decided from the lock before anything is installed.

The exported ``pylock.toml`` (PEP 751) lists every pinned package with its environment
marker and the files of its version. ``packaging.pylock`` selects the packages that apply
on the *target* (markers evaluated for the Lambda runtime's Python and CPU, not the host's),
and each pin's wheel file names are matched against the runtime's tags here. So every
package without a fitting wheel is named, with the precise reason, before any installer
runs; ``build="auto"`` knows whether the build image could make them (a source
distribution exists) without a failed install; and installers only ever get exact pins
with ``--no-deps``: no installer decides a version or a marker.

Installer channels: uv takes every pin whose wheel it can be told about; on Amazon Linux 2
(glibc 2.26) uv's platforms stop at manylinux_2_17, so pins whose only fitting wheel is
tagged manylinux_2_18 … 2_26 go to pip, which is given every accepted tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from packaging.tags import Tag, create_compatible_tags_selector
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..core.tool_errors import without_userinfo
from ..errors import NoWheelError, ProjectError
from ..options import AWS_RUNTIME_PACKAGES, LayerOptions
from ..target import LambdaOS, LambdaTarget, glibc_of
from .locked import Locked, LockedPackage
from .model import DEFAULT_INDEXES, Channel, InstallPlan, LocalPin, Pin, Refusal


def make_plan(
    locked: Locked,
    target: LambdaTarget,
    options: LayerOptions,
    *,
    in_image: bool = False,
    source_only: frozenset[str] = frozenset(),
) -> InstallPlan:
    """Decide every package's file and installer, or raise NoWheelError naming every package without one.

    ``source_only``: canonical names the project wants built from source ("*": all of them).
    """
    selected = locked.for_target(target)
    check_left_out(options, [canonicalize_name(p.name) for p in selected], locked.source)
    pins, local, refusals = [], [], []
    for package in selected:
        if canonicalize_name(package.name) in options.left_out:
            continue
        if package.local is not None:
            local.append(LocalPin(name=package.name, path=package.local, version=package.version))
        elif package.remote_source is not None:
            refusals.append(_source_refusal(package))
        else:
            name = canonicalize_name(package.name)
            from_source = name in source_only or ("*" in source_only and f"!{name}" not in source_only)
            pin, refusal = _classify(package, target, options, in_image, from_source=from_source)
            pins += [pin] if pin else []
            refusals += [refusal] if refusal else []
    if refusals:
        raise no_wheel_error(refusals, target, in_image=in_image)
    defaults = {u.rstrip("/") for u in DEFAULT_INDEXES}
    indexes = sorted({p.index for p in pins if p.index and p.index.rstrip("/") not in defaults})
    notes = _patch_note(locked, target)
    return InstallPlan(pins=tuple(pins), local=tuple(local), indexes=tuple(indexes), warnings=notes)


def _patch_note(locked: Locked, target: LambdaTarget) -> tuple[str, ...]:
    names = locked.patch_dependent(target)
    if not names:
        return ()
    return (
        f"{', '.join(names)}: {locked.source} picks by the runtime's patch level (python_full_version); Lambda "
        f"keeps {target.runtime_name} on a recent patch release, so the pins for a recent {target.python}.x were taken",
    )


def _parse(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except (InvalidWheelFilename, ValueError):
        return frozenset()


def _classify(
    package: LockedPackage, target: LambdaTarget, options: LayerOptions, in_image: bool, *, from_source: bool = False
) -> tuple[Pin | None, Refusal | None]:
    selector = create_compatible_tags_selector(target.ordered_tags)
    chosen = None if from_source else next(selector((w, _parse(w)) for w in package.wheels), None)
    common = {"name": package.name, "version": package.version, "hashes": package.hashes, "index": package.index}
    per_file = dict(package.file_hashes)
    if chosen is not None:
        uv_ok = bool(_parse(chosen) & target.uv_tags)
        channel: Channel = "image" if in_image else ("uv" if uv_ok and options.installer == "uv" else "pip")
        return Pin(wheel=chosen, channel=channel, file_hashes=per_file.get(chosen, ()), **common), None
    if in_image and package.sdist:
        sdists = [hashes for name, hashes in per_file.items() if not name.endswith(".whl")]
        return Pin(wheel=None, channel="image", file_hashes=sdists[0] if len(sdists) == 1 else (), **common), None
    if from_source:
        reason = "the project wants it built from source (no-binary), which only the build image can do for the " + (
            "runtime" if package.sdist else "runtime, but no source distribution of it was found"
        )
    else:
        reason = wheel_mismatch(package.wheels, target, sdist=package.sdist)
    return None, Refusal(name=package.name, version=package.version, reason=reason, buildable=package.sdist)


def _source_refusal(package: LockedPackage) -> Refusal:
    kind = "a git dependency" if str(package.remote_source).startswith("git") else "a direct URL to an archive"
    return Refusal(
        name=package.name,
        version=package.version,
        reason=f"{kind} ({without_userinfo(str(package.remote_source))}), which is built from source; this library "
        "installs those only as local folders or wheels (vendor it as a path dependency, or publish a wheel)",
        buildable=False,
    )


# -- why no wheel fits ------------------------------------------------------------------------
def _python_ok(tag: Tag, target: LambdaTarget) -> bool:
    return Tag(tag.interpreter, tag.abi, "any") in {Tag(t.interpreter, t.abi, "any") for t in target.ordered_tags}


def _machine(platform: str) -> str | None:
    for machine in ("x86_64", "aarch64", "i686", "armv7l", "ppc64le", "s390x"):
        if platform.endswith("_" + machine):
            return machine
    return None


def wheel_mismatch(filenames: Sequence[str], target: LambdaTarget, *, sdist: bool = True) -> str:
    """Why none of a version's wheels runs on the target, most specific reason first."""
    tags = [t for name in filenames for t in _parse(name)]
    if not tags:
        if filenames:
            return "its wheel names cannot be read"
        return "it publishes only a source distribution" if sdist else "the lock lists no files for it"
    glibc_tags = [t for t in tags if glibc_of(t.platform)]
    if not glibc_tags:
        kinds = sorted({_os_word(t.platform) for t in tags})
        return f"no wheel for Linux with glibc (only {', '.join(kinds)})"
    machine = target.architecture.machine
    for_cpu = [t for t in glibc_tags if _machine(t.platform) == machine]
    if not for_cpu:
        others = sorted({m for t in glibc_tags if (m := _machine(t.platform))})
        return f"no Linux wheel for {machine} (only {', '.join(others)})"
    for_python = [t for t in for_cpu if _python_ok(t, target)]
    if not for_python:
        pythons = sorted({t.interpreter for t in for_cpu}, key=_interpreter_order)
        return f"no wheel for {target.cpython_abi} (its Linux {machine} wheels are for {', '.join(pythons)})"
    needed = min(glibc_of(t.platform) or (9, 99) for t in for_python)
    ceiling = ".".join(map(str, target.os.glibc))
    return (
        f"only wheels for glibc {needed[0]}.{needed[1]} or newer (manylinux_{needed[0]}_{needed[1]}); "
        f"{target.runtime_name} runs on {target.os.label} with glibc {ceiling}"
    )


def _os_word(platform: str) -> str:
    if platform.startswith("musllinux"):
        return "musl Linux"
    if platform.startswith("macosx"):
        return "macOS"
    if platform.startswith("win"):
        return "Windows"
    return platform


def _interpreter_order(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def no_wheel_error(refusals: Iterable[Refusal], target: LambdaTarget, *, in_image: bool) -> NoWheelError:
    """One error naming every package without a wheel, its reason, and the ways out."""
    refusals = sorted(refusals, key=lambda r: canonicalize_name(r.name))
    sdist = "; a source distribution exists"
    lines = [
        f"  - {r.name} {r.version}: {r.reason}"
        f"{sdist if r.buildable and not in_image and 'source distribution' not in r.reason else ''}"
        for r in refusals
    ]
    buildable = all(r.buildable for r in refusals)
    ways = [f"pin versions of {', '.join(r.name for r in refusals)} that publish a wheel for {target.runtime_name}"]
    if buildable and not in_image:
        ways.append("build in the Lambda build image (build='container' / --build container), which compiles them")
    if target.os is LambdaOS.AMAZON_LINUX_2 and any("glibc" in r.reason for r in refusals):
        ways.append("use a python3.12+ runtime (Amazon Linux 2023, glibc 2.34)")
    where = "the build image cannot build" if in_image else "no wheel runs on"
    return NoWheelError(
        f"{len(refusals)} package{'s' if len(refusals) > 1 else ''}: {where} {target.runtime_name} "
        f"({target.describe()}):\n" + "\n".join(lines) + "\nWays out: " + "; or ".join(ways) + ".",
        packages=tuple(r.name for r in refusals),
        buildable=buildable and not in_image,
    )


# -- exclusions --------------------------------------------------------------------------------
def check_left_out(options: LayerOptions, names: Sequence[str], source: str) -> None:
    """Every excluded or provided name must be among the layer's packages (runtime packages excepted)."""
    present = set(names)
    unknown = sorted(n for n in options.left_out if n not in present and n not in AWS_RUNTIME_PACKAGES)
    if unknown:
        listed = ", ".join(sorted(present)) or "none"
        raise ProjectError(
            f"exclude/provided name{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)}, "
            f"which {'are' if len(unknown) > 1 else 'is'} not among the layer's packages from {source} "
            f"({listed}). Check the spelling (any PyPI spelling works) or drop the name."
        )
