"""What a Lambda runtime's dynamic loader can satisfy: symbol-version ceilings and system libraries.

Data, kept apart from ELF reading as auditwheel keeps its policy files apart from its
repair steps. The numbers are the runtime OS's own:

- Amazon Linux 2 (python3.10, 3.11): glibc 2.26; gcc 7.3's libstdc++.so.6.0.24, so
  GLIBCXX_3.4.24 and CXXABI_1.3.11; libgcc_s up to GCC_7.0.0.
- Amazon Linux 2023 (python3.12+): glibc 2.34; gcc 11's libstdc++.so.6.0.29, so
  GLIBCXX_3.4.29 and CXXABI_1.3.13; libgcc_s up to GCC_11.0.
  (https://docs.aws.amazon.com/linux/al2023/release-notes/ lists the toolchain; the
  GLIBCXX/CXXABI numbers per libstdc++ release are in gcc's ABI policy document,
  https://gcc.gnu.org/onlinedocs/libstdc++/manual/abi.html.)

The system libraries a layer may use without shipping them are the manylinux ones
(auditwheel's ``lib_whitelist`` in src/auditwheel/policy/manylinux-policy.json) that a Lambda
Python runtime actually has: the glibc family, libstdc++, libgcc_s, libz and libexpat, and
the dynamic loader. The whitelist's desktop libraries (libX11, libGL, glib) are not on
Lambda, so a layer needing them gets a warning, as does any other library it does not ship.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...target import LambdaOS

Version = tuple[int, ...]


def parse_version(text: str) -> Version | None:
    """'2.28' -> (2, 28); None for a name that is not a dotted number (e.g. 'TM_1', 'FLOAT128')."""
    parts = text.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


@dataclass(frozen=True, kw_only=True)
class RuntimePolicy:
    """The newest symbol version per namespace a runtime provides, and its system libraries."""

    os: LambdaOS
    ceilings: dict[str, Version]
    system_libraries: frozenset[str]

    def too_new(self, namespace: str, version: Version) -> bool:
        ceiling = self.ceilings.get(namespace)
        return ceiling is not None and version > ceiling

    def provides(self, library: str) -> bool:
        return library in self.system_libraries or library.startswith(("ld-linux", "ld64.so"))


_GLIBC_FAMILY = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libdl.so.2",
        "librt.so.1",
        "libpthread.so.0",
        "libanl.so.1",
        "libnsl.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libcrypt.so.1",
    }
)
_TOOLCHAIN = frozenset({"libstdc++.so.6", "libgcc_s.so.1", "libz.so.1", "libexpat.so.1"})

POLICIES: dict[LambdaOS, RuntimePolicy] = {
    LambdaOS.AMAZON_LINUX_2: RuntimePolicy(
        os=LambdaOS.AMAZON_LINUX_2,
        ceilings={"GLIBC": (2, 26), "GLIBCXX": (3, 4, 24), "CXXABI": (1, 3, 11), "GCC": (7, 0, 0)},
        system_libraries=_GLIBC_FAMILY | _TOOLCHAIN,
    ),
    LambdaOS.AMAZON_LINUX_2023: RuntimePolicy(
        os=LambdaOS.AMAZON_LINUX_2023,
        ceilings={"GLIBC": (2, 34), "GLIBCXX": (3, 4, 29), "CXXABI": (1, 3, 13), "GCC": (11, 0)},
        system_libraries=_GLIBC_FAMILY | _TOOLCHAIN,
    ),
}
