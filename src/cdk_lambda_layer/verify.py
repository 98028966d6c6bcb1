"""Verification: the layer would run on the target, checked file by file.

Three checks, each a known way layers break in production: a wheel tagged for another
platform or a newer glibc (``GLIBC_2.28 not found`` at import), native code for another
CPU or OS (``invalid ELF header``), and an unzipped size over Lambda's 250 MB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, parse_tag

from .errors import LayerTooLargeError, VerificationError
from .inventory import InstalledPackage, installed_packages, tree_size, walk_files
from .target import LambdaTarget

_ELF_MACHINES = {
    3: "x86 (32-bit)",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    40: "ARM (32-bit)",
    62: "x86_64",
    183: "AArch64",
    243: "RISC-V",
}
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


@dataclass(frozen=True)
class VerifyReport:
    packages: tuple[InstalledPackage, ...]
    unzipped_bytes: int
    native_files: int


def wheel_tags(package: InstalledPackage) -> frozenset[Tag]:
    """The tags recorded in the distribution's WHEEL file (empty if there is none)."""
    wheel = package.dist_info / "WHEEL"
    if not wheel.is_file():
        return frozenset()
    tags: set[Tag] = set()
    for line in wheel.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "tag" and value.strip():
            tags |= parse_tag(value.strip())
    return frozenset(tags)


def check_wheel_tags(packages: list[InstalledPackage], target: LambdaTarget) -> None:
    supported = target.supported_tags
    wrong = []
    for package in packages:
        tags = wheel_tags(package)
        if tags and not tags & supported:
            shown = ", ".join(sorted(str(t) for t in tags)[:3])
            wrong.append(f"{package.name} {package.version} ({shown})")
    if wrong:
        raise VerificationError(
            f"These wheels do not run on {target.describe()}: {'; '.join(wrong)}. "
            "Pin versions that publish manylinux wheels for this glibc and CPU, or build in "
            "the SAM build image (build='container')."
        )


def native_files(site: Path) -> Iterator[Path]:
    for path, _size in sorted(walk_files(site)):
        name = path.name
        if name.endswith(_NATIVE_SUFFIXES) or ".so." in name:
            yield path


def elf_machine(path: Path) -> int | str:
    """ELF e_machine of a file, or a word saying what else it is."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] == b"\x7fELF" and len(header) >= 20:
        order = "little" if header[5] == 1 else "big"
        return int.from_bytes(header[18:20], order)
    if header[:2] == b"MZ":
        return "a Windows DLL"
    if header[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xcf"):
        return "a macOS Mach-O file"
    return "not an ELF file"


def check_native_code(site: Path, target: LambdaTarget) -> int:
    """Every shared library must be an ELF for the target CPU; returns how many were checked."""
    expected = target.architecture.elf_machine
    wrong, count = [], 0
    for path in native_files(site):
        count += 1
        machine = elf_machine(path)
        if machine != expected:
            kind = _ELF_MACHINES.get(machine, f"machine {machine}") if isinstance(machine, int) else machine
            wrong.append(f"{path.relative_to(site)} is {kind}")
    if wrong:
        more = f" (and {len(wrong) - 10} more)" if len(wrong) > 10 else ""
        raise VerificationError(
            f"Native code for the wrong platform; {target.describe()} needs "
            f"{_ELF_MACHINES[expected]} ELF files: {'; '.join(wrong[:10])}{more}. "
            "Rebuild for the target (a wheel for this CPU, or build='container')."
        )
    return count


def largest(packages: list[InstalledPackage], count: int = 10) -> list[InstalledPackage]:
    return sorted(packages, key=lambda p: p.size, reverse=True)[:count]


def check_size(site: Path, packages: list[InstalledPackage], limit: int) -> int:
    total = tree_size(site)
    if total > limit:
        top = ", ".join(f"{p.name} {p.size / 1e6:.1f} MB" for p in largest(packages))
        raise LayerTooLargeError(
            f"The layer is {total / 1e6:.1f} MB unzipped; Lambda allows {limit / 1e6:.1f} MB for a "
            f"function and all its layers. Largest packages: {top}. Exclude what the runtime "
            "provides (exclude=['boto3', 'botocore', 's3transfer']), drop unused dependencies, or "
            "split the layer."
        )
    return total


def verify(site: Path, target: LambdaTarget, *, max_unzipped_bytes: int) -> VerifyReport:
    """Run all checks on the trimmed layer folder; raise on the first that fails."""
    packages = installed_packages(site)
    check_wheel_tags(packages, target)
    native = check_native_code(site, target)
    total = check_size(site, packages, max_unzipped_bytes)
    return VerifyReport(packages=tuple(packages), unzipped_bytes=total, native_files=native)
