"""The tool versions a build records and checks: Poetry's is read from its environment, not by
starting it (~0.8 s of CPU per build), and still refuses a Poetry that is too old."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from cdk_lambda_layer.core.tools import asked_version, find_poetry, installed_version, tool_version
from cdk_lambda_layer.errors import ToolNotFoundError


def _script(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _environment(root: Path, version: str, *, venv: bool = True) -> Path:
    """A venv-shaped folder whose site-packages holds Poetry's metadata at ``version`` (a venv: pyvenv.cfg)."""
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    dist = site / f"poetry-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: poetry\nVersion: {version}\n")
    if venv:
        (root / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    return root


def test_the_installed_poetry_reads_the_same_version_it_prints():
    poetry = find_poetry()
    assert installed_version(poetry, "poetry") == asked_version(poetry, "poetry")


def test_a_too_old_poetry_is_refused_from_its_metadata_without_starting_it(tmp_path):
    env = _environment(tmp_path / "venv", "1.8.3")
    ran = tmp_path / "ran"
    poetry = _script(
        env / "bin" / "poetry", f"#!{env}/bin/python\nimport pathlib; pathlib.Path({str(ran)!r}).touch()\n"
    )
    tool_version.cache_clear()
    with pytest.raises(ToolNotFoundError, match=r"poetry 1\.8\.3 .* is too old: 2\.0\.0 or newer"):
        tool_version(poetry, "poetry")
    assert not ran.exists()


@pytest.mark.parametrize(
    "first_line",
    ["#!/bin/sh", "#!/usr/bin/env python3"],
    ids=["shell-wrapper", "env-shebang"],
)
def test_a_script_that_names_no_environment_is_asked(tmp_path, first_line):
    _environment(tmp_path, "1.0.0")  # beside the script, but not named by it: never read
    body = "echo 'Poetry (version 2.9.1)'" if first_line == "#!/bin/sh" else "print('Poetry (version 2.9.1)')"
    poetry = _script(tmp_path / "bin" / "poetry", f"{first_line}\n{body}\n")
    tool_version.cache_clear()
    assert tool_version(poetry, "poetry") == "2.9.1"


def test_a_poetry_run_by_a_python_that_is_not_a_venv_is_asked(tmp_path):
    # `pip install --user poetry` (or into /usr/local) writes #!/usr/bin/python3: what it imports comes from
    # the user's or /usr/local's site, ahead of /usr/lib's (where a distribution's older Poetry may sit).
    system = _environment(tmp_path / "usr", "1.8.3", venv=False)
    (system / "bin").mkdir()
    (system / "bin" / "python3").symlink_to(sys.executable)
    body = "print('Poetry (version 2.1.0)')"
    poetry = _script(tmp_path / "local" / "bin" / "poetry", f"#!{system}/bin/python3\n{body}\n")
    tool_version.cache_clear()
    assert tool_version(poetry, "poetry") == "2.1.0"
