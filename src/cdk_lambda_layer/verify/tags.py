"""Wheel tags: every installed distribution's WHEEL tags fit the runtime (Python, CPU, glibc)."""

from __future__ import annotations

from packaging.tags import Tag, parse_tag

from ..errors import VerificationError
from ..install.inventory import InstalledPackage
from ..target import LambdaTarget


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
