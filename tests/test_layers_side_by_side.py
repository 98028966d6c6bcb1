"""An app's layers build side by side: every layer is complete before the assembly is written, a
failed build fails the synth and leaves no asset behind, and a synth killed mid-build is rebuilt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from cdk_lambda_layer import LayerBuildError, PythonDependencyLayer
from cdk_lambda_layer.cdk.side_by_side import (
    PENDING_PREFIX,
    _replace_placeholder,
    sweep_unfinished,
    wait_for_other_build,
)
from cdk_lambda_layer.core.locking import held_folder

PY312 = lambda_.Runtime.PYTHON_3_12
ASSET = "asset." + "ab" * 32


@pytest.fixture
def uv_app(project_copy):
    return project_copy("uv_app")


def _assets(outdir: Path) -> list[Path]:
    return sorted(p for p in outdir.iterdir() if p.name.startswith("asset."))


def _leftovers(outdir: Path) -> list[str]:
    return sorted(
        p.name for p in outdir.iterdir() if p.name.startswith((PENDING_PREFIX, ".cdk-lambda-layer", ".init-"))
    )


def _handed_to_cdk(outdir: Path) -> bool:
    """A build is pending and CDK has renamed its bundling folder to the asset folder."""
    if not outdir.is_dir() or not any(n.startswith(PENDING_PREFIX) for n in os.listdir(outdir)):
        return False
    return any(not a.name.endswith("-building") and (a / "python").is_dir() for a in _assets(outdir))


SLOW_BUILD = """
import time
from cdk_lambda_layer.cdk import bundling
_bundle = bundling.LocalLayerBundling._bundle
bundling.LocalLayerBundling._bundle = lambda self, output: time.sleep(5) or _bundle(self, output)
"""


def _app_script(
    tmp_path: Path, project: Path, *, synth: str = "app.synth()", before: str = "", **props: object
) -> Path:
    """A CDK app with one layer, run as the CDK CLI runs it (its own process, CDK_OUTDIR set).
    ``before``: code run first (SLOW_BUILD: the build starts 5 s late, a layer that takes long)."""
    script = tmp_path / "app.py"
    script.write_text(
        before
        + textwrap.dedent(
            f"""
            import aws_cdk as cdk
            from aws_cdk import aws_lambda as lambda_
            from cdk_lambda_layer import PythonDependencyLayer

            app = cdk.App()
            stack = cdk.Stack(app, "Stack")
            PythonDependencyLayer(stack, "Deps", project={str(project)!r}, runtime=lambda_.Runtime.PYTHON_3_12,
                                  build="local", **{props!r})
            {synth}
            """
        )
    )
    return script


def _run_app(script: Path, outdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CDK_OUTDIR": str(outdir)}
    return subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.network
def test_every_layer_of_the_app_is_complete_when_synth_returns(project_copy, tmp_path):
    outdir = tmp_path / "cdk.out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Stack")
    for name in ("uv_app", "pip_requirements"):
        PythonDependencyLayer(stack, name, project=project_copy(name), runtime=PY312, build="local")
    app.synth()
    complete = {a.name: {p.name for p in (a / "python").iterdir()} for a in _assets(outdir)}
    assert len(complete) == 2
    assert any({"pydantic", "orjson"} <= names for names in complete.values())
    assert any({"requests", "urllib3"} <= names for names in complete.values())
    assert _leftovers(outdir) == []


def test_a_failed_build_fails_the_synth_naming_the_layer_and_leaves_no_asset(uv_app, tmp_path):
    outdir = tmp_path / "cdk.out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Stack")
    PythonDependencyLayer(stack, "Deps", project=uv_app, runtime=PY312, build="local", exclude=["nump"])
    with pytest.raises(Exception, match=r"(?s)Stack/Deps.*exclude/provided name 'nump'"):
        Template.from_stack(stack)
    assert _assets(outdir) == []  # CDK would take a leftover asset folder as bundled
    assert _leftovers(outdir) == []


def test_parallel_false_fails_in_the_constructor_as_cdk_bundling_does(uv_app, tmp_path):
    app = cdk.App(outdir=str(tmp_path / "cdk.out"), context={"cdk-lambda-layer:parallel": False})
    with pytest.raises(RuntimeError, match=r"Failed to bundle asset .*Stack/Deps: exclude/provided name 'nump'"):
        PythonDependencyLayer(cdk.Stack(app, "Stack"), "Deps", project=uv_app, runtime=PY312, exclude=["nump"])


@pytest.mark.network
def test_a_synth_killed_mid_build_is_built_again_by_the_next_synth(uv_app, tmp_path):
    outdir = tmp_path / "cdk.out"
    process = _run_app(_app_script(tmp_path, uv_app), outdir)
    deadline = time.monotonic() + 60
    while not _handed_to_cdk(outdir):  # CDK has its asset folder; the build still runs
        assert process.poll() is None and time.monotonic() < deadline, "the build never started"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (asset,) = _assets(outdir)
    assert list((asset / "python").iterdir()) == []  # what CDK would take as bundled next time

    app = cdk.App(outdir=str(outdir))
    PythonDependencyLayer(cdk.Stack(app, "Stack"), "Deps", project=uv_app, runtime=PY312, build="local")
    app.synth()
    (rebuilt,) = _assets(outdir)
    assert rebuilt.name == asset.name
    assert {"pydantic", "orjson"} <= {p.name for p in (rebuilt / "python").iterdir()}
    assert not [n for n in _leftovers(outdir) if n.startswith(PENDING_PREFIX)]


@pytest.mark.network
def test_a_synth_that_skips_validation_still_finishes_its_layers(uv_app, tmp_path):
    outdir = tmp_path / "cdk.out"
    process = _run_app(_app_script(tmp_path, uv_app, synth="app.synth(skip_validation=True)"), outdir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    (asset,) = _assets(outdir)
    assert {"pydantic", "orjson"} <= {p.name for p in (asset / "python").iterdir()}


def test_a_failed_build_without_validation_ends_the_app_with_an_error(uv_app, tmp_path):
    outdir = tmp_path / "cdk.out"
    script = _app_script(tmp_path, uv_app, synth="app.synth(skip_validation=True)", exclude=["nump"])
    process = _run_app(script, outdir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    assert "[cdk-lambda-layer] ERROR Stack/Deps: exclude/provided name 'nump'" in stderr
    assert _assets(outdir) == []


def test_the_sweep_leaves_a_live_synths_layer_and_folders_not_ours(tmp_path):
    outdir = tmp_path / "cdk.out"
    outdir.mkdir()
    (outdir / ASSET / "python").mkdir(parents=True)
    other = "asset." + "cd" * 32
    (outdir / other / "python").mkdir(parents=True)
    (outdir / f"{PENDING_PREFIX}{other}").mkdir()  # named like ours, but no lock file: not ours
    with held_folder(outdir, PENDING_PREFIX + ASSET):  # a synth still building it
        assert sweep_unfinished(outdir) == []
    assert (outdir / ASSET / "python").is_dir() and (outdir / other / "python").is_dir()


def test_the_sweep_removes_an_asset_whose_synth_is_gone_and_follows_no_link(tmp_path):
    outdir, elsewhere = tmp_path / "cdk.out", tmp_path / "elsewhere"
    (elsewhere / "python").mkdir(parents=True)
    outdir.mkdir()
    (outdir / ASSET).symlink_to(elsewhere)
    with held_folder(outdir, PENDING_PREFIX + ASSET):
        pass  # its owner is gone: the lock is free
    assert sweep_unfinished(outdir) == [ASSET]
    assert not os.path.lexists(outdir / ASSET) and (elsewhere / "python").is_dir()
    assert _leftovers(outdir) == []


class _Killed(BaseException):
    """The process dies here (the kernel then drops its locks)."""


def _pending_in_asset(outdir: Path, build) -> object:
    """A layer started as CDK starts it: its bundling folder, then renamed to the asset folder."""
    from cdk_lambda_layer.cdk.side_by_side import PendingLayer

    building = outdir / f"{ASSET}-building"
    building.mkdir(parents=True)
    pending = PendingLayer.start("Stack/Deps", building, build)
    building.rename(outdir / ASSET)
    return pending


def _fail(folder: Path) -> None:
    from cdk_lambda_layer.errors import LayerBuildError

    raise LayerBuildError("the build failed")


def test_a_synth_killed_while_removing_a_failed_layer_leaves_it_to_the_sweep(tmp_path, monkeypatch):
    from cdk_lambda_layer.cdk import side_by_side

    outdir = tmp_path / "cdk.out"
    pending = _pending_in_asset(outdir, _fail)

    def killed(path: Path) -> None:
        raise _Killed

    monkeypatch.setattr(side_by_side, "_remove_asset", killed)
    with pytest.raises(_Killed):
        pending.finish()
    pending._hold.close()  # the process is gone: its lock is free
    side_by_side._pending.remove(pending)
    monkeypatch.undo()
    assert sweep_unfinished(outdir) == [ASSET]  # else CDK takes the empty placeholder as bundled
    assert _assets(outdir) == []


def test_a_build_that_raises_a_base_exception_leaves_no_asset(tmp_path):
    from cdk_lambda_layer.cdk import side_by_side

    def exits(folder: Path) -> None:
        raise SystemExit(3)

    outdir = tmp_path / "cdk.out"
    pending = _pending_in_asset(outdir, exits)
    try:
        message = pending.finish()
    except BaseException as exc:  # a SystemExit would end the test run
        pytest.fail(f"finish raised {exc!r} instead of reporting it")
    assert "SystemExit(3)" in message
    side_by_side._pending.remove(pending)
    assert _assets(outdir) == []
    assert _leftovers(outdir) == []


def test_the_sweep_leaves_an_asset_whose_synth_finishes_while_it_looks(tmp_path, monkeypatch):
    import contextlib

    from cdk_lambda_layer.core import locking

    outdir = tmp_path / "cdk.out"
    (outdir / ASSET / "python" / "pydantic").mkdir(parents=True)  # moved into place a moment ago
    owner = contextlib.ExitStack()
    folder = owner.enter_context(held_folder(outdir, PENDING_PREFIX + ASSET))
    real = locking.try_lock

    def owner_finishes_first(handle, *, blocking):
        # The sweep has opened the lock file; the owner now removes its pending folder and lets go.
        if not folder.exists():
            return real(handle, blocking=blocking)
        locking.remove_held(folder)
        owner.close()
        return real(handle, blocking=blocking)

    monkeypatch.setattr(locking, "try_lock", owner_finishes_first)
    assert sweep_unfinished(outdir) == []
    assert (outdir / ASSET / "python" / "pydantic").is_dir()


def test_a_synth_again_in_the_same_process_after_a_failed_build_builds_the_layer(uv_app, tmp_path, monkeypatch):
    from cdk_lambda_layer.cdk.bundling import LocalLayerBundling
    from cdk_lambda_layer.errors import LayerBuildError

    builds = []

    def flaky(self, output: Path) -> bool:  # the index timed out once
        builds.append(output)
        if len(builds) == 1:
            raise LayerBuildError("the index timed out")
        (output / "python" / "pydantic").mkdir(parents=True)
        return True

    monkeypatch.setattr(LocalLayerBundling, "_bundle", flaky)
    outdir = tmp_path / "cdk.out"
    for attempt in range(2):
        app = cdk.App(outdir=str(outdir))
        PythonDependencyLayer(cdk.Stack(app, "Stack"), "Deps", project=uv_app, runtime=PY312, build="local")
        if attempt == 0:
            with pytest.raises(Exception, match="the index timed out"):
                app.synth()
        else:
            app.synth()
    (asset,) = _assets(outdir)  # CDK's asset cache must not answer for the asset the failure removed
    assert (asset / "python" / "pydantic").is_dir()


@pytest.mark.network
def test_a_synth_into_a_cdk_out_another_synth_is_building_waits_for_its_layer(uv_app, tmp_path, capfd):
    outdir = tmp_path / "cdk.out"
    first = _run_app(_app_script(tmp_path, uv_app, before=SLOW_BUILD), outdir)
    deadline = time.monotonic() + 60
    while not _handed_to_cdk(outdir):  # the first synth's layer is pending, its asset folder empty
        assert first.poll() is None and time.monotonic() < deadline, "the build never started"
        time.sleep(0.002)

    app = cdk.App(outdir=str(outdir))  # CDK finds the asset folder in place and does not bundle it
    PythonDependencyLayer(cdk.Stack(app, "Stack"), "Deps", project=uv_app, runtime=PY312, build="local")
    app.synth()
    (asset,) = _assets(outdir)
    assert {"pydantic", "orjson"} <= {p.name for p in (asset / "python").iterdir()}
    assert f"[cdk-lambda-layer] waiting for another synth building {asset.name}" in capfd.readouterr().err
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr


def test_the_same_layer_declared_twice_is_finished_once_for_both(uv_app, tmp_path):
    outdir = tmp_path / "cdk.out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Stack")
    for name in ("A", "B"):  # one asset: CDK bundles it once
        PythonDependencyLayer(stack, name, project=uv_app, runtime=PY312, build="local", exclude=["nump"])
    with pytest.raises(Exception, match=r"(?s)\[Stack/A\] exclude/provided name 'nump'.*\[Stack/B\] exclude"):
        app.synth()
    assert _assets(outdir) == []


@pytest.fixture
def empty_project(tmp_path):
    """A project with no dependencies: a complete layer whose python/ is empty, built with no network."""
    project = tmp_path / "empty"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "empty"\nversion = "0"\ndependencies = []\n')
    return project


def test_a_layer_declared_again_in_a_stack_validated_first_does_not_hang_with_a_relative_outdir(
    empty_project, tmp_path
):
    script = tmp_path / "twice.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import aws_cdk as cdk
            from aws_cdk import aws_lambda as lambda_
            from cdk_lambda_layer import PythonDependencyLayer

            app = cdk.App(outdir="cdk.out")  # relative: CDK bundles into its absolute form
            first, second = cdk.Stack(app, "First"), cdk.Stack(app, "Second")
            for stack in (second, first):  # bundled in Second, validated first in First
                PythonDependencyLayer(stack, "Deps", project={str(empty_project)!r},
                                      runtime=lambda_.Runtime.PYTHON_3_12, build="local")
            app.synth()
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the synth waited forever on its own layer's build")
    assert process.returncode == 0, stderr
    (asset,) = _assets(tmp_path / "cdk.out")
    assert (asset / "python").is_dir()
    assert _leftovers(tmp_path / "cdk.out") == []


def test_a_synth_waiting_for_another_synths_layer_with_no_packages_takes_it_as_finished(empty_project, tmp_path):
    outdir = tmp_path / "cdk.out"
    first = _run_app(_app_script(tmp_path, empty_project, before=SLOW_BUILD), outdir)
    deadline = time.monotonic() + 60
    while not _handed_to_cdk(outdir):
        assert first.poll() is None and time.monotonic() < deadline, "the build never started"
        time.sleep(0.002)

    app = cdk.App(outdir=str(outdir))
    PythonDependencyLayer(cdk.Stack(app, "Stack"), "Deps", project=empty_project, runtime=PY312, build="local")
    app.synth()  # the layer is complete: its python/ is empty because the project has no dependencies
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    (asset,) = _assets(outdir)
    assert (asset / "python").is_dir()


def test_a_synth_with_parallel_false_rebuilds_a_layer_a_killed_synth_left_unfinished(empty_project, tmp_path):
    outdir = tmp_path / "cdk.out"
    script = (
        _app_script(tmp_path, empty_project)
        .read_text()
        .replace("cdk.App()", "cdk.App(context={'cdk-lambda-layer:parallel': False})")
    )
    (tmp_path / "app.py").write_text(script)
    first = _run_app(tmp_path / "app.py", outdir)
    assert first.wait(timeout=300) == 0
    (asset,) = _assets(outdir)
    with held_folder(outdir, PENDING_PREFIX + asset.name):
        pass  # a side-by-side synth of it was killed: its marker stays, its lock is free
    again = _run_app(tmp_path / "app.py", outdir)  # what the error says to do: run the synth again
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert _leftovers(outdir) == []


def test_a_layer_whose_builder_died_says_to_synth_again(tmp_path):
    outdir = tmp_path / "cdk.out"
    (outdir / ASSET / "python").mkdir(parents=True)
    with held_folder(outdir, PENDING_PREFIX + ASSET):
        pass  # the other synth is gone and never finished: its marker stays
    message = wait_for_other_build(outdir, ASSET)
    assert message == (
        f"its asset folder {outdir / ASSET} was left unfinished by another synth that stopped: run the synth again "
        "(it builds the layer anew)."
    )


def test_a_layer_another_synth_let_go_of_unfinished_is_named_as_such(tmp_path):
    outdir = tmp_path / "cdk.out"
    (outdir / f"{PENDING_PREFIX}{ASSET}").mkdir(parents=True)  # let go of, and no python/ in its asset
    message = wait_for_other_build(outdir, ASSET)
    assert message is not None and message.startswith(f"another synth building this layer into {outdir}")
    assert message.endswith("run the synth again, one synth per cdk.out at a time.")


def test_a_finished_layer_is_not_moved_over_what_was_written_into_its_asset_meanwhile(tmp_path):
    placeholder, built = tmp_path / "asset" / "python", tmp_path / "built" / "python"
    (placeholder / "planted").mkdir(parents=True)
    built.mkdir(parents=True)
    with pytest.raises(LayerBuildError, match=r"could not be moved into .*asset .*Run the synth again\."):
        _replace_placeholder(placeholder, built)
    assert (placeholder / "planted").is_dir() and built.is_dir()
