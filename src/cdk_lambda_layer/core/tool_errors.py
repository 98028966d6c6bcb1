"""What a failed tool run means, read from its output: only what the lock cannot tell us.

Whether a package has a wheel for the target is decided from the lock (plan.py), never
from error text. What is left for the tools' output: an index that refuses the login or
cannot be reached, a package or version the index does not have, a full disk, and for
everything else the one line that says why (shown first, the command after).
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import (
    BuildFolderError,
    CommandError,
    LayerBuildError,
    PackageIndexError,
    PackageNotFoundError,
    ProjectError,
    TargetError,
    ToolNotFoundError,
)
from ..target import PYTHON_RUNTIMES
from .redact import redact_urls
from .runner import cause_line
from .tools import tool_version

_DENIED = re.compile(r"\((40[13]) ([A-Za-z ]+)\) for url \((\S+?)\)")
_DENIED_HINT = re.compile(
    r"An index URL \((\S+?)\) could not be queried due to a lack of valid authentication "
    r"credentials \((\d+) ([^)]+)\)"
)
_DENIED_STATUS = re.compile(r"An index \((\S+?)\) returned a (40[13]) ([A-Za-z ]+?) error")
_PIP_DENIED = re.compile(r"(40[13]) Client Error: ([A-Za-z ]+) for url: (\S+)")
_UNREACHABLE = (re.compile(r"Failed to fetch: `?(\S+?)`?$", re.M), re.compile(r"Could not fetch URL (\S+?):"))
_NOT_FOUND = (
    re.compile(r"Because (?P<pkg>[A-Za-z0-9._-]+) was not found in the package registry"),
    re.compile(r"Because there is no version of (?P<pkg>[A-Za-z0-9._-]+)(?P<spec>[=<>!~][^\s,]*)?"),
    re.compile(r"Could not find a version that satisfies the requirement (?P<pkg>[A-Za-z0-9._-]+)(?P<spec>\S*)"),
)
_NO_SPACE = re.compile(r"No space left on device|Disk quota exceeded|\[Errno 28\]|os error 28")
#: Poetry 2 without poetry-plugin-export (2.5 prints no quotes, older ones quote the name).
_NO_EXPORT = re.compile(r'command "?export"? does not exist')
#: uv reading a lock of another schema: "(v2, but only v1 is supported)".
_LOCK_SCHEMA = re.compile(r"unsupported schema version \(v(?P<found>\d+), but only v(?P<supported>\d+) is supported\)")
#: uv.lock is TOML, but not a lock: "error: Failed to parse `uv.lock`".
_UNREADABLE_LOCK = re.compile(r"Failed to parse `?uv\.lock`?")
#: uv's resolver on a package whose requires-python excludes the asked Python:
#: "numpy==2.3.0 depends on Python>=3.11".
_NEEDS_PYTHON = re.compile(
    r"(?P<pkg>[A-Za-z][A-Za-z0-9._-]*)(?P<version>[=<>!~]=?[^\s,]+)? depends on "
    r"Python(?P<spec>[<>=!~]=?[\w.*]+(?:, ?[<>=!~]=?[\w.*]+)*)"
)
_HASH = re.compile(r"Hash mismatch for `?(?P<pkg>[^`\s]+)`?|THESE PACKAGES DO NOT MATCH THE HASHES")


def without_userinfo(url: str) -> str:
    """https://user:token@host/simple -> https://host/simple (never show a secret)."""
    return redact_urls(url).replace("://***@", "://")


def explain_index_failure(stderr: str) -> PackageIndexError | None:
    """Recognise an index that refused the credentials or could not be reached."""
    denied = _DENIED.search(stderr) or _PIP_DENIED.search(stderr)
    hint = _DENIED_HINT.search(stderr) or _DENIED_STATUS.search(stderr)
    if denied or hint:
        code, words, url = denied.groups() if denied else (hint.group(2), hint.group(3), hint.group(1))
        return PackageIndexError(
            f"The package index at {without_userinfo(url)} refused the request (HTTP {code} {words.strip()}): "
            "check the username and password or token given for that index (and that it may read this package)."
        )
    for pattern in _UNREACHABLE:
        match = pattern.search(stderr)
        if match:
            causes = [line.split("cause:", 1)[1].strip() for line in stderr.splitlines() if "cause:" in line]
            reason = causes[-1] if causes else "no answer"
            return PackageIndexError(
                f"Cannot reach the package index at {without_userinfo(match.group(1))} ({reason}). Check the "
                "index URL, the network or proxy (HTTPS_PROXY), and that the index is up."
            )
    return None


def explain_disk_full(exc: CommandError, folder: str) -> BuildFolderError | None:
    if not _NO_SPACE.search(exc.stderr):
        return None
    return BuildFolderError(
        f"The disk holding {folder} is full ({cause_line(exc.stderr)}). Free disk space, or build elsewhere "
        "with build_dir= / --build-dir DIR."
    )


def explain_resolution_failure(exc: CommandError, named_in: Path | None = None) -> LayerBuildError | None:
    """A package or version the index does not have (a typo, a yanked or private package); ``named_in``: the
    project file that names it (its lock, else its pyproject.toml)."""
    index_problem = explain_index_failure(exc.stderr)
    if index_problem is not None:
        return index_problem
    for pattern in _NOT_FOUND:
        match = pattern.search(exc.stderr)
        if match:
            spec = f"{match.group('pkg')}{match.groupdict().get('spec') or ''}"
            where = f" (named in {named_in})" if named_in else ""
            return PackageNotFoundError(
                f"{spec}{where} is not on the package index: check the name and version, or, for a private "
                "package, give its index (credentials=[IndexCredentials(...)] / --index NAME). Nothing was "
                "built; a container build would not find it either.",
                package=match.group("pkg"),
            )
    return None


def explain_install_failure(exc: CommandError, folder: str) -> LayerBuildError | None:
    """An installer's failure: index problems, a full disk, a file that does not match the lock's hash."""
    found = explain_index_failure(exc.stderr) or explain_disk_full(exc, folder)
    if found is not None:
        return found
    hashed = _HASH.search(exc.stderr)
    if hashed:
        package = hashed.group("pkg") or "a package"
        return PackageIndexError(
            f"The index served a file for {package} whose hash is not in the lock ({cause_line(exc.stderr)}). "
            "The index (or a mirror) holds a different file than the one locked: check the index settings, "
            "or re-lock if the package was re-published."
        )
    return explain_resolution_failure(exc)


def explain_missing_export(stderr: str, poetry: str) -> ToolNotFoundError | None:
    """Poetry 2 answers `export` with "The requested command export does not exist" without the plugin."""
    if not _NO_EXPORT.search(stderr):
        return None
    return ToolNotFoundError(
        f"Poetry at {poetry} has no export command: Poetry 2 moved it into the poetry-plugin-export plugin, "
        "which is not installed for it. Run `poetry self add poetry-plugin-export` (or pip install "
        "poetry-plugin-export into Poetry's environment; pip install 'cdk-lambda-layer[poetry]' installs both)."
    )


def explain_lock_schema(stderr: str, lock: str, uv: str) -> LayerBuildError | None:
    """A uv.lock of another schema than this uv reads: newer (upgrade uv) or older (lock again)."""
    match = _LOCK_SCHEMA.search(stderr)
    if match is None:
        return None
    found, supported = int(match.group("found")), int(match.group("supported"))
    uv_version = _version_of(uv)
    if found > supported:
        return ToolNotFoundError(
            f"{lock} was written by a newer uv than this one: it uses lock schema v{found}, and uv {uv_version} "
            f"(at {uv}) reads only v{supported}. Upgrade that uv (`pip install -U uv` in the environment of "
            "cdk-lambda-layer, which depends on it) to the version your team locks with; keep the lock as it is."
        )
    return ProjectError(
        f"{lock} uses lock schema v{found}, older than the v{supported} that uv {uv_version} reads: run "
        "`uv lock` next to it to rewrite it, and commit the lock."
    )


def _version_of(uv: str) -> str:
    """This uv's version, for a message ("?" if even asking fails)."""
    try:
        return tool_version(uv, "uv")
    except LayerBuildError:
        return "?"


def explain_unreadable_lock(stderr: str, lock: str, anchor: str) -> ProjectError | None:
    """A uv.lock that is TOML but not a lock uv can read (a hand edit, a bad merge)."""
    if not _UNREADABLE_LOCK.search(stderr):
        return None
    return ProjectError(
        f"{lock} is not a lock uv can read ({cause_line(stderr)}): regenerate it with `uv lock` in {anchor} "
        "(after resolving any merge conflict in it) and commit the lock."
    )


def explain_requires_python(stderr: str, python: str, source: str) -> TargetError | None:
    """Pins whose requires-python excludes the runtime's Python, named with their requires-python."""
    found: dict[str, str] = {}
    for match in _NEEDS_PYTHON.finditer(stderr):
        try:
            spec = SpecifierSet(match.group("spec").replace(" ", ""))
        except InvalidSpecifier:
            continue
        if not any(spec.contains(f"{python}.{patch}") for patch in (0, 99)):
            found.setdefault(f"{match.group('pkg')}{match.group('version') or ''}", str(spec))
    if not found:
        return None
    named = "; ".join(f"{pin} requires Python {spec}" for pin, spec in found.items())
    it, they = ("it", "it supports") if len(found) == 1 else ("they", "they support")
    runtimes = [v for v in PYTHON_RUNTIMES if all(SpecifierSet(s).contains(f"{v}.0") for s in found.values())]
    other = (
        f'a runtime {they} (python="{runtimes[0]}" / --python {runtimes[0]} / '
        f"Runtime.PYTHON_{runtimes[0].replace('.', '_')}), or "
        if runtimes
        else ""
    )
    return TargetError(
        f"{named} (from {source}), so {it} cannot be installed for python{python}, the runtime asked for. "
        f"Ways out: {other}pin versions that support Python {python}."
    )
