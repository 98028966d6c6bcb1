"""App-wide defaults from the cdk.json context (or ``-c key=value``); an explicit prop always wins.

Every value is checked where it is read: a misspelt choice or a flag that is neither true nor false
is refused naming its key, never ignored. The environment wins over cdk.json where CI needs to steer a
checked-in app (the cache folder, quiet synth lines).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..cache.location import resolve_cache_dir
from ..cache.remote.location import RemoteLocation, resolve_remote
from ..errors import ProjectError
from ..options import Bytecode

#: cdk.json context keys that set app-wide defaults (an explicit prop always wins).
CONTEXT_BUILD = "cdk-lambda-layer:build"
CONTEXT_IMAGE = "cdk-lambda-layer:image"
CONTEXT_INSTALLER = "cdk-lambda-layer:installer"
CONTEXT_CACHE_DIR = "cdk-lambda-layer:cacheDir"
CONTEXT_BYTECODE = "cdk-lambda-layer:bytecode"
CONTEXT_QUIET = "cdk-lambda-layer:quiet"
CONTEXT_PARALLEL = "cdk-lambda-layer:parallel"
CONTEXT_REMOTE_CACHE = "cdk-lambda-layer:remoteCache"
CONTEXT_REMOTE_CACHE_READ_ONLY = "cdk-lambda-layer:remoteCacheReadOnly"
#: The environment's way to silence the per-layer synth lines (CDK does not pass --quiet to apps).
QUIET_ENV = "CDK_LAYER_QUIET"


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def refused(where: str, value: Any, accepted: str) -> ProjectError:
    return ProjectError(f"{where} is {value!r}, which is not a value it takes: use {accepted}.")


def context_key(key: str) -> str:
    """Where a context value comes from, as the user wrote it (cdk.json or -c)."""
    return f'the cdk.json context key "{key}" (or -c {key}=...)'


def flag(value: Any, where: str, accepted: str) -> bool | None:
    """A yes/no setting: JSON true/false, or the strings -c and the environment give; None when unset."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise refused(where, value, accepted)


def choice(context: Callable[[str], Any], key: str, choices: Sequence[str]) -> str | None:
    """A context value that must be one of ``choices`` (exactly as written); None when unset."""
    value = context(key)
    if value is None or value in choices:
        return value
    raise refused(context_key(key), value, " or ".join(f"'{c}'" for c in choices))


def bytecode_choice(option: Bytecode | None, context: Any) -> Bytecode:
    if option is not None:
        return option
    if context is None or str(context).strip().lower() == "auto":
        return "auto"
    return bool(flag(context, context_key(CONTEXT_BYTECODE), "'auto', true or false"))


def quiet(context: Any) -> bool:
    """Quiet when the context key or $CDK_LAYER_QUIET says so; any other value is refused, not ignored."""
    quiet = flag(context, context_key(CONTEXT_QUIET), "true or false")
    environment = os.environ.get(QUIET_ENV, "").strip() or None
    return bool(quiet) or bool(flag(environment, f"${QUIET_ENV}", "1 or 0 (true or false)"))


def parallel(context: Any) -> bool:
    """Whether the app's layers build side by side (default), finished by each construct's validation;
    false builds each inside its construct, which then raises a failed build's error itself."""
    value = flag(context, context_key(CONTEXT_PARALLEL), "true or false")
    return True if value is None else value


def context_image(value: Any) -> str | None:
    """The context's build image: a name like registry/repo:tag, or unset."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise refused(context_key(CONTEXT_IMAGE), value, "an image name such as public.ecr.aws/sam/build-python3.12")
    return value


def cache_dir_choice(option: str | os.PathLike[str] | bool | None, context: Any) -> str | bool:
    """The cache folder, decided at construct time: prop, else $CDK_LAYER_CACHE_DIR, else context, else default.

    An empty context path is refused as the empty prop is: it would turn the cache off unsaid."""
    if option is None and isinstance(context, str) and not context.strip():
        raise refused(context_key(CONTEXT_CACHE_DIR), context, "a folder, or false to turn the cache off")
    resolved = resolve_cache_dir(option, context)
    return False if resolved is None else str(resolved)


def remote_choice(
    option: str | bool | None, read_only: bool | None, context: Callable[[str], Any]
) -> RemoteLocation | None:
    """The remote cache, decided at construct time: prop, else $CDK_LAYER_REMOTE_CACHE, else context (a bad
    URL is refused here, naming where it came from); not part of the asset hash."""
    value = context(CONTEXT_REMOTE_CACHE)
    if value is not None and not isinstance(value, (str, bool)):
        raise refused(context_key(CONTEXT_REMOTE_CACHE), value, "an s3://bucket/prefix URL, or false")
    return resolve_remote(option, read_only, context=value, context_read_only=context(CONTEXT_REMOTE_CACHE_READ_ONLY))
