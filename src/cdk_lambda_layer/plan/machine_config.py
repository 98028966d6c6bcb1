"""The machine's uv settings about where packages come from, and nothing else.

A pip project is resolved with its own uv settings only (export.project_config): a uv.toml of the
user or the system may hold settings that change *what* is resolved (``resolution``,
``no-emit-package``), which the fingerprint cannot see. But the same files often hold the one thing
a machine must say: its package index or mirror, its certificates, its keyring. Those are read here
and handed to uv as its own variables (never over one the environment already sets): where from, not
what. https://docs.astral.sh/uv/concepts/configuration-files/
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ProjectError
from ..project.pyproject import load_toml, table

logger = logging.getLogger(__name__)

#: uv settings (top level or in [pip]) that say where packages come from, and uv's variable for each.
WHERE_FROM = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "index-strategy": "UV_INDEX_STRATEGY",
    "keyring-provider": "UV_KEYRING_PROVIDER",
    "native-tls": "UV_NATIVE_TLS",
    "allow-insecure-host": "UV_INSECURE_HOST",
}


def config_files() -> list[Path]:
    """The user's and the system's uv.toml that exist, the user's first (it wins)."""
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    system = [Path(d) / "uv" / "uv.toml" for d in (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d]
    found = [Path(home) / "uv" / "uv.toml", *system, Path("/etc/uv/uv.toml")]
    return [path for path in dict.fromkeys(found) if path.is_file()]


def _value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else None
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or None
    return str(value) if value else None


def _indexes(settings: dict[str, Any]) -> dict[str, str]:
    """[[index]] tables: UV_INDEX (name=url of each), UV_DEFAULT_INDEX (the one marked default)."""
    found: dict[str, str] = {}
    entries = [e for e in settings.get("index") or [] if isinstance(e, dict) and e.get("url")]
    named = [f"{e['name']}={e['url']}" if e.get("name") else str(e["url"]) for e in entries if not e.get("default")]
    if named:
        found["UV_INDEX"] = " ".join(named)
    default = [str(e["url"]) for e in entries if e.get("default")]
    if default:
        found["UV_DEFAULT_INDEX"] = default[0]
    return found


def index_environment() -> dict[str, str]:
    """uv variables for the machine's where-from settings, for commands run without its config files."""
    env: dict[str, str] = {}
    for path in reversed(config_files()):  # the system's first, the user's over it
        try:
            settings = load_toml(path, "Fix its syntax.")
        except ProjectError as exc:  # a broken file of the machine: said, and uv says so where it reads it
            logger.warning("%s", exc)
            continue
        for layer in (settings, table(settings, "pip")):
            env.update({WHERE_FROM[k]: v for k in WHERE_FROM if (v := _value(layer.get(k)))})
        env.update(_indexes(settings))
    return {k: v for k, v in env.items() if k not in os.environ}
