"""`cdk-lambda-layer cache list|prune`: the layer cache as a user sees it (sizes, last use, what was removed)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..cache.entry import CacheEntry
from ..cache.location import resolve_cache_dir
from ..cache.ownership import MARKER
from ..cache.packages.entry import PackageEntry
from ..cache.packages.store import PackageCache
from ..cache.prune import prune
from ..cache.remote.client import RemoteFailure
from ..cache.remote.location import parse_remote
from ..cache.remote.store import RemoteCache
from ..cache.store import LayerCache
from ..errors import CacheFolderError, RemoteCacheError, VerificationError


def cache_command(args: argparse.Namespace) -> int:
    if args.action == "list" and args.remote:
        return remote_list(args.remote, json_out=args.json)
    root = resolve_cache_dir(args.cache_dir)
    if root is None:
        print("the layer cache is turned off (CDK_LAYER_CACHE_DIR)", file=sys.stderr)
        return 0
    cache = LayerCache(root)
    empty = root.is_dir() and not any(root.iterdir())  # a new cache (e.g. CI restored nothing): no entries
    if root.exists() and not empty and not cache.is_ours():
        raise CacheFolderError(
            f"{root} is not a cdk-lambda-layer cache (no {MARKER} in it): nothing was listed or removed. "
            "Check --cache-dir / CDK_LAYER_CACHE_DIR."
        )
    try:
        if args.action == "list":
            return _cache_list(cache, json_out=args.json)
        return _cache_prune(cache, args, empty=empty)
    except OSError as exc:  # a read-only or vanished folder, an entry that cannot be read
        raise CacheFolderError(
            f"The layer cache at {root} cannot be {'read' if args.action == 'list' else 'pruned'} "
            f"({exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}). Check the folder's "
            "permissions, or point --cache-dir / CDK_LAYER_CACHE_DIR elsewhere."
        ) from exc


def _cache_list(cache: LayerCache, *, json_out: bool) -> int:
    rows = [_entry_row(entry) for entry in cache.entries()]
    leftovers = cache.leftovers()
    left_bytes = sum(_folder_bytes(p) for p in leftovers)
    if json_out:
        packages = [{"key": e.key, "bytes": e.size, **_package_row(e)} for e in PackageCache(cache.root).entries()]
        document = {"cache_dir": str(cache.root), "entries": rows, "packages": packages, "leftover_bytes": left_bytes}
        print(json.dumps(document, indent=2))
    if rows:
        print(f"{'FINGERPRINT':<16}  {'SIZE':>11}  {'LAST USED':<16}  PROJECT TARGET", file=sys.stderr)
    for row in rows:
        print(
            f"{row['fingerprint'][:16]}  {row['bytes'] / 1e6:8.1f} MB  {row['last_used']:<16}  "
            f"{row['project']} {row['target']}",
            file=sys.stderr,
        )
    total = sum(r["bytes"] for r in rows)
    print(f"{len(rows)} layers, {total / 1e6:.1f} MB in {cache.root}", file=sys.stderr)
    packages = PackageCache(cache.root).entries()
    if packages:
        size = sum(entry.size for entry in packages)
        print(f"{len(packages)} packages, {size / 1e6:.1f} MB in {cache.root / 'packages'}", file=sys.stderr)
    if leftovers:
        print(
            f"{len(leftovers)} unfinished stores of killed builds, {left_bytes / 1e6:.1f} MB "
            "(cache prune removes them)",
            file=sys.stderr,
        )
    return 0


def _cache_prune(cache: LayerCache, args: argparse.Namespace, *, empty: bool) -> int:
    if not (args.all or args.older_than is not None or args.max_size is not None):
        print("error: say what to prune: --older-than DAYS, --max-size MB or --all", file=sys.stderr)
        return 2
    if empty:  # nothing to remove, and no marker yet for prune to check
        print(f"removed 0 layers from {cache.root}", file=sys.stderr)
        return 0
    leftovers = cache.leftovers()
    packages: list[PackageEntry] = []
    removed = prune(
        cache,
        older_than_days=0 if args.all else args.older_than,
        keep_bytes=None if args.max_size is None else int(args.max_size * 1e6),
        removed_packages=packages,
    )
    for entry in removed:
        print(f"removed {entry.fingerprint}", file=sys.stderr)
    for folder in leftovers:
        print(f"removed unfinished store {folder.name}", file=sys.stderr)
    print(f"removed {len(removed)} layers from {cache.root}", file=sys.stderr)
    if packages:
        print(f"removed {len(packages)} packages from {cache.root / 'packages'}", file=sys.stderr)
    return 0


def _package_row(entry: PackageEntry) -> dict[str, Any]:
    try:
        inputs = entry.metadata()["inputs"]
        return {"name": inputs["name"], "version": inputs["version"], "python": inputs["python"]}
    except (OSError, ValueError, KeyError, TypeError, VerificationError):
        return {"name": "?", "version": "?", "python": "?"}


def _folder_bytes(folder: Path) -> int:
    return sum(os.lstat(Path(d, n)).st_size for d, _dirs, names in os.walk(folder) for n in names)


def _entry_row(entry: CacheEntry) -> dict[str, Any]:
    try:
        manifest = entry.metadata()["manifest"]
        project = manifest.get("project", "?")
        target = f"{manifest['target']['runtime']} {manifest['target']['architecture']}"
    except (OSError, ValueError, KeyError, VerificationError):
        project, target = "?", "(incomplete)"
    last = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used)) if project != "?" else "-"
    return {
        "fingerprint": entry.fingerprint,
        "bytes": entry.size,
        "last_used": last,
        "project": project,
        "target": target,
    }


def remote_list(url: str, *, json_out: bool) -> int:
    """The remote cache's records: fingerprint, project, target, zipped size, upload date."""
    remote = RemoteCache(parse_remote(url, read_only=True))
    try:
        records = remote.records()
    except RemoteFailure as exc:
        raise RemoteCacheError(f"The remote cache at {url} cannot be listed: {exc.reason}.") from exc
    rows = [_record_row(r) for r in sorted(records, key=lambda r: r.get("modified", ""), reverse=True)]
    if json_out:
        print(json.dumps({"remote_cache": remote.location.url, "records": rows}, indent=2))
    if rows:
        print(f"{'FINGERPRINT':<16}  {'ZIPPED':>11}  {'UPLOADED':<20}  PROJECT TARGET", file=sys.stderr)
    for row in rows:
        print(
            f"{row['fingerprint'][:16]}  {row['bytes'] / 1e6:8.1f} MB  {row['uploaded']:<20}  "
            f"{row['project']} {row['target']}",
            file=sys.stderr,
        )
    total = sum(r["bytes"] for r in rows)
    print(f"{len(rows)} layers, {total / 1e6:.1f} MB zipped in {remote.location.url}", file=sys.stderr)
    return 0


def _record_row(record: dict[str, Any]) -> dict[str, Any]:
    manifest = record.get("manifest") if isinstance(record.get("manifest"), dict) else {}
    target = manifest.get("target") if isinstance(manifest.get("target"), dict) else {}
    blob = record.get("blob") if isinstance(record.get("blob"), dict) else {}
    return {
        "fingerprint": record["fingerprint"],
        "project": manifest.get("project", "?"),
        "target": f"{target.get('runtime', '?')} {target.get('architecture', '?')}",
        "bytes": blob.get("size") if isinstance(blob.get("size"), int) else 0,
        "uploaded": str(record.get("uploaded") or record.get("modified", "?"))[:20],
        "problem": record.get("problem"),
    }
