"""Where the layer cache lives: ``cache_dir=`` (builders, construct prop), else the
``CDK_LAYER_CACHE_DIR`` environment variable, else the ``cdk-lambda-layer:cacheDir`` context key
(construct), else ``$XDG_CACHE_HOME/cdk-lambda-layer/layers`` (``~/.cache/...``). ``False``, or the
variable set to ``off``, turns it off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.home import cache_home
from ..errors import CacheFolderError

CACHE_ENV = "CDK_LAYER_CACHE_DIR"


_OFF = ("", "0", "off", "false", "no")


def default_cache_dir() -> Path:
    return cache_home() / "layers"


def resolve_cache_dir(option: str | os.PathLike[str] | bool | None = None, context: Any = None) -> Path | None:
    """The cache folder: the option, else $CDK_LAYER_CACHE_DIR, else the context value, else the default.

    None when turned off. An empty or blank path given as the option is an error, not "here".
    """
    if option is False:
        return None
    if option not in (None, True):
        text = os.fspath(option)  # type: ignore[arg-type]
        if not str(text).strip():
            raise CacheFolderError(
                "The layer cache folder is an empty path: give a folder (--cache-dir DIR / cache_dir=...), "
                "or turn the cache off (--no-cache / cache_dir=False)."
            )
        return Path(text)
    from_env = os.environ.get(CACHE_ENV)
    if from_env is not None:
        return None if from_env.strip().lower() in _OFF else Path(from_env)
    if context is not None and context is not True:
        return None if context is False or str(context).strip().lower() in _OFF else Path(str(context))
    return default_cache_dir()
