"""Trim and verify on hand-made installs: each check catches the breakage it exists for."""

from __future__ import annotations

import pytest

from cdk_lambda_layer import LambdaTarget, LayerTooLargeError, VerificationError
from cdk_lambda_layer.trim import trim
from cdk_lambda_layer.verify import verify

X86 = LambdaTarget(python="3.12", architecture="x86_64")


def elf(machine: int) -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(11) + machine.to_bytes(2, "little") + bytes(44)


def dist(site, name, version="1.0", tag="py3-none-any", files=None):
    """Write a minimal installed distribution: its files, METADATA, WHEEL and RECORD."""
    files = files or {f"{name}/__init__.py": b"VALUE = 1\n"}
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
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
    (site / "stray.pyc").write_bytes(b"pyc")
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
    report = verify(site, X86, max_unzipped_bytes=10_000_000)
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
        verify(site, target, max_unzipped_bytes=10_000_000)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("content", "found"),
    [(elf(183), "AArch64"), (b"\xcf\xfa\xed\xfe" + bytes(40), "a macOS Mach-O"), (b"MZ" + bytes(40), "a Windows DLL")],
)
def test_verify_refuses_native_code_for_another_cpu_or_os(site, content, found):
    dist(site, "fast", tag="py3-none-any", files={"fast/_speed.so": content})
    with pytest.raises(VerificationError) as info:
        verify(site, X86, max_unzipped_bytes=10_000_000)
    assert f"fast/_speed.so is {found}" in str(info.value)
    assert "x86_64 ELF" in str(info.value)


def test_oversize_layer_names_the_largest_packages(site):
    for index in range(12):
        dist(site, f"pkg{index:02d}", files={f"pkg{index:02d}/blob.bin": bytes(1000 * (index + 1))})
    with pytest.raises(LayerTooLargeError) as info:
        verify(site, X86, max_unzipped_bytes=20_000)
    message = str(info.value)
    assert "Largest packages: pkg11 0.0 MB, pkg10" in message
    assert "pkg02" in message and "pkg01" not in message and "pkg00" not in message  # top 10 only
    assert "exclude=['boto3', 'botocore', 's3transfer']" in message
