"""PythonDependencyLayer: a LayerVersion whose asset is the project's dependencies.

Construct time reads pyproject.toml and the lock, hashes them with the target and
options (the fingerprint becomes the asset hash) and validates; it runs no process and
touches no Docker. CDK bundles only when the asset is missing from cdk.out, and skips
stacks excluded from bundling, so unchanged inputs build nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import AssetHashType, BundlingFileAccess, BundlingOptions, DockerImage, DockerVolume, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .builder import check_project
from .bundling import LayerBuildSpec, LocalLayerBundling
from .cache import resolve_cache_dir
from .container import BASE_ENVIRONMENT, ContainerOptions, step_command
from .credentials import IndexCredentials
from .errors import LayerBuildError, ProjectError, TargetError
from .fingerprint import fingerprint
from .modes import BuildMode, parse_build_mode
from .options import Bytecode, LayerOptions
from .project import ToolName, load_project
from .target import Architecture, LambdaTarget

#: cdk.json context keys that set app-wide defaults (an explicit prop always wins).
CONTEXT_BUILD = "cdk-lambda-layer:build"
CONTEXT_IMAGE = "cdk-lambda-layer:image"
CONTEXT_INSTALLER = "cdk-lambda-layer:installer"
CONTEXT_CACHE_DIR = "cdk-lambda-layer:cacheDir"
CONTEXT_BYTECODE = "cdk-lambda-layer:bytecode"
CONTEXT_QUIET = "cdk-lambda-layer:quiet"
#: The environment's way to silence the per-layer synth lines (CDK does not pass --quiet to apps).
QUIET_ENV = "CDK_LAYER_QUIET"


def newest_python_runtime() -> lambda_.Runtime:
    """The newest Python runtime this aws-cdk-lib knows (the construct's default)."""
    pythons = [r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON]
    return max(pythons, key=lambda r: tuple(int(p) for p in r.name.removeprefix("python").split(".")))


class PythonDependencyLayer(lambda_.LayerVersion):
    """A Lambda layer holding a Python project's locked dependencies under python/.

    :param project: the project folder or its pyproject.toml.
    :param runtime: a Python ``Runtime``. Default: the newest Python runtime aws-cdk-lib knows.
    :param architecture: ``Architecture.X86_64`` or ``ARM_64``; one per layer, since the
        binaries differ. Default: x86_64.
    :param tool: "auto" (detect from uv.lock / poetry.lock / requirements.txt), "pip",
        "poetry" or "uv". Default: "auto".
    :param build: "local" (cross-platform wheels on this machine), "container" (in the SAM
        build image via Docker) or "auto" (local when every package has a wheel for the
        target, else Docker). Default: context ``cdk-lambda-layer:build``, else "auto".
    :param image: the build image for the Docker path, a name or a ``DockerImage``.
        Default: context ``cdk-lambda-layer:image``, else the SAM build image of the runtime.
    :param package: the uv workspace member, when ``project`` is the workspace. Default: the
        project at that path (a member's own folder works as well).
    :param exclude: distributions left out of the layer; each must be in it, and none may be
        needed by a package that stays, except boto3/botocore/s3transfer (the runtime has them).
        Default: none.
    :param provided: distributions another layer or the function provides: left out, and
        trusted to satisfy the packages that need them. Default: none.
    :param include_project: put the project's own package into the layer (teams that ship
        shared code as a layer). Default: False: its dependencies only, so editing a handler
        changes nothing.
    :param groups: dependency groups to include (dev groups are out by default).
    :param extras: optional-dependency extras to include.
    :param bytecode: "auto" (hash-based .pyc compiled by the runtime's Python version, when one
        is at hand: always in the container), True (fail without one) or False. Default: context
        ``cdk-lambda-layer:bytecode``, else "auto".
    :param import_check: import every module of the layer with the runtime's Python where one
        runs. Default: True.
    :param installer: "uv" or "pip" for the local path. Default: context, else "uv".
    :param cache_dir: layer cache outside cdk.out (a fresh cdk.out then costs a copy, not a
        build), or False. Default: $CDK_LAYER_CACHE_DIR, else context ``cdk-lambda-layer:cacheDir``,
        else ~/.cache/cdk-lambda-layer/layers (the environment wins over cdk.json so that CI can
        point it at a cached folder). Not part of the hash.
    :param credentials: ``IndexCredentials`` for private indexes (e.g. from
        ``codeartifact_credentials``). Used at bundling time only: not in the asset hash, the
        template or cdk.out, so a fresh token neither rebuilds nor redeploys the layer.
    :param environment, volumes, network, user, security_opt, bundling_file_access: passed
        to CDK's Docker bundling as they are. Default: CDK's (the calling user, bind mounts).
    :param layer_version_name, description, removal_policy, license: as on ``LayerVersion``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: str | os.PathLike[str],
        runtime: lambda_.Runtime | None = None,
        architecture: lambda_.Architecture | Sequence[lambda_.Architecture] | None = None,
        tool: ToolName = "auto",
        package: str | None = None,
        build: BuildMode | None = None,
        image: str | DockerImage | None = None,
        exclude: Sequence[str] = (),
        provided: Sequence[str] = (),
        include_project: bool = False,
        groups: Sequence[str] = (),
        extras: Sequence[str] = (),
        bytecode: Bytecode | None = None,
        import_check: bool = True,
        installer: str | None = None,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        credentials: Sequence[IndexCredentials] = (),
        environment: Mapping[str, str] | None = None,
        volumes: Sequence[DockerVolume] | None = None,
        network: str | None = None,
        user: str | None = None,
        security_opt: str | None = None,
        bundling_file_access: BundlingFileAccess | None = None,
        layer_version_name: str | None = None,
        description: str | None = None,
        removal_policy: RemovalPolicy | None = None,
        license: str | None = None,
    ) -> None:
        path = f"{scope.node.path}/{id}".lstrip("/")
        context = scope.node.try_get_context
        try:
            runtime = runtime or newest_python_runtime()
            arch = _one_architecture(architecture)
            target = LambdaTarget(python=_python_of(runtime), architecture=Architecture.parse(arch.name))
            mode = parse_build_mode(build or context(CONTEXT_BUILD) or "auto")
            options = LayerOptions(
                groups=_names(groups, "groups"),
                extras=_names(extras, "extras"),
                exclude=_names(exclude, "exclude"),
                provided=_names(provided, "provided"),
                include_project=include_project,
                installer=installer or context(CONTEXT_INSTALLER) or "uv",
                bytecode=_bytecode(bytecode, context(CONTEXT_BYTECODE)),
                import_check=import_check,
            )
            loaded = load_project(project, tool, package=package)
            check_project(loaded, target, options)
            cache_folder = _cache_dir(cache_dir, context(CONTEXT_CACHE_DIR))
            if credentials and bundling_file_access is not None:
                raise ProjectError(
                    "credentials cannot go through CDK's own Docker bundling (bundling_file_access): CDK "
                    "hashes its Docker environment, so the token would reach the asset hash. Drop "
                    "bundling_file_access (a local engine), or build with build='local'."
                )
        except LayerBuildError as exc:
            raise type(exc)(f"{path}: {exc}") from exc
        docker_image = _image(image or context(CONTEXT_IMAGE), target)
        container = ContainerOptions(
            image=docker_image.image,
            user=user,
            environment=dict(environment or {}),
            network=network,
            volumes={v.host_path: v.container_path for v in volumes or ()},
            security_opt=(security_opt,) if security_opt else (),
        )
        spec = LayerBuildSpec(
            project=loaded,
            target=target,
            options=options,
            mode=mode,
            construct_path=path,
            container=container,
            cdk_docker=bundling_file_access is not None,
            cache_dir=cache_folder,
            credentials=tuple(credentials),
            announce=not _quiet(context(CONTEXT_QUIET)),
        )
        try:
            asset_hash = fingerprint(loaded, target, options, build=mode, image=docker_image.image)
        except LayerBuildError as exc:
            raise type(exc)(f"{path}: {exc}") from exc
        bundling = BundlingOptions(
            image=docker_image,
            platform=target.architecture.docker_platform,
            command=step_command(target, options),
            environment={**BASE_ENVIRONMENT, **(environment or {})},
            volumes=volumes,
            network=network,
            user=user,
            security_opt=security_opt,
            bundling_file_access=bundling_file_access,
            local=LocalLayerBundling(spec),
        )
        code = lambda_.Code.from_asset(
            str(loaded.root), asset_hash=asset_hash, asset_hash_type=AssetHashType.CUSTOM, bundling=bundling
        )
        super().__init__(
            scope,
            id,
            code=code,
            compatible_runtimes=[runtime],
            compatible_architectures=[arch],
            layer_version_name=layer_version_name,
            description=description,
            removal_policy=removal_policy,
            license=license,
        )
        #: The fingerprint used as the asset hash (what determines this layer).
        self.fingerprint = asset_hash
        self.target = target
        self.build_mode = mode
        self.project = loaded


def _one_architecture(value: Any) -> lambda_.Architecture:
    if value is None:
        return lambda_.Architecture.X86_64
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 1:
            names = ", ".join(getattr(a, "name", str(a)) for a in value) or "none"
            raise TargetError(
                f"one layer is built for one architecture, got [{names}]: native code differs per CPU. "
                "Declare one PythonDependencyLayer per architecture (e.g. architecture=Architecture.ARM_64)."
            )
        value = value[0]
    if not isinstance(value, lambda_.Architecture):
        raise TargetError(f"architecture must be aws_lambda.Architecture.X86_64 or ARM_64, got {value!r}.")
    return value


def _python_of(runtime: Any) -> str:
    if not isinstance(runtime, lambda_.Runtime) or runtime.family != lambda_.RuntimeFamily.PYTHON:
        name = getattr(runtime, "name", repr(runtime))
        raise TargetError(
            f"runtime {name} is not a Python runtime: a Python dependency layer needs one of "
            "Runtime.PYTHON_3_10 ... PYTHON_3_14 (e.g. runtime=Runtime.PYTHON_3_12)."
        )
    return runtime.name.removeprefix("python")


def _names(values: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ProjectError(f"{what} takes a list of names, got the string {values!r}: write {what}=[{values!r}].")
    return tuple(values)


def _bytecode(option: Bytecode | None, context: Any) -> Bytecode:
    if option is not None:
        return option
    if context is None:
        return "auto"
    text = str(context).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    return False if text in ("false", "0", "no", "off") else "auto"


def _quiet(context: Any) -> bool:
    values = (str(context or ""), os.environ.get(QUIET_ENV, ""))
    return any(v.strip().lower() in ("1", "true", "yes", "on") for v in values)


def _cache_dir(option: str | os.PathLike[str] | bool | None, context: Any) -> str | bool:
    """The cache folder, decided at construct time: prop, else $CDK_LAYER_CACHE_DIR, else context, else default."""
    resolved = resolve_cache_dir(option, context)
    return False if resolved is None else str(resolved)


def _image(image: str | DockerImage | None, target: LambdaTarget) -> DockerImage:
    """The Docker path's image: the given one, else the SAM build image for runtime and CPU."""
    if isinstance(image, DockerImage):
        return image
    return DockerImage.from_registry(image or target.sam_image)
