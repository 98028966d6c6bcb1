"""Credentials for private package indexes, handed to each tool the way it expects.

uv reads ``UV_INDEX_<NAME>_USERNAME/PASSWORD`` for a named index (``UV_INDEX`` names the
index for installs), Poetry ``POETRY_HTTP_BASIC_<NAME>_USERNAME/PASSWORD``, pip an index
URL with the credentials in it (``PIP_EXTRA_INDEX_URL``). Credentials only ever travel in
child processes' environments (containers included): never in a file, an argument list,
the manifest, the fingerprint or a CDK template, and every logged command and error has
them redacted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import ProjectError, ToolNotFoundError

ENV_PREFIX = "CDK_LAYER_INDEX_"


def _env_name(name: str) -> str:
    """uv's and Poetry's spelling of an index name in variables: upper case, '-' and '.' as '_'."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


@dataclass(frozen=True, kw_only=True)
class IndexCredentials:
    """A named package index and how to log in to it.

    :param name: the index's name, as in ``[[tool.uv.index]]`` or ``[[tool.poetry.source]]``.
    :param url: its simple-index URL, without credentials in it.
    :param username: user name. Default: "" (token-only indexes).
    :param password: password or token. Never shown in repr, logs or errors.
    """

    name: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ProjectError(f"Index name {self.name!r} must be letters, digits, '.', '-' or '_'.")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProjectError(
                f"Index {self.name}: {parts._replace(netloc=parts.hostname or '').geturl()!r} is not an http(s) URL."
            )
        if parts.username or parts.password:
            raise ProjectError(
                f"Index {self.name}: put the user name and password in username= and password=, not in the URL."
            )

    @classmethod
    def from_environment(cls, name: str) -> IndexCredentials:
        """Read ``CDK_LAYER_INDEX_<NAME>_URL``, ``_USERNAME`` and ``_PASSWORD``."""
        prefix = f"{ENV_PREFIX}{_env_name(name)}_"
        url = os.environ.get(prefix + "URL")
        if not url:
            raise ProjectError(
                f"No URL for index {name}: set {prefix}URL (and {prefix}USERNAME, {prefix}PASSWORD), "
                "or pass IndexCredentials(name=..., url=..., username=..., password=...)."
            )
        return cls(
            name=name,
            url=url,
            username=os.environ.get(prefix + "USERNAME", ""),
            password=os.environ.get(prefix + "PASSWORD", ""),
        )

    def url_with_login(self) -> str:
        """The URL with the credentials in it, for pip (only ever put in an environment variable)."""
        parts = urlsplit(self.url)
        login = quote(self.username or "__token__", safe="") + ":" + quote(self.password, safe="")
        return urlunsplit(parts._replace(netloc=f"{login}@{parts.netloc}"))


def secrets_of(credentials: Iterable[IndexCredentials]) -> tuple[str, ...]:
    """What must never appear in logs or errors: each password, raw and URL-quoted."""
    found: list[str] = []
    for item in credentials:
        if item.password:
            found += [item.password, quote(item.password, safe="")]
    return tuple(found)


def tool_environment(credentials: Iterable[IndexCredentials], *, declare: bool = True) -> dict[str, str]:
    """Variables that give uv, Poetry and pip (host or container) the indexes and their logins.

    ``declare=False`` gives the logins only: exporting a lock must not see extra indexes
    (uv would call the lock stale), installing pinned requirements must.
    """
    items = list(credentials)
    env: dict[str, str] = {}
    if not items:
        return env
    if declare:
        env["UV_INDEX"] = " ".join(f"{c.name}={c.url}" for c in items)
        env["PIP_EXTRA_INDEX_URL"] = " ".join(c.url_with_login() for c in items)
    for c in items:
        key = _env_name(c.name)
        env.update(
            {
                f"UV_INDEX_{key}_USERNAME": c.username,
                f"UV_INDEX_{key}_PASSWORD": c.password,
                f"POETRY_HTTP_BASIC_{key}_USERNAME": c.username,
                f"POETRY_HTTP_BASIC_{key}_PASSWORD": c.password,
            }
        )
    return env


def codeartifact_credentials(
    *,
    domain: str,
    repository: str,
    owner: str | None = None,
    region: str | None = None,
    name: str = "codeartifact",
    duration_seconds: int = 3600,
) -> IndexCredentials:
    """Log in to an AWS CodeArtifact repository with boto3 (pip install 'cdk-lambda-layer[codeartifact]').

    The token is fetched now and lives only in the returned object; it changes nothing in
    the layer's fingerprint, so a fresh token never rebuilds or redeploys the layer.
    """
    try:
        import boto3
    except ImportError as exc:
        raise ToolNotFoundError(
            "The CodeArtifact helper needs boto3: pip install 'cdk-lambda-layer[codeartifact]'."
        ) from exc
    client = boto3.client("codeartifact", region_name=region)
    owner_args = {"domainOwner": owner} if owner else {}
    token = client.get_authorization_token(domain=domain, durationSeconds=duration_seconds, **owner_args)
    endpoint = client.get_repository_endpoint(domain=domain, repository=repository, format="pypi", **owner_args)
    url = endpoint["repositoryEndpoint"].rstrip("/") + "/simple/"
    return IndexCredentials(name=name, url=url, username="aws", password=token["authorizationToken"])
