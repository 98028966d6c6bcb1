"""layer.zip is deterministic and has python/ at its top."""

from __future__ import annotations

import os
import stat
import zipfile

from cdk_lambda_layer.archive import FIXED_DATE_TIME, write_layer_zip


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
