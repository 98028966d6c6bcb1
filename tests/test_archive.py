"""layer.zip is deterministic and has python/ at its top."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
import zlib

import pytest

from cdk_lambda_layer import VerificationError
from cdk_lambda_layer.package.archive import FIXED_DATE_TIME, write_layer_zip


def tree(root, mtime):
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "data.bin").write_bytes(bytes(range(256)) * 100)
    tool = root / "pkg" / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o775)
    (root / "zz.py").write_text("z = 1\n")
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime))
    return root


def test_byte_identical_whatever_the_times_modes_and_paths(tmp_path):
    a = tree(tmp_path / "a" / "python", 1_000_000_000)
    b = tree(tmp_path / "deep" / "other" / "python", 1_700_000_000)
    (b / "pkg" / "__init__.py").chmod(0o600)
    write_layer_zip(a, tmp_path / "a.zip")
    write_layer_zip(b, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_entries_sorted_under_python_with_fixed_metadata(tmp_path):
    site = tree(tmp_path / "python", 1_600_000_000)
    size = write_layer_zip(site, tmp_path / "layer.zip")
    assert size == (tmp_path / "layer.zip").stat().st_size
    with zipfile.ZipFile(tmp_path / "layer.zip") as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert names == ["python/pkg/__init__.py", "python/pkg/sub/data.bin", "python/pkg/tool.sh", "python/zz.py"]
        assert {i.date_time for i in infos} == {FIXED_DATE_TIME}
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
        assert modes["python/pkg/tool.sh"] == 0o755
        assert modes["python/zz.py"] == 0o644
        assert archive.read("python/pkg/sub/data.bin") == bytes(range(256)) * 100
    assert not list(tmp_path.glob("*.partial"))


def test_zip_level_is_applied(tmp_path):
    site = tree(tmp_path / "python", 1_600_000_000)
    (site / "text.txt").write_text("layer " * 50_000)
    stored = write_layer_zip(site, tmp_path / "fast.zip", level=0)
    smallest = write_layer_zip(site, tmp_path / "small.zip", level=9)
    assert stored > 300_000 > smallest


def big_tree(root):
    """Many files of many sizes, one large, empty ones, as an installed layer has."""
    rng = __import__("random").Random(7)
    for index in range(300):
        folder = root / f"pkg{index % 17}" / f"mod{index % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 1, 100, 5_000, 70_000])
        (folder / f"f{index}.py").write_bytes(bytes(rng.getrandbits(8) % 61 + 32 for _ in range(size)))
    (root / "big.so").write_bytes(bytes(range(256)) * 8_000 + os.urandom(300_000))
    return root


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_parallel_compression_writes_exactly_the_bytes_zipfile_writes(tmp_path, level):
    site = big_tree(tmp_path / "python")
    write_layer_zip(site, tmp_path / "serial.zip", level, workers=1)
    write_layer_zip(site, tmp_path / "parallel.zip", level, workers=4)
    assert (tmp_path / "parallel.zip").read_bytes() == (tmp_path / "serial.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "parallel.zip") as archive:
        assert archive.testzip() is None
        assert archive.read("python/big.so") == (site / "big.so").read_bytes()


def test_compression_runs_on_several_threads(tmp_path, monkeypatch):
    """The speed-up is the point: with two workers, entries are deflated on more than one thread
    (zlib releases the GIL), and the bytes are still zipfile's own."""
    import threading

    import cdk_lambda_layer.package.archive as archive

    site = big_tree(tmp_path / "python")
    threads: set[int] = set()
    real = archive.deflate

    def spying(data: bytes, level: int) -> bytes:
        threads.add(threading.get_ident())
        return real(data, level)

    monkeypatch.setattr(archive, "deflate", spying)
    write_layer_zip(site, tmp_path / "parallel.zip", 6, workers=2)
    assert len(threads) >= 2 and threading.get_ident() not in threads
    monkeypatch.setattr(archive, "deflate", real)
    write_layer_zip(site, tmp_path / "serial.zip", 6, workers=1)
    assert (tmp_path / "parallel.zip").read_bytes() == (tmp_path / "serial.zip").read_bytes()


@pytest.mark.parametrize("kind", ["file-link", "folder-link", "fifo"])
def test_a_link_or_special_file_is_refused_and_nothing_is_written(tmp_path, kind):
    site = tree(tmp_path / "python", 1_600_000_000)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    if kind == "file-link":
        (site / "pkg" / "passwd").symlink_to(secret)
    elif kind == "folder-link":
        (site / "etc").symlink_to(tmp_path)
    else:
        os.mkfifo(site / "pkg" / "pipe")
    with pytest.raises(VerificationError) as info:
        write_layer_zip(site, tmp_path / "layer.zip")
    assert "only regular files and folders" in str(info.value)
    assert not (tmp_path / "layer.zip").exists() and not list(tmp_path.glob(".layer.zip*"))


def test_a_file_swapped_for_a_link_after_the_walk_is_not_followed(tmp_path):
    from cdk_lambda_layer.core.files import read_regular

    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    swapped = tmp_path / "python" / "swapped.py"
    swapped.parent.mkdir()
    swapped.symlink_to(secret)
    with pytest.raises(VerificationError, match="cannot be read as a regular file"):
        read_regular(swapped)


def test_a_stored_zip_stream_must_inflate_to_its_file(tmp_path):
    """The package cache keeps each file's deflate stream out of layer.zip: inflated once against the file's
    CRC-32 when stored, then trusted by its two CRC-32s; a stream that is not its file's is never stored."""
    from cdk_lambda_layer.cache.packages.members import write_members
    from cdk_lambda_layer.package.archive import Stream, member_spans

    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "a.py").write_text("A = 1\n" * 50)
    (site / "pkg" / "b.py").write_text("B = 2\n" * 70)
    layer_zip = tmp_path / "layer.zip"
    write_layer_zip(site, layer_zip, 6)
    spans = member_spans(layer_zip)
    listed = write_members(tmp_path, "6-x", layer_zip, spans, ["pkg/a.py", "pkg/b.py"])
    blob = (tmp_path / listed["file"]).read_bytes()
    for name in ("pkg/a.py", "pkg/b.py"):
        start, length, crc, blob_crc = listed["index"][name]
        stream = Stream(blob[start : start + length], crc, blob_crc)
        assert stream.made_from((site / name).read_bytes())
        assert not stream.made_from((site / name).read_bytes() + b"#")
    swapped = {**spans, "pkg/a.py": (*spans["pkg/b.py"][:2], spans["pkg/a.py"][2])}  # b's stream under a's name
    (tmp_path / listed["file"]).unlink()
    with pytest.raises(VerificationError, match="does not inflate to its CRC"):
        write_members(tmp_path, "6-x", layer_zip, swapped, ["pkg/a.py", "pkg/b.py"])


ZIPFILE_WRITER = """
import os, stat, sys, zipfile
site, out, level = sys.argv[1], sys.argv[2], int(sys.argv[3])
members = []
for root, _dirs, files in os.walk(site):
    for name in files:
        path = os.path.join(root, name)
        members.append(("python/" + os.path.relpath(path, site).replace(os.sep, "/"), path))
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
    for name, path in sorted(members):
        with open(path, "rb") as handle:
            data = handle.read()
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        mode = 0o755 if os.stat(path).st_mode & stat.S_IXUSR else 0o644
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.create_system = 3
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = len(data)
        archive.writestr(info, data, compresslevel=level)
"""


def _pythons() -> list[str]:
    """This Python and every other supported CPython found on the machine (their zipfile must agree)."""
    from cdk_lambda_layer.plan.interpreter import find_interpreter

    found = {sys.executable}
    for minor in range(10, 15):
        interpreter = find_interpreter(f"3.{minor}")
        if interpreter is not None:
            found.add(interpreter.path)
    return sorted(found)


@pytest.mark.parametrize("level", [0, 6, 9])
def test_the_zip_is_byte_for_byte_what_zipfile_writes_on_every_python_here(tmp_path, level):
    """zipformat.py writes the records itself (so that cached streams need no read of their files): the
    bytes must be zipfile's own, names that are not ASCII, empty files and executables included."""
    site = big_tree(tmp_path / "python")
    (site / "ünïcode").mkdir()
    (site / "ünïcode" / "données.py").write_text("é = 1\n" * 1000)
    (site / "pkg0" / "empty.txt").write_bytes(b"")
    (site / "pkg0" / "run.sh").write_text("#!/bin/sh\n")
    (site / "pkg0" / "run.sh").chmod(0o755)
    ours = tmp_path / "ours.zip"
    write_layer_zip(site, ours, level, workers=2)
    (tmp_path / "writer.py").write_text(ZIPFILE_WRITER)
    pythons = _pythons()
    for index, python in enumerate(pythons):
        theirs = tmp_path / f"zipfile-{index}.zip"
        subprocess.run([python, str(tmp_path / "writer.py"), str(site), str(theirs), str(level)], check=True)
        assert ours.read_bytes() == theirs.read_bytes(), python
    assert sys.executable in pythons


def test_a_cached_stream_goes_in_without_reading_its_file_only_when_its_checksums_agree(tmp_path, monkeypatch):
    """A member the package cache kept compressed is written without a read of its file when the copy out
    of the cache gave the file's CRC-32 (``crcs``) and it is the one recorded with the stream. Without a
    known CRC the file is read and checked as before; a stream recorded for other bytes than the file's
    (the known CRC differs) is read, refused, compressed anew and named."""
    import cdk_lambda_layer.package.archive as archive
    from cdk_lambda_layer.package.archive import Stream, deflate

    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    for name, text in (("a.py", "A = 1\n" * 300), ("b.py", "B = 2\n" * 400), ("c.py", "C = 3\n" * 500)):
        (site / "pkg" / name).write_text(text)
    expected = tmp_path / "plain.zip"
    write_layer_zip(site, expected, 6)

    def stream(data: bytes) -> Stream:
        blob = deflate(data, 6)
        return Stream(blob, zlib.crc32(data), zlib.crc32(blob))

    def data(name: str) -> bytes:
        return (site / name).read_bytes()

    precompressed = {
        "pkg/a.py": stream(data("pkg/a.py")),
        "pkg/b.py": stream(data("pkg/b.py")),
        "pkg/c.py": stream(b"X"),
    }
    crcs = {site / "pkg/a.py": zlib.crc32(data("pkg/a.py")), site / "pkg/c.py": zlib.crc32(data("pkg/c.py"))}
    read: list[str] = []
    real = archive.read_regular
    monkeypatch.setattr(archive, "read_regular", lambda path: read.append(path.name) or real(path))
    rejected: list[str] = []
    entries = [(f"python/{n}", site / n, 0o100644, (site / n).stat().st_size) for n in sorted(precompressed)]
    write_layer_zip(
        site, tmp_path / "layer.zip", 6, precompressed=precompressed, rejected=rejected, crcs=crcs, entries=entries
    )
    assert (tmp_path / "layer.zip").read_bytes() == expected.read_bytes()
    assert sorted(read) == ["b.py", "c.py"]  # a.py went in as it was
    assert rejected == ["pkg/c.py"]


def test_the_writer_notes_where_each_stream_lies(tmp_path):
    """The package cache reads new packages' streams back out of layer.zip at the spans its writer noted,
    the same that reading the zip's directory gives."""
    from cdk_lambda_layer.package.archive import member_spans

    site = big_tree(tmp_path / "python")
    spans: dict = {}
    write_layer_zip(site, tmp_path / "layer.zip", 6, spans=spans)
    assert spans == member_spans(tmp_path / "layer.zip")
