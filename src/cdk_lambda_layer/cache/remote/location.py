"""Where the remote cache is: ``s3://bucket/prefix``, and whether this build may write to it.

Decided like the local cache folder: the option (builders, ``remote_cache=`` on the construct,
``--remote-cache`` on the CLI), else ``$CDK_LAYER_REMOTE_CACHE``, else the context key
``cdk-lambda-layer:remoteCache`` (construct). ``False``, or the variable set to ``off``, turns it off.
Read-only (``remote_cache_read_only=True``, ``--remote-cache-read-only``,
``CDK_LAYER_REMOTE_CACHE_READ_ONLY=1``) reads hits and never writes: for builds that must not decide
other machines' layers (pull requests from forks, untrusted branches).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from ...errors import RemoteCacheError

REMOTE_ENV = "CDK_LAYER_REMOTE_CACHE"
READ_ONLY_ENV = "CDK_LAYER_REMOTE_CACHE_READ_ONLY"
_OFF = ("", "0", "off", "false", "no")
_ON = ("1", "true", "yes", "on")
#: S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, starting and ending alphanumeric.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, kw_only=True)
class RemoteLocation:
    """A bucket and a key prefix (no leading or trailing slash), and whether this build may write."""

    bucket: str
    prefix: str = ""
    read_only: bool = False

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def parse_remote(url: str, *, read_only: bool = False) -> RemoteLocation:
    """``s3://bucket/prefix`` as a location, or a RemoteCacheError naming what is wrong and how to write it."""
    text = str(url).strip()
    example = "s3://my-bucket/cdk-lambda-layer"
    if not text.startswith("s3://"):
        raise RemoteCacheError(
            f"The remote cache {text!r} is not an S3 URL: write it as {example} (remote_cache= / --remote-cache / "
            f"{REMOTE_ENV}), or turn it off (False / --no-remote-cache / {REMOTE_ENV}=off)."
        )
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise RemoteCacheError(
            f"The remote cache {text!r} names the bucket {bucket!r}, which is not an S3 bucket name (3-63 lower-case "
            f"letters, digits, dots and hyphens): write it as {example}."
        )
    if any(c.isspace() or ord(c) < 32 for c in prefix):
        raise RemoteCacheError(f"The remote cache {text!r} has spaces or control characters in its prefix: {example}.")
    return RemoteLocation(bucket=bucket, prefix=prefix.strip("/"), read_only=read_only)


def _flag(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _ON or text in _OFF:
        return text in _ON
    raise RemoteCacheError(f"{where} is {value!r}, which is neither on nor off: use 1 or 0 (true or false).")


def resolve_remote(
    option: str | bool | None = None,
    read_only: bool | None = None,
    *,
    context: Any = None,
    context_read_only: Any = None,
) -> RemoteLocation | None:
    """The remote cache this build uses: the option, else $CDK_LAYER_REMOTE_CACHE, else the context value;
    None when none is set or it is turned off. Read-only likewise: option, environment, context."""
    ro = read_only if read_only is not None else _flag(os.environ.get(READ_ONLY_ENV) or None, f"${READ_ONLY_ENV}")
    if ro is None:
        ro = _flag(context_read_only, 'the cdk.json context key "cdk-lambda-layer:remoteCacheReadOnly"')
    if option is False:
        return None
    if option not in (None, True):
        return parse_remote(str(option), read_only=bool(ro))
    from_env = os.environ.get(REMOTE_ENV)
    if from_env is not None:
        return None if from_env.strip().lower() in _OFF else parse_remote(from_env, read_only=bool(ro))
    if context is None or context is False or str(context).strip().lower() in _OFF:
        return None
    return parse_remote(str(context), read_only=bool(ro))
