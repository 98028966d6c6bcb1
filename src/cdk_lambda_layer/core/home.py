"""This library's folders in the user's cache: the layer cache, pip's cache for build containers, the
containers' uv caches.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """This library's folder under the user's cache ($XDG_CACHE_HOME or ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdk-lambda-layer"
