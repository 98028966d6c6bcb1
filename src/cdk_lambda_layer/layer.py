"""PythonDependencyLayer: a LayerVersion whose asset is the project's dependencies.

Construct time reads pyproject.toml and the lock, hashes them with the target and
options (the fingerprint becomes the asset hash) and validates; it runs no process and
touches no Docker. CDK bundles only when the asset is missing from cdk.out, and skips
stacks excluded from bundling, so unchanged inputs build nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_cdk import AssetHashType, BundlingFileAccess, BundlingOptions, DockerImage, DockerVolume, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .builder import check_project
from .bundling import LayerBuildSpec, LocalLayerBundling, with_construct_path
from .cache import resolve_cache_dir
from .container import BASE_ENVIRONMENT, ContainerOptions, step_command
from .credentials import IndexCredentials
from .errors import LayerBuildError, ProjectError, TargetError
from .fingerprint import fingerprint
from .modes import BUILD_MODES, BuildMode, parse_build_mode
from .options import Bytecode, Invalidation, LayerOptions
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
        invalidation: Invalidation = "unchecked-hash",
        import_check: bool = True,
        locked: bool = True,
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
            mode = parse_build_mode(build or _choice(context, CONTEXT_BUILD, BUILD_MODES) or "auto")
            options = LayerOptions(
                groups=_names(groups, "groups"),
                extras=_names(extras, "extras"),
                exclude=_names(exclude, "exclude"),
                provided=_names(provided, "provided"),
                include_project=include_project,
                installer=installer or _choice(context, CONTEXT_INSTALLER, ("uv", "pip")) or "uv",
                bytecode=_bytecode(bytecode, context(CONTEXT_BYTECODE)),
                invalidation=invalidation,
                import_check=import_check,
                locked=locked,
            )
            loaded = load_project(project, tool, package=package)
            check_project(loaded, target, options)
            cache_folder = _cache_dir(cache_dir, context(CONTEXT_CACHE_DIR))
            image = image or _context_image(context(CONTEXT_IMAGE))
            announce = not _quiet(context(CONTEXT_QUIET))
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
            credentials=tuple(credentials),
            announce=announce,
        )
        try:
            asset_hash = fingerprint(loaded, target, options, build=mode, image=docker_image.image)
        except LayerBuildError as exc:
            raise with_construct_path(exc, path) from exc
        bundling = BundlingOptions(
            image=docker_image,
            platform=target.architecture.docker_platform,
            # The step as the container's entrypoint: an image's own (an init, a wrapper) would make it not
            # the first process, which must stop what packages' code leaves running (container_step.py).
            entrypoint=step_command(target, options)[:1],
            command=step_command(target, options)[1:],
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


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _refused(where: str, value: Any, accepted: str) -> ProjectError:
    return ProjectError(f"{where} is {value!r}, which is not a value it takes: use {accepted}.")


def _context(key: str) -> str:
    """Where a context value comes from, as the user wrote it (cdk.json or -c)."""
    return f'the cdk.json context key "{key}" (or -c {key}=...)'


def _flag(value: Any, where: str, accepted: str) -> bool | None:
    """A yes/no setting: JSON true/false, or the strings -c and the environment give; None when unset."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _refused(where, value, accepted)


def _choice(context: Callable[[str], Any], key: str, choices: Sequence[str]) -> str | None:
    """A context value that must be one of ``choices`` (exactly as written); None when unset."""
    value = context(key)
    if value is None or value in choices:
        return value
    raise _refused(_context(key), value, " or ".join(f"'{c}'" for c in choices))


def _bytecode(option: Bytecode | None, context: Any) -> Bytecode:
    if option is not None:
        return option
    if context is None or str(context).strip().lower() == "auto":
        return "auto"
    return bool(_flag(context, _context(CONTEXT_BYTECODE), "'auto', true or false"))


def _quiet(context: Any) -> bool:
    """Quiet when the context key or $CDK_LAYER_QUIET says so; any other value is refused, not ignored."""
    quiet = _flag(context, _context(CONTEXT_QUIET), "true or false")
    environment = os.environ.get(QUIET_ENV, "").strip() or None
    return bool(quiet) or bool(_flag(environment, f"${QUIET_ENV}", "1 or 0 (true or false)"))


def _context_image(value: Any) -> str | None:
    """The context's build image: a name like registry/repo:tag, or unset."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise _refused(_context(CONTEXT_IMAGE), value, "an image name such as public.ecr.aws/sam/build-python3.12")
    return value


def _cache_dir(option: str | os.PathLike[str] | bool | None, context: Any) -> str | bool:
    """The cache folder, decided at construct time: prop, else $CDK_LAYER_CACHE_DIR, else context, else default.

    An empty context path is refused as the empty prop is: it would turn the cache off unsaid."""
    if option is None and isinstance(context, str) and not context.strip():
        raise _refused(_context(CONTEXT_CACHE_DIR), context, "a folder, or false to turn the cache off")
    resolved = resolve_cache_dir(option, context)
    return False if resolved is None else str(resolved)


def _image(image: str | DockerImage | None, target: LambdaTarget) -> DockerImage:
    """The Docker path's image: the given one, else the SAM build image for runtime and CPU."""
    if isinstance(image, DockerImage):
        return image
    return DockerImage.from_registry(image or target.sam_image)
