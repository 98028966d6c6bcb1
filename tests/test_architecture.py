"""The folder tree is the architecture: stages in the order of the data flow, imports pointing down it.

docs/architecture.md draws the same layers. A module may import its own stage and the stages below it,
never one above (the flow would run backwards) and never through a circle; the top level holds the
public surface only; no module is over 400 lines. The standard-library-only modules that the build
image runs import nothing else.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

import cdk_lambda_layer

PACKAGE = Path(cdk_lambda_layer.__file__).parent
NAME = "cdk_lambda_layer"

#: Bottom to top. The shared vocabulary (errors, target, options) is the ground; core sits on it; each
#: stage of the flow may use what is below it. cdk and cli are two fronts over the builders.
LAYERS: list[set[str]] = [
    {"errors"},
    {"target", "options"},
    {"core"},
    {"project"},
    {"identity"},
    {"plan"},
    {"install"},
    {"verify"},
    {"package"},
    {"cache"},
    {"builders"},
    {"cdk", "cli"},
    {"__init__", "__main__"},
]
#: The top level: the public surface and nothing else.
TOP_LEVEL = {"__init__.py", "__main__.py", "errors.py", "options.py", "target.py"}
#: Copied into the build image and run there by its Python (no packaging, no pyelftools).
STANDARD_LIBRARY_ONLY = {
    "errors",
    "core.files",
    "core.elf",
    "install.inventory",
    "install.trim",
    "install.bytecode",
    "install.import_check",
    "install.container.step",
}


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" and len(relative.parts) > 1 else relative.parts
        found.append(".".join(parts))
    return found


def source(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def internal_imports(module: str) -> set[str]:
    """The modules of this package that ``module`` imports (module level, in functions, type-only: all)."""
    path = source(module)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == NAME:
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import x` may name a module
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in set(modules()) else ".".join(target))
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith(NAME + ".")}
    return {m or "__init__" for m in found} - {module}


def layer_of(module: str) -> int:
    stage = module.split(".")[0] or "__init__"
    for index, names in enumerate(LAYERS):
        if stage in names:
            return index
    raise AssertionError(f"{module} is in no documented layer: add its stage to LAYERS and docs/architecture.md")


def test_the_top_level_holds_the_public_surface_only():
    top = {p.name for p in PACKAGE.iterdir() if p.suffix == ".py"}
    assert top == TOP_LEVEL
    assert len(top) <= 8


def test_every_module_imports_on_its_own():
    for module in modules():
        name = NAME if module == "__init__" else f"{NAME}.{module}"
        if module == "__main__":
            continue  # runs the command line
        importlib.import_module(name)


def test_imports_point_down_the_flow():
    backwards = []
    for module in modules():
        for imported in internal_imports(module):
            if layer_of(imported) > layer_of(module):
                backwards.append(f"{module} -> {imported}")
    assert backwards == []


def test_no_import_circles():
    graph = {m: internal_imports(m) for m in modules()}
    circles = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                circles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in done:
                visit(imported, [*path, imported], done)
        done.add(module)

    done: set[str] = set()
    for module in graph:
        if module not in done:
            visit(module, [module], done)
    assert circles == []


def test_no_module_is_over_400_lines():
    long = {m: n for m in modules() if (n := len(source(m).read_text().splitlines())) > 400}
    assert long == {}


def test_the_modules_the_image_runs_need_only_the_standard_library():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for module in STANDARD_LIBRARY_ONLY:
        tree = ast.parse(source(module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                outside = {a.name.split(".")[0] for a in node.names} - stdlib
            elif isinstance(node, ast.ImportFrom) and not node.level:
                outside = {node.module.split(".")[0]} - stdlib
            else:
                continue
            assert outside == set(), f"{module} imports {outside}"
        internal = internal_imports(module) - {"__init__"}
        assert internal <= STANDARD_LIBRARY_ONLY, f"{module} imports {internal - STANDARD_LIBRARY_ONLY}"


def test_the_step_package_copied_into_the_image_runs_without_this_library(tmp_path):
    """The copied step package (its modules at their paths here) starts with only the standard library."""
    import subprocess

    from cdk_lambda_layer.install.container.handoff import copy_step_package
    from cdk_lambda_layer.install.container.step import STEP_PACKAGE

    copy_step_package(tmp_path / STEP_PACKAGE)
    done = subprocess.run(
        [sys.executable, "-S", "-m", STEP_PACKAGE, "--help"],  # -S: no site-packages, so no cdk_lambda_layer
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "--output" in done.stdout


@pytest.mark.parametrize("module", ["cdk_lambda_layer.builders.local", "cdk_lambda_layer.cli.main"])
def test_the_builders_and_the_cli_load_without_aws_cdk(module):
    """Only cdk/ imports aws_cdk: scripts using the builders or the CLI never pay for loading it."""
    import subprocess

    code = f"import sys, {module}; print('aws_cdk' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
