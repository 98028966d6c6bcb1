"""Package code that the import check runs cannot change the layer unseen.

Another package's compiled bytecode rewritten in place (same size, same inode, its time put back), or a
source file and its RECORD line rewritten together, is found by its content: the layer is refused and
not published.
"""

from __future__ import annotations

import pytest
from cli_helpers import HOST
from package_helpers import local_package_project

from cdk_lambda_layer import PipBasedLambdaLayerLocalBuilder, VerificationError

PYC_POISON = """
import os, sys
from pathlib import Path
from importlib._bootstrap_external import _code_to_hash_pyc
site = Path(__file__).resolve().parents[1]
pyc = site / "__pycache__" / f"six.{sys.implementation.cache_tag}.pyc"
if pyc.is_file():
    st = os.lstat(pyc)
    data = _code_to_hash_pyc(compile("POISONED = True\\n", "/opt/python/six.py", "exec"), b"\\0" * 8, checked=False)
    with open(pyc, "r+b") as handle:  # same size, same inode, mtime put back: the snapshot sees nothing
        handle.write(data + b"\\0" * (st.st_size - len(data)))
    os.utime(pyc, ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_import_time_code_cannot_replace_another_packages_bytecode(tmp_path):
    project = local_package_project(tmp_path / "app", PYC_POISON, extra="six==1.17.0\n")
    with pytest.raises(VerificationError) as info:  # the content changed, whatever its size and time
        PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False).run()
    assert "changed or deleted files of the layer: __pycache__/six.cpython" in str(info.value)
    assert not (project / "build" / "lambda" / "layer").exists()


SOURCE_AND_RECORD = """
import base64, hashlib, os
from pathlib import Path
site = Path(__file__).resolve().parents[1]
src = site / "six.py"
if src.is_file():
    record = next(site.glob("six-*.dist-info")) / "RECORD"
    keep = {p: os.lstat(p) for p in (src, record)}
    old = src.read_bytes()
    new = b"POISONED = True\\n" + b"#" * (len(old) - 16)
    digest = lambda b: base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=")
    src.write_bytes(new)
    record.write_bytes(record.read_bytes().replace(digest(old), digest(new)))
    for p, st in keep.items():
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_import_time_code_cannot_rewrite_a_file_and_its_record(tmp_path):
    project = local_package_project(tmp_path / "app", SOURCE_AND_RECORD, extra="six==1.17.0\n")
    with pytest.raises(VerificationError) as info:
        PipBasedLambdaLayerLocalBuilder(project, python=HOST, cache_dir=False, bytecode=False).run()
    assert "six.py" in str(info.value) and "RECORD" in str(info.value)
