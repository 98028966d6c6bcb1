"""The CLI reference, generated from the argparse parser (``cdk_lambda_layer.cli.parser.build_parser``).

Nothing here is hand-copied: every command, its usage line, description, subcommands and options
(with their help text, as ``--help`` prints it) come from the parser itself. ``docs/hooks.py`` puts
the result into ``docs/cli.md`` when the site is built; ``tests/test_docs.py`` checks that every
option string of every subparser is in it.
"""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import Iterator

#: The region of docs/cli.md that the generated reference replaces.
START = "<!-- cli-reference -->"
END = "<!-- /cli-reference -->"

_WIDTH = 100  # a fixed width: the page must not depend on the terminal that builds it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the command line, depth first: ``((), root)``, ``(("build",), build)``, ..."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def anchor(path: tuple[str, ...]) -> str:
    """The heading id of a command's section: ``build``, ``cache-prune``; ``top`` for the root."""
    return "-".join(path) or "top"


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog=parser.prog, width=_WIDTH, max_help_position=_WIDTH)


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line as ``--help`` prints it, at a fixed width."""
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return _plain(formatter.format_help()).strip()


def prose(text: str) -> str:
    """Help text as markdown shows it: ``<project>`` stays text, ``*`` and ``_`` emphasise nothing."""
    text = html.escape(_plain(text), quote=False)
    return re.sub(r"([\\`*_\[\]])", r"\\\1", text)


def _cell(text: str) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return " ".join(prose(text).split()).replace("|", "\\|")


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return _cell(_formatter(parser)._expand_help(action))


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """``--tool {auto,pip,poetry,uv}``, ``-v, --verbose``, ``--max-size MB``, or a positional's name."""
    text = _plain(_formatter(parser)._format_action_invocation(action))
    return ", ".join(f"`{part.strip()}`" for part in text.split(", "))


def render(path: tuple[str, ...], parser: argparse.ArgumentParser) -> str:
    """One command's section: heading, description, usage, subcommands, arguments and options."""
    title = " ".join((parser.prog.split()[0], *path)) if path else parser.prog
    lines = [f"### `{title}` {{ #{anchor(path)} }}", ""]
    if parser.description:
        lines += [prose(parser.description), ""]
    lines += ["```text", usage(parser), "```", ""]
    positionals, options = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines += ["| command | what it does |", "|---|---|"]
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name in action.choices:
                link = anchor((*path, name))
                lines.append(f"| [`{name}`](#{link}) | {_cell(helps.get(name, ''))} |")
            lines.append("")
        elif action.option_strings:
            options.append(action)
        else:
            positionals.append(action)
    if positionals:
        lines += ["| argument | meaning |", "|---|---|"]
        lines += [f"| {_invocation(parser, a)} | {_help(parser, a)} |" for a in positionals]
        lines.append("")
    if options:
        lines += ["| option | meaning |", "|---|---|"]
        lines += [f"| {_invocation(parser, a)} | {_help(parser, a)} |" for a in options]
        lines.append("")
    return "\n".join(lines)


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole reference in markdown: one section per command, the root first."""
    if parser is None:
        from cdk_lambda_layer.cli.parser import build_parser

        parser = build_parser()
    return "\n".join(render(path, sub) for path, sub in commands(parser))


def fill(markdown: str, reference: str | None = None) -> str:
    """``markdown`` with the region between START and END replaced by the generated reference."""
    start, end = markdown.find(START), markdown.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the CLI page has no {START} ... {END} region for the generated reference")
    reference = cli_reference() if reference is None else reference
    return f"{markdown[:start]}{START}\n\n{reference}\n{markdown[end:]}"
