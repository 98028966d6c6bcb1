"""Regenerate the committed lock files of the fixture and example projects.

uv locks against PyPI as usual. Poetry 2 needs PyPI's JSON API, which some mirrors and
proxies do not serve; so Poetry resolves through a temporary legacy (simple index)
source taken from pip's configuration at run time, and the lock is then rewritten as if
resolved against PyPI (source tables dropped, content-hash recomputed by Poetry itself).
No index URL is ever written into a committed file.

Usage: python scripts/relock.py [PROJECT_DIR ...]   (default: every fixture and example)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIRS = [ROOT / "tests" / "projects", ROOT / "examples" / "projects", ROOT / "bench" / "projects"]
#: Repository-shaped fixtures: the folder that owns each lock.
LOCK_OWNERS = [
    ROOT / "tests" / "repos" / "uv_workspace",
    ROOT / "tests" / "repos" / "uv_path" / "service",
    ROOT / "tests" / "repos" / "poetry_path" / "service",
    ROOT / "examples" / "workspace",
]


def simple_index_url() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if out:
        return out
    from pip._internal.models.index import PyPI

    return PyPI.simple_url


def relock_poetry(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text()
    source = f'\n[[tool.poetry.source]]\nname = "relock-simple"\nurl = "{simple_index_url()}"\npriority = "primary"\n'
    try:
        pyproject.write_text(original + source)
        subprocess.run(["poetry", "lock"], cwd=project, check=True)
    finally:
        pyproject.write_text(original)
    lock = project / "poetry.lock"
    text = re.sub(
        r'\n\[package\.source\]\ntype = "legacy"\nurl = "[^"]*"\nreference = "[^"]*"\n', "\n", lock.read_text()
    )
    from poetry.factory import Factory

    digest = Factory().create_poetry(project).locker._get_content_hash()
    lock.write_text(re.sub(r'content-hash = "[0-9a-f]+"', f'content-hash = "{digest}"', text))
    subprocess.run(["poetry", "check", "--lock"], cwd=project, check=True)


def relock(project: Path) -> None:
    print(f"relocking {project}")
    if (project / "poetry.lock").exists() or "[tool.poetry" in (project / "pyproject.toml").read_text():
        relock_poetry(project)
    elif (project / "uv.lock").exists() or "[tool.uv" in (project / "pyproject.toml").read_text():
        subprocess.run(["uv", "lock"], cwd=project, check=True)


def main(argv: list[str]) -> None:
    targets = [Path(a).resolve() for a in argv] or [
        p for d in PROJECT_DIRS if d.is_dir() for p in sorted(d.iterdir()) if (p / "pyproject.toml").exists()
    ] + [p for p in LOCK_OWNERS if (p / "pyproject.toml").exists()]
    for project in targets:
        relock(project)


if __name__ == "__main__":
    main(sys.argv[1:])
