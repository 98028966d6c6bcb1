"""Native code checks: every shared library must be an ELF for the target CPU.

Standard library only, so the in-container step runs the very same check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import VerificationError
from .files import walk_files

ELF_MACHINES = {
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


def native_files(site: Path, files: list[tuple[Path, int]] | None = None) -> Iterator[Path]:
    """The shared libraries under ``site`` (``files``: a walk already made, to not walk twice)."""
    found = [path for path, _size in (files if files is not None else walk_files(site)) if _native(path.name)]
    yield from sorted(found)


def _native(name: str) -> bool:
    return name.endswith(_NATIVE_SUFFIXES) or ".so." in name


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


def check_native_code(site: Path, expected: int, describe: str) -> int:
    """Every shared library must be an ELF with e_machine ``expected``; returns how many were checked."""
    wrong, count = [], 0
    for path in native_files(site):
        count += 1
        machine = elf_machine(path)
        if machine != expected:
            kind = ELF_MACHINES.get(machine, f"machine {machine}") if isinstance(machine, int) else machine
            wrong.append(f"{path.relative_to(site)} is {kind}")
    if wrong:
        more = f" (and {len(wrong) - 10} more)" if len(wrong) > 10 else ""
        raise VerificationError(
            f"Native code for the wrong platform; {describe} needs "
            f"{ELF_MACHINES[expected]} ELF files: {'; '.join(wrong[:10])}{more}. "
            "Rebuild for the target (a wheel for this CPU, or build='container')."
        )
    return count
