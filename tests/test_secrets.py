"""Secrets: a login never reaches a log, an error or a file, and package code run by a build never sees one.

Redaction removes the whole login, whatever characters pip and uv accept in it; a login a tool prints
and a logged command are redacted; wrong credentials name the index, never the password. The import
check runs package code without the builder's credentials, and cannot read the builder's environment
through /proc, even as root. In the build container, package code finds the index login neither in
the step's memory nor on disk.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import pytest
from cli_helpers import HOST, cli
from package_helpers import hatch_package, local_package_project
from test_private_index import private_index  # noqa: F401 - the session fixture (pypiserver with a login)

from cdk_lambda_layer import CommandError, PipBasedLambdaLayerContainerBuilder
from cdk_lambda_layer.core.redact import redact_urls
from cdk_lambda_layer.core.runner import Command, run
from cdk_lambda_layer.core.tool_errors import without_userinfo


# -- redaction: logins in output, errors and logs ------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "--extra-index-url https://ci@acme.com:EmailUserTok-42@pypi.corp.example/simple/",  # e-mail user name
        "--extra-index-url https://ci:p@ss-W0rd@pypi.corp.example/simple/",  # '@' in the password
    ],
)
def test_redaction_removes_the_whole_login(line):
    shown = redact_urls(line)
    assert "EmailUserTok" not in shown and "ss-W0rd" not in shown, shown


@pytest.mark.parametrize(
    "text",
    [
        '--extra-index-url "http://quote:it\'s-Tok3n-99@127.0.0.1:18799/simple/"',  # pip and uv authenticate
        '[[tool.uv.index]]\nurl = "https://ci:it\'s-Tok3n-99@pypi.corp.example/simple/"',
        "corp-greeting @ http://quote:it's-Tok3n-99@127.0.0.1:18799/packages/corp_greeting-0.1.0-py3-none-any.whl",
    ],
)
def test_redaction_removes_a_login_with_an_apostrophe(text):
    assert "Tok3n" not in redact_urls(text), redact_urls(text)
    url = text[text.index("http") :].split('"')[0].split()[0]
    assert "Tok3n" not in without_userinfo(url), without_userinfo(url)  # error messages (plan.py, tool_errors.py)


def test_a_login_a_tool_prints_is_redacted_in_the_error():
    script = (
        "import sys; sys.stderr.write('error: could not fetch https://ci:hunter2@corp.example/simple/x/'); sys.exit(1)"
    )
    with pytest.raises(CommandError) as info:
        run(Command(argv=(sys.executable, "-c", script), label="tool"))
    assert "hunter2" not in str(info.value) and "hunter2" not in info.value.stderr
    assert "https://***@corp.example/simple/x/" in str(info.value)


def test_logged_commands_redact_secrets(caplog):
    from cdk_lambda_layer.core.runner import Command, run
    from cdk_lambda_layer.errors import CommandError

    secret = "hunter2-token"
    with caplog.at_level(logging.INFO, logger="cdk_lambda_layer"), pytest.raises(CommandError) as info:
        run(
            Command(argv=(sys.executable, "-c", f"import sys; sys.exit('denied for {secret}')", secret), label="probe"),
            secrets=[secret],
        )
    assert secret not in caplog.text and "***" in caplog.text
    assert secret not in str(info.value) and secret not in info.value.stderr
    assert secret not in " ".join(info.value.argv)


def test_wrong_credentials_name_the_index_never_the_secret(project_copy, tmp_path, refusing_index, caplog):
    secret = "s3cr3t-T0ken-value"
    env = {"UV_INDEX_URL": f"http://builder:{secret}@{refusing_index}/simple", "UV_CACHE_DIR": str(tmp_path / "c")}
    project = project_copy("uv_app")
    done = cli(str(project), "--python", "3.12", "--no-cache", "-v", env=env)
    assert done.returncode == 8, done.stderr
    assert f"The package index at http://{refusing_index}/simple" in done.stderr
    assert "HTTP 401 Unauthorized" in done.stderr
    assert secret not in done.stderr + done.stdout
    written = [p for p in project.rglob("*") if p.is_file()]
    assert not [p for p in written if secret.encode() in p.read_bytes()]


# -- the import check cannot see the builder's credentials ---------------------------------------------------
@pytest.mark.network
def test_the_import_check_runs_package_code_without_our_credentials(tmp_path, monkeypatch):
    """Importing runs the packages' code on the build machine: it must not see AWS keys or index tokens."""
    from cdk_lambda_layer import BasedLambdaLayerLocalBuilder

    hatch_package(
        tmp_path / "acme-snoop",
        "acme-snoop",
        "import os\nleaked = [k for k in os.environ if 'SECRET' in k or 'TOKEN' in k or 'PASSWORD' in k]\n"
        "if leaked:\n    raise ImportError(f'saw {leaked}')\n",
        version="1.0",
    )
    service = tmp_path / "service"
    service.mkdir()
    (service / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')
    (service / "requirements.txt").write_text("../acme-snoop\n")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-packages")
    monkeypatch.setenv("CDK_LAYER_INDEX_CORP_PASSWORD", "not-for-packages-either")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = BasedLambdaLayerLocalBuilder(service, python=python, cache_dir=False).run()
    assert result.manifest["import_check"]["ran"] and result.manifest["import_check"]["imported"] == 1


@pytest.mark.network
def test_the_import_check_cannot_read_the_builders_environment_through_proc(tmp_path):
    """The builder's own environment (here an index password for --index) is the initial environment of
    its process; package code run by the import check unmounts /proc if it can (as root it may), then
    looks for the password in every /proc/<pid>/environ and fails its import if it finds it. It must
    find nothing: the check runs in user and PID namespaces of its own."""
    project = local_package_project(
        tmp_path / "app",
        "import os, subprocess\n"
        "subprocess.run(['umount', '/proc'], capture_output=True)\n"
        "found = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    found += [pid for v in data.split(b'\\0') if b'not-for-packages' in v]\n"
        "if found:\n"
        "    raise ImportError(f'read the password in /proc/{found}/environ')\n",
    )
    done = cli(
        "build",
        str(project),
        "--python",
        HOST,
        "--no-cache",
        "--json",
        env={"CDK_LAYER_INDEX_CORP_PASSWORD": "not-for-packages"},
    )
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout)
    assert result["import_check"]["ran"] and result["import_check"]["sandboxed"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the bypass needs root (in a user namespace the kernel refuses)")
def test_the_root_import_check_cannot_unmount_its_proc_and_read_the_builder(tmp_path):
    project = local_package_project(
        tmp_path / "app",
        "import ctypes, os, pathlib\n"
        "ctypes.CDLL(None).umount2(b'/proc', 2)\n"
        "found = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n        continue\n"
        "    found += [v.decode() for v in data.split(b'\\0') if b'not-for-packages' in v]\n"
        "if found:\n    raise ImportError(f'read the password: {found}')\n",
    )
    done = cli(
        "build", str(project), "--python", HOST, "--no-cache", "--json",
        env={"CDK_LAYER_INDEX_CORP_PASSWORD": "not-for-packages"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["import_check"]["ran"]  # evilpkg imported: it found no password (else ImportError)


# -- package code in the build container cannot find the index login -----------------------------------------
@pytest.mark.docker
@pytest.mark.network
def test_package_code_in_the_container_cannot_read_the_index_login(tmp_path, private_index):  # noqa: F811
    from docker_helpers import standin_image

    snoop = (
        "import os, re, pathlib\n"
        "found = set()\n"
        "for line in open('/proc/1/maps').read().splitlines():\n"
        "    span, perms = line.split()[:2]\n"
        "    if not perms.startswith('r'):\n        continue\n"
        "    lo, hi = (int(x, 16) for x in span.split('-'))\n"
        "    try:\n"
        "        mem = open('/proc/1/mem', 'rb', buffering=0); mem.seek(lo); data = mem.read(hi - lo)\n"
        "    except (OSError, OverflowError, ValueError):\n        continue\n"
        f"    found |= {{m.decode() for m in re.findall(rb'{private_index.token}', data)}}\n"
        "if found:\n    raise ImportError(f'read the login in /proc/1/mem: {sorted(found)}')\n"
    )
    project = local_package_project(tmp_path / "app", snoop, name="snoop", extra="corp-greeting==0.1.0\n")
    result = PipBasedLambdaLayerContainerBuilder(
        project,
        python="3.11",
        image=standin_image(),
        network="host",
        credentials=[private_index.credentials()],
        cache_dir=False,
    ).run()
    assert result.manifest["import_check"]["ran"]  # snoop imported: it found no login (else ImportError)


FILE_SNOOP = """import base64, os
needles = [TOKEN.encode(), base64.b64encode(f"builder:{TOKEN}".encode())]
found = []
for top in ("/tmp", "/asset-output", "/root", "/etc"):
    for folder, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                data = open(path, "rb").read()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(path)
if found:
    raise ImportError(f"saw the login in {sorted(found)[:5]}")
"""


@pytest.mark.docker
@pytest.mark.parametrize("host_uv", [True, False])
def test_import_time_code_in_the_container_finds_no_login_on_disk(tmp_path, private_index, host_uv, monkeypatch):  # noqa: F811
    from docker_helpers import standin_image
    from package_helpers import hatch_package
    from test_private_index import TOKEN, make_project

    from cdk_lambda_layer import BasedLambdaLayerContainerBuilder, ContainerOptions

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = make_project(tmp_path, "pip", private_index)
    hatch_package(project / "snoop", "snoop", f"TOKEN = {TOKEN[::-1]!r}[::-1]\n" + FILE_SNOOP)
    (project / "requirements.txt").write_text("corp-greeting==0.1.0\nsix==1.17.0\n./snoop\n")
    for _ in range(2):  # the second build finds the first one's caches
        result = BasedLambdaLayerContainerBuilder(
            project, python="3.11", cache_dir=False, credentials=[private_index.credentials()],
            container=ContainerOptions(image=standin_image(), network="host", host_uv=host_uv),
        ).run()  # fmt: skip
        assert result.manifest["import_check"]["ran"]
    hits = [p for p in (tmp_path / "xdg").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert not hits, hits
