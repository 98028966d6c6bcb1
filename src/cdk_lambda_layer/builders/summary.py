"""What a build says about itself: the CLI's closing lines and the line each layer prints during synth.

During ``cdk synth`` CDK prints only "Bundling asset …" for a layer; this adds one line:
construct path, tool and lock, target, whether it came from the cache or how long the
build took (with its steps), its size and largest packages. Warnings (no bytecode, an
import check that could not run, a fallback to the container) follow on their own lines,
marked so they stand out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import LayerBuildResult

PREFIX = "[cdk-lambda-layer]"


def _megabytes(size: int | None) -> str:
    return f"{(size or 0) / 1e6:.1f} MB"


def package_count(count: int) -> str:
    """ "1 package" or "14 packages"."""
    return f"{count} package{'' if count == 1 else 's'}"


def largest_packages(result: LayerBuildResult, count: int = 3) -> str:
    top = sorted(result.packages, key=lambda p: p.size, reverse=True)[:count]
    return ", ".join(f"{p.name} {_megabytes(p.size)}" for p in top) or "none"


def reused(result: LayerBuildResult) -> str:
    """ ", 14 of 15 packages from the package cache" for a build that reused some, else ""."""
    found = result.manifest.get("package_cache") or {}
    hits, total = len(found.get("reused") or ()), len(found.get("reused") or ()) + len(found.get("installed") or ())
    return f", {hits} of {total} packages from the package cache" if hits and not result.cached else ""


def timing(result: LayerBuildResult) -> str:
    """How the layer came to be: "cache hit", "remote hit (…)", or "built in N s (steps)[, uploaded …]"."""
    remote = result.remote
    if result.source == "remote" and remote is not None:
        return f"remote hit ({_megabytes(remote.bytes)} in {remote.seconds:.1f} s)"
    if result.cached:
        return "cache hit"
    total = sum(seconds for _name, seconds in result.steps)
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in result.steps if seconds >= 0.05)
    uploaded = f", uploaded ({_megabytes(remote.bytes)})" if remote is not None and remote.uploaded else ""
    return f"built in {total:.1f} s ({steps}){reused(result)}{uploaded}"


def source(result: LayerBuildResult) -> str:
    """Tool, project and lock: what the build found, e.g. "uv project 'orders' (../../uv.lock)"."""
    manifest = result.manifest
    tool = manifest.get("tool", {}).get("name", "?")
    return f"{tool} project {manifest.get('project', '?')!r} ({manifest.get('lock') or 'no lock'})"


def target(result: LayerBuildResult) -> str:
    found = result.manifest.get("target", {})
    return f"{found.get('runtime', '?')} {found.get('architecture', '?')}"


def slowest_imports(result: LayerBuildResult, count: int = 5) -> str | None:
    """ "slowest imports: numpy 0.11 s, pydantic 0.05 s, …" from the import check, or None when it did not run."""
    times = list((result.manifest.get("import_times") or {}).items())[:count]
    if not times:
        return None
    return "slowest imports: " + ", ".join(f"{module} {seconds:.2f} s" for module, seconds in times)


def synth_line(construct_path: str, result: LayerBuildResult) -> str:
    """One line per layer for the synth output, then one per warning."""
    imports = slowest_imports(result)
    line = (
        f"{PREFIX} {construct_path}: {source(result)} -> {target(result)}, {timing(result)}, "
        f"{_megabytes(result.unzipped_bytes)} unzipped, {package_count(len(result.packages))} "
        f"(largest: {largest_packages(result)}){'; ' + imports if imports else ''}"
    )
    return "\n".join([line, *(f"{PREFIX}   WARNING {construct_path}: {w}" for w in result.warnings)])


def closing_lines(result: LayerBuildResult) -> str:
    """The command line's summary after a build."""
    lines = [
        f"layer: {result.layer_zip}",
        f"size: {_megabytes(result.zipped_bytes)} zipped, {_megabytes(result.unzipped_bytes)} unzipped, "
        f"{package_count(len(result.packages))} ({_origin(result)})",
        f"largest: {largest_packages(result, 5)}",
    ]
    imports = slowest_imports(result)
    if imports:
        lines.append(imports)
    lines += [f"WARNING: {w}" for w in result.warnings]
    return "\n".join(lines)


def _origin(result: LayerBuildResult) -> str:
    remote = result.remote
    if result.source == "remote":
        return "remote hit: from the remote cache"
    if result.cached:
        return "from the layer cache"
    uploaded = ", uploaded to the remote cache" if remote is not None and remote.uploaded else ""
    return f"built{reused(result)}{uploaded}"
