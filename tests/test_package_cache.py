"""The package cache: a bumped pin costs one package, the zip stays byte-identical to a build from
nothing, every check still runs on the assembled layer, and a damaged, truncated, linked, tampered or
foreign entry is never used but rebuilt. Real uv, real PyPI packages, real processes and files."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder
from cdk_lambda_layer.cache.packages.entry import PackageEntry
from cdk_lambda_layer.cache.packages.key import PackageKey
from cdk_lambda_layer.cache.packages.store import PackageCache
from cdk_lambda_layer.cache.prune import prune
from cdk_lambda_layer.cache.store import LayerCache
from cdk_lambda_layer.core.tools import find_uv

pytestmark = pytest.mark.network

#: The host's Python: bytecode and the import check run on any machine that runs these tests.
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
PINS = ["six==1.16.0", "idna==3.7", "attrs==24.2.0"]


def uv_project(folder: Path, pins: list[str], name: str = "pkgcache") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    deps = ", ".join(f'"{p}"' for p in pins)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = [{deps}]\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=folder, check=True)
    return folder


def build(project: Path, cache: Path | bool, out: Path, **options):
    return UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=cache, build_dir=out, **options).run()


def entries_of(cache: Path, name: str) -> list[PackageEntry]:
    found = []
    for entry in PackageCache(cache).entries():
        if entry.metadata()["inputs"]["name"] == name:
            found.append(entry)
    return found


def scratch_zip(project: Path, tmp_path: Path) -> bytes:
    """The same inputs built from nothing: no layer cache, no package cache."""
    return build(project, False, tmp_path / "scratch").layer_zip.read_bytes()


@pytest.fixture
def warm(tmp_path):
    """A project built once into its own cache, then bumped: six 1.16.0 -> 1.17.0 (a pure-Python pin)."""
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", PINS)
    first = build(project, cache, tmp_path / "b1")
    assert first.manifest["package_cache"] == {"reused": [], "installed": ["attrs", "idna", "six"]}
    uv_project(project, [p.replace("six==1.16.0", "six==1.17.0") for p in PINS])
    return project, cache


def test_one_bumped_pin_installs_one_package_and_the_zip_is_byte_identical(warm, tmp_path):
    project, cache = warm
    bumped = build(project, cache, tmp_path / "b2")
    assert bumped.manifest["package_cache"] == {"reused": ["attrs", "idna"], "installed": ["six"]}
    assert bumped.layer_zip.read_bytes() == scratch_zip(project, tmp_path)
    assert {p.name: p.version for p in bumped.packages}["six"] == "1.17.0"
    assert len(entries_of(cache, "six")) == 2  # 1.16.0 and 1.17.0: two files, two keys


def test_every_check_runs_on_the_assembled_layer(warm, tmp_path):
    project, cache = warm
    bumped = build(project, cache, tmp_path / "b2").manifest
    fresh = build(project, False, tmp_path / "scratch").manifest
    assert bumped["import_check"]["ran"] and bumped["import_check"]["imported"] == fresh["import_check"]["imported"]
    assert set(bumped["import_times"]) == set(fresh["import_times"])
    assert bumped["bytecode"]["included"] and bumped["bytecode"]["compiled"] == fresh["bytecode"]["compiled"]
    assert bumped["packages"] == fresh["packages"] and bumped["sizes"] == fresh["sizes"]


def test_an_other_project_reuses_packages_of_the_same_target(warm, tmp_path):
    _project, cache = warm
    other = uv_project(tmp_path / "other", ["idna==3.7", "six==1.16.0"], name="other")
    result = build(other, cache, tmp_path / "o1")
    assert result.manifest["package_cache"] == {"reused": ["idna", "six"], "installed": []}
    assert result.layer_zip.read_bytes() == scratch_zip(other, tmp_path)


def test_a_zip_level_the_entries_lack_is_compressed_then_kept(warm, tmp_path):
    project, cache = warm
    level1 = build(project, cache, tmp_path / "l1", zip_level=1)
    assert level1.layer_zip.read_bytes() == build(project, False, tmp_path / "s1", zip_level=1).layer_zip.read_bytes()
    (idna,) = entries_of(cache, "idna")
    assert {key.split("-")[0] for key in idna.metadata()["members"]} == {"1", "6"}


def _tamper(entry: PackageEntry, how: str) -> None:
    document = entry.metadata()
    victim = next(name for name in sorted(document["files"]) if name.endswith(".py") and "dist-info" not in name)
    path = entry.tree / victim
    if how == "symlink":
        path.unlink()
        path.symlink_to("/etc/passwd")
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:10])
    elif how == "listing-edited":  # the file and its listing changed together: RECORD still names the original
        import hashlib

        data = path.read_bytes() + b"\nimport os; os.system('echo owned')\n"
        path.write_bytes(data)
        document["files"][victim] = [len(data), hashlib.sha256(data).hexdigest()]
        (entry.path / "entry.json").write_text(json.dumps(document))
    elif how == "pyc-swapped":  # another module's .pyc put in its place, the listing edited to match
        import hashlib

        pycs = sorted(n for n in document["files"] if n.endswith(".pyc"))
        first, second = entry.tree / pycs[0], entry.tree / pycs[1]
        data = second.read_bytes()
        first.write_bytes(data)
        document["files"][pycs[0]] = [len(data), hashlib.sha256(data).hexdigest()]
        (entry.path / "entry.json").write_text(json.dumps(document))
    elif how == "extra-file":
        (entry.tree / "planted.pth").write_text("import os\n")
    elif how == "entry-link":  # the entry folder itself a link to a copy elsewhere
        target = entry.path.parents[2] / "elsewhere"  # beside the cache folder
        entry.path.rename(target)
        entry.path.symlink_to(target)
    elif how == "executable-bit":  # content intact; the zip would give the file 0755 instead of 0644
        path.chmod(0o755)
    elif how == "owner-only":  # content intact; a 0600 file in a layer cannot be read by Lambda's runtime user
        path.chmod(0o600)
    elif how == "hard-link":  # the same bytes, but another name of the file outside the cache
        outside = entry.path.parents[2] / "host-file"
        outside.write_bytes(path.read_bytes())
        path.unlink()
        os.link(outside, path)
    elif how == "world-writable-file":
        path.chmod(0o646)
    elif how == "world-writable-folder":
        path.parent.chmod(0o777)
    elif how == "foreign-owner":
        for folder, _dirs, names in os.walk(entry.path):
            for name in ["", *names]:
                os.lchown(os.path.join(folder, name), 4242, 4242)
    elif how == "entry-is-a-file":  # a file where the entry folder goes: removed, so the store can go there
        subprocess.run(["rm", "-r", str(entry.path)], check=True)
        entry.path.write_text("not an entry")
    elif how == "half-written":
        (entry.path / "entry.json").unlink()
    elif how == "garbage-json":
        (entry.path / "entry.json").write_text("{not json")
    elif how == "nested-too-deep":  # JSON deeper than Python parses: damage, not a RecursionError
        (entry.path / "entry.json").write_text("[" * 200_000 + "]" * 200_000)
    elif how == "garbled-elf-facts":  # ELF facts this library never writes: the entry is damaged, never trusted
        document["native"] = {victim: {"machine": 3, "soname": None, "needed": [], "highest": {}}}
        (entry.path / "entry.json").write_text(json.dumps(document))


@pytest.mark.parametrize(
    "how",
    [
        "symlink",
        "truncate",
        "listing-edited",
        "pyc-swapped",
        "extra-file",
        "entry-link",
        "executable-bit",
        "owner-only",
        "hard-link",
        "world-writable-file",
        "world-writable-folder",
        pytest.param(
            "foreign-owner", marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
        ),
        "entry-is-a-file",
        "half-written",
        "garbage-json",
        "garbled-elf-facts",
        "nested-too-deep",
    ],
)
def test_a_damaged_entry_is_never_used_and_is_rebuilt(warm, tmp_path, how):
    project, cache = warm
    (entry,) = entries_of(cache, "idna")
    _tamper(entry, how)
    rebuilt = build(project, cache, tmp_path / "b2")
    assert "idna" in rebuilt.manifest["package_cache"]["installed"]
    assert rebuilt.layer_zip.read_bytes() == scratch_zip(project, tmp_path)
    assert not list(rebuilt.python_dir.rglob("planted.pth"))
    if how == "entry-link":
        assert (cache.parent / "elsewhere").is_dir()  # the link is removed, never what it points at
    if how == "hard-link":
        assert (cache.parent / "host-file").is_file()  # the other name stays
    (repaired,) = entries_of(cache, "idna")
    assert not repaired.path.is_symlink()
    other = uv_project(tmp_path / "other", ["idna==3.7"], name="other")  # not a layer-cache hit
    again = build(other, cache, tmp_path / "b3")
    assert again.manifest["package_cache"]["reused"] == ["idna"]  # the repaired entry serves the next build


def _edit_in_place(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + (b"#" if data[-1:] != b"#" else b" "))  # same size, other bytes


def _swap_for_a_copy(path: Path) -> None:
    data = path.read_bytes()
    twin = path.with_name(path.name + ".twin")
    twin.write_bytes(data[:-1] + (b"#" if data[-1:] != b"#" else b" "))
    os.utime(twin, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))  # even the modification time kept
    os.replace(twin, path)


@pytest.mark.parametrize("change", [_edit_in_place, _swap_for_a_copy], ids=["edited-in-place", "swapped"])
@pytest.mark.parametrize("overlap", ["1", "0"], ids=["overlapped", "one-after-another"])
def test_a_reused_file_changed_after_its_copy_is_hashed_again_and_refused(warm, tmp_path, monkeypatch, change, overlap):
    """The RECORD check trusts the hash a copy out of the package cache computed only while the file is
    untouched since (core/digests.py); a file changed between the copy and the checks is read again."""
    from cdk_lambda_layer.builders import host_steps
    from cdk_lambda_layer.errors import VerificationError

    project, cache = warm
    monkeypatch.setenv("CDK_LAYER_OVERLAP", overlap)
    finish = host_steps.HostSteps.finish

    def changed_then_finish(self, work):
        time.sleep(0.02)  # past the clock tick of the copy (the window core/digests.py names)
        change(work.python / "idna" / "core.py")  # a reused package's file, copied in a moment ago
        return finish(self, work)

    monkeypatch.setattr(host_steps.HostSteps, "finish", changed_then_finish)
    with pytest.raises(VerificationError, match=r"RECORD says: idna/core\.py \(idna\)"):
        build(project, cache, tmp_path / "b2")
    assert not (tmp_path / "b2" / "layer.zip").exists()


SPEEDUPS_PINS = ["markupsafe==2.1.5", "six==1.16.0"]


def native_project(tmp_path: Path):
    """A project with a shared library (markupsafe's speedups) built once into its own cache: (project,
    cache, that first build, markupsafe's entry). Bump it with ``bump_six``."""
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", SPEEDUPS_PINS)
    first = build(project, cache, tmp_path / "b1")
    (entry,) = entries_of(cache, "markupsafe")
    return project, cache, first, entry


def bump_six(project: Path, pins: list[str] = SPEEDUPS_PINS) -> None:
    uv_project(project, [p.replace("six==1.16.0", "six==1.17.0") for p in pins])


def parsed_libraries(monkeypatch) -> list[Path]:
    """The files the ELF audit parses from now on (the reader itself still runs)."""
    from cdk_lambda_layer.verify.native import audit

    parsed: list[Path] = []
    read_elf = audit.read_elf
    monkeypatch.setattr(audit, "read_elf", lambda path: parsed.append(path) or read_elf(path))
    return parsed


def test_a_reused_shared_library_is_judged_by_the_facts_its_entry_kept(tmp_path, monkeypatch):
    """The ELF audit still judges every library of the assembled layer, but one copied out of the package
    cache, unchanged since, is not parsed again: its entry kept what the audit read from those bytes."""
    import platform

    project, cache, first, entry = native_project(tmp_path)
    native = entry.metadata()["native"]
    assert [name for name in native if name.startswith("markupsafe/_speedups")]
    assert {facts["machine"] for facts in native.values()} == {platform.machine()}
    bump_six(project)
    parsed = parsed_libraries(monkeypatch)
    bumped = build(project, cache, tmp_path / "b2")
    assert bumped.manifest["package_cache"] == {"reused": ["markupsafe"], "installed": ["six"]}
    assert not [path for path in parsed if "markupsafe" in path.as_posix()]
    assert bumped.layer_zip.read_bytes() == scratch_zip(project, tmp_path)
    assert first.manifest["sizes"] != bumped.manifest["sizes"]  # six changed; markupsafe came from the cache

    # The kept facts are judged against the runtime like parsed ones: facts saying the library needs a
    # glibc newer than the runtime's fail the build (an entry is trusted as far as its listing is).
    document = entry.metadata()
    for facts in document["native"].values():
        facts["highest"] = {"GLIBC": [2, 99]}
    (entry.path / "entry.json").write_text(json.dumps(document))
    for layer in cache.iterdir():  # the finished layers: the next build must assemble its layer again
        if len(layer.name) == 64 and layer.is_dir():
            subprocess.run(["rm", "-r", str(layer)], check=True)
    from cdk_lambda_layer.errors import VerificationError

    with pytest.raises(VerificationError, match=r"markupsafe/_speedups.*needs GLIBC_2\.99"):
        build(project, cache, tmp_path / "b3")


def test_a_build_folder_named_through_dotdot_checks_every_file_against_its_record(warm, tmp_path, monkeypatch):
    """A build_dir such as ``<app>/../build`` (how a CDK app often names it) is the same folder as its
    normalised name: the RECORD check still reads the layer's files, a changed one is refused and no
    layer is kept for the next build, and a clean build there passes."""
    from cdk_lambda_layer.builders import host_steps
    from cdk_lambda_layer.errors import VerificationError

    project, cache = warm
    (tmp_path / "app").mkdir()
    dotted = tmp_path / "app" / ".." / "b2"
    finish = host_steps.HostSteps.finish

    def changed_then_finish(self, work):
        _edit_in_place(work.python / "idna" / "core.py")
        return finish(self, work)

    monkeypatch.setattr(host_steps.HostSteps, "finish", changed_then_finish)
    with pytest.raises(VerificationError, match=r"RECORD says: idna/core\.py \(idna\)"):
        build(project, cache, dotted)
    monkeypatch.setattr(host_steps.HostSteps, "finish", finish)
    again = build(project, cache, dotted)
    original = (tmp_path / "b1" / "lambda" / "layer" / "artifacts" / "python" / "idna" / "core.py").read_bytes()
    assert (again.layout.python / "idna" / "core.py").read_bytes() == original
    assert (tmp_path / "b2" / "lambda" / "layer" / "layer.zip").is_file()


NATIVE_PINS = ["markupsafe==2.1.5", "charset-normalizer==3.3.2", "six==1.16.0"]


def _audits(monkeypatch) -> list[tuple[Path, object]]:
    """Each ELF audit the builds make from now on, with the layer folder it audited."""
    from cdk_lambda_layer.verify import layer

    made: list[tuple[Path, object]] = []
    audit_layer = layer.audit_layer

    def spy(site, *args, **kwargs):
        report = audit_layer(site, *args, **kwargs)
        made.append((site, report))
        return report

    monkeypatch.setattr(layer, "audit_layer", spy)
    return made


def _outcome(site: Path, report) -> tuple:
    facts = {path.relative_to(site).as_posix(): info for path, info in report.facts.items()}
    return report.errors, report.warnings, report.files_checked, facts


def test_a_bumped_build_audits_its_reused_libraries_as_a_build_from_nothing(tmp_path, monkeypatch):
    """Errors, warnings, the libraries checked and what was read of each: the same whether the shared
    libraries came out of the package cache (judged by the facts their entries kept) or were installed."""
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", NATIVE_PINS)
    build(project, cache, tmp_path / "b1")
    bump_six(project, NATIVE_PINS)
    audits = _audits(monkeypatch)
    bumped = build(project, cache, tmp_path / "b2")
    assert bumped.manifest["package_cache"] == {"reused": ["charset-normalizer", "markupsafe"], "installed": ["six"]}
    fresh = build(project, False, tmp_path / "scratch")
    (reused, scratch) = [_outcome(site, report) for site, report in audits]
    assert reused[2] >= 2 and reused == scratch
    assert bumped.manifest["packages"] == fresh.manifest["packages"]
    assert bumped.layer_zip.read_bytes() == fresh.layer_zip.read_bytes()


def test_elf_facts_another_reader_kept_are_read_again(tmp_path, monkeypatch):
    """The facts depend on the reader (this library's and pyelftools' versions, neither in the entry's
    key): an entry whose facts another reader wrote is still used, but its libraries are parsed again."""
    project, cache, _first, entry = native_project(tmp_path)
    document = entry.metadata()
    assert document["native"]
    document["native_reader"] = "elf-facts-0; pyelftools 0.1"
    (entry.path / "entry.json").write_text(json.dumps(document))
    bump_six(project)
    parsed = parsed_libraries(monkeypatch)
    bumped = build(project, cache, tmp_path / "b2")
    assert bumped.manifest["package_cache"] == {"reused": ["markupsafe"], "installed": ["six"]}
    names = sorted(Path(name).name for name in document["native"])
    assert sorted(path.name for path in parsed if "markupsafe" in path.as_posix()) == names


def test_a_known_digest_holds_only_while_the_file_is_untouched(tmp_path):
    from cdk_lambda_layer.core.digests import KnownDigests

    known, path = KnownDigests(), tmp_path / "module.py"
    path.write_bytes(b"x = 1\n")
    known.note(path, path.stat(), "ab" * 32)
    assert known.get(path, path.lstat()) == "ab" * 32
    path.chmod(0o600)
    assert known.get(path, path.lstat()) is None  # a chmod moves the change time
    known.note(path, path.stat(), "ab" * 32)
    with path.open("r+b") as handle:
        handle.write(b"y")
    assert known.get(path, path.lstat()) is None
    assert known.get(tmp_path / "other.py", path.lstat()) is None


def test_a_fifo_in_place_of_an_entry_is_removed_without_waiting_on_it(tmp_path):
    import threading

    packages = PackageCache(tmp_path / "cache")
    packages.claim()
    os.mkfifo(packages.entry(DEMO_KEY.digest).path)
    looked = threading.Thread(target=packages.lookup, args=(DEMO_KEY,), daemon=True)
    looked.start()
    looked.join(10)
    if looked.is_alive():  # opened for reading: let it go, then fail
        os.close(os.open(packages.entry(DEMO_KEY.digest).path, os.O_WRONLY | os.O_NONBLOCK))
    assert not looked.is_alive()
    assert not os.path.lexists(packages.entry(DEMO_KEY.digest).path)


def test_entries_written_under_a_permissive_umask_are_private_and_used(tmp_path):
    """Entries are written 0644/0755 whatever the umask, so they pass the check that refuses an entry
    writable by other users."""
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", ["six==1.16.0", "idna==3.7"])
    previous = os.umask(0)
    try:
        build(project, cache, tmp_path / "b1")
    finally:
        os.umask(previous)
    for entry in PackageCache(cache).entries():
        for folder, dirs, names in os.walk(entry.path):
            for name in [*dirs, *names]:
                if name != ".lock":
                    assert not os.lstat(os.path.join(folder, name)).st_mode & 0o022, name
    other = uv_project(tmp_path / "other", ["six==1.16.0", "idna==3.7"], name="other")
    assert build(other, cache, tmp_path / "b2").manifest["package_cache"]["reused"] == ["idna", "six"]


def test_a_foreign_entry_under_another_key_is_refused(warm, tmp_path):
    """An entry of six 1.16.0 copied (inputs and all edited) to the key of six 1.17.0."""
    _project, cache = warm
    (old,) = entries_of(cache, "six")
    document = old.metadata()
    sha = "0" * 64
    key = PackageKey(
        **{
            **{k: document["inputs"][k] for k in ("name", "python", "architecture", "bytecode")},
            "version": "1.17.0",
            "file": "six-1.17.0-py2.py3-none-any.whl",
            "sha256": sha,
            "trim": (),
        }
    )
    forged = PackageCache(cache).entry(key.digest)
    subprocess.run(["cp", "-r", str(old.path), str(forged.path)], check=True)
    (forged.path / "entry.json").write_text(json.dumps({**document, "key": key.digest, "inputs": key.inputs()}))
    assert PackageCache(cache).lookup(key) is None  # its dist-info says 1.16.0: refused, and removed
    assert not forged.path.exists()


def test_a_tampered_zip_stream_is_compressed_again(warm, tmp_path):
    """A members file and its sha256 changed together: the stream is no longer the one recorded for its file."""
    import hashlib

    project, cache = warm
    (entry,) = entries_of(cache, "attrs")
    document = entry.metadata()
    (members_key, listed), *_ = document["members"].items()
    blob = bytearray((entry.path / listed["file"]).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (entry.path / listed["file"]).write_bytes(bytes(blob))
    listed["sha256"] = hashlib.sha256(bytes(blob)).hexdigest()
    (entry.path / "entry.json").write_text(json.dumps(document))
    rebuilt = build(project, cache, tmp_path / "b2")
    assert rebuilt.layer_zip.read_bytes() == scratch_zip(project, tmp_path)
    assert "attrs" in rebuilt.manifest["package_cache"]["reused"]  # its files were good; its streams were not
    (stored,) = entries_of(cache, "attrs")
    assert members_key not in stored.metadata()["members"] or stored.metadata()["members"][members_key] != listed


def test_a_truncated_zip_stream_file_is_dropped(warm, tmp_path):
    project, cache = warm
    (entry,) = entries_of(cache, "attrs")
    (listed,) = entry.metadata()["members"].values()
    members = entry.path / listed["file"]
    members.write_bytes(members.read_bytes()[:100])
    rebuilt = build(project, cache, tmp_path / "b2")
    assert rebuilt.layer_zip.read_bytes() == scratch_zip(project, tmp_path)


def test_a_local_package_is_keyed_by_its_built_wheel(tmp_path):
    """Same name and version, other content (as a same-named package from another index): another key."""
    from package_helpers import hatch_package

    cache = tmp_path / "cache"
    project = tmp_path / "app"
    hatch_package(tmp_path / "mylib", "mylib", "VALUE = 1\n")
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["mylib", "six==1.16.0"]\n[tool.uv.sources]\nmylib = { path = "../mylib" }\n'
    )
    subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True)
    first = build(project, cache, tmp_path / "b1")
    assert first.manifest["package_cache"]["installed"] == ["mylib", "six"]
    (tmp_path / "mylib" / "src" / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    second = build(project, cache, tmp_path / "b2")
    assert second.manifest["package_cache"] == {"reused": ["six"], "installed": ["mylib"]}
    assert (second.python_dir / "mylib" / "__init__.py").read_text() == "VALUE = 2\n"
    assert len(entries_of(cache, "mylib")) == 2


def test_the_package_cache_can_be_turned_off(warm, tmp_path):
    project, cache = warm
    result = build(project, cache, tmp_path / "b2", package_cache=False)
    assert "package_cache" not in result.manifest


def test_a_package_folder_that_is_a_link_is_a_warning_not_a_failure(tmp_path):
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", PINS)
    LayerCache(cache).claim()
    (tmp_path / "elsewhere").mkdir()
    (cache / "packages").symlink_to(tmp_path / "elsewhere")
    result = build(project, cache, tmp_path / "b1")
    assert any(
        "the package cache at" in w and "cannot be used" in w and "--no-package-cache" in w for w in result.warnings
    )
    assert not any((tmp_path / "elsewhere").iterdir())
    assert result.layer_zip.read_bytes() == scratch_zip(project, tmp_path)


def test_prune_removes_package_entries_too(warm, tmp_path):
    _project, cache = warm
    removed: list = []
    prune(LayerCache(cache), older_than_days=0, removed_packages=removed)
    assert len(removed) == 3 and PackageCache(cache).entries() == []


def test_cache_list_and_prune_name_the_package_entries(warm):
    _project, cache = warm
    listed = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "cache", "list", "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 packages" in listed.stderr
    pruned = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "cache", "prune", "--all", "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "removed 3 packages" in pruned.stderr


# -- two processes, a killed one -----------------------------------------------------------------
STORE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import cdk_lambda_layer.cache.packages.store as store
    from cdk_lambda_layer.cache.packages.key import PackageKey

    cache, site, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    original = store.copy_file

    def slow(*args, **kwargs):  # the real copy, slowed down so the test can catch it mid-write
        time.sleep(delay)
        return original(*args, **kwargs)

    store.copy_file = slow
    key = PackageKey(name="demo", version="1", file="demo-1-py3-none-any.whl", sha256="a" * 64,
                     python="3.12", architecture="x86_64", bytecode="none", trim=())
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    packages = store.PackageCache(cache)
    packages.claim()
    print("storing", flush=True)
    with packages.lock(key.digest):
        print("stored" if packages.store(key, site, files, {"compiled": 0, "failed": []}) else "there", flush=True)
""")
DEMO_KEY = PackageKey(
    name="demo",
    version="1",
    file="demo-1-py3-none-any.whl",
    sha256="a" * 64,
    python="3.12",
    architecture="x86_64",
    bytecode="none",
    trim=(),
)


def demo_site(folder: Path, files: int = 40) -> Path:
    (folder / "demo").mkdir(parents=True)
    (folder / "demo-1.dist-info").mkdir()
    for i in range(files):
        (folder / "demo" / f"m{i}.py").write_text(f"X = {i}\n")
    (folder / "demo-1.dist-info" / "METADATA").write_text("Name: demo\nVersion: 1\n")
    (folder / "demo-1.dist-info" / "RECORD").write_text("")
    return folder


def store_process(cache: Path, site: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", STORE, str(cache), str(site), str(delay)], stdout=subprocess.PIPE, text=True
    )


def test_a_store_killed_mid_write_leaves_no_usable_entry(tmp_path):
    cache, site = tmp_path / "cache", demo_site(tmp_path / "site")
    child = store_process(cache, site, 0.2)
    assert child.stdout.readline().strip() == "storing"
    deadline = time.time() + 30
    while not any(p.name.startswith(".tmp-") for p in (cache / "packages").iterdir()):
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # some files written, not all
    child.send_signal(signal.SIGKILL)
    child.wait()
    packages = PackageCache(cache)
    with packages.lock(DEMO_KEY.digest):
        assert packages.lookup(DEMO_KEY) is None
    assert len(packages.leftovers()) == 1  # its lock died with it
    prune(LayerCache(cache), older_than_days=365)
    assert packages.leftovers() == [] and not [p for p in (cache / "packages").iterdir() if p.name.startswith(".tmp-")]
    done = store_process(cache, site, 0)
    assert done.communicate()[0].split() == ["storing", "stored"]
    with packages.lock(DEMO_KEY.digest):
        assert packages.lookup(DEMO_KEY) is not None


def test_two_processes_storing_one_entry_make_one_good_entry(tmp_path):
    cache, site = tmp_path / "cache", demo_site(tmp_path / "site")
    PackageCache(cache).claim()
    first, second = store_process(cache, site, 0.01), store_process(cache, site, 0.01)
    outputs = sorted(first.communicate()[0].split()[-1:] + second.communicate()[0].split()[-1:])
    assert outputs == ["stored", "there"]  # the second waited on the lock, then found the entry
    packages = PackageCache(cache)
    with packages.lock(DEMO_KEY.digest):
        document = packages.lookup(DEMO_KEY)
    assert document is not None and len(document["files"]) == 42
    assert [p.name for p in (cache / "packages").iterdir() if not p.name.startswith(".")] == [DEMO_KEY.digest]


def test_two_builds_sharing_packages_at_once_both_pass_and_leave_good_entries(tmp_path):
    cache = tmp_path / "cache"
    one = uv_project(tmp_path / "one", ["six==1.16.0", "idna==3.7"], name="one")
    two = uv_project(tmp_path / "two", ["six==1.16.0", "idna==3.7", "attrs==24.2.0"], name="two")
    script = (
        "import sys; from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder as B; "
        f"r = B(sys.argv[1], python={PYTHON!r}, cache_dir=sys.argv[2], build_dir=sys.argv[3]).run(); "
        "print(r.layer_zip)"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(p), str(cache), str(tmp_path / f"out-{p.name}")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in (one, two)
    ]
    zips = [Path(run.communicate()[0].strip()) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert zips[0].read_bytes() == scratch_zip(one, tmp_path / "s1")
    assert zips[1].read_bytes() == scratch_zip(two, tmp_path / "s2")
    again = build(two, cache, tmp_path / "again", package_cache=True)
    assert again.cached  # the layer cache has it; and every package entry is intact:
    for name in ("six", "idna", "attrs"):
        (entry,) = entries_of(cache, name)
        key_inputs = entry.metadata()["inputs"]
        key = PackageKey(
            **{k: key_inputs[k] for k in ("name", "version", "file", "sha256", "python", "architecture", "bytecode")},
            trim=tuple(key_inputs["trim"][1:]),
        )
        assert entry.checked_metadata(key) is not None


def test_a_same_named_file_from_another_index_has_another_key():
    base = {
        "name": "six",
        "version": "1.17.0",
        "file": "six-1.17.0-py2.py3-none-any.whl",
        "python": "3.12",
        "architecture": "x86_64",
        "bytecode": "none",
        "trim": (),
    }
    assert PackageKey(**base, sha256="a" * 64).digest != PackageKey(**base, sha256="b" * 64).digest
    with pytest.raises(ValueError, match="not a sha256"):
        PackageKey(**base, sha256="nope")


def test_no_entry_is_ever_a_hard_link_of_the_layer(warm, tmp_path):
    project, cache = warm
    result = build(project, cache, tmp_path / "b2")
    layer = {os.stat(p).st_ino for p in result.python_dir.rglob("*") if p.is_file()}
    cached = {os.stat(p).st_ino for p in (cache / "packages").rglob("*") if p.is_file()}
    assert not layer & cached


def test_the_summary_says_how_many_packages_came_from_the_package_cache(warm, tmp_path):
    from cdk_lambda_layer.builders.summary import closing_lines, synth_line

    project, cache = warm
    result = build(project, cache, tmp_path / "b2")
    assert "2 of 3 packages from the package cache" in synth_line("Stack/Deps", result)
    assert "built, 2 of 3 packages from the package cache" in closing_lines(result)


@pytest.mark.parametrize("spelling", ["dotdot", "relative", "dot"])
def test_a_layer_cache_hit_however_its_folder_is_spelled_reports_the_files_it_delivered(
    tmp_path, monkeypatch, spelling
):
    """copy_python_to named through '..' (``<app>/../asset``), relative to the working folder, or as the
    working folder itself (``.``, empty): a layer-cache hit goes straight there, and the result's packages
    are read there; their files and sizes are those delivered, not none."""
    cache = tmp_path / "cache"
    project = uv_project(tmp_path / "project", ["markupsafe==2.1.5", "six==1.16.0"])
    first = build(project, cache, tmp_path / "b1")
    (tmp_path / "app").mkdir()
    (tmp_path / "asset").mkdir()
    if spelling == "dotdot":
        output = tmp_path / "app" / ".." / "asset"
    else:
        monkeypatch.chdir(tmp_path if spelling == "relative" else tmp_path / "asset")
        output = Path("asset") if spelling == "relative" else Path(".")
    hit = UVBasedLambdaLayerLocalBuilder(project, python=PYTHON, cache_dir=cache, build_dir=tmp_path / "b2").run(
        copy_python_to=output, publish=False
    )
    assert hit.cached
    assert {p.name: (len(p.files), p.size) for p in hit.packages} == {
        p.name: (len(p.files), p.size) for p in first.packages
    }
    assert all(path.is_file() and path.is_relative_to(output) for p in hit.packages for path in p.files)


@pytest.mark.parametrize("damaged", [False, True], ids=["all-found-whole", "one-damaged-in-the-copy"])
def test_a_bumped_build_reports_trim_and_bytecode_once_after_the_install_and_times_that_add_up(
    warm, tmp_path, monkeypatch, damaged
):
    """The new packages are trimmed and compiled inside the install (beside the copy): the steps still
    read install, trim, bytecode, each once (an entry damaged in the copy too), and the install's seconds
    are not the bytecode's as well (the summary's total is their sum)."""
    from cdk_lambda_layer.builders import host_steps

    project, cache = warm
    if damaged:
        (entry,) = entries_of(cache, "idna")
        _tamper(entry, "truncate")
    compile_fresh = host_steps.HostSteps._compile

    def slow_compile(self, site):
        time.sleep(1.0)
        return compile_fresh(self, site)

    monkeypatch.setattr(host_steps.HostSteps, "_compile", slow_compile)
    started = time.perf_counter()
    result = build(project, cache, tmp_path / "b2")
    elapsed = time.perf_counter() - started
    assert ("idna" in result.manifest["package_cache"]["installed"]) is damaged
    names = [name for name, _seconds in result.steps]
    assert names.count("trim") == names.count("bytecode") == names.count("install") == 1
    assert names.index("install") < names.index("trim") < names.index("bytecode") < names.index("import check")
    seconds = dict(result.steps)
    assert seconds["bytecode"] >= 1.0 and seconds["install"] < 1.0
    assert sum(seconds.values()) <= elapsed


def test_a_build_whose_every_package_is_reused_starts_no_bytecode_process(warm, tmp_path, caplog):
    """Nothing is left to compile: no interpreter is started for it, and the manifest says what a build from
    nothing says (the entries carry the bytecode); the import check still runs on the assembled layer."""
    _project, cache = warm
    other = uv_project(tmp_path / "other", ["idna==3.7", "six==1.16.0"], name="other")
    with caplog.at_level(logging.INFO, logger="cdk_lambda_layer.core.runner"):
        result = build(other, cache, tmp_path / "o1")
    assert result.manifest["package_cache"]["installed"] == []
    commands = [r.getMessage() for r in caplog.records if r.name == "cdk_lambda_layer.core.runner"]
    assert not any("bytecode.py" in command for command in commands)
    assert any("import_check.py" in command for command in commands)
    assert result.manifest["bytecode"] == build(other, False, tmp_path / "scratch").manifest["bytecode"]


def test_steps_one_after_another_copy_the_entries_before_the_install(warm, tmp_path, monkeypatch):
    """CDK_LAYER_OVERLAP=0 (what the benchmarks measure each overlap against) runs nothing beside the install."""
    from cdk_lambda_layer.builders.incremental import PackageReuse
    from cdk_lambda_layer.install import host

    project, cache = warm
    events: list[str] = []
    copy_in, install = PackageReuse.copy_in, host.install

    def copying(self, *args):
        late = copy_in(self, *args)
        events.append("copied")
        return late

    def installing(*args):
        events.append("install")
        return install(*args)

    monkeypatch.setattr(PackageReuse, "copy_in", copying)
    monkeypatch.setattr(host, "install", installing)
    monkeypatch.setenv("CDK_LAYER_OVERLAP", "0")
    result = build(project, cache, tmp_path / "b2")
    assert result.manifest["package_cache"]["installed"] == ["six"]
    assert events == ["copied", "install"]


def _namespace_site(folder: Path) -> Path:
    """Two distributions, ``a`` and ``b``, that both ship ``ns/__init__.py`` (a pkgutil-style namespace
    package: the same file in each wheel), each compiled beside its source as the bytecode step compiles."""
    import py_compile

    for name in ("a", "b"):
        (folder / "ns").mkdir(parents=True, exist_ok=True)
        (folder / "ns" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
        (folder / "ns" / f"{name}.py").write_text(f"NAME = {name!r}\n")
        dist_info = folder / f"{name}-1.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Name: {name}\nVersion: 1\n")
        (dist_info / "RECORD").write_text(f"ns/__init__.py,,\nns/{name}.py,,\n{name}-1.dist-info/RECORD,,\n")
    for source in (folder / "ns").glob("*.py"):
        py_compile.compile(
            str(source), cfile=None, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return folder


def test_an_entry_whose_bytecode_another_entry_brings_is_checked_without_waiting_for_that_copy(tmp_path):
    """Entries are copied a few at a time, and a file two entries bring (a namespace package's __init__.py
    and its .pyc) is copied from the first only: the second checks that pair on its own entry's files, so
    it neither fails reading a file the first has not copied yet nor judges half a copy (both wrongly
    dropped the package cache or removed a good entry)."""
    import importlib.util

    from cdk_lambda_layer.install.target_python import PYC_FLAGS

    site = _namespace_site(tmp_path / "site")
    cache = PackageCache(tmp_path / "cache")
    cache.claim()
    pyc = (importlib.util.MAGIC_NUMBER, PYC_FLAGS["unchecked-hash"])
    keys, documents = {}, {}
    for name in ("a", "b"):
        keys[name] = PackageKey(
            name=name,
            version="1",
            file=f"{name}-1-py3-none-any.whl",
            sha256=name * 64,
            python="3.12",
            architecture="x86_64",
            bytecode="none",
            trim=(),
        )
        every = [p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()]
        files = sorted(f for f in every if f"/{name}" in f"/{f}" or "/__init__." in f)
        with cache.lock(keys[name].digest):
            assert cache.store(keys[name], site, files, {"compiled": 2, "failed": []})
            documents[name] = cache.lookup(keys[name])
    shared = frozenset(documents["a"]["files"]) & frozenset(documents["b"]["files"])
    assert len(shared) == 2  # ns/__init__.py and its .pyc
    layer = tmp_path / "layer"
    with cache.lock(keys["b"].digest):  # b's turn comes before a has copied the shared files
        assert cache.restore(keys["b"], documents["b"], layer, shared, pyc)
    assert (layer / "ns" / "b.py").is_file() and not (layer / "ns" / "__init__.py").exists()
    with cache.lock(keys["a"].digest):
        assert cache.restore(keys["a"], documents["a"], layer, frozenset(), pyc)
    with cache.lock(keys["b"].digest):
        assert cache.lookup(keys["b"]) is not None  # the entry is still there, whole
