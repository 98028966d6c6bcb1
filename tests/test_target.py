"""The target decides tags and flags; these are the facts layers break on."""

from __future__ import annotations

import pytest
from packaging.tags import Tag

from cdk_lambda_layer import Architecture, LambdaTarget, TargetError
from cdk_lambda_layer.target import DEFAULT_PYTHON


@pytest.mark.parametrize(
    ("python", "arch", "uv_platform", "glibc"),
    [
        ("3.10", "x86_64", "x86_64-manylinux2014", (2, 26)),
        ("3.11", "arm64", "aarch64-manylinux2014", (2, 26)),
        ("3.12", "x86_64", "x86_64-manylinux_2_34", (2, 34)),
        ("3.13", "arm64", "aarch64-manylinux_2_34", (2, 34)),
        ("3.14", "x86_64", "x86_64-manylinux_2_34", (2, 34)),
    ],
)
def test_runtime_os_decides_platform(python, arch, uv_platform, glibc):
    target = LambdaTarget(python=python, architecture=arch)
    assert target.uv_python_platform == uv_platform
    assert target.os.glibc == glibc
    assert "unknown-linux-gnu" not in target.uv_python_platform  # means manylinux_2_28 in uv


@pytest.mark.parametrize(
    ("python", "arch", "tag", "runs"),
    [
        ("3.11", "x86_64", "cp311-cp311-manylinux_2_28_x86_64", False),  # numpy 2.4 on AL2
        ("3.11", "x86_64", "cp311-cp311-manylinux_2_17_x86_64", True),
        ("3.11", "x86_64", "cp311-cp311-manylinux2014_x86_64", True),
        ("3.12", "x86_64", "cp312-cp312-manylinux_2_28_x86_64", True),
        ("3.12", "x86_64", "cp312-cp312-manylinux_2_35_x86_64", False),
        ("3.12", "arm64", "cp312-cp312-manylinux_2_17_x86_64", False),
        ("3.12", "arm64", "cp312-cp312-manylinux_2_17_aarch64", True),
        ("3.12", "x86_64", "cp311-cp311-manylinux_2_17_x86_64", False),
        ("3.12", "x86_64", "cp39-abi3-manylinux_2_17_x86_64", True),
        ("3.12", "x86_64", "py3-none-any", True),
        ("3.12", "x86_64", "cp312-cp312-musllinux_1_2_x86_64", False),
        ("3.12", "x86_64", "cp312-cp312-macosx_11_0_arm64", False),
        ("3.12", "x86_64", "cp312-cp312-win_amd64", False),
    ],
)
def test_supported_tags(python, arch, tag, runs):
    target = LambdaTarget(python=python, architecture=arch)
    assert (Tag(*tag.split("-")) in target.supported_tags) is runs


def test_pip_platforms_list_every_accepted_level_newest_first():
    platforms = LambdaTarget(python="3.11", architecture="x86_64").manylinux_platforms
    assert platforms[0] == "manylinux_2_26_x86_64"
    assert "manylinux2014_x86_64" in platforms and "manylinux1_x86_64" in platforms
    assert "manylinux_2_27_x86_64" not in platforms
    arm = LambdaTarget(python="3.13", architecture="arm64").manylinux_platforms
    assert arm[0] == "manylinux_2_34_aarch64" and arm[-1] == "manylinux2014_aarch64"


@pytest.mark.parametrize("alias", ["arm64", "aarch64", "ARM64", Architecture.ARM64])
def test_architecture_aliases(alias):
    target = LambdaTarget(python="3.12", architecture=alias)
    assert target.architecture is Architecture.ARM64
    assert target.architecture.docker_platform == "linux/arm64"
    assert target.architecture.elf_machine == 183
    assert target.sam_image == "public.ecr.aws/sam/build-python3.12:latest-arm64"


@pytest.mark.parametrize("spelling", ["3.12", "python3.12", "312"])
def test_python_spellings(spelling):
    assert LambdaTarget(python=spelling).python == "3.12"


def test_default_is_newest_runtime():
    assert DEFAULT_PYTHON == "3.14"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"python": "3.9"}, ["'3.9'", "3.10, 3.11, 3.12, 3.13, 3.14", "--python"]),
        ({"python": "2.7"}, ["'2.7'", "Lambda's Python runtimes"]),
        ({"architecture": "ppc64le"}, ["'ppc64le'", "x86_64", "arm64", "--arch"]),
    ],
)
def test_unknown_target_is_explained(kwargs, words):
    with pytest.raises(TargetError) as info:
        LambdaTarget(**kwargs)
    for word in words:
        assert word in str(info.value)
