"""The source-hash rule (sources.py): what of a local package's folder reaches its digest.

A change the build backend ships must change the digest (else the cache and cdk.out serve a
stale layer); a change only tools make while you work must not (else every synth rebuilds).
Real builds showing that the backend ships these files are in test_repository_shapes.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cdk_lambda_layer.identity.sources as sources
from cdk_lambda_layer import ProjectError
from cdk_lambda_layer.identity.sources import source_files, tree_digest

HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def write(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A hatch library in tmp_path/repo/lib."""
    root = tmp_path / "repo" / "lib"
    write(root / "pyproject.toml", '[project]\nname = "lib"\nversion = "1.0"\n' + HATCH)
    write(root / "src" / "lib" / "__init__.py", "VALUE = 1\n")
    return root


def names(root: Path, **options) -> list[str]:
    return [relative for relative, _ in source_files(root, **options)]


def changes(root: Path, edit, **options) -> bool:
    before = tree_digest(root, **options)
    edit()
    return tree_digest(root, **options) != before


# -- F1a: a linked folder is hashed by what it leads to ------------------------------------------------
def test_a_linked_folder_is_hashed_by_its_content(package):
    shared = write(package.parents[1] / "shared-code" / "consts.py", "VALUE = 1\n")
    (package / "src" / "lib" / "extra").symlink_to("../../../../shared-code")
    assert "src/lib/extra/consts.py" in names(package)
    assert changes(package, lambda: shared.write_text("VALUE = 2\n"))


def test_a_link_back_to_a_walked_folder_is_hashed_by_its_link_text(package):
    (package / "src" / "lib" / "again").symlink_to("..")  # src/lib/again -> src: a loop
    assert names(package) == ["pyproject.toml", "src/lib/__init__.py", "src/lib/again/"]
    assert changes(package, lambda: (package / "src" / "lib" / "__init__.py").write_text("VALUE = 2\n"))


def test_two_links_to_one_folder_are_both_walked(package):
    write(package.parent / "shared" / "a.txt")
    (package / "src" / "lib" / "one").symlink_to("../../../shared")
    (package / "src" / "lib" / "two").symlink_to("../../../shared")
    assert {"src/lib/one/a.txt", "src/lib/two/a.txt"} <= set(names(package))


def test_a_link_to_a_large_folder_is_refused(package, monkeypatch):
    monkeypatch.setattr(sources, "MAX_SOURCE_FILES", 20)
    wide = package.parents[1] / "wide"
    for index in range(30):
        write(wide / f"f{index}.txt")
    (package / "src" / "lib" / "data").symlink_to(wide)
    with pytest.raises(ProjectError) as info:
        tree_digest(package)
    assert "more than 20" in str(info.value) and "link" in str(info.value)


def test_a_local_path_that_is_a_whole_tree_is_refused(tmp_path, monkeypatch):
    import cdk_lambda_layer.identity.sources as sources
    from cdk_lambda_layer import LambdaTarget, LayerOptions, ProjectError, load_project
    from cdk_lambda_layer.identity.fingerprint import fingerprint

    monkeypatch.setattr(sources, "MAX_SOURCE_FILES", 50)
    wide = tmp_path / "home"
    for index in range(60):
        (wide / f"d{index}").mkdir(parents=True)
        (wide / f"d{index}" / "f.txt").write_text("x")
    project = tmp_path / "service"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (project / "requirements.txt").write_text("../home\n")
    with pytest.raises(ProjectError) as info:
        fingerprint(load_project(project), LambdaTarget(python="3.12"), LayerOptions())
    assert "has 60 source files (more than 50)" in str(info.value) and "is the path" in str(info.value)


def test_a_dangling_link_is_hashed_by_its_text(package):
    link = package / "src" / "lib" / "gone.txt"
    link.symlink_to("nowhere.txt")
    assert "src/lib/gone.txt" in names(package)

    def relink() -> None:
        link.unlink()
        link.symlink_to("elsewhere.txt")

    assert changes(package, relink)


# -- F1b: hidden files are package files; tool folders are not ------------------------------------------
@pytest.mark.parametrize("hidden", ["src/lib/.defaults", "src/lib/.config/settings.json", ".gitignore"])
def test_hidden_files_and_folders_are_hashed(package, hidden):
    data = write(package / hidden, "1")
    assert hidden in names(package)
    assert changes(package, lambda: data.write_text("2"))


@pytest.mark.parametrize(
    "written",
    [
        ".git/index",
        "src/lib/.git",  # a submodule's or worktree's link file
        ".venv/lib/site.py",
        "src/lib/.mypy_cache/x.json",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/0.1/x",
        ".hypothesis/examples/x",
        ".tox/py/x",
        ".nox/x",
        ".idea/workspace.xml",
        ".vscode/settings.json",
        "src/lib/.DS_Store",
        ".coverage",
        ".coverage.host.123",
        "src/lib/__pycache__/x.cpython-312.pyc",
        "src/lib/stray.pyc",
        "src/lib.egg-info/PKG-INFO",
        "build/lib/lib/__init__.py",
        "dist/lib-1.0.tar.gz",
        "venv/bin/python",
        "htmlcov/index.html",
    ],
)
def test_what_tools_write_is_not_hashed(package, written):
    assert not changes(package, lambda: write(package / written))


# -- F9: output folders at any depth --------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        "infra/cdk.out/asset.0123/python/six.py",
        "infra/node_modules/aws-cdk/package.json",
        "infra/.aws-sam/build/template.yaml",
        "infra/.terraform/providers/registry/aws",
        "src/lib/deep/__pycache__/x.pyc",
        "tools/any-cache/CACHEDIR.TAG",  # any folder holding a cache tag
        "infra/.venv-311/pyvenv.cfg",  # any virtual environment
    ],
)
def test_output_folders_are_skipped_at_any_depth(package, written):
    def add() -> None:
        path = package / written
        write(path, "Signature: 8a477f597d28d172789f06886806bc55\n" if path.name == "CACHEDIR.TAG" else "x\n")
        write(path.parent / "more.txt")

    assert not changes(package, add)


def test_a_folder_with_an_unsigned_cachedir_tag_is_hashed(package):
    write(package / "src" / "lib" / "data" / "CACHEDIR.TAG", "not a cache\n")
    assert "src/lib/data/CACHEDIR.TAG" in names(package)


def test_a_sub_package_called_build_is_hashed(package):
    assert changes(package, lambda: write(package / "src" / "lib" / "build" / "__init__.py"))


# -- F1c: only other packages are left out --------------------------------------------------------------
def test_a_folder_with_a_pyproject_template_is_hashed(package):
    template = package / "src" / "lib" / "templates" / "basic"
    write(template / "pyproject.toml", '[project]\nname = "{{name}}"\n')
    app = write(template / "app.txt", "1")
    assert "src/lib/templates/basic/pyproject.toml" in names(package)
    assert changes(package, lambda: app.write_text("2"))


def test_folders_of_other_packages_are_left_out(package):
    member = package / "libs" / "member"
    code = write(member / "src" / "member" / "__init__.py")
    write(member / "pyproject.toml", '[project]\nname = "member"\nversion = "1"\n')
    assert not changes(package, lambda: code.write_text("changed\n"), skip=[member])
    assert changes(package, lambda: code.write_text("changed again\n"))
    assert tree_digest(package, skip=[package]) == tree_digest(package)  # never its own folder


# -- F1d: sources the build configuration names besides the folder --------------------------------------
@pytest.mark.parametrize("table", ["tool.hatch.build.targets.wheel.force-include", "tool.hatch.build.force-include"])
@pytest.mark.parametrize("where", ["../../proto/schema.txt", "build/gen.txt", "dist/asset.txt", "src/lib/.venv/x"])
def test_a_force_included_file_is_hashed(package, table, where):
    source = write((package / where).resolve(), "1")
    with (package / "pyproject.toml").open("a") as handle:
        handle.write(f'\n[{table}]\n"{where}" = "lib/forced.txt"\n')
    assert changes(package, lambda: source.write_text("2"))


def test_a_force_included_folder_is_walked_as_hatch_walks_it(package):
    generated = package / "build" / "generated"
    write(generated / "a.py", "A = 1\n")
    with (package / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.hatch.build.targets.wheel.force-include]\n"build/generated" = "lib/generated"\n')
    assert changes(package, lambda: write(generated / "a.py", "A = 2\n"))
    assert changes(package, lambda: write(generated / "node_modules" / "x.js"))  # hatch ships it
    assert not changes(package, lambda: write(generated / "__pycache__" / "a.pyc"))  # hatch does not


def test_hatch_toml_and_shared_data_are_read(package):
    data = write(package.parent / "etc" / "lib.conf", "1")
    write(package / "hatch.toml", '[build.targets.wheel.shared-data]\n"../etc/lib.conf" = "share/lib.conf"\n')
    assert changes(package, lambda: data.write_text("2"))


def test_a_missing_force_included_file_is_a_change_when_it_appears(package):
    with (package / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.hatch.build.targets.wheel.force-include]\n"../gen/x.txt" = "lib/x.txt"\n')
    assert changes(package, lambda: write(package.parent / "gen" / "x.txt"))


@pytest.mark.parametrize(
    ("config", "outside"),
    [
        ('[tool.setuptools]\npackage-dir = {"" = "../shared-src"}\n', "shared-src/lib/__init__.py"),
        ('[tool.setuptools.packages.find]\nwhere = ["../shared-src"]\n', "shared-src/lib/__init__.py"),
        ('[tool.setuptools.dynamic]\nversion = {file = "../VERSION"}\n', "VERSION"),
        ('[tool.poetry]\npackages = [{ include = "lib", from = "../shared-src" }]\n', "shared-src/lib/__init__.py"),
        ('[tool.hatch.version]\npath = "../VERSION"\n', "VERSION"),
    ],
)
def test_other_backends_sources_outside_the_folder_are_hashed(package, config, outside):
    source = write(package.parent / outside, "1")
    with (package / "pyproject.toml").open("a") as handle:
        handle.write("\n" + config)
    assert changes(package, lambda: source.write_text("2"))


def test_declared_sources_inside_the_folder_are_not_hashed_twice(package):
    with (package / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.setuptools]\npackage-dir = {"" = "src"}\n[project.readme]\nfile = "README.md"\n')
    write(package / "README.md")
    plain = sources._declared_files(package, {os.path.normpath(p) for _, p in source_files(package)}, frozenset())
    assert plain == []


def test_the_digest_does_not_depend_on_the_checkout_place(package, tmp_path):
    write(package.parent / "proto" / "schema.txt")
    with (package / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.hatch.build.force-include]\n"../proto/schema.txt" = "lib/schema.txt"\n')
    (package / "src" / "lib" / "extra").symlink_to("../../../proto")
    before = tree_digest(package)
    moved = tmp_path / "elsewhere" / "deeper"
    os.renames(package.parent, moved)
    assert tree_digest(moved / "lib") == before


# -- R6: build backends' in-tree output ------------------------------------------------------------------
@pytest.mark.parametrize(
    "written",
    [
        ".pdm-build/lib-1.0.dist-info/METADATA",  # pdm-backend, at every build
        ".pdm-build/.gitignore",
        "src/lib/.pdm-build/x",  # at any depth
        ".pdm-python",  # pdm's interpreter choice: a machine path
        "_skbuild/linux-x86_64-3.12/cmake-build/CMakeCache.txt",  # scikit-build
        ".mesonpy-3k2j1x9/build.ninja",  # meson-python's build folder
        "rust/target/release/libx.rlib",  # Cargo (maturin): tagged with CACHEDIR.TAG
    ],
)
def test_build_backends_in_tree_output_is_not_hashed(package, written):
    def build() -> None:
        write(package / written)
        if "/target/" in written:
            write(package / "rust" / "target" / "CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")

    assert not changes(package, build)


# -- R12: a CDK cloud assembly, whatever the outdir is called -------------------------------------------
def cloud_assembly(folder: Path, *, tree: bool = True, marker: bool = True) -> None:
    """What a synth writes into its outdir (aws-cdk-lib 2: manifest.json, cdk.out, tree.json, assets)."""
    write(folder / "manifest.json", '{"version": "55.0.0", "artifacts": {}}\n')
    if marker:
        write(folder / "cdk.out", '{"version":"55.0.0"}')
    if tree:
        write(folder / "tree.json", '{"version": "tree-0.1"}\n')
    write(folder / "Stack.assets.json")
    write(folder / ("asset." + "a" * 64) / "python" / "six.py")


@pytest.mark.parametrize("where", ["infra/out", "out", "src/lib/deploy/synth"])
@pytest.mark.parametrize("shape", [{}, {"tree": False}, {"marker": False}], ids=["full", "no-tree", "no-marker"])
def test_a_cdk_cloud_assembly_is_skipped_at_any_depth(package, where, shape):
    assert not changes(package, lambda: cloud_assembly(package / where, **shape))
    stage = package / where / "assembly-Stage"  # a nested stage's assembly: manifest.json and cdk.out
    assert not changes(package, lambda: cloud_assembly(stage, tree=False))


def test_a_folder_with_only_a_manifest_json_is_hashed(package):
    data = write(package / "src" / "lib" / "static" / "manifest.json", '{"name": "app"}\n')
    write(package / "src" / "lib" / "static" / "app.js")
    assert "src/lib/static/manifest.json" in names(package)
    assert changes(package, lambda: data.write_text('{"name": "app2"}\n'))


def test_a_folder_with_a_manifest_and_a_cdk_out_folder_is_hashed(package):
    """The default outdir is a folder called cdk.out (skipped by name): its parent is not an assembly."""
    infra = package / "src" / "lib" / "infra"
    data = write(infra / "manifest.json", '{"name": "app"}\n')
    write(infra / "cdk.out" / "manifest.json")
    assert "src/lib/infra/manifest.json" in names(package)
    assert changes(package, lambda: data.write_text('{"name": "app2"}\n'))
