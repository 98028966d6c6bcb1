"""Diagnoses: a failed tool or index is reported by its cause, in the words of the problem.

A tool's cause comes first and its command line last; a misspelt package is not on the package index
(never sent to Docker as "no wheel"); a login the index refuses is an index error; an index that cannot
be reached is named.
"""

from __future__ import annotations

import sys

import pytest
from cli_helpers import cli

from cdk_lambda_layer import CommandError
from cdk_lambda_layer.core.runner import Command, run


def test_a_failed_tool_shows_its_cause_before_its_command(tmp_path):
    noise = "\n".join(f"    --hash=sha256:{i:064x}" for i in range(22))
    output = tmp_path / "stderr.txt"
    cause = "  cause: Hash mismatch for `numpy==2.4.6`"
    output.write_text(f"Resolved 9 packages\nerror: Failed to install numpy==2.4.6\n{cause}\n{noise}\n")
    script = f"import sys; sys.stderr.write(open({str(output)!r}).read()); sys.exit(2)"
    with pytest.raises(CommandError) as info:
        run(Command(argv=(sys.executable, "-c", script, "--some", "long", "argv"), label="installer"))
    first, *rest = str(info.value).splitlines()
    assert first == "installer failed (exit 2): Hash mismatch for `numpy==2.4.6`"
    assert rest[-1].startswith("command: ") and "--some long argv" in rest[-1]
    assert "--hash=" not in str(info.value)


@pytest.mark.network
@pytest.mark.parametrize("build", ["auto", "local"])
def test_a_misspelt_package_with_pip_is_not_found_and_never_goes_to_docker(project_copy, build):
    project = project_copy("pip_requirements")
    (project / "requirements.txt").write_text("requests==2.32.3\npydnatic-core-zz==2.0\n")
    done = cli(
        str(project),
        "--python",
        "3.12",
        "--installer",
        "pip",
        "--build",
        build,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert done.returncode == 2, done.stderr
    assert "pydnatic-core-zz" in done.stderr and "is not on the package index" in done.stderr
    assert "Docker" not in done.stderr and "no wheel" not in done.stderr


@pytest.mark.network
def test_a_refused_login_with_pip_is_an_index_error(project_copy, tmp_path, refusing_index):
    url = f"http://builder:wrong@{refusing_index}/simple"
    done = cli(
        str(project_copy("pip_requirements")),
        "--python",
        "3.12",
        "--installer",
        "pip",
        "--no-cache",
        env={
            "UV_INDEX_URL": url,
            "PIP_INDEX_URL": url,
            "UV_CACHE_DIR": str(tmp_path / "uv"),
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        },
    )
    assert done.returncode == 8, done.stderr
    assert "refused the request (HTTP 401" in done.stderr and "wrong" not in done.stderr
    assert "Docker" not in done.stderr


def test_index_unreachable_names_the_index(project_copy, tmp_path):
    done = cli(
        str(project_copy("uv_app")),
        "--python",
        "3.12",
        "--no-cache",
        env={"UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )
    assert done.returncode == 8, done.stderr
    assert "Cannot reach the package index at http://127.0.0.1:9/simple/" in done.stderr
    assert "Traceback" not in done.stderr
