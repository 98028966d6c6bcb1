"""Verification: the layer would run on the target, checked file by file.

Three checks, each a known way layers break in production: a wheel tagged for another
platform or a newer glibc (``GLIBC_2.28 not found`` at import), native code for another
CPU or OS (``invalid ELF header``), and an unzipped size over Lambda's 250 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, parse_tag

from .errors import LayerTooLargeError, VerificationError
from .inventory import InstalledPackage, installed_packages, tree_size
from .native import check_native_code
from .target import LambdaTarget


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


def check_wheel_tags(packages: list[InstalledPackage], target: LambdaTarget, *, built_in_image: bool = False) -> None:
    supported = target.supported_tags | (target.image_built_tags if built_in_image else frozenset())
    wrong = []
    for package in packages:
        tags = wheel_tags(package)
        if tags and not tags & supported:
            shown = ", ".join(sorted(str(t) for t in tags)[:3])
            wrong.append(f"{package.name} {package.version} ({shown})")
    if wrong:
        fix = (
            "The build image's pip chose them, so its glibc or Python is not the runtime's: build in "
            f"the runtime's SAM build image ({target.sam_image}) or pin versions with older wheels."
            if built_in_image
            else "Pin versions that publish manylinux wheels for this glibc and CPU, or build in "
            "the SAM build image (build='container')."
        )
        raise VerificationError(f"These wheels do not run on {target.describe()}: {'; '.join(wrong)}. {fix}")


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


def verify(site: Path, target: LambdaTarget, *, max_unzipped_bytes: int, built_in_image: bool = False) -> VerifyReport:
    """Run all checks on the trimmed layer folder; raise on the first that fails.

    ``built_in_image``: the install ran in the build image, which tags wheels it built from
    sdists ``linux_<cpu>``; those were compiled against the image's (= Lambda's) glibc.
    """
    packages = installed_packages(site)
    check_wheel_tags(packages, target, built_in_image=built_in_image)
    native = check_native_code(site, target.architecture.elf_machine, target.describe())
    total = check_size(site, packages, max_unzipped_bytes)
    return VerifyReport(packages=tuple(packages), unzipped_bytes=total, native_files=native)
