"""Steps on every core and side by side: the bytecode workers write exactly what one process (and
compileall) writes, overlapping the checks and the zip with bytecode and the import check changes no
byte of the layer, and a failure while a side task runs leaves nothing behind."""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.core.tools import find_uv
from cdk_lambda_layer.errors import VerificationError
from cdk_lambda_layer.install.bytecode import compile_tree, shares

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def source_tree(folder: Path, count: int = 120) -> Path:
    for i in range(count):
        package = folder / f"pkg{i % 7}" / ("sub" if i % 3 else "")
        package.mkdir(parents=True, exist_ok=True)
        (package / f"mod{i}.py").write_text(f"VALUE = {i}\n" + "def f(x):\n    return x * 2\n" * (i % 40))
    (folder / "pkg0" / "broken.py").write_text("print 'python 2'\n")
    return folder


def pycs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.pyc"))}


def test_bytecode_on_every_core_writes_what_one_process_and_compileall_write(tmp_path):
    one, many, reference = (source_tree(tmp_path / name) for name in ("one", "many", "reference"))
    first = compile_tree(one, jobs=1)
    second = compile_tree(many, jobs=4)
    compileall.compile_dir(
        str(reference),
        quiet=2,
        force=True,
        stripdir=str(reference),
        prependdir="/opt/python",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    assert pycs(one) == pycs(many) == pycs(reference) and len(pycs(one)) == 120
    assert first["failed"] == second["failed"] == ["pkg0/broken.py"]
    assert first["compiled"] == second["compiled"] == 120 and second["jobs"] == 4


def test_a_packages_test_suite_stays_source_only(tmp_path):
    """Lambda never imports numpy/tests: compiling it would cost a third of a scientific layer's bytecode."""
    site = source_tree(tmp_path / "site", count=14)
    (site / "pkg1" / "tests").mkdir()
    (site / "pkg1" / "tests" / "test_mod.py").write_text("def test_it():\n    assert True\n")
    (site / "pkg1" / "testing.py").write_text("HELPER = 1\n")
    report = compile_tree(site, jobs=2)
    compiled = set(pycs(site))
    assert f"pkg1/__pycache__/testing.{sys.implementation.cache_tag}.pyc" in compiled
    assert not [name for name in compiled if "/tests/" in name]
    assert report["compiled"] == 14 + 1  # the tree's modules but its broken one, and testing.py


def test_files_are_dealt_by_size_each_once(tmp_path):
    files = []
    for i, size in enumerate([900, 10, 500, 400, 20, 30]):
        path = tmp_path / f"m{i}.py"
        path.write_text("#" * size)
        files.append(path)
    dealt = shares(files, 2)
    assert sorted(p for share in dealt for p in share) == sorted(files)
    sizes = [sum(p.stat().st_size for p in share) for share in dealt]
    assert sorted(sizes) == [930, 930]  # largest first, each to the lighter share


@pytest.mark.network
def test_overlap_and_worker_count_change_no_byte_of_the_layer(project_copy, monkeypatch, tmp_path):
    project = project_copy("uv_app")
    zips = {}
    for overlap, jobs in (("1", ""), ("0", "1"), ("1", "1")):
        monkeypatch.setenv("CDK_LAYER_OVERLAP", overlap)
        monkeypatch.setenv("CDK_LAYER_JOBS", jobs)
        out = tmp_path / f"build-{overlap}-{jobs or 'all'}"
        result = UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False, build_dir=out).run()
        assert result.manifest["bytecode"]["included"] and result.manifest["import_check"]["ran"]
        zips[(overlap, jobs)] = result.layer_zip.read_bytes()
    assert len(set(zips.values())) == 1


@pytest.mark.network
def test_an_import_failure_while_the_zip_is_compressed_beside_it_leaves_nothing(tmp_path):
    from package_helpers import hatch_package

    hatch_package(tmp_path / "broken", "brokenlib", "raise ImportError('needs libfoo.so.1')\n")
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["brokenlib", "idna==3.7"]\n[tool.uv.sources]\nbrokenlib = { path = "../broken" }\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    out = tmp_path / "out"
    with pytest.raises(VerificationError, match=r"(?s)do not import.*brokenlib: ImportError: needs libfoo\.so\.1"):
        UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False, build_dir=out).run()
    left = [p for p in out.rglob("*")] if out.exists() else []
    assert not [p for p in left if ".partial" in p.name or p.name.startswith(".tmp-layer-")]
    assert not (out / "lambda" / "layer" / "layer.zip").exists()


def test_bytecode_workers_env_is_read_as_a_count(monkeypatch):
    from cdk_lambda_layer.builders import parallel

    monkeypatch.setenv("CDK_LAYER_JOBS", "3")
    assert parallel.jobs() == 3
    for value in ("", "0", "many"):
        monkeypatch.setenv("CDK_LAYER_JOBS", value)
        assert parallel.jobs() is None
    monkeypatch.setenv("CDK_LAYER_OVERLAP", "off")
    assert not parallel.overlap()
    monkeypatch.delenv("CDK_LAYER_OVERLAP")
    assert parallel.overlap()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers need fork()")
def test_a_bytecode_run_without_sources_does_nothing(tmp_path):
    assert compile_tree(tmp_path, jobs=2)["compiled"] == 0
    shutil.rmtree(tmp_path)


def fake_site(folder: Path, modules: dict[str, tuple[str, str]]) -> Path:
    """A layer folder of one-module distributions: name -> (its __init__.py, its Requires-Dist name or '')."""
    for name, (code, requires) in modules.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(code)
        dist_info = folder / f"{name}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "RECORD").write_text(f"{name}/__init__.py,,\n")
        (dist_info / "METADATA").write_text(f"Name: {name}\n" + (f"Requires-Dist: {requires}\n" if requires else ""))
    return folder


def import_check(site: Path, jobs: int) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).parents[1] / "src" / "cdk_lambda_layer" / "install" / "import_check.py"
    argv = [sys.executable, "-I", "-S", "-B", str(script), str(site), "--jobs", str(jobs), "--provided", "boto3"]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_the_import_check_on_every_core_reports_what_one_process_reports(tmp_path):
    """Groups of distributions that require each other go to one worker, after their dependencies: a
    module that needs its dependency already imported (as one process would have it) still sees it."""
    modules = {
        "base": ("import sys\nsys.modules.setdefault('loaded_by_base', sys)\n", ""),
        "needs_base": ("import sys\nassert 'loaded_by_base' in sys.modules, 'base not first'\n", "base"),
        "alone": ("import json\n", ""),
        "broken": ("import acme_missing\n", ""),
        "wants_boto": ("import boto3\n", ""),
        "raises": ("raise RuntimeError('needs AWS_REGION')\n", ""),
    }
    reports = []
    for jobs in (1, 3):
        done = import_check(fake_site(tmp_path / str(jobs), modules), jobs)
        assert done.returncode == 0, done.stderr
        reports.append(json.loads(done.stdout.splitlines()[-1]))
    one, many = ({k: v for k, v in r.items() if k not in ("times", "tree")} for r in reports)  # tree: its inodes
    assert one == many
    assert sorted(one["imported"]) == ["alone", "base", "needs_base"]
    assert one["imported"].index("base") < one["imported"].index("needs_base")
    assert [f["module"] for f in one["failed"]] == ["broken"]
    assert one["skipped"] == [{"module": "wants_boto", "needs": "boto3"}]
    assert [w["module"] for w in one["warnings"]] == ["raises"]
    assert set(reports[1]["times"]) == {"alone", "base", "needs_base"}


def test_a_worker_that_crashes_names_the_module_it_died_on(tmp_path):
    modules = {
        "calm": ("import json\n", ""),
        "boom": ("import ctypes\nctypes.string_at(0)\n", ""),
        "quiet": ("", ""),
    }
    done = import_check(fake_site(tmp_path / "site", modules), 2)
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.startswith("importing ")][-1] == "importing boom"


def import_report(site: Path, jobs: int, timeout: float = 30) -> dict:
    script = Path(__file__).parents[1] / "src" / "cdk_lambda_layer" / "install" / "import_check.py"
    argv = [sys.executable, "-I", "-S", "-B", str(script), str(site), "--jobs", str(jobs)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def broken_modules(count: int) -> dict[str, tuple[str, str]]:
    return {f"broken{i}": (f"import time\ntime.sleep(0.05)\nimport acme_missing_{i}\n", "") for i in range(count)}


def test_an_import_that_forks_still_reports_every_failure(tmp_path):
    """A module that forks and returns in both processes: the copy of the worker neither takes groups nor
    reports, so no group it would have taken goes missing from the report."""
    modules = {"aaa_forks": ("import os\n" + "# padding\n" * 5000 + "os.fork()\n", ""), **broken_modules(8)}
    report = import_report(fake_site(tmp_path / "site", modules), 2)
    assert [f["module"] for f in report["failed"]] == sorted(broken_modules(8))
    assert report["imported"] == ["aaa_forks"]


def test_an_import_that_leaves_a_process_running_does_not_hold_the_check(tmp_path):
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(120)\n    os._exit(0)\n"
    report = import_report(fake_site(tmp_path / "site", {"daemon": (code, ""), "calm": ("", "")}), 2, timeout=20)
    assert sorted(report["imported"]) == ["calm", "daemon"]


def test_an_import_that_closes_descriptors_is_not_a_crash(tmp_path):
    """Closing every descriptor it did not open (daemon code does) costs a worker neither its report nor the
    groups still queued, even when every worker's queue is closed."""
    closes = ("import os\nos.closerange(3, 1024)\n", "")
    modules = {"aaa_closes": closes, "aab_closes": closes, **broken_modules(6)}
    for jobs in (1, 2):
        report = import_report(fake_site(tmp_path / str(jobs), modules), jobs)
        assert [f["module"] for f in report["failed"]] == sorted(broken_modules(6))
        assert sorted(report["imported"]) == ["aaa_closes", "aab_closes"]


def test_what_an_import_writes_to_stdout_or_a_thread_it_leaves_does_not_spoil_the_report(tmp_path):
    modules = {
        "chatty": ("import sys\nsys.stdout.write('{\"imported\": []}')\nsys.stdout.flush()\n", ""),
        "spinner": ("import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n", ""),
    }
    for jobs in (1, 2):
        report = import_report(fake_site(tmp_path / str(jobs), modules), jobs, timeout=20)
        assert sorted(report["imported"]) == ["chatty", "spinner"]


def test_a_dependency_two_packages_share_is_imported_by_each_worker_and_reported_once(tmp_path):
    """Each package no other one needs is a job with everything it needs (so the workers share a layer whose
    packages all need one small library): a shared dependency is imported first in every worker that takes
    such a job, and the report names it once, as one process would; a failure in it is one failure."""
    marker = "import os, sys\nsys.modules.setdefault('loaded_by_shared', sys)\n"
    needs_shared = "import sys\nassert 'loaded_by_shared' in sys.modules, 'shared not first'\n"
    modules = {
        "shared": (marker, ""),
        "left": (needs_shared, "shared"),
        "right": (needs_shared, "shared"),
        "third": (needs_shared, "shared"),
    }
    reports = [import_report(fake_site(tmp_path / str(jobs), modules), jobs) for jobs in (1, 2)]
    for report in reports:
        assert report["imported"][0] == "shared" and sorted(report["imported"]) == ["left", "right", "shared", "third"]
        assert report["failed"] == [] and set(report["times"]) == set(report["imported"])
    broken = {**modules, "shared": ("import acme_missing_shared\n", "")}
    for jobs in (1, 2):
        report = import_report(fake_site(tmp_path / f"broken{jobs}", broken), jobs)
        assert [f["module"] for f in report["failed"]] == ["shared"]
        assert [w["module"] for w in report["warnings"]] == ["left", "right", "third"]  # an AssertionError each


def test_work_beside_a_process_starts_once_it_runs_and_its_failure_kills_the_process(tmp_path):
    """The import check's side tasks (the content checks, the zip) start once its process runs
    (core/runner.py ``started``), not before; if starting them fails, the process is not left running."""
    import time

    from cdk_lambda_layer.core.runner import Command, run

    flag, pid_file = tmp_path / "started", tmp_path / "pid"
    waits = (
        "import os, pathlib, sys, time\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        f"while not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.01)\n"
        "print('saw it')\n"
    )
    done = run(Command(argv=(sys.executable, "-c", waits), label="waits"), started=flag.touch)
    assert done.stdout.strip() == "saw it"

    pid_file.unlink()
    flag.unlink()

    def fails() -> None:
        while not pid_file.exists():
            time.sleep(0.01)
        raise RuntimeError("side task could not start")

    began = time.monotonic()
    with pytest.raises(RuntimeError, match="could not start"):
        run(Command(argv=(sys.executable, "-c", waits), label="waits"), started=fails)
    assert time.monotonic() - began < 30
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)


def test_an_import_check_stopped_by_a_failure_beside_it_leaves_no_worker_importing(tmp_path, monkeypatch):
    """Where the import check runs without a PID namespace of its own, its workers (in process groups of
    their own) do not die with it: stopped because the requirements check beside it failed, it must end
    them, not leave them running the packages' code in a layer the build is removing."""
    import time

    from package_helpers import hatch_package

    from cdk_lambda_layer import BasedLambdaLayerLocalBuilder
    from cdk_lambda_layer.builders import host_steps
    from cdk_lambda_layer.install import target_python

    monkeypatch.setattr(target_python, "sandbox_prefix", lambda: ())
    monkeypatch.setenv("CDK_LAYER_JOBS", "2")
    marks = tmp_path / "marks"
    marks.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\nrequires-python = ">=3.10"\n')
    (project / "requirements.txt").write_text("./one\n./two\n")
    for name in ("one", "two"):
        hatch_package(
            project / name,
            f"slow{name}",
            f"import pathlib, time\nmarks = pathlib.Path({str(marks)!r})\n(marks / 'began-{name}').touch()\n"
            f"time.sleep(2)\n(marks / 'ended-{name}').touch()\n",
        )

    def unmet(*_args: object) -> None:  # fails once both workers are importing
        deadline = time.monotonic() + 30
        while len(list(marks.glob("began-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        raise VerificationError("requirements of installed packages are missing")

    monkeypatch.setattr(host_steps, "check_requirements", unmet)
    with pytest.raises(VerificationError, match="requirements of installed packages are missing"):
        BasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=False).run()
    assert len(list(marks.glob("began-*"))) == 2
    time.sleep(3)
    assert not list(marks.glob("ended-*"))
