"""PythonDependencyLayer: template, asset hash rules, no work at construct time, no rebuilds."""

from __future__ import annotations

import json
import subprocess

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match
from cdk_helpers import SKIP_BUNDLING, layer_s3_key, synth_layer
from syrupy.extensions.json import JSONSnapshotExtension

from cdk_lambda_layer import LayerBuildError, ProjectError, PythonDependencyLayer, TargetError
from cdk_lambda_layer.builders.local import BasedLambdaLayerLocalBuilder


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.fixture
def uv_app(project_copy):
    return project_copy("uv_app")


def test_layer_template_runtimes_architectures_and_function(uv_app, snapshot_json):
    template, _layer, _ = synth_layer(
        uv_app,
        context=SKIP_BUNDLING,
        with_function=True,
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=lambda_.Architecture.ARM_64,
        layer_version_name="deps",
        description="d",
        license="MIT",
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {
            "CompatibleRuntimes": ["python3.12"],
            "CompatibleArchitectures": ["arm64"],
            "LayerName": "deps",
            "LicenseInfo": "MIT",
            "Content": {"S3Key": Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$")},
        },
    )
    template.has_resource("AWS::Lambda::LayerVersion", {"DeletionPolicy": "Retain"})
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Layers": [{"Ref": Match.string_like_regexp("^Deps")}],
        },
    )
    assert template.to_json() == snapshot_json


def test_defaults_newest_python_and_x86_64(uv_app):
    template, layer, _ = synth_layer(uv_app, context=SKIP_BUNDLING)
    newest = max(
        (r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON),
        key=lambda r: int(r.name.split(".")[1]),
    )
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion", {"CompatibleRuntimes": [newest.name], "CompatibleArchitectures": ["x86_64"]}
    )
    assert layer.build_mode == "auto"


def key(project, **props):
    props.setdefault("runtime", lambda_.Runtime.PYTHON_3_12)
    return layer_s3_key(synth_layer(project, context=SKIP_BUNDLING, **props)[0])


@pytest.mark.parametrize(
    "change",
    [
        {"runtime": lambda_.Runtime.PYTHON_3_13},
        {"architecture": lambda_.Architecture.ARM_64},
        {"tool": "pip"},
        {"groups": ["extra-tools"]},
        {"extras": ["cli"]},
        {"exclude": ["orjson"]},
        {"build": "container"},
        {"build": "container", "image": "registry.example/sam-mirror/build-python3.12:latest-x86_64"},
    ],
)
def test_asset_hash_changes_with_what_determines_the_layer(uv_app, change):
    assert key(uv_app, **change) != key(uv_app)


def test_asset_hash_changes_with_pyproject_and_lock(uv_app):
    before = key(uv_app)
    (uv_app / "uv.lock").write_text((uv_app / "uv.lock").read_text() + "\n")
    after_lock = key(uv_app)
    (uv_app / "pyproject.toml").write_text((uv_app / "pyproject.toml").read_text() + "\n# x\n")
    assert len({before, after_lock, key(uv_app)}) == 3


def test_asset_hash_ignores_other_files_location_and_tokens(uv_app, project_copy, monkeypatch):
    before = key(uv_app)
    (uv_app / ".venv").mkdir()
    (uv_app / ".venv" / "pyvenv.cfg").write_text("home = /x\n")
    (uv_app / "src" / "uv_app" / "__init__.py").write_text("changed = True\n")
    (uv_app / "tests").mkdir()
    (uv_app / "tests" / "test_it.py").write_text("def test(): pass\n")
    assert key(uv_app) == before
    assert key(project_copy("uv_app", "some/other/place")) == before
    monkeypatch.setenv("UV_INDEX_CORP_PASSWORD", "token-1")
    monkeypatch.setenv("CODEARTIFACT_AUTH_TOKEN", "token-2")
    assert key(uv_app) == before


def test_context_sets_app_defaults_and_props_win(uv_app):
    container = key(uv_app, build="container")
    assert (
        layer_s3_key(
            synth_layer(
                uv_app,
                context={**SKIP_BUNDLING, "cdk-lambda-layer:build": "container"},
                runtime=lambda_.Runtime.PYTHON_3_12,
            )[0]
        )
        == container
    )
    assert layer_s3_key(
        synth_layer(
            uv_app,
            context={**SKIP_BUNDLING, "cdk-lambda-layer:build": "container"},
            runtime=lambda_.Runtime.PYTHON_3_12,
            build="auto",
        )[0]
    ) == key(uv_app)


def test_construct_time_starts_no_process(uv_app, monkeypatch):
    import cdk_lambda_layer.cdk.layer  # noqa: F401 - aws_cdk (and its node process) loaded before watching

    started = []
    original = subprocess.Popen.__init__

    def watch(self, *args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", watch)
    synth_layer(uv_app, context=SKIP_BUNDLING, runtime=lambda_.Runtime.PYTHON_3_12)[2].node.root.synth()
    assert started == []


@pytest.fixture
def count_builds(monkeypatch):
    runs = []
    original = BasedLambdaLayerLocalBuilder.run

    def counting(self, *args, **kwargs):
        runs.append(self.project.root)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BasedLambdaLayerLocalBuilder, "run", counting)
    return runs


@pytest.mark.network
def test_bundles_only_python_dependencies_and_second_synth_builds_nothing(uv_app, tmp_path, count_builds):
    out = tmp_path / "cdk.out"
    _, _layer, stack = synth_layer(uv_app, outdir=out, runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    stack.node.root.synth()
    assert len(count_builds) == 1
    (asset,) = [p for p in out.iterdir() if p.name.startswith("asset.")]
    assert sorted(p.name for p in asset.iterdir()) == ["python"]
    names = {p.name for p in (asset / "python").iterdir()}
    assert {"pydantic", "pydantic_core", "orjson"} <= names
    files = [p for p in asset.rglob("*")]
    assert not [p for p in files if p.name in ("pyproject.toml", "uv.lock")]
    # Bytecode only as the bytecode step makes it, for the runtime (where a CPython 3.12 is here), never
    # an installer's for the host's Python.
    assert not [p for p in files if p.suffix == ".pyc" and not p.name.endswith(".cpython-312.pyc")]
    assert not [p for p in files if "uv_app" in p.parts]  # no project sources
    skipped = synth_layer(uv_app, context=SKIP_BUNDLING, runtime=lambda_.Runtime.PYTHON_3_12, build="local")[0]
    assert asset.name == f"asset.{layer_s3_key(skipped)[:-4]}"  # same hash whether bundled or not

    synth_layer(uv_app, outdir=out, runtime=lambda_.Runtime.PYTHON_3_12, build="local")[2].node.root.synth()
    assert len(count_builds) == 1  # unchanged inputs, same cdk.out: no build


def test_stack_excluded_from_bundling_builds_nothing(uv_app, tmp_path, count_builds):
    synth_layer(
        uv_app,
        outdir=tmp_path / "out",
        context={"aws:cdk:bundling-stacks": ["SomeOtherStack"]},
        runtime=lambda_.Runtime.PYTHON_3_12,
    )[2].node.root.synth()
    assert count_builds == []


def _construct_error(tmp_path, **props):
    app = cdk.App(context=SKIP_BUNDLING)
    stack = cdk.Stack(app, "Api")
    with pytest.raises(LayerBuildError) as info:
        PythonDependencyLayer(stack, "Deps", **props)
    return info


@pytest.mark.parametrize(
    ("props", "error", "words"),
    [
        ({"project": "does/not/exist"}, ProjectError, ["The project folder does/not/exist does not exist"]),
        ({"runtime": lambda_.Runtime.NODEJS_20_X}, TargetError, ["nodejs20.x is not a Python runtime", "PYTHON_3_12"]),
        ({"runtime": lambda_.Runtime.PYTHON_3_9}, TargetError, ["Unknown Python version", "3.10, 3.11"]),
        ({"build": "docker"}, ProjectError, ["unknown build mode 'docker'", "'container'"]),
        ({"tool": "pipenv"}, ProjectError, ["Unknown tool 'pipenv'"]),
        (
            {"architecture": [lambda_.Architecture.X86_64, lambda_.Architecture.ARM_64]},
            TargetError,
            ["one architecture", "x86_64, arm64", "one PythonDependencyLayer per architecture"],
        ),
    ],
)
def test_bad_input_names_the_construct_and_the_fix(project_copy, tmp_path, props, error, words):
    props.setdefault("project", project_copy("uv_app"))
    info = _construct_error(tmp_path, **props)
    assert isinstance(info.value, error)
    assert str(info.value).startswith("Api/Deps: ")
    for word in words:
        assert word in str(info.value)


def cdk_synth(root, out, cache):
    import os

    env = {**os.environ, "CDK_LAYER_CACHE_DIR": str(cache)}
    return subprocess.run(
        ["npx", "--yes", "aws-cdk@2", "synth", "--quiet", "-o", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.network
@pytest.mark.cdk_cli
def test_cdk_cli_synth_of_the_example_app(tmp_path):
    """The real CDK command line on examples/app.py, with the Node.js the node extra installs: each layer
    says what it is in one line (built, then from the cache), and Node prints no end-of-life banner."""
    import shutil
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert shutil.which("npx") == str(Path(sys.executable).parent / "npx")  # the venv's, not the machine's
    first = cdk_synth(root, tmp_path / "out1", tmp_path / "cache")
    assert first.returncode == 0, first.stderr[-3000:]
    template = json.loads((tmp_path / "out1" / "CdkLambdaLayerExample.template.json").read_text())
    layers = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::LayerVersion"}
    assert len(layers) == 5
    arches = sorted(v["Properties"]["CompatibleArchitectures"][0] for v in layers.values())
    assert arches == ["arm64"] + ["x86_64"] * 4
    for layer in layers.values():
        asset = tmp_path / "out1" / f"asset.{layer['Properties']['Content']['S3Key'][:-4]}"
        assert sorted(p.name for p in asset.iterdir()) == ["python"]
    assert "Bundling asset CdkLambdaLayerExample/UvDeps" in first.stderr
    assert "end-of-life" not in first.stderr.lower()
    built = [line for line in first.stderr.splitlines() if line.startswith("[cdk-lambda-layer] CdkLambdaLayerExample/")]
    assert len(built) == 5 and all(", built in " in line and " unzipped, " in line for line in built)
    orders = next(line for line in built if "/OrdersDeps:" in line)
    assert "uv project 'orders' (../../uv.lock) -> python3.12 x86_64" in orders and "ledger" in orders
    again = cdk_synth(root, tmp_path / "out2", tmp_path / "cache")  # a fresh cdk.out, the same layer cache
    assert again.returncode == 0, again.stderr[-3000:]
    cached = [
        line for line in again.stderr.splitlines() if line.startswith("[cdk-lambda-layer] CdkLambdaLayerExample/")
    ]
    assert len(cached) == 5 and all(", cache hit, " in line for line in cached)


@pytest.mark.network
def test_each_layer_says_what_it_built_unless_quiet(project_copy, tmp_path, capfd):
    project = project_copy("uv_app")
    synth_layer(project, outdir=tmp_path / "built", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    built = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[cdk-lambda-layer] Stack/Deps:")]
    assert len(built) == 1 and "uv project 'uv-app' (uv.lock) -> python3.12 x86_64, built in " in built[0]
    assert "pydantic_core" in built[0]  # the largest packages
    synth_layer(project, outdir=tmp_path / "cached", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    cached = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[cdk-lambda-layer] Stack/Deps:")]
    assert len(cached) == 1 and ", cache hit, " in cached[0]
    context = {"cdk-lambda-layer:quiet": "true"}
    synth_layer(project, outdir=tmp_path / "quiet", runtime=lambda_.Runtime.PYTHON_3_12, build="local", context=context)
    assert "[cdk-lambda-layer]" not in capfd.readouterr().err


@pytest.mark.parametrize("change", [{"locked": False}, {"invalidation": "checked-hash"}])
def test_locked_and_invalidation_are_props_that_determine_the_layer(uv_app, change):
    assert key(uv_app, **change) != key(uv_app)


@pytest.mark.parametrize(
    ("props", "error", "words"),
    [
        ({"invalidation": "timestamp"}, ProjectError, ["Unknown invalidation 'timestamp'", "'checked-hash'"]),
        (
            {"runtime": lambda_.Runtime.PYTHON_3_9},
            TargetError,
            ["Unknown Python version '3.9'", 'python="3.14"', "Runtime.PYTHON_3_14"],
        ),
    ],
)
def test_more_bad_props_name_the_construct_and_the_fix(project_copy, tmp_path, props, error, words):
    info = _construct_error(tmp_path, project=project_copy("uv_app"), **props)
    assert isinstance(info.value, error) and str(info.value).startswith("Api/Deps: ")
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("key_", "value", "accepted"),
    [
        ("cdk-lambda-layer:bytecode", "maybe", "'auto', true or false"),
        ("cdk-lambda-layer:quiet", "maybe", "true or false"),
        ("cdk-lambda-layer:parallel", "sometimes", "true or false"),
        ("cdk-lambda-layer:cacheDir", "", "a folder, or false"),
        ("cdk-lambda-layer:cacheDir", "  ", "a folder, or false"),
        ("cdk-lambda-layer:build", "docker", "'auto' or 'local' or 'container'"),
        ("cdk-lambda-layer:build", "Local", "'auto' or 'local' or 'container'"),
        ("cdk-lambda-layer:installer", "conda", "'uv' or 'pip'"),
        ("cdk-lambda-layer:image", "", "an image name"),
        ("cdk-lambda-layer:image", 12, "an image name"),
    ],
)
def test_a_bad_context_value_is_refused_naming_its_key(project_copy, key_, value, accepted):
    """cdk.json values are checked as strictly as props, and the message says where the value came from."""
    app = cdk.App(context={**SKIP_BUNDLING, key_: value})
    with pytest.raises(ProjectError) as info:
        PythonDependencyLayer(cdk.Stack(app, "Api"), "Deps", project=project_copy("uv_app"))
    message = str(info.value)
    assert message.startswith(f'Api/Deps: the cdk.json context key "{key_}" (or -c {key_}=...) is {value!r}')
    assert accepted in message


@pytest.mark.parametrize("value", ["true", True, "0", False, "off"])
@pytest.mark.parametrize("key_", ["cdk-lambda-layer:quiet", "cdk-lambda-layer:bytecode"])
def test_context_flags_take_json_booleans_and_the_strings_of_c(uv_app, key_, value):
    synth_layer(uv_app, context={**SKIP_BUNDLING, key_: value})  # accepted: no error


def test_a_bad_quiet_variable_is_refused(project_copy, monkeypatch):
    monkeypatch.setenv("CDK_LAYER_QUIET", "maybe")
    with pytest.raises(ProjectError) as info:
        synth_layer(project_copy("uv_app"), context=SKIP_BUNDLING)
    assert "$CDK_LAYER_QUIET is 'maybe'" in str(info.value) and "1 or 0" in str(info.value)


@pytest.mark.network
def test_errors_during_bundling_name_the_construct(uv_app, tmp_path):
    """A bundling-time error (here an exclude name found only once the lock is exported) carries the
    construct path like a construct-time one, and keeps its type for callers of the bundling hook."""
    from cdk_lambda_layer.cdk.bundling import LayerBuildSpec, LocalLayerBundling
    from cdk_lambda_layer.install.container.options import ContainerOptions
    from cdk_lambda_layer.options import LayerOptions
    from cdk_lambda_layer.project.load import load_project
    from cdk_lambda_layer.target import LambdaTarget

    with pytest.raises(Exception) as info:
        synth_layer(
            uv_app, outdir=tmp_path / "out", runtime=lambda_.Runtime.PYTHON_3_12, build="local", exclude=["nump"]
        )
    assert "[Stack/Deps] exclude/provided name 'nump'" in str(info.value)  # CDK's validation names it
    spec = LayerBuildSpec(
        project=load_project(uv_app),
        target=LambdaTarget(python="3.12"),
        options=LayerOptions(exclude=("nump",)),
        mode="local",
        construct_path="Api/Deps",
        container=ContainerOptions(),
        cache_dir=False,
    )
    (tmp_path / "asset").mkdir()
    with pytest.raises(ProjectError) as direct:
        LocalLayerBundling(spec).try_bundle(str(tmp_path / "asset"), None)
    assert str(direct.value).startswith("Api/Deps: exclude/provided name 'nump'")


@pytest.mark.network
def test_locked_false_builds_a_stale_uv_lock_as_the_error_suggests(uv_app, tmp_path):
    pyproject = uv_app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.10", "six"'))
    with pytest.raises(Exception) as info:
        synth_layer(uv_app, outdir=tmp_path / "locked", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert "[Stack/Deps] " in str(info.value) and "locked=False" in str(info.value)
    _, _, stack = synth_layer(
        uv_app, outdir=tmp_path / "frozen", runtime=lambda_.Runtime.PYTHON_3_12, build="local", locked=False
    )
    stack.node.root.synth()
    (asset,) = [p for p in (tmp_path / "frozen").iterdir() if p.name.startswith("asset.")]
    assert (asset / "python" / "orjson").is_dir()


@pytest.mark.network
@pytest.mark.parametrize("how", ["prop", "context"])
def test_bytecode_false_from_the_prop_or_cdk_json_ships_no_pyc(project_copy, tmp_path, how):
    """bytecode=False (or the context key) is another layer (another S3 key) and ships no .pyc; the
    default compiles for the runtime where its CPython is here (this machine's own Python)."""
    import sys

    runtime = getattr(lambda_.Runtime, f"PYTHON_3_{sys.version_info.minor}")
    project = project_copy("uv_app")
    props = {"bytecode": False} if how == "prop" else {"context": {"cdk-lambda-layer:bytecode": "false"}}
    off, _, _ = synth_layer(project, outdir=tmp_path / "off", runtime=runtime, build="local", **props)
    on, _, _ = synth_layer(project, outdir=tmp_path / "on", runtime=runtime, build="local")
    assert layer_s3_key(off) != layer_s3_key(on)
    pyc = {name: list((tmp_path / name).glob("asset.*/python/**/*.pyc")) for name in ("off", "on")}
    assert not pyc["off"] and pyc["on"]


@pytest.mark.network
def test_the_synth_line_carries_the_layers_warnings(project_copy, capfd):
    """An arm64 layer built on x86_64 cannot be import-checked here: the synth output says so, marked."""
    synth_layer(
        project_copy("uv_app"),
        runtime=lambda_.Runtime.PYTHON_3_12,
        architecture=lambda_.Architecture.ARM_64,
        build="local",
    )
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[cdk-lambda-layer]")]
    assert lines[0].startswith("[cdk-lambda-layer] Stack/Deps: uv project 'uv-app' (uv.lock) -> python3.12 arm64")
    assert any(line.startswith("[cdk-lambda-layer]   WARNING Stack/Deps: import check skipped") for line in lines)
