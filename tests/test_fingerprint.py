"""The fingerprint changes with what determines the layer, and with nothing else."""

from __future__ import annotations

import shutil

import pytest

from cdk_lambda_layer import LambdaTarget, LayerOptions, ProjectError, fingerprint, load_project


def fp(path, *, python="3.12", arch="x86_64", tool="auto", build="local", image=None, **options):
    return fingerprint(
        load_project(path, tool),
        LambdaTarget(python=python, architecture=arch),
        LayerOptions(**options),
        build=build,
        image=image,
    )


@pytest.fixture
def uv_project(project_copy):
    return project_copy("uv_app")


@pytest.mark.parametrize(
    "change",
    [
        {"python": "3.13"},
        {"arch": "arm64"},
        {"tool": "pip"},
        {"groups": ["extra-tools"]},
        {"extras": ["cli"]},
        {"exclude": ["orjson"]},
        {"installer": "pip"},
        {"build": "container", "image": "public.ecr.aws/sam/build-python3.12:latest-x86_64"},
    ],
)
def test_changes_with_each_input(uv_project, change):
    assert fp(uv_project, **change) != fp(uv_project)


def test_changes_with_pyproject_and_lock(uv_project):
    before = fp(uv_project)
    lock = uv_project / "uv.lock"
    lock.write_text(lock.read_text() + "\n# touched\n")
    after_lock = fp(uv_project)
    pyproject = uv_project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# touched\n")
    assert len({before, after_lock, fp(uv_project)}) == 3


def test_changes_with_container_image(uv_project):
    a = fp(uv_project, build="container", image="one:latest")
    assert a != fp(uv_project, build="container", image="two:latest")


def test_ignores_other_files_and_location(uv_project, tmp_path):
    before = fp(uv_project)
    (uv_project / ".venv" / "lib").mkdir(parents=True)
    (uv_project / ".venv" / "lib" / "x.py").write_text("x = 1\n")
    (uv_project / "src" / "uv_app" / "handler.py").write_text("def handler(e, c): return 2\n")
    (uv_project / "tests").mkdir()
    (uv_project / "tests" / "test_x.py").write_text("def test(): pass\n")
    (uv_project / "build").mkdir()
    assert fp(uv_project) == before
    moved = shutil.copytree(uv_project, tmp_path / "elsewhere" / "deeper")
    assert fp(moved) == before


def test_ignores_spelling_and_order_of_options(uv_project):
    assert fp(uv_project, exclude=["Orjson", "pydantic_core"]) == fp(uv_project, exclude=["pydantic-core", "orjson"])


def test_ignores_credentials_in_environment(uv_project, monkeypatch):
    before = fp(uv_project)
    monkeypatch.setenv("UV_INDEX_PRIVATE_PASSWORD", "s3cr3t-token-1")
    monkeypatch.setenv("POETRY_HTTP_BASIC_PRIVATE_PASSWORD", "s3cr3t-token-2")
    monkeypatch.setenv("PIP_INDEX_URL", "https://user:s3cr3t@example.invalid/simple")
    assert fp(uv_project) == before


def test_ignores_line_endings(uv_project):
    before = fp(uv_project)
    pyproject = uv_project / "pyproject.toml"
    pyproject.write_bytes(pyproject.read_bytes().replace(b"\n", b"\r\n"))
    assert fp(uv_project) == before


def test_is_stable_across_machines(project_copy):
    # Committed inputs + fixed options must give this exact hash on every machine; if this
    # changes, LAYER_FORMAT_VERSION or the hashed fields changed: update it deliberately.
    project = project_copy("pip_pyproject")
    assert fp(project, python="3.12") == fp(project_copy("pip_pyproject", "again"), python="3.12")
    assert len(fp(project)) == 64


# -- local packages a pip project names in pyproject.toml (F4) -----------------------------------------
HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def pip_service(tmp_path, pyproject_tail: str = "", dependencies: tuple[str, ...] = ()):
    """A pip project (no requirements.txt) with a library in libs/acme and another in libs/tool."""
    project = tmp_path / "svc"
    for name in ("acme", "tool"):
        library = project / "libs" / name
        (library / "src" / name).mkdir(parents=True)
        (library / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1.0.0"\n' + HATCH)
        (library / "src" / name / "__init__.py").write_text("V = 1\n")
    listed = ", ".join(f'"{d}"' for d in dependencies)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "svc"\nversion = "0.1.0"\ndependencies = [{listed}]\n{pyproject_tail}'
    )
    return project


def edit(path) -> None:
    path.write_text(path.read_text() + "CHANGED = 1\n")


@pytest.mark.parametrize(
    "reference",
    [
        "file:///${PROJECT_ROOT}/libs/acme",
        "file://${PROJECT_ROOT}/libs/acme",
        "file:${PROJECT_ROOT}/libs/acme",
        "ABSOLUTE",
        "./libs/acme",
        "libs/acme",
        "file:./libs/acme",
    ],
)
def test_a_local_package_in_pip_dependencies_is_hashed(tmp_path, reference):
    project = pip_service(tmp_path)
    reference = (project / "libs" / "acme").as_uri() if reference == "ABSOLUTE" else reference
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("dependencies = []", f'dependencies = ["acme @ {reference}"]'))
    assert [s.path for s in load_project(project).local_sources()] == [project / "libs" / "acme"]
    before = fp(project)
    edit(project / "libs" / "acme" / "src" / "acme" / "__init__.py")
    assert fp(project) != before


def test_local_packages_of_the_chosen_extras_and_groups_are_hashed(tmp_path):
    tail = (
        '[project.optional-dependencies]\ncli = ["acme @ file:///${PROJECT_ROOT}/libs/acme"]\n'
        '[dependency-groups]\nbase = ["tool @ file:///${PROJECT_ROOT}/libs/tool"]\ndev = [{include-group = "base"}]\n'
    )
    project = pip_service(tmp_path, tail)
    loaded = load_project(project)
    assert loaded.local_sources() == ()
    assert [s.name for s in loaded.local_sources(extras=("cli",))] == ["acme"]
    assert [s.name for s in loaded.local_sources(groups=("dev",))] == ["tool"]
    before = fp(project, groups=["dev"])
    edit(project / "libs" / "tool" / "src" / "tool" / "__init__.py")
    assert fp(project, groups=["dev"]) != before


@pytest.mark.parametrize(
    "line", ["acme @ file:///${PROJECT_ROOT}/libs/acme", "-e ${PROJECT_ROOT}/libs/acme", "${PROJECT_ROOT}/libs/acme"]
)
def test_project_root_in_requirements_txt_is_the_project_folder(tmp_path, line):
    project = pip_service(tmp_path)
    (project / "requirements.txt").write_text(f"{line}\nsix==1.17.0\n")
    assert [s.path for s in load_project(project).local_sources()] == [project / "libs" / "acme"]
    before = fp(project)  # used to fail: "names local packages that do not exist: …/${PROJECT_ROOT}/libs/acme"
    edit(project / "libs" / "acme" / "src" / "acme" / "__init__.py")
    assert fp(project) != before


def test_other_variables_in_a_local_reference_come_from_the_environment(tmp_path, monkeypatch):
    """As uv reads them: ``${NAME}`` from the environment (upper case only, else the text as it is)."""
    project = pip_service(tmp_path, dependencies=("acme @ file:///${ACME_LIBS}/acme",))
    monkeypatch.setenv("ACME_LIBS", str(project / "libs"))
    assert [s.path for s in load_project(project).local_sources()] == [project / "libs" / "acme"]
    monkeypatch.delenv("ACME_LIBS")
    with pytest.raises(ProjectError, match="names local packages that do not exist"):
        fp(project)


# -- a requirements line naming the project itself (F8) --------------------------------------------------
@pytest.mark.parametrize(
    "line", ["-e .", ".", "./", "file:.", "-e file:.", "svc @ file:///${PROJECT_ROOT}", "-e .[cli]", "-e ./"]
)
def test_a_requirements_line_naming_the_project_is_not_a_local_package(tmp_path, line):
    project = pip_service(tmp_path)
    handler = project / "handler.py"
    handler.write_text("def handler(e, c):\n    return 1\n")
    (project / "requirements.txt").write_text(f"{line}\nsix==1.17.0\n")  # `uv export` writes `-e .`
    loaded = load_project(project)
    assert loaded.local_sources() == ()
    assert [s.path for s in loaded.local_sources(include_project=True)] == [project]  # once
    before, included = fp(project), fp(project, include_project=True)
    edit(handler)
    assert fp(project) == before  # a handler edit rebuilds nothing
    assert fp(project, include_project=True) != included


# -- include_project with the CDK app inside the project (F9) ---------------------------------------------
def test_include_project_ignores_what_a_synth_writes_into_the_project(tmp_path):
    project = tmp_path / "svc"
    (project / "src" / "svc").mkdir(parents=True)
    (project / "infra").mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = []\n' + HATCH
    )
    (project / "uv.lock").write_text(  # what `uv lock` writes for it
        'version = 1\nrequires-python = ">=3.10"\n\n[[package]]\nname = "svc"\nversion = "0.1.0"\n'
        'source = { editable = "." }\n'
    )
    (project / "src" / "svc" / "__init__.py").write_text("X = 1\n")
    before = fp(project, include_project=True)
    asset = project / "infra" / "cdk.out" / f"asset.{before}" / "python"  # what `cdk synth` in infra/ writes
    asset.mkdir(parents=True)
    (asset / "six.py").write_text("# six\n")
    (project / "infra" / "node_modules" / "aws-cdk").mkdir(parents=True)
    (project / "infra" / "node_modules" / "aws-cdk" / "package.json").write_text("{}\n")
    assert fp(project, include_project=True) == before
    edit(project / "src" / "svc" / "__init__.py")
    assert fp(project, include_project=True) != before


# -- a login in an index URL (F14) ----------------------------------------------------------------------
def test_a_rotated_index_token_in_requirements_changes_nothing(tmp_path):
    project = pip_service(tmp_path)
    requirements = project / "requirements.txt"
    requirements.write_text("--extra-index-url https://build:TOKEN_ONE@127.0.0.1:9/simple\nsix==1.17.0\n")
    before = fp(project)
    requirements.write_text(requirements.read_text().replace("TOKEN_ONE", "TOKEN_TWO"))
    assert fp(project) == before
    requirements.write_text(requirements.read_text().replace("127.0.0.1:9", "127.0.0.1:10"))
    assert fp(project) != before  # another index is another input


def test_a_rotated_index_token_in_pyproject_changes_nothing(uv_project):
    pyproject = uv_project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text + '\n[[tool.uv.index]]\nname = "corp"\nurl = "https://ci:TOKEN_ONE@pypi.corp/simple"\n')
    before = fp(uv_project)
    pyproject.write_text(pyproject.read_text().replace("TOKEN_ONE", "TOKEN_TWO"))
    assert fp(uv_project) == before


# -- a workspace root that is itself a package does not absorb its members --------------------------------
def test_a_workspace_root_package_is_hashed_without_its_members(tmp_path):
    root = tmp_path / "platform"
    for folder, name in ((root, "platform"), (root / "services" / "api", "api"), (root / "services" / "jobs", "jobs")):
        (folder / "src" / name).mkdir(parents=True)
        (folder / "src" / name / "__init__.py").write_text("X = 1\n")
        workspace = '[tool.uv.workspace]\nmembers = ["services/*"]\n' if folder == root else ""
        depends = '["platform"]\n[tool.uv.sources]\nplatform = { workspace = true }' if name == "api" else "[]"
        (folder / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = {depends}\n{workspace}{HATCH}'
        )
    (root / "uv.lock").write_text(
        'version = 1\nrequires-python = ">=3.10"\n\n[manifest]\nmembers = ["api", "jobs", "platform"]\n\n'
        '[[package]]\nname = "api"\nversion = "0.1.0"\nsource = { editable = "services/api" }\n'
        'dependencies = [{ name = "platform" }]\n\n'
        '[[package]]\nname = "jobs"\nversion = "0.1.0"\nsource = { editable = "services/jobs" }\n\n'
        '[[package]]\nname = "platform"\nversion = "0.1.0"\nsource = { editable = "." }\n'
    )
    api = root / "services" / "api"
    assert [s.path for s in load_project(api).local_sources()] == [root]
    before = fp(api)
    edit(api / "src" / "api" / "__init__.py")  # the service's own code
    edit(root / "services" / "jobs" / "src" / "jobs" / "__init__.py")  # another member, not in this layer
    assert fp(api) == before
    edit(root / "src" / "platform" / "__init__.py")
    assert fp(api) != before


def test_a_library_holding_the_project_does_not_absorb_its_handlers(tmp_path):
    library = tmp_path / "mylib"
    (library / "src" / "mylib").mkdir(parents=True)
    (library / "pyproject.toml").write_text('[project]\nname = "mylib"\nversion = "1.0"\n' + HATCH)
    (library / "src" / "mylib" / "__init__.py").write_text("X = 1\n")
    example = library / "examples" / "service"
    example.mkdir(parents=True)
    (example / "pyproject.toml").write_text('[project]\nname = "service"\nversion = "0"\n')
    (example / "requirements.txt").write_text("../..\n")
    (example / "handler.py").write_text("def handler(e, c):\n    return 1\n")
    before = fp(example)
    edit(example / "handler.py")
    assert fp(example) == before
    edit(library / "src" / "mylib" / "__init__.py")
    assert fp(example) != before


def test_changes_with_the_workspace_roots_pyproject_and_uv_toml(tmp_path):
    """A member's layer depends on the workspace root's settings ([tool.uv] there, uv.toml beside the
    lock): both are inputs, while a sibling service's files are not."""
    from pathlib import Path

    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    member = root / "services" / "orders"
    before = fp(member)
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n[tool.uv.pip]\n")
    after_root = fp(member)
    (root / "uv.toml").write_text('index-strategy = "unsafe-best-match"\n')
    after_uv_toml = fp(member)
    assert len({before, after_root, after_uv_toml}) == 3
    siblings = [p for p in (root / "services").iterdir() if p.name != "orders"]
    for sibling in siblings:
        (sibling / "handler_note.py").write_text("x = 1\n")
    assert fp(member) == after_uv_toml


# -- R3: what a pip project's local packages bring in --------------------------------------------------
def library(folder, name: str, tail: str = "") -> None:
    (folder / "src" / name).mkdir(parents=True, exist_ok=True)
    (folder / "src" / name / "__init__.py").write_text("V = 1\n")
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1.0.0"\n{tail}\n{HATCH}')


#: How libs/acme brings in libs/core: each is how uv (or the backend's metadata) reaches it.
BRINGS_CORE = {
    "uv-source-path": 'dependencies = ["core"]\n[tool.uv.sources]\ncore = { path = "../core" }',
    "uv-source-list": 'dependencies = ["core"]\n[tool.uv.sources]\n'
    'core = [{ path = "../core", marker = "sys_platform == \'linux\'" }, { index = "pypi" }]',
    "uv-source-editable": 'dependencies = ["core>=1"]\n[tool.uv.sources]\ncore = { path = "../core", editable = true }',
    "uv-source-of-an-extra": '[project.optional-dependencies]\nfast = ["core"]\n'
    '[tool.uv.sources]\ncore = { path = "../core" }',
    "uv-source-dynamic": 'dynamic = ["dependencies"]\n[tool.uv.sources]\ncore = { path = "../core" }',
    "poetry-path": '[tool.poetry.dependencies]\ncore = { path = "../core", develop = false }',
    "direct-reference": 'dependencies = ["core @ file:///${PROJECT_ROOT}/../libs/core"]',  # the project's root
    "hatch-root-uri": 'dependencies = ["core @ {root:uri}/../core"]',  # hatch's root: the library's folder
    "hatch-parent-uri": '[project.optional-dependencies]\nall = ["core @ {root:parent:uri}/core"]',
    "setuptools-dynamic-file": 'dynamic = ["dependencies"]\n[tool.setuptools.dynamic]\n'
    'dependencies = { file = ["requirements.in"] }',
}


def acme_and_core(tmp_path, brings: str):
    """svc's requirements.txt names ../libs/acme; acme brings in ../libs/core as ``brings`` says."""
    library(tmp_path / "libs" / "acme", "acme", BRINGS_CORE[brings])
    (tmp_path / "libs" / "acme" / "requirements.in").write_text("core @ file:///${PROJECT_ROOT}/../libs/core\n")
    library(tmp_path / "libs" / "core", "core")
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\n')
    (project / "requirements.txt").write_text("../libs/acme\nsix==1.17.0\n")
    return project


@pytest.mark.parametrize("brings", list(BRINGS_CORE))
def test_a_local_package_a_local_package_brings_in_is_hashed(tmp_path, brings):
    project = acme_and_core(tmp_path, brings)
    local = load_project(project).local_sources()
    assert {(s.name, s.path) for s in local} == {("acme", tmp_path / "libs/acme"), ("core", tmp_path / "libs/core")}
    before = fp(project)
    edit(tmp_path / "libs" / "core" / "src" / "core" / "__init__.py")
    assert fp(project) != before


@pytest.mark.parametrize("where", ["member", "workspace-root"])
def test_a_workspace_source_of_a_local_package_is_its_member(tmp_path, where):
    """A library in a uv workspace that the pip project names by path: uv takes its member from the
    workspace, by the library's own sources or the root's (which apply to every member)."""
    workspace = tmp_path / "platform"
    sources = "[tool.uv.sources]\ncore = { workspace = true }\n"
    root_tail = sources if where == "workspace-root" else ""
    (workspace).mkdir()
    (workspace / "pyproject.toml").write_text(f'[tool.uv.workspace]\nmembers = ["libs/*"]\n{root_tail}')
    library(workspace / "libs" / "acme", "acme", 'dependencies = ["core"]\n' + (sources if where == "member" else ""))
    library(workspace / "libs" / "core-lib", "core")  # the folder is not named like the package
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\n')
    (project / "requirements.txt").write_text("../platform/libs/acme\n")
    assert {s.path for s in load_project(project).local_sources()} == {
        workspace / "libs" / "acme",
        workspace / "libs" / "core-lib",
    }
    before = fp(project)
    edit(workspace / "libs" / "core-lib" / "src" / "core" / "__init__.py")
    assert fp(project) != before


@pytest.mark.parametrize("line", ["-e .", ".", "-e .[cli]"])
def test_the_projects_own_direct_references_are_hashed_when_a_line_names_it(tmp_path, line):
    """`-e .` leaves the project out, but the installer takes its dependencies: core among them."""
    project = pip_service(tmp_path, dependencies=("acme @ file:///${PROJECT_ROOT}/libs/acme",))
    (project / "requirements.txt").write_text(f"{line}\nsix==1.17.0\n")
    assert [s.path for s in load_project(project).local_sources()] == [project / "libs" / "acme"]
    before = fp(project)
    edit(project / "libs" / "acme" / "src" / "acme" / "__init__.py")
    assert fp(project) != before
    (project / "requirements.txt").write_text("six==1.17.0\n")  # the project not named: nor its dependencies
    assert load_project(project).local_sources() == ()


def test_following_local_packages_ends_on_a_cycle(tmp_path):
    library(
        tmp_path / "libs" / "acme", "acme", 'dependencies = ["core"]\n[tool.uv.sources]\ncore = { path = "../core" }'
    )
    library(
        tmp_path / "libs" / "core", "core", 'dependencies = ["acme"]\n[tool.uv.sources]\nacme = { path = "../acme" }'
    )
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\n')
    (project / "requirements.txt").write_text("../libs/acme\n../libs/core/\n")
    assert sorted(s.name for s in load_project(project).local_sources()) == ["acme", "core"]


def test_only_what_a_local_package_requires_is_followed(tmp_path):
    """A source for a development tool (a dependency group, not in the wheel's metadata) is not the
    layer's; a followed path that does not exist is dropped (uv names it if it needs it)."""
    library(
        tmp_path / "libs" / "acme",
        "acme",
        'dependencies = ["gone"]\n[dependency-groups]\ndev = ["devtool"]\n'
        '[tool.uv.sources]\ndevtool = { path = "../devtool" }\ngone = { path = "../gone" }',
    )
    library(tmp_path / "libs" / "devtool", "devtool")
    project = tmp_path / "svc"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0.1.0"\n')
    (project / "requirements.txt").write_text("../libs/acme\n")
    assert [s.name for s in load_project(project).local_sources()] == ["acme"]
    before = fp(project)
    edit(tmp_path / "libs" / "devtool" / "src" / "devtool" / "__init__.py")
    assert fp(project) == before


# -- R11: a local package left out by name ----------------------------------------------------------------
@pytest.mark.parametrize("how", ["provided", "exclude"])
def test_a_left_out_workspace_library_is_not_hashed(tmp_path, how):
    from pathlib import Path

    root = Path(shutil.copytree(Path(__file__).parent / "repos" / "uv_workspace", tmp_path / "ws"))
    orders = root / "services" / "orders"
    before, full = fp(orders, **{how: ["Ledger"]}), fp(orders)
    edit(root / "libs" / "ledger" / "src" / "ledger" / "__init__.py")
    assert fp(orders, **{how: ["Ledger"]}) == before  # not in this layer
    assert fp(orders) != full
    edit(root / "libs" / "shared-util" / "src" / "shared_util" / "__init__.py")  # ledger brings it: still in
    assert fp(orders, **{how: ["Ledger"]}) != before


def test_a_left_out_requirements_path_is_named_by_its_pyproject(tmp_path):
    """``../libs/acme`` carries no name: its pyproject.toml gives it, so ``provided=["acme"]`` leaves it out,
    while core, which acme brings in, still counts."""
    project = acme_and_core(tmp_path, "uv-source-path")
    before = fp(project, provided=["acme"])
    edit(tmp_path / "libs" / "acme" / "src" / "acme" / "__init__.py")
    assert fp(project, provided=["acme"]) == before
    edit(tmp_path / "libs" / "core" / "src" / "core" / "__init__.py")
    assert fp(project, provided=["acme"]) != before


def test_covered_local_paths_are_what_the_fingerprint_hashes(tmp_path):
    from cdk_lambda_layer.identity.fingerprint import covered_local_paths

    project = acme_and_core(tmp_path, "uv-source-path")
    loaded = load_project(project)
    libs = tmp_path / "libs"
    assert covered_local_paths(loaded, LayerOptions()) == {libs / "acme", libs / "core"}
    assert covered_local_paths(loaded, LayerOptions(exclude=("ACME",))) == {libs / "core"}
    assert covered_local_paths(loaded, LayerOptions(include_project=True)) == {libs / "acme", libs / "core", project}
