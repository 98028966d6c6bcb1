"""Trim and verify on hand-made installs: each check catches the breakage it exists for."""

from __future__ import annotations

import pytest

from cdk_lambda_layer import LambdaTarget, LayerOptions, LayerTooLargeError, VerificationError
from cdk_lambda_layer.install.trim import trim
from cdk_lambda_layer.verify.layer import verify

X86 = LambdaTarget(python="3.12", architecture="x86_64")


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def dist(site, name, version="1.0", tag="py3-none-any", files=None, requires=()):
    """Write a minimal installed distribution: its files, METADATA, WHEEL and RECORD."""
    files = files or {f"{name}/__init__.py": b"VALUE = 1\n"}
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    requirements = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requirements}")
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    record = [f"{rel},," for rel in files] + [f"{info.name}/{n},," for n in ("METADATA", "WHEEL", "RECORD")]
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "python"
    path.mkdir()
    return path


def test_trim_removes_caches_scripts_and_excluded_distributions(site, tmp_path):
    dist(site, "keepme")
    dist(site, "botocore", files={"botocore/__init__.py": b"x", "botocore/data/a.json": b"{}"})
    (site / "keepme" / "__pycache__").mkdir()
    (site / "keepme" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"pyc")
    (site / "keepme" / "legacy.py").write_text("x = 1\n")
    (site / "keepme" / "legacy.pyc").write_bytes(b"pyc")  # a Python 2 style .pyc beside its source: gone
    (site / "keepme" / "_impl.pyc").write_bytes(b"pyc")  # sourceless: the module itself, kept
    (site / "bin").mkdir()
    (site / "bin" / "keepme-cli").write_text("#!/usr/bin/python\n")
    (site / ".lock").write_text("")
    outside = tmp_path / "outside.txt"
    outside.write_text("must survive")
    record = "botocore/__init__.py,,\nbotocore/data/a.json,,\n../outside.txt,,\n"
    (site / "botocore-1.0.dist-info" / "RECORD").write_text(record)

    report = trim(site, exclude=["BotoCore"])

    assert report.removed_packages == ("botocore",)
    assert report.removed_bytes > 0
    remaining = sorted(p.relative_to(site).as_posix() for p in site.rglob("*"))
    assert remaining == [
        "keepme",
        "keepme-1.0.dist-info",
        "keepme-1.0.dist-info/METADATA",
        "keepme-1.0.dist-info/RECORD",
        "keepme-1.0.dist-info/WHEEL",
        "keepme/__init__.py",
        "keepme/_impl.pyc",
        "keepme/legacy.py",
    ]
    assert outside.read_text() == "must survive"


def test_verify_accepts_a_correct_layer(site):
    dist(site, "purelib")
    dist(
        site,
        "fast",
        tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
        files={"fast/_speed.cpython-312-x86_64-linux-gnu.so": elf(62)},
    )
    report = verify(site, X86, LayerOptions(max_unzipped_bytes=10_000_000))
    assert [p.name for p in report.packages] == ["fast", "purelib"]
    assert report.native_files == 1
    assert report.unzipped_bytes == sum(p.stat().st_size for p in site.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("tag", "target", "words"),
    [
        (
            "cp311-cp311-manylinux_2_28_x86_64",
            LambdaTarget(python="3.11"),
            ["numpy 2.4.1 (cp311-cp311-manylinux_2_28_x86_64)", "glibc 2.26"],
        ),
        ("cp312-cp312-macosx_11_0_arm64", X86, ["numpy 2.4.1 (cp312-cp312-macosx_11_0_arm64)"]),
        ("cp312-cp312-musllinux_1_2_x86_64", X86, ["musllinux"]),
    ],
)
def test_verify_refuses_wheels_tagged_for_another_platform(site, tag, target, words):
    dist(site, "numpy", version="2.4.1", tag=tag)
    with pytest.raises(VerificationError) as info:
        verify(site, target, LayerOptions(max_unzipped_bytes=10_000_000))
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (elf(183), "native code for aarch64, not x86_64"),
        (b"\xcf\xfa\xed\xfe" + bytes(40), "a macOS Mach-O file, not a Linux shared library"),
        (b"MZ" + bytes(40), "a Windows DLL, not a Linux shared library"),
    ],
)
def test_verify_refuses_native_code_for_another_cpu_or_os(site, content, found):
    dist(site, "fast", tag="py3-none-any", files={"fast/_speed.so": content})
    with pytest.raises(VerificationError) as info:
        verify(site, X86, LayerOptions(max_unzipped_bytes=10_000_000))
    assert f"fast/_speed.so (fast): {found}" in str(info.value)
    assert "Python 3.12 on x86_64" in str(info.value)


def test_oversize_layer_names_the_largest_packages(site):
    for index in range(12):
        dist(site, f"pkg{index:02d}", files={f"pkg{index:02d}/blob.bin": bytes(1000 * (index + 1))})
    with pytest.raises(LayerTooLargeError) as info:
        verify(site, X86, LayerOptions(max_unzipped_bytes=20_000))
    message = str(info.value)
    assert "Largest packages: pkg11 0.0 MB, pkg10" in message
    assert "pkg02" in message and "pkg01" not in message and "pkg00" not in message  # top 10 only
    assert "exclude=" not in message  # the layer holds none of what the runtime provides: not offered
    dist(site, "botocore", files={"botocore/data.bin": bytes(1000)})
    with pytest.raises(LayerTooLargeError) as info:
        verify(site, X86, LayerOptions(max_unzipped_bytes=20_000))
    assert "exclude=['botocore']" in str(info.value)


ANYIO = ("exceptiongroup>=1.0.2; python_version < '3.11'", "idna>=2.8", "pytest; extra == 'test'")


def test_a_requirement_for_the_targets_python_must_be_in_the_layer(site):
    """anyio needs exceptiongroup on 3.10 only: a 3.10 layer without it fails verification, naming both."""
    dist(site, "anyio", version="4.8.0", requires=ANYIO)
    dist(site, "idna", version="3.10")
    assert verify(site, LambdaTarget(python="3.12"), LayerOptions()).packages  # not needed on 3.12
    with pytest.raises(VerificationError) as info:
        verify(site, LambdaTarget(python="3.10"), LayerOptions())
    message = str(info.value)
    assert "anyio 4.8.0 requires exceptiongroup>=1.0.2" in message and "python3.10" in message
    assert "pytest" not in message  # an extra nobody asked for


def test_an_extra_asked_for_brings_its_requirements(site):
    """A package asked for as requests[socks] needs what the socks extra requires (PySocks), transitively."""
    dist(site, "common", version="1.0", requires=("requests[socks]>=2",))
    dist(
        site,
        "requests",
        version="2.34.0",
        requires=("idna>=2", "PySocks>=1.5.6; extra == 'socks'", "chardet; extra == 'use-chardet'"),
    )
    dist(site, "idna", version="3.10")
    with pytest.raises(VerificationError) as info:
        verify(site, X86, LayerOptions())
    message = str(info.value)
    assert "requests 2.34.0 requires PySocks>=1.5.6" in message and "chardet" not in message
    assert message.count("  - ") == 1  # each unmet requirement once
    dist(site, "pysocks", version="1.7.1")
    verify(site, X86, LayerOptions())


def test_a_requirement_at_the_wrong_version_is_refused(site):
    dist(site, "anyio", version="4.8.0", requires=ANYIO)
    dist(site, "idna", version="2.0")
    with pytest.raises(VerificationError) as info:
        verify(site, X86, LayerOptions())
    assert "requires idna>=2.8, but the layer has idna 2.0" in str(info.value)


def test_excluding_a_requirement_of_a_kept_package_is_refused_unless_provided(site):
    dist(site, "pydantic", version="2.11.0", requires=("pydantic-core==2.33.0", "boto3>=1.30"))
    with pytest.raises(VerificationError) as info:
        verify(site, X86, LayerOptions(exclude=("pydantic_core", "boto3")))
    message = str(info.value)
    assert "pydantic 2.11.0 requires pydantic-core==2.33.0" in message and "(you excluded it)" in message
    assert "boto3" not in message.split("Ways out")[0]  # the runtime provides boto3
    assert "provided=['pydantic-core']" in message
    verify(site, X86, LayerOptions(exclude=("boto3",), provided=("pydantic-core",)))  # said so: accepted


def test_the_size_error_suggests_dropping_bytecode_when_that_fits(site):
    dist(
        site, "big", files={"big/__init__.py": bytes(15_000), "big/__pycache__/__init__.cpython-312.pyc": bytes(9_000)}
    )
    with pytest.raises(LayerTooLargeError) as info:
        verify(site, X86, LayerOptions(max_unzipped_bytes=20_000))
    assert "bytecode=False / --no-bytecode" in str(info.value)


def test_a_file_changed_since_it_was_installed_is_refused(site):
    """RECORD names each installed file's hash: a file changed afterwards (a poisoned installer cache,
    a build step run in the image) is refused, naming it; removed files and new bytecode are not."""
    import base64
    import hashlib

    files = {"six.py": b"VALUE = 1\n", "six_extra/__init__.py": b"", "six_extra/__pycache__/x.pyc": b"old"}
    dist(site, "six", files=files)
    record = site / "six-1.0.dist-info" / "RECORD"
    rows = []
    for rel, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{rel},sha256={digest},{len(data)}")
    record.write_text("\n".join(rows) + "\nsix-1.0.dist-info/RECORD,,\n")
    (site / "six_extra" / "__pycache__" / "x.pyc").write_bytes(b"the bytecode step's own")
    (site / "six_extra" / "__init__.py").unlink()  # removed on purpose (excluded, trimmed): fine
    verify(site, X86, LayerOptions())
    (site / "six.py").write_bytes(b"VALUE = 1\nPOISONED = True\n")
    with pytest.raises(VerificationError) as info:
        verify(site, X86, LayerOptions())
    assert "not what their distribution's RECORD says: six.py (six)" in str(info.value)
