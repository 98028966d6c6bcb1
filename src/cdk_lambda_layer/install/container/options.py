"""How a build container runs: image, user, caches, CA bundle, proxies, network, volumes, the lent uv.

Every default works behind a proxy: the host's CA bundle is trusted, proxy and pip index variables
pass through (on the step's standard input, never as the container's environment), and on a Linux
host of the same CPU the host's static uv binary is lent to the container (much faster than the
image's pip; measured in docs/benchmarks.md).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...core.home import cache_home
from ...core.tools import find_uv
from ...target import LambdaTarget

CONTAINER_CACHE = "/tmp/cdk-lambda-layer-pip-cache"  # noqa: S108 - a path inside the container


CONTAINER_UV_CACHE = "/tmp/cdk-lambda-layer-uv-cache"  # noqa: S108 - a path inside the container


#: Variables passed from the host into the container when set (proxies, pip's index).
PASSTHROUGH = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
)


#: Every build container's environment: a writable HOME for the calling (non-root) user, quiet pip.
BASE_ENVIRONMENT = {"HOME": "/tmp", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}  # noqa: S108


_CA_VARIABLES = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")


def host_ca_bundle(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The CA bundle to trust in the container: the explicit one, else the host's configured one."""
    if explicit:
        return Path(explicit)
    for variable in _CA_VARIABLES:
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return None


def default_download_cache() -> Path:
    return cache_home() / "pip"


def calling_user() -> str | None:
    """uid:gid of this process, so files written in the container belong to the caller."""
    if hasattr(os, "getuid"):
        return f"{os.getuid()}:{os.getgid()}"
    return None


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    """How the build container runs. Every field has a default that works behind a proxy."""

    #: Build image. Default: the SAM build image for the runtime and CPU.
    image: str | None = None
    #: "uid:gid" in the container. Default: the calling user.
    user: str | None = None
    #: Host folder for pip's download cache; False turns it off. Default: ~/.cache/cdk-lambda-layer/pip.
    download_cache: str | os.PathLike[str] | bool | None = None
    #: CA bundle to trust. Default: SSL_CERT_FILE, PIP_CERT or REQUESTS_CA_BUNDLE of the host.
    ca_bundle: str | os.PathLike[str] | None = None
    #: Extra variables for the container.
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Docker network. Default: the engine's default.
    network: str | None = None
    #: Extra bind mounts, host path -> container path.
    volumes: Mapping[str, str] = field(default_factory=dict)
    #: Docker security options, e.g. "seccomp=unconfined".
    security_opt: tuple[str, ...] = ()
    #: Lend the host's uv (and its cache) to the container when it can run there (Linux host,
    #: same CPU); pip in the image otherwise. Measured in docs/benchmarks.md.
    host_uv: bool = True

    def image_for(self, target: LambdaTarget) -> str:
        return self.image or target.sam_image

    def cache_dir(self) -> Path | None:
        if self.download_cache is False:
            return None
        if self.download_cache in (None, True):
            return default_download_cache()
        return Path(self.download_cache)  # type: ignore[arg-type]

    def mounts_and_environment(self) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """Docker SDK volumes and the container's environment (HOME, the pip cache, your ``environment``).

        Nothing taken from the host's environment is in it (see host_variables): Docker keeps a
        container's environment on disk for its whole life, and a proxy or index URL may carry a login.
        """
        volumes: dict[str, dict[str, str]] = {}
        env = dict(BASE_ENVIRONMENT)
        cache = self.cache_dir()
        if cache is None:
            env["PIP_NO_CACHE_DIR"] = "1"
        else:
            cache.mkdir(parents=True, exist_ok=True)
            volumes[str(cache.resolve())] = {"bind": CONTAINER_CACHE, "mode": "rw"}
            env["PIP_CACHE_DIR"] = CONTAINER_CACHE
        env.update(self.environment)
        volumes.update({host: {"bind": inside, "mode": "rw"} for host, inside in self.volumes.items()})
        return volumes, env


def host_variables() -> dict[str, str]:
    """The host's proxy and pip index variables the installer in the container needs (PASSTHROUGH)."""
    return {k: os.environ[k] for k in PASSTHROUGH if os.environ.get(k)}


def container_uv_cache(owner: str = "") -> Path:
    """uv's cache for build containers: this library's own, never the user's (``uv cache dir``), and one
    per project (``owner``: a key of the project's folder).

    Code run in the container (an sdist's build, the import check) can write into what is mounted
    there. The user's uv cache feeds every venv and local build on the machine (often through hard
    links); a cache shared by all projects' container builds would let one project's packages change
    what another's layer gets. Each project's container builds therefore share a cache of their own.
    """
    return cache_home() / "uv-container" / (owner or "shared")


def lendable_uv(target: LambdaTarget, owner: str = "") -> tuple[Path, Path] | None:
    """The host's uv binary and the container uv cache, if that binary runs in a container for ``target``.

    uv's Linux builds are static, so on a Linux host of the same CPU they run in any image.
    """
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
    if sys.platform != "linux" or machine.get(platform.machine().lower()) != target.architecture.machine:
        return None
    return Path(find_uv()).resolve(), container_uv_cache(owner)
