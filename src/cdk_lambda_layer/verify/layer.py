"""Verification: the layer would run on the target, checked before anything is published.

Each check is a known way layers break in production: a link or special file that could
bring a host file along (inventory.walk_files), packages other than the plan's (installed),
two packages writing the same files (overlap), files changed since they were installed
(record), a wheel tagged for another platform or a newer glibc (tags), native code for another
CPU or needing newer symbol versions than the runtime's glibc and libstdc++ (audit), a
requirement missing for the runtime's Python (requires), and an unzipped size over Lambda's
250 MB (size).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.files import walk_files
from ..errors import VerificationError
from ..install.inventory import InstalledPackage, installed_packages
from ..options import LayerOptions
from ..target import LambdaTarget
from .installed import check_installed
from .native.audit import audit_layer
from .native.elf import ElfInfo
from .overlap import check_overlaps
from .record import check_records
from .requires import check_requirements
from .size import check_size, largest
from .tags import check_wheel_tags, wheel_tags

__all__ = ["ContentReport", "VerifyReport", "check_content", "final_report", "largest", "verify", "wheel_tags"]


@dataclass(frozen=True)
class VerifyReport:
    packages: tuple[InstalledPackage, ...]
    unzipped_bytes: int
    native_files: int
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ContentReport:
    """The checks that read the installed files (all but the final walk and the size)."""

    packages: tuple[InstalledPackage, ...]
    native_files: int
    warnings: tuple[str, ...] = field(default=())
    #: The ELF audit's facts of each shared library (the package cache keeps them with its entries).
    elf: dict[Path, ElfInfo | None] = field(default_factory=dict)


def verify(
    site: Path,
    target: LambdaTarget,
    options: LayerOptions,
    *,
    built_in_image: bool = False,
    expected: Mapping[str, str] | None = None,
) -> VerifyReport:
    """Run every check on the finished layer folder; raise on the first that fails.

    ``built_in_image``: the install ran in the build image, which tags wheels it built from
    sdists ``linux_<cpu>``; those were compiled against the image's glibc, which the native
    code audit checks. ``expected``: the plan (canonical name -> version) the layer must hold.
    """
    site = Path(os.path.abspath(site))  # noqa: PTH100 - by name, as check_content needs it (see there)
    files = walk_files(site)
    content = check_content(site, target, options, files, built_in_image=built_in_image, expected=expected)
    return final_report(site, options, content, files, same_walk=True)


def check_content(
    site: Path,
    target: LambdaTarget,
    options: LayerOptions,
    files: list[tuple[Path, int]],
    *,
    built_in_image: bool = False,
    expected: Mapping[str, str] | None = None,
    packages: list[InstalledPackage] | None = None,
    known: Mapping[Path, str] | None = None,
    elf: Mapping[Path, ElfInfo | None] | None = None,
) -> ContentReport:
    """Every check of the installed files but the size: exactly the plan, overlaps, RECORD hashes, tags,
    the ELF audit, Requires-Dist. ``files``: a walk of ``site``; files the bytecode step writes while
    this runs (``__pycache__``, which none of these checks reads) may be missing from it; ``site`` must be
    absolute and normalised (LayerPathLayout keeps it so): RECORD rows are normalised, and a ``..`` left in
    the walk's paths would match none of them. ``packages``:
    the distributions of that same walk, when the caller has them already. ``known``: sha256 of files
    the build wrote and hashed itself, unchanged since that walk (verify/record.py); ``elf``: the ELF
    facts of some of those files, as the package cache kept them (verify/native/audit.py)."""
    packages = installed_packages(site, files) if packages is None else packages
    if expected is not None:
        check_installed(packages, expected)
    check_overlaps(packages)
    check_records(site, packages, {path for path, _size in files}, known)
    check_wheel_tags(packages, target, built_in_image=built_in_image)
    audit = audit_layer(site, target, files=files, packages=packages, known=elf)
    if audit.errors:
        shown = "\n".join(f"  - {finding.describe()}" for finding in audit.errors[:20])
        more = f"\n  (and {len(audit.errors) - 20} more)" if len(audit.errors) > 20 else ""
        raise VerificationError(
            f"Native code in the layer would not load on {target.describe()}:\n{shown}{more}\nWays out: pin "
            "versions whose wheels are built for this runtime (manylinux for its glibc), or build in the "
            f"runtime's own build image ({target.sam_image})."
        )
    check_requirements(packages, target, options)
    warnings = tuple(f"{finding.describe()}" for finding in audit.warnings)
    return ContentReport(packages=tuple(packages), native_files=audit.files_checked, warnings=warnings, elf=audit.facts)


def final_report(
    site: Path,
    options: LayerOptions,
    content: ContentReport,
    files: list[tuple[Path, int]] | None = None,
    *,
    same_walk: bool = False,
    packages: list[InstalledPackage] | None = None,
) -> VerifyReport:
    """The size of the finished layer (walked again unless ``files`` is its walk: no link, no special
    file, and the packages' sizes with their bytecode) and the report. ``same_walk``: ``content`` was
    made from ``files``, so its packages are the layer's; ``packages``: installed_packages(site, files)."""
    files = walk_files(site) if files is None else files
    if packages is None:
        packages = list(content.packages) if same_walk else installed_packages(site, files)
    total = check_size(site, packages, options.max_unzipped_bytes, files=files)
    return VerifyReport(
        packages=tuple(packages), unzipped_bytes=total, native_files=content.native_files, warnings=content.warnings
    )
