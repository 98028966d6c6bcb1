"""The S3 operations of the remote cache: read a record, fetch a blob (checked), upload blob then record.

Every call raises RemoteFailure (client.py) on any error, with the cause and the fix; a missing
object is a RemoteFailure with ``missing`` set. Blobs move with boto3's managed (multipart)
transfer; a download lands in a file the caller names, and is checked against the record's size
and sha256 before it is used for anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..entry import file_sha256
from .client import RemoteFailure, failure, s3_client, transfer_config
from .location import RemoteLocation
from .record import blob_key, record_key

#: A record is a few kilobytes; anything much larger is not one of ours.
MAX_RECORD_BYTES = 4 * 1024 * 1024


class RemoteCache:
    """Records and blobs under one ``s3://bucket/prefix``."""

    def __init__(self, location: RemoteLocation) -> None:
        self.location = location

    def _call(self, doing: str, action: Any, *, quick: bool = False, writing: bool = False) -> Any:
        """``action(client)``; ``quick`` for a small request (a short wait for its answer)."""
        try:
            return action(s3_client(quick=quick))
        except RemoteFailure:
            raise
        except Exception as exc:  # botocore's errors, the network's, a broken transfer: all one failure
            raise failure(exc, self.location, doing, writing=writing) from exc

    def record(self, fingerprint: str) -> dict[str, Any] | None:
        """The record of ``fingerprint``, or None when there is none; a record that is not JSON raises."""
        key = self.location.key(record_key(fingerprint))
        try:
            answer = self._call(
                "reading a record", lambda s3: s3.get_object(Bucket=self.location.bucket, Key=key), quick=True
            )
            self._check_s3(answer)
            body = self._call("reading a record", lambda _s3: answer["Body"].read(MAX_RECORD_BYTES + 1))
        except RemoteFailure as exc:
            if exc.missing:
                return None
            raise
        if len(body) > MAX_RECORD_BYTES:
            raise ValueError("the record is larger than any record this library writes")
        try:
            return json.loads(body)
        except RecursionError:  # nested deeper than any JSON of ours
            raise ValueError("the record is nested deeper than any record this library writes") from None

    def download(self, sha256: str, size: int, destination: Path) -> None:
        """Fetch the blob into ``destination``; a ValueError if it is not the ``size`` bytes of ``sha256``
        (an object of another size is not even downloaded: a huge one must not fill the disk first)."""
        key = self.location.key(blob_key(sha256))
        found = self._call(
            "looking up a layer",
            lambda s3: s3.head_object(Bucket=self.location.bucket, Key=key).get("ContentLength"),
            quick=True,
        )
        if found != size:
            raise ValueError(f"the blob is not the one its record names ({found} bytes, expected {size})")
        self._call(
            "downloading a layer",
            lambda s3: s3.download_file(self.location.bucket, key, str(destination), Config=transfer_config()),
        )
        got = destination.stat().st_size
        if got != size or file_sha256(destination) != sha256:
            raise ValueError(f"the blob is not the one its record names ({got} bytes, expected {size} and its sha256)")

    def upload(self, fingerprint: str, layer_zip: Path, record: dict[str, Any]) -> None:
        """The blob first, the record last: a record never points at a blob that is not whole."""
        blob = self.location.key(blob_key(record["blob"]["sha256"]))
        self._call(
            "uploading a layer",
            lambda s3: s3.upload_file(str(layer_zip), self.location.bucket, blob, Config=transfer_config()),
            writing=True,
        )
        body = json.dumps(record, sort_keys=True).encode()
        answer = self._call(
            "writing a record",
            lambda s3: s3.put_object(
                Bucket=self.location.bucket,
                Key=self.location.key(record_key(fingerprint)),
                Body=body,
                ContentType="application/json",
            ),
            quick=True,
            writing=True,
        )
        self._check_s3(answer)

    def _check_s3(self, answer: dict[str, Any]) -> None:
        """S3 (and every store that speaks its API) names each object it stores or serves by its ETag: an
        endpoint that answers without one is not S3 (a web page, a captive portal), and is given up."""
        if not answer.get("ETag"):
            raise RemoteFailure(
                f"the endpoint of {self.location.url} does not answer as S3 does (no ETag): check AWS_ENDPOINT_URL_S3"
            )

    def records(self) -> list[dict[str, Any]]:
        """Every record under the prefix (for ``cache list --remote``), with its S3 date; unreadable ones
        as ``{"fingerprint": ..., "problem": ...}``."""
        prefix = self.location.key("records/")

        def keys(s3: Any) -> list[dict[str, Any]]:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.location.bucket, Prefix=prefix)
            return [item for page in pages for item in page.get("Contents", [])]

        found = []
        for item in self._call("listing records", keys):
            fingerprint = item["Key"].rsplit("/", 1)[-1].removesuffix(".json")
            try:
                record = self.record(fingerprint) or {}
            except (ValueError, RemoteFailure) as exc:
                record = {"problem": str(exc)}
            if not isinstance(record, dict):
                record = {"problem": "not a JSON object"}
            found.append({**record, "fingerprint": fingerprint, "modified": item["LastModified"].isoformat()})
        return found
