"""The remote cache as one build uses it: after a local miss, a hit fetched into the local cache;
after a build, the layer uploaded (read-write mode only).

A hit is never served from S3 directly: its record is checked, its blob downloaded into a private
folder of the local cache and checked against the record's size and sha256, unpacked (package/
unpack.py) and added as a local entry, and then served by the local cache under exactly the rules a
local hit is held to (cache/reuse.py, the size limit). Whatever fails (the network, the credentials,
a bad record or blob) costs one warning; the layer is built, and in read-write mode its upload
replaces the bad record.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import VerificationError
from ...install.inventory import installed_packages, normalize
from ...package.archive import DEFAULT_ZIP_LEVEL, write_layer_zip
from ...target import LambdaTarget
from ..entry import file_sha256
from ..store import LayerCache
from .client import RemoteFailure, give_up, given_up
from .location import RemoteLocation
from .record import is_newer, make_record, record_problem
from .store import RemoteCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RemoteOutcome:
    """What the remote cache did for one build (``--json``'s ``remote``)."""

    hit: bool = False
    uploaded: bool = False
    seconds: float = 0.0
    bytes: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"hit": self.hit, "uploaded": self.uploaded, "seconds": round(self.seconds, 3), "bytes": self.bytes}


class RemoteSession:
    """One build's use of the remote cache (inactive without one)."""

    def __init__(self, location: RemoteLocation | None, fingerprint: str, target: LambdaTarget) -> None:
        self.location = location
        self.fingerprint = fingerprint
        self.target = target
        self.remote = RemoteCache(location) if location else None
        #: What the build should say: "remote unavailable: …", a record or blob that was not used.
        self.warnings: list[str] = []
        self.outcome: RemoteOutcome | None = RemoteOutcome() if location else None
        self._seconds = 0.0
        self._scratch: list[Path] = []
        #: The remote's record is not to be replaced (a newer version's; a good one this disk could not take).
        self._keep_record = False
        if location is not None and given_up(location) is not None:  # by an earlier layer of this process
            self.warnings.append(f"remote unavailable: {given_up(location)}; built here")

    def close(self) -> None:
        """Delete the zips made only for an upload (the local cache keeps its own copy)."""
        for folder in self._scratch:
            shutil.rmtree(folder, ignore_errors=True)

    @property
    def active(self) -> bool:
        return self.remote is not None and self.location is not None and given_up(self.location) is None

    def _unavailable(self, reason: str) -> None:
        assert self.location is not None
        give_up(self.location, reason)
        self.warnings.append(
            f"remote unavailable: {reason}; built here (the remote cache is skipped for the rest of this run)"
        )
        logger.info("remote cache %s unavailable: %s", self.location.url, reason)

    def _timed(self, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return action()
        finally:
            self._seconds += time.perf_counter() - started

    # -- reading -----------------------------------------------------------------------------
    def fetch(self, cache: LayerCache, rebuild_reason: Callable[[dict[str, Any]], str | None], max_bytes: int) -> bool:
        """Bring the remote layer of this fingerprint into ``cache`` (held under its lock); False on a miss."""
        if not self.active:
            return False
        try:
            return self._timed(lambda: self._fetch(cache, rebuild_reason, max_bytes))
        except RemoteFailure as exc:
            self._unavailable(exc.reason)
            return False
        finally:
            self._note(hit=None)

    def _fetch(self, cache: LayerCache, rebuild_reason: Callable[[dict[str, Any]], str | None], max_bytes: int) -> bool:
        assert self.remote is not None
        try:
            record = self.remote.record(self.fingerprint)
        except ValueError as exc:
            return self._unusable(f"its record is not JSON ({exc})")
        if record is None:
            logger.info("remote cache: no layer %s", self.fingerprint[:12])
            return False
        if is_newer(record):
            self._keep_record = True
            self.warnings.append(
                f"the remote cache's layer {self.fingerprint[:12]} was written by a newer cdk-lambda-layer (record "
                f"format {record['format']}); built here, and left for it: upgrade to share it"
            )
            return False
        problem = record_problem(record, self.fingerprint, self.target)
        if problem:
            return self._unusable(f"its record cannot be used: {problem}")
        reason = rebuild_reason(record["manifest"])
        if reason:
            logger.info("the remote layer %s: building it again", reason)
            return False
        blob = record["blob"]
        metadata = {"manifest": record["manifest"], "requirements": record.get("requirements", "")}

        def fetch(destination: Path) -> None:
            self.remote.download(blob["sha256"], blob["size"], destination)  # type: ignore[union-attr]

        manifest = record["manifest"]
        # Never more than its manifest says: a zip that claims more is refused before a byte is written.
        limit = min(max_bytes, manifest["sizes"]["unzipped_bytes"])
        try:
            cache.store_zip(
                self.fingerprint,
                fetch,
                metadata,
                zip_level=blob["zip_level"],
                max_bytes=limit,
                check=_as_told(manifest),
            )
        except RemoteFailure as exc:
            if exc.missing:
                return self._unusable("its record names a blob that is not in the bucket")
            raise
        except (ValueError, VerificationError) as exc:
            return self._unusable(f"its blob failed the check ({exc})")
        except OSError as exc:  # the local disk's (full, read-only): the remote is not to blame
            self.warnings.append(
                f"the remote cache's layer {self.fingerprint[:12]} could not be put in the local cache "
                f"({exc.strerror or exc}); built here. Free space or fix the cache folder (CDK_LAYER_CACHE_DIR)"
            )
            self._keep_record = True
            return False
        self._note(hit=True, size=blob["size"])
        return True

    def _unusable(self, why: str) -> bool:
        writes = "; the build's upload replaces it" if self.location and not self.location.read_only else ""
        self.warnings.append(
            f"the remote cache's layer {self.fingerprint[:12]} was not used: {why}; built here{writes}"
        )
        return False

    # -- writing -----------------------------------------------------------------------------
    def wants_upload(self) -> bool:
        return self.active and self.location is not None and not self.location.read_only and not self._keep_record

    def upload(self, python: Path, layer_zip: Path | None, zip_level: int, metadata: dict[str, Any]) -> Path | None:
        """Upload the built layer (its layer.zip, made here at the default level when the build made none);
        the zip used, for the local cache to keep, or None."""
        if not self.wants_upload():
            return None
        try:
            return self._timed(lambda: self._upload(python, layer_zip, zip_level, metadata))
        except RemoteFailure as exc:
            self._unavailable(exc.reason)
            return None
        except OSError as exc:
            self.warnings.append(f"the layer was not uploaded to the remote cache ({exc.strerror or exc})")
            return None
        finally:
            self._note(hit=None)

    def _upload(self, python: Path, layer_zip: Path | None, zip_level: int, metadata: dict[str, Any]) -> Path:
        assert self.remote is not None
        if layer_zip is None:
            scratch = Path(tempfile.mkdtemp(prefix="cdk-lambda-layer-upload-"))
            self._scratch.append(scratch)
            layer_zip, zip_level = scratch / "layer.zip", DEFAULT_ZIP_LEVEL
            write_layer_zip(python, layer_zip, zip_level)
        size, sha256 = layer_zip.stat().st_size, file_sha256(layer_zip)
        record = make_record(self.fingerprint, metadata, sha256=sha256, size=size, zip_level=zip_level)
        self.remote.upload(self.fingerprint, layer_zip, record)
        self._note(uploaded=True, size=size)
        logger.info("uploaded layer %s to %s (%d bytes)", self.fingerprint[:12], self.remote.location.url, size)
        return layer_zip

    def _note(self, *, hit: bool | None = None, uploaded: bool | None = None, size: int | None = None) -> None:
        if self.outcome is None:
            return
        now = self.outcome
        self.outcome = RemoteOutcome(
            hit=now.hit if hit is None else hit,
            uploaded=now.uploaded if uploaded is None else uploaded,
            seconds=self._seconds,
            bytes=now.bytes if size is None else now.bytes + size,
        )


def _as_told(manifest: dict[str, Any]) -> Callable[[Path, dict[str, list[Any]]], None]:
    """The check of an unpacked remote layer against its manifest: what a reader is told (its packages
    and versions, its unzipped size) is what it gets."""

    def check(tree: Path, files: dict[str, list[Any]]) -> None:
        total = sum(size for size, _sha in files.values())
        if total != manifest["sizes"]["unzipped_bytes"]:
            raise VerificationError(
                f"it unpacks to {total} bytes, and its manifest says {manifest['sizes']['unzipped_bytes']}"
            )
        found = {(normalize(p.name), p.version) for p in installed_packages(tree)}
        told = {(normalize(p["name"]), p["version"]) for p in manifest.get("packages", [])}
        if found != told:
            odd = sorted(f"{n} {v}" for n, v in found ^ told)
            raise VerificationError(f"its packages are not its manifest's ({', '.join(odd[:5])})")

    return check


def scratch_cache() -> tuple[LayerCache, Callable[[], None]]:
    """A throwaway local cache for a remote hit when the local one is off or unusable; its cleanup."""
    folder = Path(tempfile.mkdtemp(prefix="cdk-lambda-layer-remote-"))
    return LayerCache(folder / "layers"), lambda: shutil.rmtree(folder, ignore_errors=True)
