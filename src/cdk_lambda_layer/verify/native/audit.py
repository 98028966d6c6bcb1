"""Auditing the native code a layer ships: what Lambda's dynamic loader will need from it.

Wheel tags say where a wheel *should* run; a mis-tagged wheel, or one compiled from an
sdist in an image newer than the runtime, says nothing true. So every shared library in
the layer is read (audit/elf.py) and checked against the runtime's policy (audit/policy.py):

1. its CPU is the target's;
2. the symbol versions it needs from glibc, libstdc++ and libgcc (GLIBC_, GLIBCXX_, CXXABI_,
   GCC_) are no newer than the runtime's: ``GLIBC_2.28 not found`` at import is exactly this;
3. a CPython extension module's ABI suffix fits the target (``.cpython-312-x86_64-linux-gnu.so``,
   ``.abi3.so`` or a plain ``.so``), so a module for another Python or CPU is not silently skipped;
4. each library it needs (NEEDED) is shipped in the layer or is one the runtime provides;
   anything else is a warning, since the runtime may still have it.

The first three are errors, each naming the file, its package and what it needs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...core.elf import elf_machine, native_files
from ...install.inventory import InstalledPackage, installed_packages
from ...target import LambdaTarget
from .elf import ElfInfo, read_elf
from .policy import POLICIES, RuntimePolicy

__all__ = ["AuditReport", "Finding", "audit_layer"]

_EXTENSION = re.compile(r"\.(cpython-(?P<version>\d+)(?P<flags>[a-z]*)-(?P<platform>[a-z0-9_]+-linux-gnu)|abi3)\.so$")


@dataclass(frozen=True)
class Finding:
    #: The file, relative to the layer's python/ folder (POSIX).
    path: str
    #: The distribution that installed it, where its RECORD says so.
    package: str | None
    problem: str

    def describe(self) -> str:
        return f"{self.path}{f' ({self.package})' if self.package else ''}: {self.problem}"


@dataclass(frozen=True)
class AuditReport:
    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    files_checked: int
    #: What each library asks of the system (None: not an ELF file), for the package cache to keep.
    facts: dict[Path, ElfInfo | None] = field(default_factory=dict)


def _owners(packages: list[InstalledPackage]) -> dict[Path, str]:
    return {path: package.name for package in packages for path in package.files}


def _abi_problem(name: str, target: LambdaTarget) -> str | None:
    match = _EXTENSION.search(name)
    if match is None or match.group(1) == "abi3":
        return None
    version, platform = match.group("version"), match.group("platform")
    expected_version = target.python.replace(".", "")
    expected_platform = f"{target.architecture.machine}-linux-gnu"
    if version != expected_version:
        return f"a CPython {version[0]}.{version[1:]} extension module; {target.runtime_name} never loads it"
    if platform != expected_platform:
        return f"an extension module for {platform}, not {expected_platform}"
    return None


def _symbol_problems(info: ElfInfo, policy: RuntimePolicy, target: LambdaTarget) -> list[str]:
    problems = []
    for namespace, version in sorted(info.highest.items()):
        if policy.too_new(namespace, version):
            needed = ".".join(map(str, version))
            ceiling = ".".join(map(str, policy.ceilings[namespace]))
            problems.append(
                f"needs {namespace}_{needed}; {target.runtime_name} runs on {policy.os.label}, which provides "
                f"{namespace} up to {ceiling}"
            )
    return problems


def audit_layer(
    site: Path,
    target: LambdaTarget,
    *,
    files: list[tuple[Path, int]] | None = None,
    packages: list[InstalledPackage] | None = None,
    known: Mapping[Path, ElfInfo | None] | None = None,
) -> AuditReport:
    """Check every shared library under ``site`` for the target (see the module docstring).

    ``files`` and ``packages``: the walk and the inventory verification already made. ``known``: facts
    read earlier from these very bytes (the package cache's, for files unchanged since their copy):
    those libraries are not parsed again, and are judged like the others, against the whole layer.
    """
    known = known or {}
    policy = POLICIES[target.os]
    libraries = list(native_files(site, files))
    shipped = {p.name for p in libraries}
    infos = {path: known[path] if path in known else read_elf(path) for path in libraries}
    shipped |= {info.soname for info in infos.values() if info and info.soname}
    owners = _owners(packages if packages is not None else installed_packages(site)) if libraries else {}
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for path, info in infos.items():
        relative, package = path.relative_to(site).as_posix(), owners.get(path)
        if info is None:
            errors.append(Finding(relative, package, f"{elf_machine(path)}, not a Linux shared library"))
            continue
        if info.machine != target.architecture.machine:
            errors.append(
                Finding(relative, package, f"native code for {info.machine}, not {target.architecture.machine}")
            )
            continue
        problems = _symbol_problems(info, policy, target)
        abi = _abi_problem(path.name, target)
        errors += [Finding(relative, package, p) for p in [*problems, *([abi] if abi else [])]]
        for library in info.needed:
            if library not in shipped and not policy.provides(library):
                warnings.append(
                    Finding(
                        relative,
                        package,
                        f"needs {library}, which the layer does not ship and {policy.os.label} may not have",
                    )
                )
    return AuditReport(errors=tuple(errors), warnings=tuple(warnings), files_checked=len(libraries), facts=infos)
