"""The import-time profile: every top-level module the import check imports gets its import time on the
target's Python, in the manifest, in ``--json`` and (the slowest five) in the CLI's and synth's lines;
container builds report the times of the image's import check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_lambda_layer import UVBasedLambdaLayerContainerBuilder, UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.builders.summary import closing_lines, synth_line
from cdk_lambda_layer.install.import_plan import dependency_order

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = tmp_path_factory.mktemp("times") / "uv_app"
    import shutil

    shutil.copytree(Path(__file__).parent / "projects" / "uv_app", project)
    return UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False).run()


@pytest.mark.network
def test_every_imported_module_has_its_import_time(built):
    times = built.manifest["import_times"]
    modules = ("annotated_types", "orjson", "pydantic", "pydantic_core", "typing_extensions", "typing_inspection")
    assert set(modules) <= set(times)
    assert len(times) == built.manifest["import_check"]["imported"]
    assert all(isinstance(s, float) and s >= 0 for s in times.values())
    assert list(times.values()) == sorted(times.values(), reverse=True)  # slowest first
    measured = json.loads((built.layout.root / "import-times.json").read_text())
    assert measured["import_times"] == times  # beside manifest.json, which stays reproducible
    assert "import_times" not in json.loads(built.layout.manifest.read_text())


@pytest.mark.network
def test_the_cli_and_the_synth_line_name_the_slowest_imports(built):
    slowest = list(built.manifest["import_times"])[:5]
    for text in (closing_lines(built), synth_line("Stack/Deps", built)):
        line = next(line for line in text.splitlines() if "slowest imports: " in line)
        named = line.split("slowest imports: ", 1)[1]
        assert [part.split(" ")[0] for part in named.split(", ")] == slowest
        assert named.split(", ")[0].endswith(" s")


@pytest.mark.network
def test_cli_json_has_import_times_for_every_top_level_module(project_copy):
    project = project_copy("uv_app")
    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", PYTHON, "--no-cache", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(done.stdout)
    assert set(document["import_times"]) >= {"pydantic", "pydantic_core", "orjson"}
    assert "slowest imports: " in done.stderr


def test_no_import_check_means_no_times_and_no_line(project_copy):
    project = project_copy("uv_app")
    result = UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False, import_check=False).run()
    assert result.manifest["import_times"] == {}
    assert "slowest imports" not in closing_lines(result) and "slowest imports" not in synth_line("S/D", result)


def _dist(site: Path, name: str, module: str, requires: list[str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("")
    lines = [f"Name: {name}", "Version: 1.0", *(f"Requires-Dist: {r}" for r in requires)]
    (info / "METADATA").write_text("Metadata-Version: 2.1\n" + "\n".join(lines) + "\n\nRequires-Dist: not-a-header\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")


def test_modules_are_timed_after_the_ones_their_distribution_requires(tmp_path):
    _dist(tmp_path, "alpha", "alpha", ["zeta (>=1); python_version >= '3'", "Mid.Dle[extra]"])
    _dist(tmp_path, "mid-dle", "middle", ["zeta"])
    _dist(tmp_path, "zeta", "zeta", [])
    _dist(tmp_path, "cyc-a", "cyc_a", ["cyc-b"])
    _dist(tmp_path, "cyc-b", "cyc_b", ["cyc-a"])
    (tmp_path / "loose.py").write_text("")
    order = dependency_order(tmp_path, ["alpha", "cyc_a", "cyc_b", "loose", "middle", "zeta"])
    assert order.index("zeta") < order.index("middle") < order.index("alpha")
    assert sorted(order) == ["alpha", "cyc_a", "cyc_b", "loose", "middle", "zeta"]  # a cycle is broken, not lost


@pytest.mark.docker
@pytest.mark.network
def test_a_container_build_reports_the_images_import_times(project_copy):
    from docker_helpers import standin_image

    image = standin_image()
    result = UVBasedLambdaLayerContainerBuilder(project_copy("uv_app"), python="3.11", image=image).run()
    times = result.manifest["import_times"]
    assert {"pydantic", "orjson"} <= set(times) and len(times) == result.manifest["import_check"]["imported"]
    assert "slowest imports: " in synth_line("Stack/Deps", result)


def test_a_folded_header_before_requires_dist_keeps_the_dependencies_first(tmp_path):
    """A METADATA header folded over a blank continuation line (scipy's License) does not end the headers:
    the Requires-Dist after it still put the dependency first, so its start-up is not charged to the
    package that needs it."""
    _dist(tmp_path, "zeta-numeric", "zeta_numeric", [])
    _dist(tmp_path, "alpha-science", "alpha_science", [])
    metadata = tmp_path / "alpha-science-1.0.dist-info" / "METADATA"
    metadata.write_text(
        "Metadata-Version: 2.1\nName: alpha-science\nVersion: 1.0\nLicense: Copyright\n         \n"
        "         All rights reserved.\nRequires-Dist: zeta-numeric>=1\n\nThe description.\n"
    )
    assert dependency_order(tmp_path, ["alpha_science", "zeta_numeric"]) == ["zeta_numeric", "alpha_science"]
