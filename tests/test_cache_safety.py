"""The layer cache deletes only what it made and never serves an entry it cannot trust.

Prune and adoption go by the cache's own marker and entry names: a project, another tool's tagged
cache, a foreign folder inside the cache, a folder named like a leftover or an empty path are never
adopted or deleted. An entry holding a link or a special file is damaged and built again (never served
through the link), copies refuse links, and build folders share no inodes with the cache. Fifos and
links at lock and entry paths hang and create nothing; a read-only cache is a warning, not a failure;
prune keeps an entry a build holds and races cache hits without a crash; stores of killed builds are
listed and pruned; a layer with no packages is an entry like any other.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cli_helpers import cli, snapshot

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder, VerificationError
from cdk_lambda_layer.cache.ownership import MARKER
from cdk_lambda_layer.cache.store import LayerCache
from cdk_lambda_layer.core.copy import copy_tree
from cdk_lambda_layer.errors import CacheFolderError


# -- prune and adoption: only what the cache made ------------------------------------------------------------
@pytest.mark.parametrize("flags", [["--all"], ["--older-than", "0"], ["--max-size", "0"]])
def test_prune_pointed_at_a_project_deletes_nothing(project_copy, flags):
    project = project_copy("uv_app")
    (project / "docs").mkdir()
    (project / "docs" / "index.md").write_text("keep me")
    before = snapshot(project)
    done = cli("cache", "--cache-dir", str(project), "prune", *flags)
    assert done.returncode == 2, done.stderr
    assert "is not a cdk-lambda-layer cache" in done.stderr and "nothing was" in done.stderr
    assert snapshot(project) == before


def test_the_cache_api_refuses_to_prune_a_folder_that_is_not_its_own(tmp_path):
    """Not only the command line: the cache's prune itself deletes nothing in a folder without its marker."""
    from cdk_lambda_layer import CacheFolderError
    from cdk_lambda_layer.cache.prune import prune

    folder = tmp_path / "not-a-cache"
    (folder / ("b" * 64)).mkdir(parents=True)
    (folder / ("b" * 64) / "data").write_text("someone's")
    with pytest.raises(CacheFolderError):
        prune(LayerCache(folder), older_than_days=0)
    assert (folder / ("b" * 64) / "data").read_text() == "someone's"


def test_prune_in_another_tools_tagged_cache_deletes_nothing(tmp_path):
    other = tmp_path / "other-tool-cache"
    blob = other / ("a" * 64)
    blob.mkdir(parents=True)
    (blob / "data").write_text("content-addressed blob of another tool")
    (other / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# created by some-other-tool\n")
    done = cli("cache", "--cache-dir", str(other), "prune", "--older-than", "3650")
    assert (blob / "data").is_file(), done.stderr


def test_an_empty_cache_path_is_an_error_not_the_current_folder(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1")
    for command in (["cache", "--cache-dir", "", "prune", "--all"], ["cache", "--cache-dir", " ", "list"]):
        done = cli(*command, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "empty path" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "src" / "app.py").read_text() == "x = 1"


def test_prune_keeps_foreign_folders_inside_its_own_cache(project_copy, isolated_layer_cache):
    project = project_copy("uv_app")
    assert cli("build", str(project), "--python", "3.12").returncode == 0
    assert (isolated_layer_cache / MARKER).is_file()
    (isolated_layer_cache / "notes").mkdir()  # somebody else's folder, not an entry name
    (isolated_layer_cache / "notes" / "todo.txt").write_text("mine")
    done = cli("cache", "prune", "--all")
    assert done.returncode == 0, done.stderr
    assert "removed 1 layers" in done.stderr
    assert (isolated_layer_cache / "notes" / "todo.txt").read_text() == "mine"


def test_a_build_never_adopts_a_foreign_folder_as_its_cache(project_copy, tmp_path):
    home_cache = tmp_path / "dot-cache"
    (home_cache / "pip").mkdir(parents=True)
    (home_cache / "pip" / "wheel.whl").write_bytes(b"x")
    done = cli("build", str(project_copy("uv_app")), "--python", "3.12", "--cache-dir", str(home_cache))
    assert done.returncode == 0, done.stderr
    assert "cannot be used" in done.stderr and "built without it" in done.stderr
    assert sorted(p.name for p in home_cache.iterdir()) == ["pip"]  # no marker, no entry added


def test_a_foreign_tmp_folder_is_not_adopted_and_deleted_as_a_cache_leftover(project_copy, tmp_path):
    folder = tmp_path / "ci-cache"
    (folder / ".tmp-upload").mkdir(parents=True)
    (folder / ".tmp-upload" / "part").write_text("someone else's")
    UVBasedLambdaLayerLocalBuilder(project_copy("uv_app"), python="3.12", cache_dir=folder).run()
    assert (folder / ".tmp-upload" / "part").is_file()


# -- no links in a layer: not in the cache check, nor in a copy ----------------------------------------------
def _layer_with(tmp_path: Path, kind: str) -> Path:
    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("x = 1\n")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    if kind == "file-link":
        (site / "pkg" / "data.txt").symlink_to(secret)
    elif kind == "folder-link":
        (site / "etc").symlink_to(tmp_path)
    else:
        os.mkfifo(site / "pkg" / "pipe")
    return site


@pytest.mark.parametrize("kind", ["file-link", "folder-link", "fifo"])
def test_copies_refuse_links_and_special_files(tmp_path, kind):
    site = _layer_with(tmp_path, kind)
    with pytest.raises(VerificationError) as info:
        copy_tree(site, tmp_path / "copy")
    assert "only regular files and folders" in str(info.value)
    assert ("host-secret.txt" in str(info.value)) == (kind == "file-link")
    assert not list((tmp_path / "copy").rglob("*data.txt"))


@pytest.mark.parametrize("kind", ["file-link", "folder-link"])
def test_a_link_added_to_a_cache_entry_makes_it_damaged(project_copy, isolated_layer_cache, tmp_path, kind):
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    if kind == "file-link":
        (entry.python / "planted.txt").symlink_to(secret)
    else:
        (entry.python / "planted").symlink_to(tmp_path)
    assert not entry.is_intact()
    result = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()  # rebuilt, not served
    names = {n for _d, _s, files in os.walk(result.python_dir) for n in files} | {
        d for _d, dirs, _f in os.walk(result.python_dir) for d in dirs
    }
    assert "planted.txt" not in names and "planted" not in names


def test_a_cache_entry_whose_python_folder_is_a_link_is_damaged(project_copy, isolated_layer_cache, tmp_path):
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    elsewhere = tmp_path / "elsewhere"
    shutil.move(entry.python, elsewhere)
    entry.python.symlink_to(elsewhere)
    assert not entry.is_intact()
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    assert not rebuilt.cached  # not served through the link, built again
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before  # what it pointed at stays


@pytest.mark.parametrize("make_zip", [False, True])
def test_build_folders_and_cache_share_no_inodes(project_copy, isolated_layer_cache, tmp_path, make_zip):
    project = project_copy("uv_app")
    builds = [
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", build_dir=tmp_path / name, make_zip=make_zip).run()
        for name in ("one", "two")
    ]
    (entry,) = LayerCache(isolated_layer_cache).entries()
    inodes = [
        {(p.stat().st_dev, p.stat().st_ino) for p in root.rglob("*") if p.is_file()}
        for root in (builds[0].layout.root, builds[1].layout.root, entry.path)
    ]
    assert all(inodes) and not (inodes[0] & inodes[1]) and not (inodes[0] & inodes[2]) and not (inodes[1] & inodes[2])


# -- fifos and links at the cache's lock and entry paths -----------------------------------------------------
def _cached_without_lock_file(project_copy, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(cache, project, lock path) after one CLI build filled the cache; the entry's lock file removed."""
    cache = tmp_path / "cache"
    project = project_copy("uv_app")
    assert cli("build", str(project), "--python", "3.12", "--cache-dir", str(cache)).returncode == 0
    (fingerprint,) = [p.name for p in cache.iterdir() if len(p.name) == 64]
    lock = cache / f".{fingerprint}.lock"
    lock.unlink()
    return cache, project, lock


def test_fifos_in_the_layer_cache_hang_nothing(project_copy, tmp_path):
    cache, project, lock = _cached_without_lock_file(project_copy, tmp_path)
    os.mkfifo(lock)  # e.g. restored from a CI cache archive
    other = "c" * 64
    (cache / other).mkdir()
    os.mkfifo(cache / other / "entry.json")
    shutil.rmtree(project / "build")
    for args in (
        ["build", str(project), "--python", "3.12", "--cache-dir", str(cache)],
        ["cache", "--cache-dir", str(cache), "list"],
        ["cache", "--cache-dir", str(cache), "prune", "--older-than", "3650"],
    ):
        try:
            cli(*args, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`cdk-lambda-layer {' '.join(args[:2])}` hung on a fifo in the cache")


def test_a_link_at_a_cache_lock_path_creates_nothing_through_it(project_copy, tmp_path):
    cache, project, lock = _cached_without_lock_file(project_copy, tmp_path)
    lock.symlink_to(tmp_path / "created-through-the-link")
    shutil.rmtree(project / "build")
    cli("build", str(project), "--python", "3.12", "--cache-dir", str(cache))
    assert not (tmp_path / "created-through-the-link").exists()


# -- an unusable cache is a warning, the build goes on -------------------------------------------------------
def _read_only_mount_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("mount") is not None


@pytest.mark.skipif(not _read_only_mount_available(), reason="needs root to mount a read-only folder")
def test_a_read_only_cache_does_not_fail_builds(project_copy, tmp_path):
    project = project_copy("uv_app")
    cache = tmp_path / "ro-cache"
    assert cli("build", str(project), "--python", "3.12", "--cache-dir", str(cache)).returncode == 0  # filled
    (project / "build").rename(tmp_path / "first-build")
    script = (
        f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache} && "
        f"{sys.executable} -m cdk_lambda_layer build {project} --python 3.12 --cache-dir {cache} --json"
    )
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING: the layer cache at" in done.stderr and "built without it" in done.stderr
    assert any(
        w.startswith("the layer cache at") for w in json.loads(done.stdout)["warnings"]
    )  # a warning of the build
    assert "build folder" not in done.stderr
    assert (project / "build/lambda/layer/layer.zip").is_file()


# -- prune racing builds that restore the same entry ---------------------------------------------------------
@pytest.mark.network
def test_prune_racing_cache_hits_never_crashes(project_copy, isolated_layer_cache):
    project = project_copy("uv_app")
    assert cli("build", str(project), "--python", "3.12").returncode == 0
    for _ in range(8):
        build = subprocess.Popen(
            [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        prune = cli("cache", "prune", "--all")
        out, err = build.communicate(timeout=300)
        assert build.returncode == 0, err
        assert prune.returncode == 0, prune.stderr
        assert "Traceback" not in err + prune.stderr
        assert any(p["name"] == "pydantic" for p in json.loads(out)["packages"])


def test_prune_skips_an_entry_a_build_holds(project_copy, isolated_layer_cache):
    """Deterministic form of the race: while a build holds an entry (restoring it), prune keeps it."""
    project = project_copy("uv_app")
    result = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    cache = LayerCache(isolated_layer_cache)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from cdk_lambda_layer.cache.store import LayerCache\n"
            f"with LayerCache(Path({str(isolated_layer_cache)!r})).lock({result.fingerprint!r}):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = cli("cache", "prune", "--all")
        assert done.returncode == 0, done.stderr
        assert "in use by a build; kept" in done.stderr
        assert [e.fingerprint for e in cache.entries()] == [result.fingerprint]
    finally:
        holder.kill()
        holder.wait()
    assert cli("cache", "prune", "--all").returncode == 0
    assert cache.entries() == []


# -- stores of killed builds, empty layers -------------------------------------------------------------------
def test_killed_stores_are_listed_and_pruned(project_copy, isolated_layer_cache):
    project = project_copy("uv_app")
    assert cli("build", str(project), "--python", "3.12").returncode == 0
    orphan = isolated_layer_cache / ".tmp-0123456789ab-deadbeef"  # a store whose process died
    (orphan / "python").mkdir(parents=True)
    (orphan / "python" / "big.bin").write_bytes(b"\0" * 200_000)
    (orphan / ".lock").write_text("")
    listed = cli("cache", "list")
    assert "1 unfinished stores of killed builds, 0.2 MB" in listed.stderr
    assert listed.stderr.splitlines()[0].startswith("FINGERPRINT")
    pruned = cli("cache", "prune", "--older-than", "30")
    assert pruned.returncode == 0 and not orphan.exists()
    assert len(LayerCache(isolated_layer_cache).entries()) == 1  # the fresh entry stays


def test_a_layer_with_no_packages_is_cached(tmp_path, isolated_layer_cache):
    project = tmp_path / "empty"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "empty"\nversion = "0"\ndependencies = []\n')
    first = cli("build", str(project), "--python", "3.12", "--json")
    assert first.returncode == 0, first.stderr
    assert "could not store" not in first.stderr and "cannot be used" not in first.stderr
    assert len(LayerCache(isolated_layer_cache).entries()) == 1
    again = cli("build", str(project), "--python", "3.12", "-v")
    assert "taken from the layer cache" in again.stderr
    assert "WARNING: the layer holds no packages: pyproject.toml gives none" in again.stderr  # said, not silent
    (project / "pyproject.toml").write_text('[project]\nname = "empty"\nversion = "0"\ndependencies = ["six"]\n')
    (project / "requirements.txt").write_text("")
    shadowed = cli("build", str(project), "--python", "3.12")
    assert shadowed.returncode == 0, shadowed.stderr
    assert "not read when there is a requirements.txt" in shadowed.stderr


@pytest.mark.parametrize(
    "kind", ["hard-link", "world-writable-file", "world-writable-folder", "hard-linked-entry-json"]
)
@pytest.mark.parametrize("form", ["tree", "zip"])
def test_a_layer_cache_entry_not_ours_alone_is_never_used(project_copy, isolated_layer_cache, tmp_path, kind, form):
    """A file with a second name elsewhere (a host file hard-linked in), or anything others may write, is
    not the cache's own: the entry is rebuilt, and nothing outside the cache is touched."""
    project = project_copy("uv_app")
    first = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=form == "zip").run()
    good = {p.relative_to(first.python_dir): p.read_bytes() for p in first.python_dir.rglob("*") if p.is_file()}
    (entry,) = LayerCache(isolated_layer_cache).entries()
    if form == "zip":
        victim = entry.layer_zip
    else:
        victim = next(p for p in sorted(entry.python.rglob("*.py")) if p.stat().st_size > 100)
    outside = tmp_path / "host-file"
    if kind == "hard-link":
        os.link(victim, outside)
    elif kind == "world-writable-file":
        victim.chmod(0o666)
    elif kind == "world-writable-folder":
        victim.parent.chmod(0o777)
    else:
        os.link(entry.path / "entry.json", outside)
    before = outside.stat().st_mtime_ns if outside.exists() else None
    again = UVBasedLambdaLayerLocalBuilder(
        project, python="3.12", cache_dir=isolated_layer_cache, make_zip=form == "zip"
    ).run()
    assert not again.cached
    assert {p.relative_to(again.python_dir): p.read_bytes() for p in again.python_dir.rglob("*") if p.is_file()} == good
    if before is not None:
        assert outside.exists() and outside.stat().st_mtime_ns == before  # the host file's last use unchanged


def test_a_layer_entry_json_nested_deeper_than_python_parses_is_rebuilt(project_copy, isolated_layer_cache):
    """An entry.json of brackets nested past Python's recursion limit is damage like any other: the layer
    is built again (not a RecursionError in every later build) and the entry replaced."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    (entry.path / "entry.json").write_text("[" * 200_000 + "]" * 200_000)
    again = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert not again.cached
    assert UVBasedLambdaLayerLocalBuilder(project, python="3.12").run().cached


def test_layer_cache_entries_written_under_a_permissive_umask_are_used(project_copy, isolated_layer_cache):
    project = project_copy("uv_app")
    old = os.umask(0)
    try:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    finally:
        os.umask(old)
    (entry,) = LayerCache(isolated_layer_cache).entries()
    modes = [p.stat().st_mode & 0o022 for p in [entry.path, *entry.path.rglob("*")]]
    assert not any(modes)  # nothing in it writable by others
    assert UVBasedLambdaLayerLocalBuilder(project, python="3.12").run().cached


def test_a_cache_folder_created_under_a_permissive_umask_is_writable_by_its_owner_only(
    project_copy, tmp_path, monkeypatch
):
    """Under umask 000 a plain mkdir makes the cache folder 0777: any user could rename or delete its entries."""
    project = project_copy("uv_app")
    root = tmp_path / "new" / "layer-cache"
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", str(root))
    old = os.umask(0)
    try:
        UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    finally:
        os.umask(old)
    for folder in (root, root / "packages"):
        assert folder.is_dir() and folder.stat().st_mode & 0o022 == 0, oct(folder.stat().st_mode)
    assert UVBasedLambdaLayerLocalBuilder(project, python="3.12").run().cached


def test_two_builds_claiming_a_new_cache_folder_at_once_both_use_it(tmp_path):
    """The first build's marker is written beside it and renamed in: the second build, looking in between,
    sees that partial file (or its name gone again) and must not take the folder for someone else's."""
    from cdk_lambda_layer.cache.ownership import claim, is_ours

    root = tmp_path / "cache"
    root.mkdir()
    (root / f".{MARKER}.0123abcd").write_text("being written by another build")
    claim(root)
    assert is_ours(root)
    other = tmp_path / "other"
    other.mkdir()
    (other / f".{MARKER}.0123abcd").write_text("x")
    (other / "notes.txt").write_text("someone's")
    with pytest.raises(CacheFolderError):
        claim(other)  # anything else in the folder still makes it someone else's


def _unreadable_zip(damage: str) -> bytes:
    """A zip that zipfile lists but cannot read: a member flagged encrypted or patched, or deflate data that
    is not deflate (its CRC and sizes still as the central directory says)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/mod.py", os.urandom(3000).hex())
    data = bytearray(buffer.getvalue())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    if damage == "bad deflate data":
        start = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little")
        data[start : start + 40] = b"\xff" * 40
    else:
        bit = 0x1 if damage == "encrypted" else 0x20
        data[local + 6] |= bit
        data[central + 8] |= bit
    return bytes(data)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("encrypted", r"'python/mod\.py' is encrypted or patched \(flags 0x1\)"),
        ("patched", r"'python/mod\.py' is encrypted or patched \(flags 0x20\)"),
        ("bad deflate data", r"the layer\.zip cannot be read \("),
    ],
)
def test_an_unreadable_zip_member_is_named_and_nothing_is_written(tmp_path, damage, said):
    """The reason a zip is refused names the member and what is wrong with it (it reaches the remote
    cache's warning and the log of a rebuilt entry); a flag is refused before any file is written (bad
    deflate data shows only while inflating: the caller empties the folder)."""
    from cdk_lambda_layer.package.unpack import unpack_layer_zip

    layer = tmp_path / "layer.zip"
    layer.write_bytes(_unreadable_zip(damage))
    with pytest.raises(VerificationError, match=said):
        unpack_layer_zip(layer, tmp_path / "python", max_bytes=10**9)
    if damage != "bad deflate data":
        assert not (tmp_path / "python").exists() or not any((tmp_path / "python").rglob("*"))


@pytest.mark.parametrize("damage", ["encrypted", "patched", "bad deflate data"])
def test_a_cached_zip_that_cannot_be_inflated_is_damage_not_a_crash(project_copy, isolated_layer_cache, damage):
    """A zip-form entry whose layer.zip matches its entry.json but cannot be read (zipfile raises
    RuntimeError, NotImplementedError or zlib.error, not BadZipFile) is removed and built again; it used to
    fail every build until the entry was deleted by hand (and a remote blob like it, every remote hit)."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    blob = _unreadable_zip(damage)
    entry.layer_zip.write_bytes(blob)
    document = json.loads((entry.path / "entry.json").read_text())
    document["zip"].update(size=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    (entry.path / "entry.json").write_text(json.dumps(document))
    rebuilt = UVBasedLambdaLayerLocalBuilder(project, python="3.12").run()
    assert not rebuilt.cached
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()


@pytest.mark.parametrize("change", ["made-executable", "no-longer-executable"])
def test_a_tree_entry_whose_executable_bits_changed_is_never_used(project_copy, isolated_layer_cache, change):
    """A tree entry's listing of sizes and hashes says nothing of modes: it lists its executable files, and a
    file made executable in the cache (or one that lost its bit) makes the entry damaged, so the asset gets
    the modes the build gave it."""
    project = project_copy("uv_app")
    first = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    modes = {p.relative_to(first.python_dir): p.stat().st_mode & 0o777 for p in first.python_dir.rglob("*")}
    (entry,) = LayerCache(isolated_layer_cache).entries()
    listed = json.loads((entry.path / "entry.json").read_text())["executables"]
    assert listed and all(name.endswith(".so") for name in listed)
    if change == "made-executable":
        (next(entry.python.rglob("*.py"))).chmod(0o755)
    else:
        (entry.python / listed[0]).chmod(0o644)
    assert not entry.is_intact()
    again = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    assert not again.cached
    assert {p.relative_to(again.python_dir): p.stat().st_mode & 0o777 for p in again.python_dir.rglob("*")} == modes
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()


def test_a_tree_entry_that_lists_no_executables_is_rebuilt_once(project_copy, isolated_layer_cache):
    """A tree entry written before entries listed their executable files holds no word on modes: it is
    rebuilt (once), not trusted."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    document = json.loads((entry.path / "entry.json").read_text())
    del document["executables"]
    (entry.path / "entry.json").write_text(json.dumps(document))
    assert not UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run().cached
    assert UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run().cached


@pytest.mark.parametrize("mode", ["0600", "0640", "0655", "0444"])
def test_a_tree_entry_file_whose_mode_changed_is_never_used(project_copy, isolated_layer_cache, tmp_path, mode):
    """Not the owner's execute bit alone: a cached file made unreadable to others (a layer is read by another
    user than the one who built it) or executable by its group is damage, and the asset (the construct's
    path: copy_python_to, not published) gets exactly the modes of a build from scratch."""
    project = project_copy("uv_app")

    def asset(name: str) -> dict[Path, int]:
        folder = tmp_path / name / "python"
        UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run(copy_python_to=folder, publish=False)
        return {p.relative_to(folder): p.stat().st_mode & 0o7777 for p in folder.rglob("*") if p.is_file()}

    built = asset("built")
    (entry,) = LayerCache(isolated_layer_cache).entries()
    next(entry.python.rglob("*.py")).chmod(int(mode, 8))
    assert not entry.is_intact()
    assert asset("again") == built
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
    assert asset("hit") == built


def test_a_chmod_racing_a_tree_entry_copy_never_reaches_the_layer(project_copy, isolated_layer_cache, monkeypatch):
    """The modes are judged on the walk's lstat and the copy takes the mode of the file it opens: a chmod
    between the two (the file made executable just before it is read) makes the entry damaged, not a hit
    with the new mode."""
    import cdk_lambda_layer.core.copy as copy_module

    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    victim = next(entry.python.rglob("*.py"))
    opened = copy_module.open_regular

    def racing(path, *, dir_fd=None):
        if dir_fd is not None and os.path.samestat(os.fstat(dir_fd), victim.parent.stat()) and path == victim.name:
            victim.chmod(0o755)
        return opened(path, dir_fd=dir_fd)

    monkeypatch.setattr(copy_module, "open_regular", racing)
    again = UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    assert not again.cached
    assert (again.python_dir / victim.relative_to(entry.python)).stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("change", ["names-a-missing-file", "a-duplicate", "unsorted"])
def test_a_tree_entry_whose_executables_list_is_not_its_own_is_rebuilt(project_copy, isolated_layer_cache, change):
    """A list of executables that names a file the listing does not, twice, or out of order is not one this
    library wrote: a restore treats the entry as damaged, as ``is_intact`` (``cache verify``) does."""
    project = project_copy("uv_app")
    UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run()
    (entry,) = LayerCache(isolated_layer_cache).entries()
    document = json.loads((entry.path / "entry.json").read_text())
    listed = document["executables"]
    assert len(listed) > 1
    document["executables"] = {
        "names-a-missing-file": sorted([*listed, "orjson/../setuid.so"]),
        "a-duplicate": sorted([*listed, listed[0]]),
        "unsorted": listed[::-1],
    }[change]
    (entry.path / "entry.json").write_text(json.dumps(document))
    assert not entry.is_intact()
    assert not UVBasedLambdaLayerLocalBuilder(project, python="3.12", make_zip=False).run().cached
    (entry,) = LayerCache(isolated_layer_cache).entries()
    assert entry.is_intact()
