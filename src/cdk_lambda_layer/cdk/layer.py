"""PythonDependencyLayer: a LayerVersion whose asset is the project's dependencies.

Construct time reads pyproject.toml and the lock, hashes them with the target and
options (the fingerprint becomes the asset hash) and validates; it runs no process and
touches no Docker. CDK bundles only when the asset is missing from cdk.out, and skips
stacks excluded from bundling, so unchanged inputs build nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import AssetHashType, BundlingFileAccess, DockerImage, DockerVolume, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ..builders.modes import BUILD_MODES, BuildMode, parse_build_mode
from ..core.credentials import IndexCredentials
from ..errors import LayerBuildError, ProjectError, TargetError
from ..identity.fingerprint import fingerprint
from ..install.container.options import ContainerOptions
from ..options import Bytecode, Invalidation, LayerOptions, name_list
from ..project.check import check_project
from ..project.discover import ToolName
from ..project.load import load_project
from ..target import Architecture, LambdaTarget
from .bundling import LayerBuildSpec, LocalLayerBundling, bundling_options, with_construct_path
from .context import (
    CONTEXT_BUILD,
    CONTEXT_BYTECODE,
    CONTEXT_CACHE_DIR,
    CONTEXT_IMAGE,
    CONTEXT_INSTALLER,
    CONTEXT_PARALLEL,
    CONTEXT_QUIET,
    bytecode_choice,
    cache_dir_choice,
    choice,
    context_image,
    parallel,
    quiet,
    remote_choice,
)
from .side_by_side import staged_asset, sweep_unfinished


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
    :param invalidation: how the runtime validates the layer's hash-based .pyc: "unchecked-hash"
        (it never reads the source to check) or "checked-hash" (it hashes the source at each
        import; still valid on Lambda's read-only /opt, slower cold starts). Part of the asset
        hash; no effect when the layer has no bytecode. Default: "unchecked-hash".
    :param import_check: import every module of the layer with the runtime's Python where one
        runs. Default: True.
    :param locked: refuse a lock that no longer matches pyproject.toml. False builds a uv project
        from its uv.lock as it is (``uv export --frozen``); Poetry always refuses a stale lock, so
        it does not apply there. Part of the asset hash: a layer built from a stale lock is never
        served to a locked build. Default: True.
    :param installer: "uv" or "pip" for the local path. Default: context
        ``cdk-lambda-layer:installer``, else "uv".
    :param cache_dir: layer cache outside cdk.out (a fresh cdk.out then costs a copy, not a
        build), or False. Default: $CDK_LAYER_CACHE_DIR, else context ``cdk-lambda-layer:cacheDir``,
        else ~/.cache/cdk-lambda-layer/layers (the environment wins over cdk.json so that CI can
        point it at a cached folder). Not part of the hash.
    :param remote_cache: ``s3://bucket/prefix`` of a layer cache shared by CI runners and laptops: looked up
        after ``cache_dir``, filled by every build (boto3's credential chain; ``AWS_ENDPOINT_URL_S3`` for
        S3-compatible stores), or False. A remote that cannot be reached costs one warning, never the synth.
        Default: $CDK_LAYER_REMOTE_CACHE, else context ``cdk-lambda-layer:remoteCache``, else none. Not part
        of the hash.
    :param remote_cache_read_only: take hits, never write (pull requests, untrusted branches). Default:
        $CDK_LAYER_REMOTE_CACHE_READ_ONLY, else context ``cdk-lambda-layer:remoteCacheReadOnly``, else False.
    :param credentials: ``IndexCredentials`` for private indexes (e.g. from
        ``codeartifact_credentials``). Used at bundling time only: not in the asset hash, the
        template or cdk.out, so a fresh token neither rebuilds nor redeploys the layer.
    :param environment: passed to CDK's Docker bundling as it is. Default: CDK's.
    :param volumes: passed to CDK's Docker bundling as they are. Default: CDK's.
    :param network: passed to CDK's Docker bundling as it is. Default: CDK's.
    :param user: passed to CDK's Docker bundling as it is. Default: CDK's (the calling user).
    :param security_opt: passed to CDK's Docker bundling as it is. Default: CDK's.
    :param bundling_file_access: passed to CDK's Docker bundling as it is. Default: CDK's (bind mounts).
    :param layer_version_name: as on ``LayerVersion``.
    :param description: as on ``LayerVersion``.
    :param removal_policy: as on ``LayerVersion``.
    :param license: as on ``LayerVersion``.
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
        invalidation: Invalidation = "unchecked-hash",
        import_check: bool = True,
        locked: bool = True,
        installer: str | None = None,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        remote_cache: str | bool | None = None,
        remote_cache_read_only: bool | None = None,
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
            mode = parse_build_mode(build or choice(context, CONTEXT_BUILD, BUILD_MODES) or "auto")
            options = LayerOptions(
                groups=name_list(groups, "groups"),
                extras=name_list(extras, "extras"),
                exclude=name_list(exclude, "exclude"),
                provided=name_list(provided, "provided"),
                include_project=include_project,
                installer=installer or choice(context, CONTEXT_INSTALLER, ("uv", "pip")) or "uv",
                bytecode=bytecode_choice(bytecode, context(CONTEXT_BYTECODE)),
                invalidation=invalidation,
                import_check=import_check,
                locked=locked,
            )
            loaded = load_project(project, tool, package=package)
            check_project(loaded, target, options)
            cache_folder = cache_dir_choice(cache_dir, context(CONTEXT_CACHE_DIR))
            remote = remote_choice(remote_cache, remote_cache_read_only, context)
            image = image or context_image(context(CONTEXT_IMAGE))
            announce = not quiet(context(CONTEXT_QUIET))
            side_by_side = parallel(context(CONTEXT_PARALLEL))
            if credentials and bundling_file_access is not None:
                raise ProjectError(
                    "credentials cannot go through CDK's own Docker bundling (bundling_file_access): CDK "
                    "hashes its Docker environment, so the token would reach the asset hash. Drop "
                    "bundling_file_access (a local engine), or build with build='local'."
                )
        except LayerBuildError as exc:
            raise with_construct_path(exc, path) from exc
        docker_image = _image(image, target)
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
            remote_cache=remote,
            credentials=tuple(credentials),
            announce=announce,
            side_by_side=side_by_side,
        )
        try:
            asset_hash = fingerprint(loaded, target, options, build=mode, image=docker_image.image)
        except LayerBuildError as exc:
            raise with_construct_path(exc, path) from exc
        stage = cdk.Stage.of(scope)
        if stage is not None:  # also without side by side: a killed side-by-side synth's asset is rebuilt
            sweep_unfinished(Path(stage.asset_outdir))
        local = LocalLayerBundling(spec)
        bundling = bundling_options(
            local,
            docker_image,
            environment=environment,
            volumes=volumes,
            network=network,
            user=user,
            security_opt=security_opt,
            bundling_file_access=bundling_file_access,
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
        local.finish.locate = lambda: staged_asset(self)
        self.node.add_validation(local.finish)
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


def _image(image: str | DockerImage | None, target: LambdaTarget) -> DockerImage:
    """The Docker path's image: the given one, else the SAM build image for runtime and CPU."""
    if isinstance(image, DockerImage):
        return image
    return DockerImage.from_registry(image or target.sam_image)
