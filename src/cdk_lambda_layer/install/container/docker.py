"""Running the step in the build image through the Docker SDK: two containers per build (the install
with logins, caches and network; the rest with none of them), each labelled with its build's
staging folder so that the containers of a killed build are removed by the next one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...core.locking import is_abandoned
from ...core.runner import redact, tail
from ...errors import CommandError, DockerUnavailableError, LayerBuildError
from ...options import LayerOptions
from ...target import LambdaTarget
from .handoff import CONTAINER_OUTPUT, step_command
from .images import ensure_image
from .options import BASE_ENVIRONMENT, CONTAINER_UV_CACHE, ContainerOptions, calling_user, host_variables, lendable_uv
from .step import UV_IN_CONTAINER

logger = logging.getLogger(__name__)


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
    install = step_command(target, options, environment_on_stdin=True, phase="install", expect_python=True)
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
