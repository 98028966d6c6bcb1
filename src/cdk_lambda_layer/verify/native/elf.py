"""Reading what the dynamic loader will need from a shared library, with pyelftools.

Only the ELF header, the dynamic section (NEEDED, SONAME) and the GNU version-needs
section (.gnu.version_r: which symbol versions of which library) are read; symbol tables
are never walked, so a 30 MB extension module is read in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import elftools
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from .policy import Version, parse_version

#: pyelftools' names of the CPUs Lambda runs, by our architecture names.
ELF_MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
#: Version names that stand for a glibc release without being numbered like one: packed
#: relocations (``-z pack-relative-relocs`` of newer linkers) need glibc 2.36.
SPECIAL_VERSIONS = {"GLIBC_ABI_DT_RELR": ("GLIBC", (2, 36))}
#: Who read the facts the package cache keeps (ElfInfo.to_json): another reader may read the same bytes
#: otherwise, and neither this library's version nor pyelftools' is in a package entry's key, so facts
#: kept by another are not used (the library is parsed again). Bump when read_elf reads differently.
FACTS_READER = f"elf-facts-1; pyelftools {getattr(elftools, '__version__', 'unknown')}"


@dataclass(frozen=True, kw_only=True)
class ElfInfo:
    """What one shared library asks of the system."""

    #: "x86_64", "aarch64", or pyelftools' name for another CPU (e.g. "EM_386").
    machine: str
    soname: str | None = None
    needed: tuple[str, ...] = ()
    #: The highest version needed per namespace (GLIBC, GLIBCXX, CXXABI, GCC, ...).
    highest: dict[str, Version] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """What the package cache keeps of it, so that a reused library is not parsed again."""
        return {"machine": self.machine, "soname": self.soname, "needed": list(self.needed), "highest": self.highest}

    @classmethod
    def from_json(cls, value: Any) -> ElfInfo:
        """The facts ``to_json`` wrote; ValueError for anything else (the entry is then damaged)."""
        if not isinstance(value, dict) or set(value) != {"machine", "soname", "needed", "highest"}:
            raise ValueError("not ELF facts")
        machine, soname, needed, highest = value["machine"], value["soname"], value["needed"], value["highest"]
        if not isinstance(machine, str) or not (soname is None or isinstance(soname, str)):
            raise ValueError("not ELF facts")
        if not isinstance(needed, list) or not all(isinstance(n, str) for n in needed) or not isinstance(highest, dict):
            raise ValueError("not ELF facts")
        versions = {}
        for namespace, version in highest.items():
            # type(): a JSON true is an int to Python, and no version the reader writes is empty
            if not isinstance(version, list) or not version or not all(type(n) is int and n >= 0 for n in version):
                raise ValueError("not ELF facts")
            versions[namespace] = tuple(version)
        return cls(machine=machine, soname=soname, needed=tuple(needed), highest=versions)


def read_elf(path: Path) -> ElfInfo | None:
    """The file's dynamic needs, or None when it is not an ELF file."""
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            return None
        handle.seek(0)
        try:
            elf = ELFFile(handle)
            machine = ELF_MACHINES.get(elf["e_machine"], str(elf["e_machine"]))
            soname, needed = _dynamic(elf)
            return ElfInfo(machine=machine, soname=soname, needed=needed, highest=_version_needs(elf))
        except (ELFError, ValueError, KeyError) as exc:
            return ElfInfo(machine=f"unreadable ({exc})")


def _section(elf: ELFFile, kind: type) -> object | None:
    """The first section of a kind, found by header type: pyelftools' name lookup parses every
    section header into a map first, several times slower for a library with many sections."""
    wanted = {DynamicSection: "SHT_DYNAMIC", GNUVerNeedSection: "SHT_GNU_verneed"}[kind]
    for index in range(elf.num_sections()):
        header = elf._get_section_header(index)  # the public iterator builds each section object
        if header["sh_type"] == wanted:
            section = elf.get_section(index)
            return section if isinstance(section, kind) else None
    return None


def _dynamic(elf: ELFFile) -> tuple[str | None, tuple[str, ...]]:
    section = _section(elf, DynamicSection)
    if not isinstance(section, DynamicSection):
        return None, ()
    soname, needed = None, []
    for tag in section.iter_tags():
        if tag.entry.d_tag == "DT_NEEDED":
            needed.append(tag.needed)
        elif tag.entry.d_tag == "DT_SONAME":
            soname = tag.soname
    return soname, tuple(needed)


def _version_needs(elf: ELFFile) -> dict[str, Version]:
    section = _section(elf, GNUVerNeedSection)
    highest: dict[str, Version] = {}
    if not isinstance(section, GNUVerNeedSection):
        return highest
    for _needed, versions in section.iter_versions():
        for version in versions:
            namespace, _, number = version.name.partition("_")
            parsed = parse_version(number)
            if version.name in SPECIAL_VERSIONS:
                namespace, parsed = SPECIAL_VERSIONS[version.name]
            if parsed is not None and parsed > highest.get(namespace, ()):
                highest[namespace] = parsed
    return highest
