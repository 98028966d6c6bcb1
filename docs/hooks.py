"""MkDocs hooks (mkdocs.yml ``hooks:``): the CLI reference is generated from the parser at build time."""

from __future__ import annotations

from typing import Any

import gen_cli  # docs/gen_cli.py: MkDocs puts the hook's folder on sys.path while it loads it

#: The page whose marked region holds the generated reference.
CLI_PAGE = "cli.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != CLI_PAGE:
        return markdown
    return gen_cli.fill(markdown)
