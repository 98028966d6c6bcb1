"""The layer cache: a fresh cdk.out costs a copy, damage is rebuilt, parallel use is safe."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import layer_s3_key, synth_layer
from cli_helpers import cli

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.cache.store import LayerCache

pytestmark = pytest.mark.network


@pytest.fixture
def installs(monkeypatch):
    """Spy on the installer (real installs still run) to tell a build from a cache hit."""
    import cdk_lambda_layer.install.host as install

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


@pytest.mark.network
def test_a_cache_hit_takes_the_zip_from_the_cache(project_copy, tmp_path):
    project = project_copy("uv_app")
    first = json.loads(cli(str(project), "--python", "3.12", "--json").stdout)
    shutil.rmtree(project / "build")
    second = json.loads(cli(str(project), "--python", "3.12", "--json").stdout)
    assert "zip" in first["steps"] and "zip" not in second["steps"] and second["cached"]
    assert Path(second["layer_zip"]).read_bytes() == Path(first["layer_zip"]).read_bytes()
    third = json.loads(cli(str(project), "--python", "3.12", "--json", "--zip-level", "1").stdout)
    assert "zip" in third["steps"]  # another level: zipped again from the cached tree


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete", "extra", "partial", "zip"])
def test_damaged_entry_is_detected_and_rebuilt(project_copy, installs, isolated_layer_cache, damage):
    """A tree entry (a build without a zip: the construct's) whose files, listing or added zip are not
    what was stored is rebuilt, never served."""
    project = project_copy("uv_app")
    built = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    good = files(built.python_dir)
    if damage == "zip":  # a later build that zips the hit keeps its zip in the entry
        UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
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
    elif damage == "extra":  # a file no build put there must not ride along
        (victim.parent / "planted.py").write_text("import os\n")
    elif damage == "zip":  # the cached layer.zip is served as it is: it must be checked as well
        data = bytearray(entry.layer_zip.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.layer_zip.write_bytes(bytes(data))
    else:
        (entry.path / "entry.json").unlink()  # as if the writer died before finishing
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=damage == "zip").run()
    assert len(installs) == 2  # damage found: built again
    assert files(rebuilt.python_dir) == good
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=damage == "zip").run()
    assert len(installs) == 2  # and the repaired entry serves the next build


def _damage_zip_entry(entry, damage: str, tmp_path: Path) -> None:
    zipped = entry.layer_zip
    if damage == "flip":
        data = bytearray(zipped.read_bytes())
        data[len(data) // 2] ^= 0xFF
        zipped.write_bytes(bytes(data))
    elif damage == "truncate":
        zipped.write_bytes(zipped.read_bytes()[:-1000])
    elif damage == "delete":
        zipped.unlink()
    elif damage == "tree-beside":  # a python/ folder no store wrote
        (entry.path / "python").mkdir()
        (entry.path / "python" / "planted.py").write_text("PLANTED = True\n")
    elif damage == "link":
        shutil.copyfile(zipped, tmp_path / "elsewhere.zip")
        zipped.unlink()
        zipped.symlink_to(tmp_path / "elsewhere.zip")
    else:
        (entry.path / "entry.json").unlink()


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "tree-beside", "link", "partial"])
def test_a_damaged_zip_entry_is_detected_and_rebuilt(project_copy, installs, isolated_layer_cache, tmp_path, damage):
    """A build that made a zip keeps the zip alone as its entry (no tree: one file written, not thousands);
    a hit unpacks it. A zip that is not the one entry.json names, a tree beside it, or a link in its place
    is rebuilt, and the rebuilt layer is the one first built."""
    project = project_copy("uv_app")
    built = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    good, good_zip = files(built.python_dir), built.layer_zip.read_bytes()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert not entry.python.exists() and entry.is_intact()
    _damage_zip_entry(entry, damage, tmp_path)
    assert not entry.is_intact()
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert len(installs) == 2 and not rebuilt.cached
    assert files(rebuilt.python_dir) == good and rebuilt.layer_zip.read_bytes() == good_zip
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
    hit = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    assert len(installs) == 2 and hit.cached and files(hit.python_dir) == good  # unpacked for a tree build too


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


def test_a_hit_checks_each_file_as_it_copies_and_keeps_the_entry_on_a_disk_error(project_copy, tmp_path):
    """A hit reads the entry once (hash while copying); the copy is exactly the entry, with modes.
    A failure to write the destination is the disk's, not the entry's: the entry stays."""
    from cdk_lambda_layer.cache.entry import tree_listing
    from cdk_lambda_layer.core.copy import copy_tree

    cache_dir = tmp_path / "cache"
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", cache_dir=cache_dir, make_zip=False).run()
    cache = LayerCache(cache_dir)
    (entry,) = cache.entries()
    document = json.loads((entry.path / "entry.json").read_text())
    runnable = entry.python / document["executables"][0]

    listing = copy_tree(entry.python, tmp_path / "copy")
    assert listing == tree_listing(tmp_path / "copy") == document["files"]
    modes = {p.relative_to(entry.python): p.stat().st_mode & 0o777 for p in entry.python.rglob("*") if p.is_file()}
    copied = {p.relative_to(tmp_path / "copy"): p.stat().st_mode & 0o777 for p in (tmp_path / "copy").rglob("*")}
    assert {k: v for k, v in copied.items() if (tmp_path / "copy" / k).is_file()} == modes
    assert modes[runnable.relative_to(entry.python)] == 0o755 and set(modes.values()) == {0o644, 0o755}

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with cache.lock(entry.fingerprint), pytest.raises(OSError):
        cache.restore(entry.fingerprint, blocker / "python")
    assert entry.is_intact()


def _plant_listed_file(entry):
    """Add a file to the entry and to its listing, so only the zip tells the entry is not what was built."""
    import hashlib

    planted = entry.python / "planted.py"
    planted.write_text("PLANTED = True\n")
    document = json.loads((entry.path / "entry.json").read_text())
    document["files"]["planted.py"] = [planted.stat().st_size, hashlib.sha256(planted.read_bytes()).hexdigest()]
    (entry.path / "entry.json").write_text(json.dumps(document, sort_keys=True))


@pytest.mark.parametrize("publish", [True, False])
def test_a_damaged_zip_leaves_nothing_of_the_tree_behind(
    project_copy, isolated_layer_cache, installs, tmp_path, publish
):
    """The tree is copied (and checked) before the zip; when the zip then fails its check, the tree
    copied so far must go too, or the rebuild installs on top of it and ships the planted file."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()  # a hit that zips: the tree and a zip
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.python.is_dir() and entry.layer_zip.is_file()
    _plant_listed_file(entry)
    data = bytearray(entry.layer_zip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.layer_zip.write_bytes(bytes(data))
    output = tmp_path / "asset"
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run(copy_python_to=output, publish=publish)
    assert len(installs) == 2 and not rebuilt.cached
    assert not (output / "planted.py").exists()
    if publish:
        assert not (rebuilt.python_dir / "planted.py").exists()
        assert b"planted.py" not in rebuilt.layer_zip.read_bytes()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert "planted.py" not in (json.loads((entry.path / "entry.json").read_text())["files"] or {})  # zip form: null


@pytest.mark.parametrize("form", ["tree", "zip"])
def test_an_entry_file_that_cannot_be_read_makes_the_entry_damaged(project_copy, isolated_layer_cache, form):
    """An unreadable cached file is the entry's fault (rebuilt and replaced), not the disk's: a build
    that merely turned the cache off would leave the entry broken for every later build."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the capability that reads any file")
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=form == "zip").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    (next(entry.python.rglob("*.py")) if form == "tree" else entry.layer_zip).chmod(0)
    caps = "-dac_override,-dac_read_search"
    drop = ["setpriv", "--bounding-set", caps, "--inh-caps", caps]
    shutil.rmtree(project / "build")
    command = [*drop, sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "is damaged" in done.stderr and "cannot be used" not in done.stderr
    assert json.loads(done.stdout)["cached"] is False
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()


def test_a_folder_swapped_for_a_link_after_the_walk_is_not_read(project_copy, tmp_path):
    """copy_file opens the file the walk saw, or nothing: a folder on its path replaced by a link to
    a host folder (a race against the check) gives an error before a byte of the host file is read."""
    from cdk_lambda_layer import VerificationError
    from cdk_lambda_layer.core.copy import copy_file
    from cdk_lambda_layer.core.files import walk_stats

    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text("x = 1\n")
    host = tmp_path / "host"
    host.mkdir()
    (host / "mod.py").write_text("SECRET\n")
    ((path, seen),) = walk_stats(tree)
    shutil.rmtree(tree / "pkg")
    (tree / "pkg").symlink_to(host)
    with pytest.raises(VerificationError, match="is not the file it was a moment ago"):
        copy_file(path, tmp_path / "out.py", seen=seen)
    assert not (tmp_path / "out.py").exists()


def test_a_folder_swapped_for_a_link_during_a_tree_copy_is_never_read_through(tmp_path, monkeypatch):
    """copy_tree opens files relative to descriptors of the folders it walks: a folder replaced by a
    link to a host folder after the first walk is refused, and no byte of the host file is written."""
    from cdk_lambda_layer import VerificationError
    from cdk_lambda_layer.core import copy as layout

    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "top.py").write_text("y = 2\n")
    host = tmp_path / "host"
    host.mkdir()
    (host / "mod.py").write_text("SECRET\n")
    first_walk = layout._first_walk

    def walk_then_swap(source):
        seen = first_walk(source)
        shutil.rmtree(tree / "pkg")
        (tree / "pkg").symlink_to(host)
        return seen

    monkeypatch.setattr(layout, "_first_walk", walk_then_swap)
    with pytest.raises(VerificationError, match="changed while it was copied"):
        layout.copy_tree(tree, tmp_path / "copy")
    assert all(b"SECRET" not in p.read_bytes() for p in (tmp_path / "copy").rglob("*") if p.is_file())


def test_copies_made_after_the_umask_tightened_keep_their_modes(tmp_path):
    """A copy is created with its final mode only while the umask leaves 0644/0755 alone: the umask is read
    for each copy, so one made after the process tightened it (to 077) is still 0644/0755, not 0600 (the
    modes of the asset folder CDK zips, and of cache entries)."""
    from cdk_lambda_layer.core.copy import copy_file, copy_tree

    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "pkg" / "tool").write_text("#!/bin/sh\n")
    (tree / "pkg" / "mod.py").chmod(0o644)
    (tree / "pkg" / "tool").chmod(0o755)
    previous = os.umask(0o022)
    try:
        copy_tree(tree, tmp_path / "loose")
        copy_file(tree / "pkg" / "mod.py", tmp_path / "loose.py")
        os.umask(0o077)
        copy_tree(tree, tmp_path / "tight")
        copy_file(tree / "pkg" / "mod.py", tmp_path / "tight.py")
    finally:
        os.umask(previous)
    for copy in ("loose", "tight"):
        assert (tmp_path / copy / "pkg" / "mod.py").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / copy / "pkg" / "tool").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / f"{copy}.py").stat().st_mode & 0o777 == 0o644


def _first_file(document):
    return next(iter(document["files"]))


@pytest.mark.parametrize(
    ("form", "edit"),
    [
        ("tree", lambda d: d["files"].update({_first_file(d): 5})),
        ("tree", lambda d: d["files"].update({_first_file(d): []})),
        ("tree", lambda d: d["files"].update({_first_file(d): None})),
        ("tree", lambda d: d.update(form="zip")),  # says zip, has a tree and no zip
        ("zip", lambda d: d.update(zip=["not", "a", "dict"])),
        ("zip", lambda d: d.update(zip="layer.zip")),
        ("zip", lambda d: d.update(zip=None)),
        ("zip", lambda d: d.update(form="tarball")),
        ("zip", lambda d: d.pop("form")),  # a tree entry without its tree
        ("zip", lambda d: d.update(files={"planted.py": [1, "0" * 64]})),
        ("zip", lambda d: d.update(files={})),  # an empty listing: an older version would read a missing tree
        ("zip", lambda d: d["manifest"]["sizes"].update(unzipped_bytes=1000)),  # unpacks to more
        ("zip", lambda d: d.update(manifest="x")),
        ("zip", lambda d: d["manifest"].update(sizes=[1])),  # the unpack's limit unreadable
        ("zip", lambda d: d.clear() or d.update(files=[])),
    ],
    ids=[
        "size-int", "empty-list", "null", "tree-says-zip", "zip-list", "zip-string", "zip-null", "form-unknown",
        "form-missing", "zip-form-lists-files", "zip-form-empty-listing", "size-below-the-zip", "manifest-string",
        "sizes-list", "files-list",
    ],
)  # fmt: skip
def test_a_malformed_entry_json_is_damage_not_a_crash(project_copy, isolated_layer_cache, installs, form, edit):
    project = project_copy("uv_app")
    built = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=form == "zip").run()
    good = files(built.python_dir)
    (entry,) = LayerCache(isolated_layer_cache).entries()
    document = json.loads((entry.path / "entry.json").read_text())
    edit(document)
    (entry.path / "entry.json").write_text(json.dumps(document))
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=form == "zip").run()
    assert len(installs) == 2 and not rebuilt.cached
    assert files(rebuilt.python_dir) == good
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()


def test_a_restore_never_deletes_a_file_it_did_not_write(project_copy, tmp_path):
    cache_dir = tmp_path / "cache"
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", cache_dir=cache_dir).run()
    cache = LayerCache(cache_dir)
    (entry,) = cache.entries()
    mine = tmp_path / "layer.zip"
    mine.write_text("the caller's file")
    with cache.lock(entry.fingerprint), pytest.raises(ValueError, match=r"writes a new layer\.zip, and .* exists"):
        cache.restore(entry.fingerprint, tmp_path / "python", zip_to=mine, zip_level=6)
    assert mine.read_text() == "the caller's file"
    assert not (tmp_path / "python").exists() or not any((tmp_path / "python").iterdir())
    assert entry.is_intact()


def test_a_zip_form_hit_without_a_zip_unpacks_from_the_build_folder_not_the_system_temp(
    project_copy, isolated_layer_cache, installs, monkeypatch
):
    """A build that makes no zip (the construct) copies a zip-form entry's zip into its own build folder
    to unpack it: a killed build's copy is swept with that folder, and a missing or full system temp folder
    (a small /tmp in CI) costs no hit. In the system's temp folder, it was left behind by a killed build,
    and a full one made every such hit a full build, warning that the layer cache could not be used."""
    project = project_copy("uv_app")
    built = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()  # a zip-form entry
    monkeypatch.setattr(tempfile, "tempdir", str(project / "no-such-temp-folder"))
    hit = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    assert hit.cached and len(installs) == 1 and not hit.warnings
    assert files(hit.python_dir) == files(built.python_dir)


def test_a_zip_form_entry_read_without_its_form_is_damage_not_an_unusable_cache(project_copy, isolated_layer_cache):
    """An older version of this library knows no ``form``, and reads a zip-form entry as this test's edit
    leaves it. It must see a damaged entry (rebuilt and stored again), not a tree entry whose python/ folder
    is missing, which failed its cache on every build ("cannot be used") and stored nothing: a zip-form
    entry names no listing (``files`` null), which that reading refuses."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    document = json.loads((entry.path / "entry.json").read_text())
    document.pop("form")
    (entry.path / "entry.json").write_text(json.dumps(document))
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert not rebuilt.cached and not rebuilt.warnings
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact() and UVBasedLambdaLayerLocalBuilder(project, python="3.12").run().cached
