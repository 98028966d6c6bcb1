"""The layer cache: a fresh cdk.out costs a copy, damage is rebuilt, parallel use is safe."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import layer_s3_key, synth_layer

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.cache import LayerCache

pytestmark = pytest.mark.network


@pytest.fixture
def installs(monkeypatch):
    """Spy on the installer (real installs still run) to tell a build from a cache hit."""
    import cdk_lambda_layer.install as install

    calls = []
    original = install.install

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(install, "install", counting)
    return calls


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_fresh_cdk_out_takes_the_layer_from_the_cache(project_copy, tmp_path, installs, isolated_layer_cache):
    project = project_copy("uv_app")
    first, _, _ = synth_layer(project, outdir=tmp_path / "out1", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert len(installs) == 1
    second, _, _ = synth_layer(project, outdir=tmp_path / "out2", runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    assert len(installs) == 1  # no installer ran for the empty cdk.out
    key = layer_s3_key(first)
    assert key == layer_s3_key(second)
    asset = f"asset.{key[:-4]}"
    assert files(tmp_path / "out1" / asset) == files(tmp_path / "out2" / asset)
    assert [e.fingerprint for e in LayerCache(isolated_layer_cache).entries()] != []


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete", "partial", "zip"])
def test_damaged_entry_is_detected_and_rebuilt(project_copy, installs, isolated_layer_cache, damage):
    project = project_copy("uv_app")
    built = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    victim = next(entry.python.rglob("*.so"))
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "edit":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.unlink()  # break the hard link first: the build folder keeps its good copy
        victim.write_bytes(bytes(data))
    elif damage == "delete":
        victim.unlink()
    elif damage == "zip":  # the cached layer.zip is served as it is: it must be checked as well
        data = bytearray(entry.layer_zip.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.layer_zip.write_bytes(bytes(data))
    else:
        (entry.path / "entry.json").unlink()  # as if the writer died before finishing
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert len(installs) == 2  # damage found: built again
    assert rebuilt.layer_zip.read_bytes() == built.layer_zip.read_bytes()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert len(installs) == 2  # and the repaired entry serves the next build


SYNTH = textwrap.dedent("""
    import sys
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from cdk_lambda_layer import PythonDependencyLayer
    app = cdk.App(outdir=sys.argv[2])
    stack = cdk.Stack(app, "Stack")
    PythonDependencyLayer(stack, "Deps", project=sys.argv[1], runtime=lambda_.Runtime.PYTHON_3_12, build="local")
    app.synth()
""")


def test_two_concurrent_synths_share_one_cache(project_copy, tmp_path, isolated_layer_cache):
    script = tmp_path / "synth.py"
    script.write_text(SYNTH)
    projects = [project_copy("uv_app", f"p{i}") for i in range(2)]
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), str(projects[i]), str(tmp_path / f"out{i}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _out, err in results]
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
    assets = [next(p for p in (tmp_path / f"out{i}").iterdir() if p.name.startswith("asset.")) for i in range(2)]
    assert files(assets[0]) == files(assets[1])


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", *args], capture_output=True, text=True, check=False
    )


def test_prune_removes_what_it_says(project_copy, isolated_layer_cache):
    project = project_copy("uv_app")
    fingerprints = [
        UVBasedLambdaLayerLocalBuilder(project, python=python, exclude=exclude).run().fingerprint
        for python, exclude in (("3.12", ["orjson"]), ("3.12", []), ("3.13", []))
    ]
    cache = LayerCache(isolated_layer_cache)
    old = time.time() - 10 * 86400
    for fp in fingerprints[:2]:
        os.utime(isolated_layer_cache / fp / "entry.json", (old, old))
    listed = json.loads(cli("cache", "list", "--json").stdout)
    assert {e["fingerprint"] for e in listed["entries"]} == set(fingerprints)
    assert all(e["project"] == "uv-app" for e in listed["entries"])
    assert sorted(e["target"] for e in listed["entries"]) == ["python3.12 x86_64"] * 2 + ["python3.13 x86_64"]

    done = cli("cache", "prune", "--older-than", "7")
    assert done.returncode == 0
    removed = {
        line.split()[1] for line in done.stderr.splitlines() if line.startswith("removed ") and "layers" not in line
    }
    assert removed == set(fingerprints[:2])
    assert "removed 2 layers" in done.stderr
    assert [e.fingerprint for e in cache.entries()] == [fingerprints[2]]

    assert cli("cache", "prune").returncode == 2  # says what to give, removes nothing
    assert [e.fingerprint for e in cache.entries()] == [fingerprints[2]]
    assert "removed 1 layer" in cli("cache", "prune", "--all").stderr
    assert cache.entries() == []
    assert not list(isolated_layer_cache.glob(".*.lock"))  # no lock file per build left to pile up


def test_cache_can_be_turned_off(project_copy, monkeypatch, isolated_layer_cache, installs):
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", "off")
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert len(installs) == 2
    assert not any(isolated_layer_cache.iterdir())


def test_context_key_sets_the_cache_folder(project_copy, tmp_path, installs, monkeypatch):
    monkeypatch.delenv("CDK_LAYER_CACHE_DIR")
    chosen = tmp_path / "ci-cache"
    synth_layer(
        project_copy("uv_app"),
        outdir=tmp_path / "out",
        runtime=lambda_.Runtime.PYTHON_3_12,
        build="local",
        context={"cdk-lambda-layer:cacheDir": str(chosen)},
    )
    assert len(LayerCache(chosen).entries()) == 1


def test_environment_wins_over_the_context_key(project_copy, tmp_path, installs, isolated_layer_cache):
    """CI points CDK_LAYER_CACHE_DIR at a cached folder; a project's cdk.json must not override it."""
    synth_layer(
        project_copy("uv_app"),
        outdir=tmp_path / "out",
        runtime=lambda_.Runtime.PYTHON_3_12,
        build="local",
        context={"cdk-lambda-layer:cacheDir": str(tmp_path / "from-context")},
    )
    assert len(LayerCache(isolated_layer_cache).entries()) == 1
    assert not (tmp_path / "from-context").exists()


def test_a_hit_still_meets_this_builds_size_limit_and_import_check(project_copy, tmp_path):
    """Neither the size limit nor the import check is in the fingerprint (they do not change the layer),
    so a cached layer is held to this build's: over the limit is refused, and a layer cached without
    the import check is built again with it."""
    import sys

    from cdk_lambda_layer import LayerTooLargeError

    project = project_copy("uv_app")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # a target whose Python is here
    unchecked = UVBasedLambdaLayerLocalBuilder(project, python=python, import_check=False).run()
    assert not unchecked.manifest["import_check"]["ran"]
    checked = UVBasedLambdaLayerLocalBuilder(project, python=python).run()
    assert checked.fingerprint == unchecked.fingerprint and not checked.cached
    assert checked.manifest["import_check"]["ran"]
    assert UVBasedLambdaLayerLocalBuilder(project, python=python, import_check=False).run().cached
    with pytest.raises(LayerTooLargeError) as info:
        UVBasedLambdaLayerLocalBuilder(project, python=python, max_unzipped_bytes=1_000_000).run()
    assert "the limit you set is 1.0 MB" in str(info.value)


@pytest.mark.docker
def test_a_container_layer_follows_its_image_when_a_tag_moves(project_copy, tmp_path):
    """The image is hashed by name (construct time cannot ask Docker), and tags move (SAM's :latest-*):
    a cached layer built in an older image than the name stands for now is built again."""
    import io

    import docker
    from docker_helpers import standin_image

    from cdk_lambda_layer import BasedLambdaLayerContainerBuilder

    client, base = docker.from_env(), standin_image()
    moving = f"cdk-lambda-layer-test/moving:{os.getpid()}"
    newer, _logs = client.images.build(fileobj=io.BytesIO(f"FROM {base}\nLABEL rebuilt=1\n".encode()), rm=True)
    project = project_copy("pip_requirements")
    try:
        client.images.get(base).tag(moving)
        first = BasedLambdaLayerContainerBuilder(project, python="3.11", image=moving).run()
        assert first.manifest["image"]["id"] == client.images.get(base).id
        assert BasedLambdaLayerContainerBuilder(project, python="3.11", image=moving).run().cached
        newer.tag(moving)  # the tag now names another image
        moved = BasedLambdaLayerContainerBuilder(project, python="3.11", image=moving).run()
        assert moved.fingerprint == first.fingerprint and not moved.cached
        assert moved.manifest["image"]["id"] == newer.id
        assert BasedLambdaLayerContainerBuilder(project, python="3.11", image=moving).run().cached
        # A machine whose tag still names the older image (a CI runner that pulled earlier) takes the
        # layer built in the newer one: two machines never build the shared entry in turn for each other.
        client.images.get(base).tag(moving)
        assert BasedLambdaLayerContainerBuilder(project, python="3.11", image=moving).run().cached
    finally:
        for name in (moving, newer.id):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(name, force=True)
