"""The public API: what `from cdk_lambda_layer import …` offers, name for name, whatever the layout inside."""

from __future__ import annotations

import inspect

import cdk_lambda_layer

PUBLIC = {
    "AWS_RUNTIME_PACKAGES",
    "Architecture",
    "BasedLambdaLayerContainerBuilder",
    "BasedLambdaLayerLocalBuilder",
    "BuildFolderError",
    "BuildImageError",
    "CacheFolderError",
    "CommandError",
    "ContainerOptions",
    "DockerUnavailableError",
    "IndexCredentials",
    "InterpreterNotFoundError",
    "LAMBDA_UNZIPPED_LIMIT",
    "LAYER_FORMAT_VERSION",
    "LambdaTarget",
    "LayerBuildError",
    "LayerBuildResult",
    "LayerOptions",
    "LayerPathLayout",
    "LayerTooLargeError",
    "NoWheelError",
    "PackageIndexError",
    "PackageNotFoundError",
    "PipBasedLambdaLayerContainerBuilder",
    "PipBasedLambdaLayerLocalBuilder",
    "PoetryBasedLambdaLayerContainerBuilder",
    "PoetryBasedLambdaLayerLocalBuilder",
    "Project",
    "ProjectError",
    "PythonDependencyLayer",
    "RemoteCacheError",
    "StaleLockError",
    "TargetError",
    "Tool",
    "ToolNotFoundError",
    "UVBasedLambdaLayerContainerBuilder",
    "UVBasedLambdaLayerLocalBuilder",
    "VerificationError",
    "codeartifact_credentials",
    "fingerprint",
    "load_project",
}


def test_the_public_names_are_exactly_these():
    assert set(cdk_lambda_layer.__all__) == PUBLIC


def test_every_public_name_imports_from_the_top_level():
    for name in sorted(PUBLIC):
        assert getattr(cdk_lambda_layer, name) is not None, name


def test_the_errors_share_one_base_and_carry_exit_codes():
    errors = [getattr(cdk_lambda_layer, n) for n in PUBLIC if n.endswith("Error")]
    assert all(issubclass(e, cdk_lambda_layer.LayerBuildError) for e in errors)
    assert {e.exit_code for e in errors} <= set(range(1, 9))


def test_the_builders_keep_the_names_and_options_users_know():
    local = inspect.signature(cdk_lambda_layer.BasedLambdaLayerLocalBuilder)
    for option in (
        "python",
        "architecture",
        "tool",
        "package",
        "groups",
        "extras",
        "exclude",
        "build_dir",
        "cache_dir",
        "credentials",
        "bytecode",
        "import_check",
        "zip_level",
        "on_step",
    ):
        assert option in local.parameters, option
    container = inspect.signature(cdk_lambda_layer.BasedLambdaLayerContainerBuilder)
    for option in ("image", "user", "download_cache", "ca_bundle", "environment", "network", "container"):
        assert option in container.parameters, option
    for tool in ("Pip", "Poetry", "UV"):
        for where in ("Local", "Container"):
            cls = getattr(cdk_lambda_layer, f"{tool}BasedLambdaLayer{where}Builder")
            assert issubclass(cls, cdk_lambda_layer.BasedLambdaLayerLocalBuilder)
    assert callable(cdk_lambda_layer.BasedLambdaLayerLocalBuilder.run)


def test_the_version_is_the_distributions():
    import importlib.metadata

    assert cdk_lambda_layer.__version__ == importlib.metadata.version("cdk-lambda-layer")
