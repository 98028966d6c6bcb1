"""The documentation: the CLI reference generated from the parser (never drifting from it), the README's
size and the two command blocks CI reads from it, and links and pages that exist.

No MkDocs here: the generator (docs/gen_cli.py) is called directly; CI builds the site itself."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from cdk_lambda_layer.builders.container import BasedLambdaLayerContainerBuilder
from cdk_lambda_layer.builders.local import BasedLambdaLayerLocalBuilder
from cdk_lambda_layer.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_LIMIT = 12_000


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_cli = load_generator()


def every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """The test's own walk of the command line (not the generator's), so a command it skipped shows."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, (*path, name))


def section(markdown: str, path: tuple[str, ...]) -> str:
    """The generated section of one command: from its heading to the next heading."""
    anchor = "-".join(path) or "top"
    match = re.search(rf"^### `cdk-lambda-layer{''.join(' ' + p for p in path)}` \{{ #{anchor} \}}$", markdown, re.M)
    assert match, f"no section for `cdk-lambda-layer {' '.join(path)}` in the generated CLI reference"
    rest = markdown[match.end() :]
    following = re.search(r"^#{1,3} ", rest, re.M)
    return rest[: following.start()] if following else rest


def mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_the_walk_finds_every_command():
    paths = {path for path, _ in every_parser(build_parser())}
    assert {(), ("build",), ("cache",), ("cache", "list"), ("cache", "prune")} <= paths


@pytest.mark.parametrize("path", [path for path, _ in every_parser(build_parser())], ids=lambda p: " ".join(p) or "-")
def test_cli_reference_has_every_option_of_every_subparser(path):
    markdown = gen_cli.cli_reference()
    parser = dict(every_parser(build_parser()))[path]
    text = section(markdown, path)
    assert "usage: cdk-lambda-layer" in text
    text = re.sub(r"```text\n.*?```", "", text, flags=re.S)  # the usage line names every option: not enough
    if parser.description:
        assert gen_cli.prose(parser.description) in text
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name in action.choices:
                assert f"[`{name}`]" in text, f"subcommand {name} of {path}"
            continue
        names = action.option_strings or [action.dest]
        for option in names:
            assert mentions(text, option), f"{option} of `cdk-lambda-layer {' '.join(path)}` is not in the CLI page"
        if action.help and action.help != argparse.SUPPRESS:
            first_words = " ".join(action.help.split()[:3])
            assert gen_cli.prose(first_words) in text, f"the help of {names[0]} is not in the CLI page"


def test_cli_page_holds_the_generated_reference():
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert page.count(gen_cli.START) == 1 and page.count(gen_cli.END) == 1
    filled = gen_cli.fill(page)
    assert gen_cli.cli_reference() in filled
    assert "Not rendered here" not in filled
    assert filled.startswith(page[: page.index(gen_cli.START)])


def test_the_hook_is_registered():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks:\n\s+- docs/hooks\.py$", config, re.M)
    assert "gen_cli.fill" in (DOCS / "hooks.py").read_text(encoding="utf-8")


def command_block(text: str, name: str) -> str:
    match = re.search(rf"^<!-- {name} -->\n```bash\n(.+?)\n```\n<!-- /{name} -->$", text, re.M | re.S)
    assert match, f"README.md has no <!-- {name} --> ... <!-- /{name} --> block"
    return match.group(1)


def test_readme_is_short_and_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= README_LIMIT, f"README.md has {len(text)} characters, more than {README_LIMIT}"
    main, tests = command_block(text, "main-command"), command_block(text, "test-command")
    assert "npx --yes aws-cdk@2 synth" in main
    assert ".venv/bin/pytest" in tests
    # it opens with them: nothing but the title and a paragraph of what it is before
    first_section = text.index("\n## ")
    assert text.index("<!-- main-command -->") < first_section
    assert text.index("<!-- test-command -->") < first_section


def headings_anchors(page: Path) -> set[str]:
    """The ids of a page's headings, as Python-Markdown's toc makes them (the CLI page with its reference)."""
    text = page.read_text(encoding="utf-8")
    if page == DOCS / "cli.md":
        text = gen_cli.fill(text)
    anchors = set()
    for line in text.splitlines():
        match = re.match(r"^#{1,6} (.+?)(?: \{ #([\w-]+) \})?$", line)
        if match:
            title = re.sub(r"[^\w\s-]", "", match.group(1)).strip().lower()
            anchors.add(match.group(2) or re.sub(r"[-\s]+", "-", title))
    return anchors


def relative_links(page: Path) -> list[tuple[str, str]]:
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    return [link.partition("#")[::2] for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_and_anchors_exist(page):
    for target, anchor in relative_links(page):
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in headings_anchors(path), f"{page.name} links to {target}#{anchor}: no such heading"


def test_the_layer_cache_page_keeps_the_remote_cache_section():
    assert "sharing-the-cache-across-machines" in headings_anchors(DOCS / "layer-cache.md")
    assert "docs/layer-cache.md#sharing-the-cache-across-machines" in README.read_text(encoding="utf-8")


def test_every_nav_page_exists():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    pages = re.findall(r":\s+([\w/.-]+\.md)\s*$", nav, re.M)
    assert len(pages) >= 20
    for page in pages:
        assert (DOCS / page).is_file(), f"mkdocs.yml's nav names {page}, which is not in docs/"


def keyword_parameters(function) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def documented(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def test_every_builder_option_is_on_the_builders_page():
    text = documented("builders.md")
    for name in keyword_parameters(BasedLambdaLayerLocalBuilder.__init__):
        assert f"`{name}`" in text, f"builders.md does not document the builder option {name}"
    container = documented("container-builds.md")
    for name in keyword_parameters(BasedLambdaLayerContainerBuilder.__init__):
        assert f"`{name}`" in container, f"container-builds.md does not document {name}"


def test_every_construct_prop_is_on_the_construct_page():
    from cdk_lambda_layer.cdk.layer import PythonDependencyLayer

    text = documented("construct.md")
    for name in keyword_parameters(PythonDependencyLayer.__init__):
        assert f"`{name}`" in text, f"construct.md does not document the prop {name}"


def test_every_public_name_is_on_the_api_page():
    import cdk_lambda_layer

    text = documented("api/index.md")
    for name in cdk_lambda_layer.__all__:
        assert f"[`{name}`]" in text, f"docs/api/index.md does not list {name}"


def test_no_path_of_a_machine_in_the_docs():
    pattern = re.compile(r"/root/|/home/[a-z]|/tmp/[A-Za-z0-9._-]+/")
    for page in [README, ROOT / "mkdocs.yml", *sorted(DOCS.rglob("*.md")), *sorted(DOCS.glob("*.py"))]:
        assert not pattern.search(page.read_text(encoding="utf-8")), f"{page.name} names a path of this machine"
