"""The Lambda target: Python version and CPU, and everything derived from them.

Facts (runtime -> OS -> glibc) come from AWS's runtime table:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
A wheel tagged for a newer glibc than the runtime's fails at import time on Lambda, so
the glibc ceiling decides which manylinux tags are acceptable (PEP 600).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from packaging.tags import Tag, compatible_tags, cpython_tags

from .errors import TargetError


class Architecture(str, Enum):
    """A Lambda CPU architecture and what each tool calls it."""

    X86_64 = "x86_64"
    ARM64 = "arm64"

    @classmethod
    def parse(cls, value: str | Architecture) -> Architecture:
        """Accept the Lambda names and their common aliases (amd64, aarch64)."""
        if isinstance(value, Architecture):
            return value
        aliases = {"x86_64": cls.X86_64, "amd64": cls.X86_64, "arm64": cls.ARM64, "aarch64": cls.ARM64}
        try:
            return aliases[str(value).strip().lower()]
        except KeyError:
            raise TargetError(
                f"Unknown CPU architecture {value!r}: Lambda runs 'x86_64' or 'arm64'. Pass one of those "
                "(architecture='arm64' / --arch arm64 / Architecture.ARM_64 in the construct)."
            ) from None

    @property
    def machine(self) -> str:
        """The name in wheel platform tags and uv's --python-platform (x86_64, aarch64)."""
        return "x86_64" if self is Architecture.X86_64 else "aarch64"

    @property
    def docker_platform(self) -> str:
        return "linux/amd64" if self is Architecture.X86_64 else "linux/arm64"

    @property
    def elf_machine(self) -> int:
        """ELF e_machine of native code for this CPU (EM_X86_64 = 62, EM_AARCH64 = 183)."""
        return 62 if self is Architecture.X86_64 else 183

    @property
    def sam_image_tag(self) -> str:
        return f"latest-{self.value}"


class LambdaOS(Enum):
    """The operating system under a Python runtime, with its glibc version."""

    AMAZON_LINUX_2 = ("Amazon Linux 2", (2, 26))
    AMAZON_LINUX_2023 = ("Amazon Linux 2023", (2, 34))

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def glibc(self) -> tuple[int, int]:
        return self.value[1]


#: Python runtimes Lambda offers, and the OS each runs on.
PYTHON_RUNTIMES: dict[str, LambdaOS] = {
    "3.10": LambdaOS.AMAZON_LINUX_2,
    "3.11": LambdaOS.AMAZON_LINUX_2,
    "3.12": LambdaOS.AMAZON_LINUX_2023,
    "3.13": LambdaOS.AMAZON_LINUX_2023,
    "3.14": LambdaOS.AMAZON_LINUX_2023,
}

#: The patch level markers are decided for: above any patch release a runtime will have (see
#: LambdaTarget.marker_environment).
RECENT_PATCH = 99

#: The newest Python runtime this library knows; the builders' default.
DEFAULT_PYTHON = max(PYTHON_RUNTIMES, key=lambda v: tuple(map(int, v.split("."))))

# manylinux2014 (= manylinux_2_17) is the oldest tag with aarch64 wheels; older x86_64
# tags (manylinux2010 = 2_12, manylinux1 = 2_5) still run on every Lambda OS.
_LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


_LEGACY_LEVELS = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def glibc_of(platform: str) -> tuple[int, int] | None:
    """The glibc a manylinux platform tag needs ('manylinux_2_28_x86_64' -> (2, 28)), else None."""
    if platform.startswith("manylinux_"):
        parts = platform.split("_")
        if len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    for alias, level in _LEGACY_LEVELS.items():
        if platform.startswith(alias + "_"):
            return level
    return None


def parse_python(value: str) -> str:
    """Normalise '3.12', 'python3.12', '312' to '3.12', or raise a TargetError."""
    text = str(value).strip().lower().removeprefix("python")
    if text.isdigit() and len(text) >= 3:
        text = f"{text[0]}.{text[1:]}"
    if text in PYTHON_RUNTIMES:
        return text
    raise TargetError(
        f"Unknown Python version {value!r}: Lambda's Python runtimes are "
        f'{", ".join(PYTHON_RUNTIMES)}. Pass one of those (e.g. python="{DEFAULT_PYTHON}" / --python '
        f"{DEFAULT_PYTHON} / Runtime.PYTHON_{DEFAULT_PYTHON.replace('.', '_')} in the construct)."
    )


@dataclass(frozen=True, kw_only=True)
class LambdaTarget:
    """A Python runtime on a CPU: decides tags, installer flags and the build image."""

    python: str = DEFAULT_PYTHON
    architecture: Architecture = Architecture.X86_64

    def __post_init__(self) -> None:
        object.__setattr__(self, "python", parse_python(self.python))
        object.__setattr__(self, "architecture", Architecture.parse(self.architecture))

    @property
    def os(self) -> LambdaOS:
        return PYTHON_RUNTIMES[self.python]

    @property
    def runtime_name(self) -> str:
        """The Lambda runtime identifier, e.g. python3.12."""
        return f"python{self.python}"

    @property
    def version_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    @property
    def cpython_abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def describe(self) -> str:
        """Human summary used in errors, e.g. 'Python 3.11 on x86_64 (Amazon Linux 2, glibc 2.26)'."""
        major, minor = self.os.glibc
        return f"Python {self.python} on {self.architecture.value} ({self.os.label}, glibc {major}.{minor})"

    @cached_property
    def manylinux_platforms(self) -> tuple[str, ...]:
        """Every manylinux platform tag that runs on this target, newest first.

        pip matches each --platform exactly, so it needs the whole list; it also
        drives verification of installed wheels.
        """
        arch = self.architecture.machine
        floor = 17 if self.architecture is Architecture.ARM64 else 5
        tags: list[str] = []
        for minor in range(self.os.glibc[1], floor - 1, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            if minor in _LEGACY_ALIASES:
                tags.append(f"{_LEGACY_ALIASES[minor]}_{arch}")
        return tuple(tags)

    @property
    def uv_python_platform(self) -> str:
        """uv's --python-platform for this target.

        uv has no manylinux_2_26 choice; manylinux2014 is the newest it offers below
        Amazon Linux 2's glibc. Never 'x86_64-unknown-linux-gnu': that means 2_28.
        """
        arch = self.architecture.machine
        if self.os is LambdaOS.AMAZON_LINUX_2:
            return f"{arch}-manylinux2014"
        major, minor = self.os.glibc
        return f"{arch}-manylinux_{major}_{minor}"

    @cached_property
    def ordered_tags(self) -> tuple[Tag, ...]:
        """Every wheel tag (cpXY, abi3, pure) the runtime accepts, the one an installer prefers first."""
        version = self.version_tuple
        platforms = [*self.manylinux_platforms, "any"]
        binary = cpython_tags(version, abis=[self.cpython_abi], platforms=self.manylinux_platforms)
        pure = compatible_tags(version, interpreter=self.cpython_abi, platforms=platforms)
        return tuple(dict.fromkeys([*binary, *pure]))

    @cached_property
    def supported_tags(self) -> frozenset[Tag]:
        """All wheel tags (cpXY, abi3, pure) that the runtime accepts."""
        return frozenset(self.ordered_tags)

    @cached_property
    def uv_tags(self) -> frozenset[Tag]:
        """The accepted tags uv can be told about: its --python-platform has no level between
        manylinux_2_17 and 2_28, so on Amazon Linux 2 it stops at 2_17 (see uv_python_platform)."""
        ceiling = 17 if self.os is LambdaOS.AMAZON_LINUX_2 else self.os.glibc[1]
        return frozenset(t for t in self.ordered_tags if (glibc_of(t.platform) or (2, 0)) <= (2, ceiling))

    def marker_environment(self, patch: int = RECENT_PATCH) -> dict[str, str]:
        """PEP 508 marker values of the Lambda runtime, to evaluate markers for it rather than the host.

        The patch level is not fixed at build time: AWS keeps each runtime on a recent patch release
        and updates it in place. A marker on the patch level (``python_full_version >= '3.11.4'``) is
        therefore decided for a recent one (``patch``; the lock reader says when that choice matters).
        """
        full = f"{self.python}.{patch}"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.architecture.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.python,
            "sys_platform": "linux",
        }

    @cached_property
    def image_built_tags(self) -> frozenset[Tag]:
        """Tags of wheels the build image compiles from sdists (platform ``linux_<cpu>``)."""
        platforms = [f"linux_{self.architecture.machine}"]
        return frozenset(cpython_tags(self.version_tuple, abis=[self.cpython_abi], platforms=platforms))

    @property
    def sam_image(self) -> str:
        """The AWS SAM build image for this runtime and CPU."""
        return f"public.ecr.aws/sam/build-{self.runtime_name}:{self.architecture.sam_image_tag}"
