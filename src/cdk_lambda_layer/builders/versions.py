"""The build tools a project needs, found before any work, and their versions for the manifest."""

from __future__ import annotations

from ..core.tools import find_poetry, find_uv, pip_version, tool_version
from ..options import Installer
from ..package.manifest import ToolVersions
from ..project.discover import Tool


def locate_tools(tool: Tool) -> None:
    """Find the tools first, on this thread: a missing one fails before any work
    (and sysconfig, which uv's locator reads, is not safe to initialise from two threads)."""
    find_uv()  # the plan's compile, local builds and the default installer
    if tool is Tool.POETRY:
        find_poetry()


def tool_versions(tool: Tool, installer: Installer) -> ToolVersions:
    """Versions of the project's tool and the installer (and a check they are new enough)."""
    installer_version = tool_version(find_uv(), "uv") if installer == "uv" else pip_version()
    if tool is Tool.POETRY:
        tool_ver = tool_version(find_poetry(), "poetry")
    elif tool is Tool.UV:
        tool_ver = installer_version if installer == "uv" else tool_version(find_uv(), "uv")
    else:
        tool_ver = pip_version()
    return ToolVersions(
        tool=tool.value, tool_version=tool_ver, installer=installer, installer_version=installer_version
    )
