"""layer.zip: deterministic, with python/ at its top, compressed on every core.

Same files in, same bytes out, on any machine: entries sorted by path, every timestamp
fixed at 1980-01-01 (the zip format's epoch), permissions normalised to 0644/0755, Unix
as the creating system. Lambda extracts the zip under /opt, so python/ lands on sys.path.

Deflating is most of the time a zip takes, and zlib releases the GIL: entries are
compressed in a thread pool (a bounded window ahead of the writer, so memory stays
small) with exactly the settings zipfile itself uses, and written in sorted order by
zipformat.py, whose records are byte for byte zipfile's (a test proves it). Members the
package cache kept already compressed are written as they are, without reading their files
where the copy out of the cache checksummed them (``crcs``).

Only regular files are archived: the tree walk refuses links and special files
(inventory.walk_files), and each file is opened with O_NOFOLLOW (inventory.read_regular), so a
file swapped for a link between the walk and the read is refused too, never followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import zipfile
import zlib
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..core.files import open_regular, read_regular, walk_relative, walk_stats
from . import zipformat

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_UNIX = 3
#: zlib level; 6 is what the zip tool uses. 1 zips ~2.5x faster for ~15% more bytes.
DEFAULT_ZIP_LEVEL = 6
#: How far compression may run ahead of the writer: enough that one large library (numpy's
#: 24 MB) compresses while the files after it do, while memory stays bounded.
WINDOW_BYTES = 256 * 1024 * 1024
WINDOW_FILES = 4096


#: One file of the zip: name in it, the file on disk, its mode and size (from the walk).
Entry = tuple[str, Path, int, int]


def layer_entries(site: Path, stats: list[tuple[Path, os.stat_result]] | None = None) -> list[Entry]:
    """(name in zip, file on disk, mode, size) for every regular file, sorted by name; links refused.
    ``stats``: walk_stats(site), made earlier (its paths are under ``site``, as the walk gives them)."""
    root = str(site)
    prefix = root + os.sep
    entries = []
    for path, info in walk_stats(site) if stats is None else stats:
        text = str(path)
        relative = text[len(prefix) :] if text.startswith(prefix) else os.path.relpath(text, root)
        entries.append((f"python/{relative.replace(os.sep, '/')}", path, info.st_mode, info.st_size))
    return sorted(entries)


def layer_mode(mode: int) -> int:
    """The permission bits a layer's file gets: 0755 when its owner may execute it, else 0644."""
    return 0o755 if mode & stat.S_IXUSR else 0o644


def normalize_modes(site: Path, stats: list[tuple[Path, os.stat_result]] | None = None) -> None:
    """Give every file of the tree the mode the zip gives it, so that a tree, its layer.zip and a tree
    unpacked from that zip (a remote hit) are the same files, modes included (CDK zips the asset itself).
    ``stats``: walk_stats(site) made earlier, whose modes still hold (nothing since chmodded a file)."""
    walked = [(site / relative, info) for relative, info in walk_relative(site)] if stats is None else stats
    for path, info in walked:  # one lstat per entry, from the walk
        mode = stat.S_IMODE(info.st_mode)
        if mode != layer_mode(mode):
            fd = open_regular(path)  # never through a link
            try:
                os.fchmod(fd, layer_mode(mode))
            finally:
                os.close(fd)


def _zip_info(name: str, mode: int, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
    info.external_attr = zipformat.external_attr(layer_mode(mode))
    info.create_system = _UNIX
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size
    return info


def deflate(data: bytes, level: int) -> bytes:
    """Raw deflate exactly as zipfile makes it (zlib.compressobj(level, DEFLATED, -15))."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class Stream:
    """A raw deflate stream made earlier (a package cache entry's zip member), with the CRC-32 of the
    file it was made from and of the stream itself, as the entry recorded them when it was stored
    (after inflating it once against the file); None where an entry recorded none."""

    blob: bytes | memoryview
    crc: int | None = None
    blob_crc: int | None = None

    def made_from(self, data: bytes) -> bool:
        """Whether this stream is the one made from ``data``: both checksums as recorded (two CRC-32s, a
        fraction of inflating it), or, without them, by inflating it."""
        if self.crc is not None and self.blob_crc is not None:
            return self.matches(zlib.crc32(data))
        return inflates_to(self.blob, data)

    def matches(self, crc: int) -> bool:
        """made_from for a file whose CRC-32 is known already (the copy out of the package cache computed it
        from the bytes it wrote, core/digests.py): the file's and the stream's checksums as recorded."""
        return self.crc is not None and self.blob_crc is not None and crc == self.crc and self.intact()

    def intact(self) -> bool:
        return zlib.crc32(self.blob) == self.blob_crc


def inflated(blob: bytes | memoryview) -> bytes | None:
    """What the one whole raw deflate stream ``blob`` inflates to, or None (damaged, cut short, or with
    bytes after its end)."""
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(blob)
    except zlib.error:
        return None
    return data if inflater.eof and not inflater.unused_data else None


def inflates_to(blob: bytes | memoryview, data: bytes) -> bool:
    """``blob`` is one whole raw deflate stream of exactly ``data`` (nothing after it)."""
    return inflated(blob) == data


#: One member ready to write: name in the zip, mode, size, CRC-32 of its bytes, raw deflate stream.
Member = tuple[str, int, int, int, bytes | memoryview]
#: A member's size, CRC-32 and stream, as a worker or this thread made them.
_Made = tuple[int, int, bytes | memoryview]


def _prepared(
    entries: list[Entry],
    level: int,
    workers: int,
    precompressed: Mapping[str, Stream],
    rejected: list[str],
    crcs: Mapping[Path, int],
) -> Iterator[Member]:
    """Each entry's member, in the entries' order, compressed ``workers`` at a time.

    An entry given in ``precompressed`` (by its path under python/) takes that stream instead of being
    deflated again, once the stream is shown to be the one made from the file's bytes: without reading the
    file where ``crcs`` knows its CRC-32 (Stream.matches), else by reading it (Stream.made_from); one that
    is not is deflated and its name added to ``rejected``. Those taken from ``precompressed`` are done on
    this thread, in turn: a read and two CRC-32s cost less than handing them to a worker.
    """

    def job(name: str, path: Path, size: int) -> _Made:
        stream = precompressed.get(name[len("python/") :])
        if stream is not None and (known := crcs.get(path)) is not None and stream.matches(known):
            return size, known, stream.blob
        data = read_regular(path)
        if stream is not None:
            if stream.made_from(data):
                return len(data), zlib.crc32(data) if stream.crc is None else stream.crc, stream.blob
            rejected.append(name[len("python/") :])
        return len(data), zlib.crc32(data), deflate(data, level)

    # (name, mode, size, the member's (size, CRC-32, stream): done here, or a worker's future)
    window: deque[tuple[str, int, int, _Made | Future[_Made]]] = deque()
    in_flight = 0
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else contextlib.nullcontext() as pool:
        for name, path, mode, size in entries:
            if pool is None or name[len("python/") :] in precompressed:
                window.append((name, mode, size, job(name, path, size)))
            else:
                window.append((name, mode, size, pool.submit(job, name, path, size)))
            in_flight += size
            while window and (in_flight > WINDOW_BYTES or len(window) > WINDOW_FILES):
                name_, mode_, size_, member = window.popleft()
                in_flight -= size_
                yield (name_, mode_, *(member.result() if isinstance(member, Future) else member))
        while window:
            name_, mode_, _size, member = window.popleft()
            yield (name_, mode_, *(member.result() if isinstance(member, Future) else member))


def _write_with_zipfile(archive: zipfile.ZipFile, entries: list[Entry], level: int) -> None:
    """What zipformat.py cannot write (ZIP64: a member over 2 GiB, or over 65,535 members), by zipfile alone."""
    for name, path, mode, _size in entries:
        data = read_regular(path)
        archive.writestr(_zip_info(name, mode, len(data)), data, compresslevel=level)


def write_layer_zip(
    site: Path,
    destination: Path,
    level: int = DEFAULT_ZIP_LEVEL,
    *,
    workers: int | None = None,
    precompressed: Mapping[str, Stream] | None = None,
    rejected: list[str] | None = None,
    entries: list[Entry] | None = None,
    crcs: Mapping[Path, int] | None = None,
    spans: dict[str, tuple[int, int, int]] | None = None,
) -> int:
    """Write ``site`` as python/... into ``destination`` atomically; return its size in bytes.

    ``workers``: compressing threads (default: one per CPU; 1 compresses on this thread).
    ``precompressed``: raw deflate streams made earlier at this ``level`` with this zlib (the package
    cache's members), by path under python/: copied, not compressed again, each checked against the
    file (Stream.matches, Stream.made_from); those that do not match are deflated anew and named in
    ``rejected``. The bytes are the same either way. ``entries``: layer_entries(site) made earlier.
    ``crcs``: the CRC-32 of files whose bytes were read already, by their path in ``entries`` (only files
    still as they were then: core/digests.py), so that a precompressed member needs no read of its file.
    ``spans``: filled with member_spans of the zip written (for the package cache), without reading it back.
    """
    entries = layer_entries(site) if entries is None else entries
    workers = workers or os.cpu_count() or 1
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        if zipformat.fits([size for _name, _path, _mode, size in entries]):
            members = _prepared(
                entries, level, workers, precompressed or {}, rejected if rejected is not None else [], crcs or {}
            )
            with partial.open("wb") as out:
                writer = zipformat.ZipWriter(out)
                for name, mode, size, crc, stream in members:
                    writer.add(name, layer_mode(mode), size, crc, stream)
                writer.finish()
            written = {name.removeprefix("python/"): span for name, span in writer.spans.items()}
        else:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
                _write_with_zipfile(archive, entries, level)
            written = member_spans(partial) if spans is not None else {}
        partial.replace(destination)
        if spans is not None:
            spans.update(written)
    finally:
        partial.unlink(missing_ok=True)
    return destination.stat().st_size


_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # PKZIP local file header, 30 bytes


def member_spans(archive: Path, names: Collection[str] | None = None) -> dict[str, tuple[int, int, int]]:
    """Where each member's raw deflate stream lies in a zip this module wrote: path under python/ ->
    (offset, length, CRC-32 of the file's bytes), read from the central directory and each local header
    (``names``: these only)."""
    spans: dict[str, tuple[int, int, int]] = {}
    with zipfile.ZipFile(archive) as opened, archive.open("rb") as raw:
        for info in opened.infolist():
            if names is not None and info.filename.removeprefix("python/") not in names:
                continue
            raw.seek(info.header_offset)
            header = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
            if header[0] != 0x04034B50 or info.compress_type != zipfile.ZIP_DEFLATED:
                continue
            start = info.header_offset + _LOCAL_HEADER.size + header[9] + header[10]
            spans[info.filename.removeprefix("python/")] = (start, info.compress_size, info.CRC)
    return spans
