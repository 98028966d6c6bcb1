"""The records of layer.zip, written from what each member already is: its deflate stream and CRC-32.

zipfile computes a member's CRC-32 from its bytes as they are written, so a member whose stream and
checksum are known already (the package cache keeps both, and the copy out of it read the file once)
would be read and checksummed again only to please it. This writes the same records itself, for the one
shape layer.zip has: deflated regular files, one fixed date (1980-01-01), Unix modes, no comments, no extra
fields, and nothing that needs ZIP64 (``fits``; every Lambda layer does, by far: archive.py falls back to
zipfile otherwise).

The bytes are zipfile's for the same members (``ZipFile.open(info, "w")`` on a seekable file, as
archive.py used it), on every Python this library supports: tests/test_archive.py compares them.
"""

from __future__ import annotations

import stat
import struct
from typing import BinaryIO

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # zipfile.structCentralDir
_END = struct.Struct("<4s4H2LH")  # zipfile.structEndArchive
#: zipfile.ZIP64_LIMIT and ZIP_FILECOUNT_LIMIT: beyond either zipfile writes ZIP64 records.
_LIMIT = (1 << 31) - 1
_MAX_MEMBERS = (1 << 16) - 1
_VERSION = 20  # zipfile.DEFAULT_VERSION: what deflate needs to extract
_UNIX = 3
_DEFLATED = 8
_UTF8_NAME = 0x800
#: 1980-01-01 00:00:00 as MS-DOS date and time (archive.FIXED_DATE_TIME).
_DOS_DATE = (1980 - 1980) << 9 | 1 << 5 | 1
_DOS_TIME = 0


def fits(sizes: list[int]) -> bool:
    """Whether members of these sizes need no ZIP64 record: zipfile's own rule for the local header (a file
    over ZIP64_LIMIT / 1.05), with the whole archive under the limit too, and fewer than 65,536 members."""
    return len(sizes) <= _MAX_MEMBERS and sum(sizes) * 1.05 + 1024 * len(sizes) < _LIMIT


def external_attr(mode: int) -> int:
    """The member's external attributes: a regular file with ``mode``'s permission bits, as Unix zips say."""
    return (stat.S_IFREG | mode) << 16


class ZipWriter:
    """Members appended in order, then the central directory and the end record (``finish``)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offset = 0
        self.directory: list[bytes] = []
        #: name -> (offset of its deflate stream in the file, the stream's length, the CRC-32 of its bytes).
        self.spans: dict[str, tuple[int, int, int]] = {}

    def add(self, name: str, mode: int, size: int, crc: int, stream: bytes | memoryview) -> None:
        """A member ``name`` of ``size`` bytes with permission bits ``mode``, whose raw deflate ``stream`` is
        given, and the CRC-32 of its bytes."""
        encoded, flags = _encode(name)
        local = _LOCAL.pack(
            b"PK\x03\x04", _VERSION, 0, flags, _DEFLATED, _DOS_TIME, _DOS_DATE, crc, len(stream), size, len(encoded), 0
        )
        central = _CENTRAL.pack(
            b"PK\x01\x02",
            _VERSION,
            _UNIX,
            _VERSION,
            0,
            flags,
            _DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            len(stream),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            external_attr(mode),
            self.offset,
        )
        self.directory.append(central + encoded)
        self.out.write(local + encoded)
        self.out.write(stream)
        self.spans[name] = (self.offset + len(local) + len(encoded), len(stream), crc)
        self.offset += len(local) + len(encoded) + len(stream)

    def finish(self) -> None:
        directory = b"".join(self.directory)
        count = len(self.directory)
        self.out.write(directory)
        self.out.write(_END.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), self.offset, 0))


def _encode(name: str) -> tuple[bytes, int]:
    """The name's bytes and flags as zipfile gives them: ASCII, else UTF-8 with the flag that says so."""
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8_NAME
