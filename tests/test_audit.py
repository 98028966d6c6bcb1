"""The native-code audit on real binaries: libraries compiled here with the host's gcc, and real
wheels from PyPI. Wheel tags can lie; the audit reads what the loader will need."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from package_helpers import hatch_package

from cdk_lambda_layer import BasedLambdaLayerLocalBuilder, VerificationError
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.target import LambdaTarget
from cdk_lambda_layer.verify.native.audit import audit_layer

AL2 = LambdaTarget(python="3.11")
AL2023 = LambdaTarget(python="3.12")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host's gcc to compile a library")

GLIBC_228 = """
#include <fcntl.h>
/* bind to the glibc 2.28 version of fcntl64, as code built against a newer glibc does */
__asm__(".symver fcntl64,fcntl64@GLIBC_2.28");
extern int fcntl64(int fd, int cmd, ...);
int flags(int fd) { return fcntl64(fd, F_GETFL); }
"""
GLIBCXX_NEW = """
#include <filesystem>
#include <string>
std::string here() { return std::filesystem::current_path().string(); }
"""
USES_LIBACME = "extern int acme(void);\nint call(void) { return acme(); }\n"


def compile_library(source: str, out: Path, *, cxx: bool = False, link: tuple[str, ...] = ()) -> Path:
    suffix = ".cpp" if cxx else ".c"
    src = out.with_suffix(suffix)
    src.write_text(source)
    compiler = "g++" if cxx else "gcc"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(out), str(src), *link], check=True)
    src.unlink()
    return out


def layer_with(site: Path, relative: str, library: Path, package: str = "acme") -> Path:
    """A layer with one distribution that ships ``library`` at ``relative``."""
    target = site / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(library, target)
    info = site / f"{package}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{relative},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return site


@needs_gcc
def test_a_library_needing_a_newer_glibc_is_refused_naming_file_and_symbol(tmp_path):
    library = compile_library(GLIBC_228, tmp_path / "flags.so")
    site = layer_with(tmp_path / "python", "acme/_flags.cpython-311-x86_64-linux-gnu.so", library)
    report = audit_layer(site, AL2)
    assert [f.describe() for f in report.errors] == [
        "acme/_flags.cpython-311-x86_64-linux-gnu.so (acme): needs GLIBC_2.28; python3.11 runs on Amazon Linux 2, "
        "which provides GLIBC up to 2.26"
    ]
    renamed = layer_with(tmp_path / "python312", "acme/_flags.cpython-312-x86_64-linux-gnu.so", library)
    assert audit_layer(renamed, AL2023).errors == ()  # glibc 2.34 has it


@needs_gcc
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs the host's g++")
def test_a_library_needing_a_newer_libstdcxx_is_refused_on_amazon_linux_2(tmp_path):
    library = compile_library(GLIBCXX_NEW, tmp_path / "fs.so", cxx=True)
    site = layer_with(tmp_path / "python", "acme/libfs.so", library)
    (problem,) = [f.problem for f in audit_layer(site, AL2).errors]
    assert problem.startswith("needs GLIBCXX_3.4.") and "GLIBCXX up to 3.4.24" in problem
    assert audit_layer(site, AL2023).errors == ()  # gcc 11's libstdc++ (3.4.29) has it


@needs_gcc
def test_a_needed_library_must_be_shipped_or_the_runtimes(tmp_path):
    acme = compile_library("int acme(void) { return 1; }\n", tmp_path / "libacme.so")
    user = compile_library(USES_LIBACME, tmp_path / "user.so", link=(f"-L{tmp_path}", "-lacme"))
    site = layer_with(tmp_path / "python", "acme/user.so", user)
    (warning,) = audit_layer(site, AL2023).warnings
    assert warning.path == "acme/user.so" and "needs libacme.so" in warning.problem
    shipped = layer_with(tmp_path / "python", "acme.libs/libacme.so", acme, package="acme-libs")
    assert audit_layer(shipped, AL2023).warnings == ()


@needs_gcc
@pytest.mark.parametrize(
    ("name", "target", "words"),
    [
        ("m.cpython-311-x86_64-linux-gnu.so", AL2023, "a CPython 3.11 extension module; python3.12 never loads it"),
        (
            "m.cpython-312-aarch64-linux-gnu.so",
            AL2023,
            "an extension module for aarch64-linux-gnu, not x86_64-linux-gnu",
        ),
        ("m.abi3.so", AL2023, None),
        ("libplain.so", AL2023, None),
    ],
)
def test_extension_module_names_must_fit_the_target(tmp_path, name, target, words):
    library = compile_library("int x(void) { return 0; }\n", tmp_path / "x.so")
    site = layer_with(tmp_path / "python", f"acme/{name}", library)
    problems = [f.problem for f in audit_layer(site, target).errors]
    assert problems == ([words] if words else [])


def install(target: LambdaTarget, dest: Path, *packages: str, platform: str | None = None) -> Path:
    subprocess.run(
        [
            find_uv(),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(dest),
            "--python-version",
            target.python,
            "--python-platform",
            platform or target.uv_python_platform,
            "--only-binary",
            ":all:",
            *packages,
        ],
        check=True,
    )
    return dest


@pytest.mark.network
@pytest.mark.parametrize("target", [AL2023, LambdaTarget(python="3.12", architecture="arm64"), AL2])
def test_real_wheels_for_the_target_pass(tmp_path, target):
    site = install(target, tmp_path / "python", "numpy", "pydantic-core", "orjson", "cryptography")
    report = audit_layer(site, target)
    assert report.errors == () and report.files_checked >= 5
    if target.architecture.value == "x86_64":  # and the same files are refused for the other CPU
        other = LambdaTarget(python=target.python, architecture="arm64")
        assert {f.problem for f in audit_layer(site, other).errors} == {"native code for x86_64, not aarch64"}


@pytest.mark.network
def test_a_manylinux_2_27_wheel_is_refused_for_python311(tmp_path):
    """numpy 2.4 publishes only manylinux_2_27/2_28 wheels for cp311: installed anyway, the audit sees why."""
    site = install(AL2, tmp_path / "python", "numpy==2.4.*", platform="x86_64-manylinux_2_28")
    problems = {f.problem for f in audit_layer(site, AL2).errors}
    assert any(p.startswith("needs GLIBC_2.2") and "GLIBC up to 2.26" in p for p in problems), problems


@needs_gcc
@pytest.mark.network
def test_a_mis_tagged_wheel_is_refused_by_the_build(tmp_path):
    """A pure-Python-tagged wheel (py3-none-any) that ships a library needing GLIBC_2.28: tags pass, the audit
    does not, and the layer is not published."""
    package = hatch_package(tmp_path / "acme-flags", "acme-flags", "", version="1.0")
    compile_library(GLIBC_228, package / "src" / "acme_flags" / "_flags.so")
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../acme-flags\n")
    with pytest.raises(VerificationError) as info:
        BasedLambdaLayerLocalBuilder(service, python="3.11", cache_dir=False).run()
    message = str(info.value)
    assert "acme_flags/_flags.so (acme-flags): needs GLIBC_2.28" in message
    assert not (service / "build" / "lambda" / "layer").exists()


@pytest.mark.parametrize(
    "highest",
    [{"GLIBC": [True, 17]}, {"GLIBC": [2, False]}, {"GLIBC": []}],
    ids=["bool-major", "bool-minor", "empty-version"],
)
def test_kept_elf_facts_with_versions_the_reader_never_writes_are_refused(highest):
    """A version is a non-empty list of numbers; JSON's true/false are bools (an int to Python), never a
    version part read from a library: an entry holding them is not one this library wrote."""
    from cdk_lambda_layer.verify.native.elf import ElfInfo

    with pytest.raises(ValueError, match="not ELF facts"):
        ElfInfo.from_json({"machine": "x86_64", "soname": None, "needed": [], "highest": highest})
    written = ElfInfo(machine="x86_64", soname="libx.so", needed=("libc.so.6",), highest={"GLIBC": (2, 17)})
    assert ElfInfo.from_json(json.loads(json.dumps(written.to_json()))) == written
