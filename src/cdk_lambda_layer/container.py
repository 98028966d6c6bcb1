"""Running the install in the build image: the hand-off, the command, and the Docker SDK.

The host exports pinned requirements (the tool and the lock are here) and stages them,
with the in-container step's modules, in ``<output>/.cdk-lambda-layer/``. One command
(``step_command``) then runs in the image, whether CDK's Docker bundling starts the
container (the construct) or this module does through the Docker SDK (the standalone
container builders). The container runs as the calling user with a unique name, a
persistent pip cache mounted from the host, proxy variables passed through, and the
host's CA bundle trusted when one is configured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .cache import cache_home
from .container_step import CA_FILE, HANDOFF_DIR, STEP_PACKAGE, UV_IN_CONTAINER
from .errors import CommandError, DockerUnavailableError, LayerBuildError
from .images import ensure_image
from .local_build import BuiltPackage
from .locking import is_abandoned
from .options import AWS_RUNTIME_PACKAGES, LayerOptions
from .plan import InstallPlan
from .runner import redact, tail
from .target import LambdaTarget
from .tools import find_uv

logger = logging.getLogger(__name__)

#: Modules copied into the image: the step and what it imports (standard library only).
STEP_MODULES = (
    "bytecode.py",
    "container_step.py",
    "errors.py",
    "import_check.py",
    "inventory.py",
    "native.py",
    "trim.py",
)
#: Where the hand-off's local package files are, as the container sees them.
CONTAINER_LOCAL = f"/asset-output/{HANDOFF_DIR}/local"
CONTAINER_OUTPUT = "/asset-output"
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


def stage_handoff(output: Path, plan: InstallPlan, local: Sequence[BuiltPackage], ca_bundle: Path | None) -> Path:
    """Write the pins, the local package files, the host's CA bundle and the step package under
    ``output``/.cdk-lambda-layer, which the container sees at /asset-output/.cdk-lambda-layer."""
    handoff = output / HANDOFF_DIR
    package = handoff / STEP_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).parent
    for module in STEP_MODULES:
        shutil.copyfile(here / module, package / module)
    (package / "__init__.py").write_text('"""cdk-lambda-layer\'s in-container step (copied)."""\n')
    (package / "__main__.py").write_text("from .container_step import main\n\nraise SystemExit(main())\n")
    (handoff / "local").mkdir(exist_ok=True)
    lines = [pin.requirement(exact=True) for pin in sorted(plan.pins, key=lambda p: p.name)]
    for built in local:
        shutil.copyfile(built.file, handoff / "local" / built.file.name)
        lines.append(built.requirement(f"{CONTAINER_LOCAL}/{built.file.name}"))
    (handoff / "requirements.txt").write_text("\n".join(lines) + "\n")
    if ca_bundle is not None:
        shutil.copyfile(ca_bundle, handoff / CA_FILE)
    return handoff


Phase = Literal["all", "install", "finish"]


def step_command(
    target: LambdaTarget,
    options: LayerOptions,
    *,
    report: str | None = None,
    environment_on_stdin: bool = False,
    phase: Phase = "all",
) -> list[str]:
    """The argv run in the image; no shell, so nothing needs quoting. Its first word, ``env``, is meant
    as the container's entrypoint (an image's own entrypoint, an init say, would make the step not the
    container's first process; see container_step.stop_stragglers).

    ``environment_on_stdin``: the step reads the installer's variables (index logins, proxies) as one
    JSON line on its standard input (the Docker SDK path; CDK's own Docker bundling has no stdin).
    ``phase``: "install" and "finish" split the step over two containers (the Docker SDK path, see
    run_step); CDK's Docker bundling runs "all" in one.
    """
    argv = [
        "env",
        f"PYTHONPATH={CONTAINER_OUTPUT}/{HANDOFF_DIR}",
        "python",
        "-m",
        STEP_PACKAGE,
        "--output",
        CONTAINER_OUTPUT,
        "--elf-machine",
        str(target.architecture.elf_machine),
        "--describe",
        target.describe(),
        "--max-bytes",
        str(options.max_unzipped_bytes),
        "--no-deps",
        "--bytecode",
        "none" if options.bytecode is False else options.invalidation,
    ]
    for name in sorted(options.left_out):
        argv += ["--exclude", name]
    for name in sorted(set(options.provided) | set(AWS_RUNTIME_PACKAGES)):
        argv += ["--provided", name]
    if options.import_check:
        argv.append("--import-check")
    if report:
        argv += ["--report", report]
    if environment_on_stdin:
        argv.append("--environment-on-stdin")
    return [*argv, "--phase", phase]


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


def docker_client() -> Any:
    """A Docker SDK client that answers, or a DockerUnavailableError that says what to do."""
    import docker
    from docker.errors import DockerException

    host = os.environ.get("DOCKER_HOST", "the default socket")
    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, OSError) as exc:
        raise DockerUnavailableError(
            f"Cannot reach a Docker engine at {host} ({exc.__class__.__name__}: {str(exc)[:200]}). "
            "Start Docker (Docker Desktop, or `sudo systemctl start docker`), set DOCKER_HOST to a "
            "reachable engine, or build without Docker (build='local' / --build local)."
        ) from exc
    return client


#: Label naming the staging folder of the build that started a container.
OWNER_LABEL = "cdk-lambda-layer.owner"


#: A stopped build container whose owner this process cannot see is removed only after this long: a
#: live build reads its container's log the moment it stops, so one stopped for an hour has no owner.
STOPPED_GRACE_SECONDS = 3600


def _owner_gone(handle: Any) -> bool:
    """Whether the build that started this container is provably dead.

    Its staging folder is there with a free lock; or the container stopped long ago. A folder this
    process cannot see proves nothing (another mount namespace, a CI job or devcontainer sharing
    the engine), so a running container of such a build is never touched.
    """
    owner = Path(handle.labels.get(OWNER_LABEL, ""))
    try:
        if owner.is_absolute() and owner.is_dir() and is_abandoned(owner):
            return True
    except OSError:  # another user's folder, say: it cannot tell; the container's own state may
        pass
    if handle.status == "running":
        return False
    stopped = docker_time(str((handle.attrs.get("State") or {}).get("FinishedAt") or ""))
    return stopped > 0 and time.time() - stopped > STOPPED_GRACE_SECONDS


_RFC3339 = re.compile(r"^(?P<seconds>[^.Z+]+(?:T\d\d:\d\d:\d\d)?)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$")


def docker_time(text: str) -> float:
    """Seconds since the epoch of a time as Docker writes it (RFC 3339, up to nanoseconds, ``Z`` or an
    offset), or 0 for anything else."""
    match = _RFC3339.match(text.strip())
    if match is None:
        return 0.0
    zone = match.group("zone") or "Z"
    try:
        moment = datetime.fromisoformat(match.group("seconds") + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return 0.0
    return moment.timestamp() + float(f"0.{match.group('fraction') or 0}")


def sweep_containers(client: Any) -> list[str]:
    """Remove build containers whose build died (see _owner_gone)."""
    from docker.errors import APIError, NotFound

    removed = []
    try:
        found = client.containers.list(all=True, filters={"label": OWNER_LABEL})
    except APIError:
        return removed
    for handle in found:
        if _owner_gone(handle):
            with contextlib.suppress(APIError, NotFound):
                handle.remove(force=True)
                removed.append(handle.name)
                logger.info("removed the container %s of a build that died", handle.name)
    return removed


def run_step(
    *,
    output: Path,
    target: LambdaTarget,
    options: LayerOptions,
    container: ContainerOptions,
    label: str,
    owner: Path,
    report: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: tuple[str, ...] = (),
    project_key: str = "",
) -> str:
    """Run the step in the image with ``output`` mounted at /asset-output; return its log.

    Two containers, one after the other. The first installs: it gets the index logins and the
    host's proxy variables on its standard input (never as its environment, which Docker keeps on
    disk, and would keep after a killed build), the download caches and the network. The second
    trims, compiles and imports every module, which runs every package's code: it gets the output
    folder (and the volumes you gave), no login, no cache it could poison for later builds, and no
    network.

    ``owner`` is the build's locked staging folder: each container carries it as a label, so a
    later build removes the containers of a build that was killed (see sweep_containers).
    """
    client = docker_client()
    sweep_containers(client)
    image = container.image_for(target)
    ensure_image(client, image, platform=target.architecture.docker_platform)  # create() does not pull
    volumes, container_env = container.mounts_and_environment()
    handed = {**host_variables(), **(env or {})}
    mounted = {str(output.resolve()): {"bind": CONTAINER_OUTPUT, "mode": "rw"}}
    lent = lendable_uv(target, project_key) if container.host_uv else None
    if lent is not None:
        lent[1].mkdir(parents=True, exist_ok=True)
        volumes[str(lent[0])] = {"bind": UV_IN_CONTAINER, "mode": "ro"}
        volumes[str(lent[1])] = {"bind": CONTAINER_UV_CACHE, "mode": "rw"}
        container_env["UV_CACHE_DIR"] = CONTAINER_UV_CACHE
    run = _Runner(client=client, image=image, target=target, container=container, owner=owner, label=label)
    install = step_command(target, options, environment_on_stdin=True, phase="install")
    log = run(install, volumes={**volumes, **mounted}, env=container_env, stdin=json.dumps(handed), secrets=secrets)
    finish = step_command(target, options, report=report, phase="finish")
    yours = {host: {"bind": inside, "mode": "rw"} for host, inside in container.volumes.items()}  # libraries, say
    finishing = {**yours, **mounted}
    return log + run(finish, volumes=finishing, env=dict(BASE_ENVIRONMENT), network="none", secrets=secrets)


@dataclass(frozen=True, kw_only=True)
class _Runner:
    """Runs one container of a build through the Docker SDK and returns its log (or raises)."""

    client: Any
    image: str
    target: LambdaTarget
    container: ContainerOptions
    owner: Path
    label: str

    def __call__(
        self,
        argv: list[str],
        *,
        volumes: dict[str, dict[str, str]],
        env: dict[str, str],
        secrets: tuple[str, ...],
        stdin: str = "",
        network: str | None = None,
    ) -> str:
        from docker.errors import APIError, ImageNotFound, NotFound

        name = f"cdk-lambda-layer-{self.label}-{uuid.uuid4().hex[:8]}"
        logger.info("+ docker run --name %s %s %s", name, self.image, redact(" ".join(argv), secrets))
        try:
            handle = self.client.containers.create(
                self.image,
                argv[1:],
                entrypoint=argv[:1],  # the image's own entrypoint would make the step not PID 1
                name=name,
                user=self.container.user or calling_user(),
                environment=env,
                volumes=volumes,
                platform=self.target.architecture.docker_platform,
                network=network or self.container.network,
                security_opt=list(self.container.security_opt) or None,
                labels={OWNER_LABEL: str(self.owner.resolve())},
                stdin_open=bool(stdin),
            )
        except ImageNotFound as exc:
            raise LayerBuildError(
                f"Build image {self.image} is not on this machine and could not be pulled ({exc.explanation}). "
                "Pull it first, or pass image= / --image with an image you have (a mirror or custom build)."
            ) from exc
        except APIError as exc:
            raise LayerBuildError(f"Docker refused to start {self.image}: {exc.explanation}") from exc
        try:
            status, log = _start_and_wait(handle, stdin)
        except (APIError, NotFound, OSError) as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            raise LayerBuildError(
                f"The build container {name} ({self.image}) went away before it finished ({reason}): something "
                "removed it (`docker rm -f`, `docker system prune`, a restart of the engine). Build again."
            ) from exc
        finally:
            with contextlib.suppress(APIError, NotFound):
                handle.remove(force=True)
        log = redact(log, (*secrets, *_url_logins([stdin])))
        if status.get("StatusCode", 1) != 0:
            raise CommandError(
                f"the build in {self.image} failed (exit {status.get('StatusCode')}):\n{tail(log)}",
                argv=argv,
                returncode=int(status.get("StatusCode", 1)),
                stderr=log,
            )
        return log


def _start_and_wait(handle: Any, stdin: str) -> tuple[dict[str, Any], str]:
    """Start the container, write ``stdin`` (one line, if any) to it, wait for it to stop; its exit and log."""
    if not stdin:
        handle.start()
        return handle.wait(), handle.logs().decode(errors="replace")
    stream = handle.attach_socket(params={"stdin": 1, "stream": 1})
    try:
        handle.start()
        raw = getattr(stream, "_sock", stream)  # the plain socket under docker-py's wrapper
        raw.sendall(stdin.encode() + b"\n")
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
    finally:
        stream.close()
    status = handle.wait()
    return status, handle.logs().decode(errors="replace")


def _url_logins(values: Any) -> tuple[str, ...]:
    """Passwords inside URLs among ``values`` (a proxy or index URL with a login), for redaction."""
    from urllib.parse import urlsplit

    found = []
    for value in values:
        for word in str(value).replace('"', " ").split():
            with contextlib.suppress(ValueError):
                if urlsplit(word).password:
                    found.append(urlsplit(word).password)
    return tuple(found)
