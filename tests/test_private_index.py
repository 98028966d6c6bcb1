"""Private indexes: a real pypiserver on loopback with basic auth, serving a private package."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_helpers import SKIP_BUNDLING, layer_s3_key, synth_layer
from package_helpers import hatch_package

from cdk_lambda_layer import (
    BasedLambdaLayerLocalBuilder,
    IndexCredentials,
    PackageIndexError,
    ProjectError,
    codeartifact_credentials,
)
from cdk_lambda_layer.core.tools import find_poetry, find_uv

pytestmark = pytest.mark.network
TOKEN = "corp-T0ken-8c1f2e"  # the password; must never appear in output or files


@dataclass
class Index:
    url: str
    user: str
    token: str

    def credentials(self, token: str | None = None) -> IndexCredentials:
        return IndexCredentials(name="corp", url=self.url, username=self.user, password=token or self.token)

    def env(self) -> dict[str, str]:
        return {
            "UV_INDEX_CORP_USERNAME": self.user,
            "UV_INDEX_CORP_PASSWORD": self.token,
            "POETRY_HTTP_BASIC_CORP_USERNAME": self.user,
            "POETRY_HTTP_BASIC_CORP_PASSWORD": self.token,
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def private_index(tmp_path_factory):
    from passlib.apache import HtpasswdFile

    root = tmp_path_factory.mktemp("private-index")
    source, packages = root / "corp-greeting", root / "packages"
    (source / "src" / "corp_greeting").mkdir(parents=True)
    packages.mkdir()
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "corp-greeting"\nversion = "0.1.0"\n'
    )
    (source / "src" / "corp_greeting" / "__init__.py").write_text('def hello():\n    return "hello from corp"\n')
    subprocess.run([find_uv(), "build", "--wheel", "-q", "-o", str(packages)], cwd=source, check=True)
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    htpasswd.set_password("builder", TOKEN)
    htpasswd.save()
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-P",
            str(root / "htpasswd"),
            "-a",
            "download,list,update",
            str(packages),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield Index(url=f"http://127.0.0.1:{port}/simple/", user="builder", token=TOKEN)
    server.terminate()
    server.wait(timeout=10)


def make_project(tmp_path: Path, tool: str, index: Index) -> Path:
    """A project needing corp-greeting (private) and six (PyPI), locked with the tool itself."""
    project = tmp_path / f"{tool}-project"
    project.mkdir()
    head = '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10,<4"\n'
    if tool == "pip":
        (project / "pyproject.toml").write_text(head)
        (project / "requirements.txt").write_text("corp-greeting==0.1.0\nsix==1.17.0\n")
    elif tool == "uv":
        (project / "pyproject.toml").write_text(
            head + 'dependencies = ["corp-greeting==0.1.0", "six==1.17.0"]\n'
            f'[[tool.uv.index]]\nname = "corp"\nurl = "{index.url}"\nexplicit = true\n'
            '[tool.uv.sources]\ncorp-greeting = { index = "corp" }\n'
        )
        subprocess.run([find_uv(), "lock", "-q"], cwd=project, check=True, env={**_os_env(), **index.env()})
    else:
        (project / "pyproject.toml").write_text(
            head + 'dependencies = ["corp-greeting==0.1.0"]\n[tool.poetry]\npackage-mode = false\n'
            '[tool.poetry.dependencies]\ncorp-greeting = { source = "corp" }\n'
            f'[[tool.poetry.source]]\nname = "corp"\nurl = "{index.url}"\npriority = "explicit"\n'
        )
        # a private Poetry cache: Poetry caches an index's files by the index's name ("corp")
        env = {**_os_env(), **index.env(), "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache")}
        subprocess.run([find_poetry(), "lock", "-q"], cwd=project, check=True, env=env)
    return project


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def everything_written(*folders: Path) -> bytes:
    return b"".join(p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("tool", ["pip", "uv", "poetry"])
def test_local_build_with_credentials(tmp_path, private_index, tool, isolated_layer_cache, caplog):
    project = make_project(tmp_path, tool, private_index)
    with caplog.at_level(logging.DEBUG, logger="cdk_lambda_layer"):
        result = BasedLambdaLayerLocalBuilder(project, python="3.11", credentials=[private_index.credentials()]).run()
    assert "corp-greeting" in {p.name for p in result.packages}
    script = f"import sys; sys.path.insert(0, {str(result.python_dir)!r}); import corp_greeting as c; print(c.hello())"
    assert (
        subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True).stdout.strip()
        == "hello from corp"
    )
    assert TOKEN.encode() not in everything_written(project / "build", isolated_layer_cache)
    assert TOKEN not in caplog.text


@pytest.mark.docker
@pytest.mark.parametrize("tool", ["pip", "uv", "poetry"])
def test_container_build_with_credentials(tmp_path, private_index, tool, isolated_layer_cache):
    from docker_helpers import standin_image

    from cdk_lambda_layer import BasedLambdaLayerContainerBuilder

    image = standin_image()
    project = make_project(tmp_path, tool, private_index)
    # network="host": the index listens on this machine's loopback
    result = BasedLambdaLayerContainerBuilder(
        project, python="3.11", image=image, network="host", credentials=[private_index.credentials()]
    ).run()
    assert "corp-greeting" in {p.name for p in result.packages}
    assert TOKEN.encode() not in everything_written(project / "build", isolated_layer_cache)


SNOOP = """import os, re, time
found = [k for k, v in os.environ.items() if TOKEN in v]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        data = open(f"/proc/{pid}/environ", "rb").read()
    except OSError:
        continue
    found += [f"/proc/{pid}/environ" for line in data.split(b"\\0") if TOKEN.encode() in line]
try:  # the step's memory (PID 1 in the container): a login read from stdin must be gone from it
    with open("/proc/1/maps") as maps, open("/proc/1/mem", "rb") as mem:
        for line in maps:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if "rw" not in line.split()[1]:
                continue
            try:
                mem.seek(start)
                found += ["/proc/1/mem"] if TOKEN.encode() in mem.read(end - start) else []
            except (OSError, ValueError, OverflowError):
                pass
except OSError:
    pass
time.sleep(3)  # time for the test to look at the running container's configuration
if found:
    raise ImportError(f"saw the login in {sorted(set(found))}")
"""


@pytest.mark.docker
def test_a_container_build_keeps_the_login_from_docker_and_from_package_code(tmp_path, private_index):
    """The login reaches the installer in the image, and nothing else: not the container's configuration
    (Docker keeps it on disk, and after a killed build it stays there), and not the packages' code the
    import check runs there (which reads every /proc/<pid>/environ it can)."""
    import threading

    import docker
    from docker_helpers import standin_image

    from cdk_lambda_layer import BasedLambdaLayerContainerBuilder
    from cdk_lambda_layer.install.container.docker import OWNER_LABEL

    project = make_project(tmp_path, "pip", private_index)
    hatch_package(project / "snoop", "snoop", f"TOKEN = {TOKEN!r}\n" + SNOOP)
    (project / "requirements.txt").write_text("corp-greeting==0.1.0\nsix==1.17.0\n./snoop\n")
    client, seen, done = docker.from_env(), {}, threading.Event()

    def watch() -> None:
        while not done.is_set():
            for handle in client.containers.list(filters={"label": OWNER_LABEL}):
                seen[handle.name] = handle.attrs["Config"]["Env"]
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = BasedLambdaLayerContainerBuilder(
            project,
            python="3.11",
            image=standin_image(),
            network="host",
            cache_dir=False,
            credentials=[private_index.credentials()],
        ).run()
    finally:
        done.set()
        watcher.join()
    assert "corp-greeting" in {p.name for p in result.packages}  # the installer had the login
    assert seen, "the build container was never seen running"
    assert not [name for name, env in seen.items() if any(TOKEN in item for item in env or [])]
    assert result.manifest["import_check"]["ran"]  # snoop imported, and saw no login (else ImportError)


def test_wrong_credentials_name_the_index_and_hide_the_password(tmp_path, private_index, caplog):
    project = make_project(tmp_path, "pip", private_index)
    wrong = "wr0ng-" + TOKEN
    with caplog.at_level(logging.DEBUG, logger="cdk_lambda_layer"), pytest.raises(PackageIndexError) as info:
        BasedLambdaLayerLocalBuilder(
            project, python="3.11", cache_dir=False, credentials=[private_index.credentials(wrong)]
        ).run()
    message = str(info.value)
    assert private_index.url.rstrip("/") in message and ("401" in message or "403" in message)
    for text in (message, caplog.text, everything_written(project).decode(errors="replace")):
        assert wrong not in text and TOKEN not in text


def test_changing_only_the_token_keeps_the_asset_hash(tmp_path, private_index):
    project = make_project(tmp_path, "pip", private_index)
    keys = {
        layer_s3_key(
            synth_layer(
                project,
                context=SKIP_BUNDLING,
                runtime=lambda_.Runtime.PYTHON_3_11,
                credentials=[private_index.credentials(token)],
            )[0]
        )
        for token in ("a1", "b2")
    }
    assert len(keys) == 1
    builders = {
        BasedLambdaLayerLocalBuilder(project, python="3.11", credentials=[private_index.credentials(t)]).fingerprint
        for t in ("a1", "b2")
    }
    assert len(builders) == 1


def test_cdk_synth_with_credentials_leaks_nothing_into_cdk_out(tmp_path, private_index):
    project = make_project(tmp_path, "uv", private_index)
    out = tmp_path / "cdk.out"
    synth_layer(
        project,
        outdir=out,
        runtime=lambda_.Runtime.PYTHON_3_11,
        build="local",
        credentials=[private_index.credentials()],
    )
    assert b"corp_greeting" in b"".join(p.name.encode() for p in out.rglob("*"))
    assert TOKEN.encode() not in everything_written(out)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(ProjectError, match="not in the URL"):
        IndexCredentials(name="corp", url="https://user:pw@corp.example/simple/")
    assert "pw" not in repr(IndexCredentials(name="corp", url="https://corp.example/simple/", password="pw"))


def test_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("CDK_LAYER_INDEX_MY_CORP_URL", "https://corp.example/simple/")
    monkeypatch.setenv("CDK_LAYER_INDEX_MY_CORP_USERNAME", "ci")
    monkeypatch.setenv("CDK_LAYER_INDEX_MY_CORP_PASSWORD", "tok")
    creds = IndexCredentials.from_environment("my-corp")
    assert (creds.url, creds.username, creds.password) == ("https://corp.example/simple/", "ci", "tok")
    with pytest.raises(ProjectError, match="CDK_LAYER_INDEX_OTHER_URL"):
        IndexCredentials.from_environment("other")


def test_codeartifact_helper_asks_for_a_token_and_the_pypi_endpoint():
    # AWS accounts cannot exist here: botocore's Stubber stands in for CodeArtifact's API.
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("codeartifact", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    stub.add_response(
        "get_authorization_token",
        {"authorizationToken": "ca-token", "expiration": 0},
        {"domain": "acme", "domainOwner": "123456789012", "durationSeconds": 900},
    )
    stub.add_response(
        "get_repository_endpoint",
        {"repositoryEndpoint": "https://acme.example/pypi/libs/"},
        {"domain": "acme", "domainOwner": "123456789012", "repository": "libs", "format": "pypi"},
    )
    with stub, pytest.MonkeyPatch.context() as patch:
        patch.setattr(boto3, "client", lambda *args, **kwargs: client)
        creds = codeartifact_credentials(domain="acme", repository="libs", owner="123456789012", duration_seconds=900)
    assert (creds.name, creds.url, creds.username, creds.password) == (
        "codeartifact",
        "https://acme.example/pypi/libs/simple/",
        "aws",
        "ca-token",
    )


def test_a_login_in_a_requirements_file_is_written_nowhere(tmp_path, private_index, isolated_layer_cache):
    """requirements.txt may carry --extra-index-url https://user:token@...: the build uses it, and every
    copy this library writes (repo/, the pins, the cache entry, the manifest) has it redacted."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\n')
    login_url = private_index.url.replace("http://", f"http://{private_index.user}:{TOKEN}@")
    (project / "requirements.txt").write_text(f"--extra-index-url {login_url}\ncorp-greeting==0.1.0\nsix==1.17.0\n")
    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--python", "3.12", "--json", "-v"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p["name"] for p in __import__("json").loads(done.stdout)["packages"]} >= {"corp-greeting", "six"}
    written = everything_written(project / "build", isolated_layer_cache)
    assert TOKEN.encode() not in written
    assert b"***@127.0.0.1" in (project / "build/lambda/layer/repo/project/requirements.txt").read_bytes()
    assert TOKEN not in done.stderr + done.stdout
