"""Talking to S3 through boto3 and its standard credential chain, never worse than no remote at all.

boto3 finds credentials and the endpoint the way every AWS tool does (profiles, SSO, instance and
OIDC roles, ``AWS_*`` variables, ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for S3-compatible
stores such as MinIO). Timeouts are short and retries few, so an unreachable endpoint costs seconds,
not minutes; the first failure to reach the remote gives it up for the rest of the process (every
later layer of a synth builds locally at once), and every failure becomes one line that names the
cause and the fix. No credential is ever put in a message: the secrets of the environment are
redacted from whatever botocore says.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

from ...core.runner import redact
from .location import RemoteLocation

#: Seconds to open a connection and to wait for a read: a remote that is down costs little. A small
#: request (a record, a lookup: the first contact of every build) waits QUICK_READ_TIMEOUT for its
#: answer, so an endpoint that accepts connections and never answers costs seconds, not a minute; a
#: blob's transfer, once the remote has answered, READ_TIMEOUT between two reads.
CONNECT_TIMEOUT = 2
QUICK_READ_TIMEOUT = 2
READ_TIMEOUT = 20
#: Attempts per request, the first included (botocore's standard mode: throttling backs off, no storm).
MAX_ATTEMPTS = 2
#: Multipart transfers above this size, in parts of this size (boto3's managed transfer).
MULTIPART_BYTES = 8 * 1024 * 1024

_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "403",
    "AllAccessDisabled",
}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503", "ServiceUnavailable"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


class RemoteFailure(Exception):
    """The remote cannot be used right now: ``reason`` says why and what to do (one line, no secret)."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The object is not there (a record or blob that does not exist): not a failure of the remote.
        self.missing = missing


#: Remote caches given up for the rest of this process (url -> why), after their first failure.
_GIVEN_UP: dict[str, str] = {}


def given_up(location: RemoteLocation) -> str | None:
    return _GIVEN_UP.get(location.url)


def give_up(location: RemoteLocation, reason: str) -> None:
    _GIVEN_UP.setdefault(location.url, reason)


def s3_client(*, quick: bool = False) -> Any:
    """A boto3 S3 client with short timeouts and few retries (one per process and kind: clients are
    thread-safe); ``quick`` for small requests, which wait QUICK_READ_TIMEOUT for an answer."""
    try:
        return _client(QUICK_READ_TIMEOUT if quick else READ_TIMEOUT)
    except ImportError as exc:
        raise RemoteFailure(
            "boto3 is not installed, which the remote cache needs: pip install 'cdk-lambda-layer[s3]'"
        ) from exc


class _NoRefreshTraceback(logging.Filter):
    """botocore logs a failed refresh of expiring credentials as a warning with a traceback, and then
    raises: the raise becomes the build's one warning, so the log record is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.exc_info is None


_QUIET = _NoRefreshTraceback()


@cache
def _client(read_timeout: int) -> Any:
    import boto3
    from botocore.config import Config

    logging.getLogger("botocore.credentials").addFilter(_QUIET)  # once: a filter is added only once
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        user_agent_extra="cdk-lambda-layer",
    )
    return boto3.session.Session().client("s3", config=config)


def transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES, max_concurrency=4)


def reset() -> None:
    """Forget the client and the remotes given up (tests start each machine afresh)."""
    _client.cache_clear()
    _GIVEN_UP.clear()


def failure(exc: BaseException, location: RemoteLocation, doing: str, *, writing: bool = False) -> RemoteFailure:
    """What a botocore error means for the user: the cause and the fix, in one line. A missing object is
    a miss when reading; when ``writing``, a "not found" means the endpoint or bucket is not what it seems."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        SSOError,
        TokenRetrievalError,
    )

    where = location.url
    exc = _cause(exc)
    endpoint = _clean(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "S3")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
        message = _clean(str(error.get("Message") or code))
        if code in _MISSING and not writing:
            return RemoteFailure(f"{doing}: not found", missing=True)
        if code in _MISSING:
            reason = (
                f"{endpoint} answered {doing} with {code} ({message}): it is not the S3 API of {where}; check "
                "AWS_ENDPOINT_URL_S3 and the remote cache URL"
            )
        elif code == "NoSuchBucket":
            reason = f"the bucket of {where} does not exist ({message}): create it, or fix the remote cache URL"
        elif code in _DENIED:
            rights = (
                "s3:GetObject and s3:ListBucket"
                if location.read_only
                else "s3:GetObject, s3:PutObject and s3:ListBucket"
            )
            reason = (
                f"S3 refused {doing} ({code}: {message}): check the credentials (AWS_PROFILE, the role, AWS_* "
                f"variables) and that they grant {rights} on {where}"
            )
        elif code in _THROTTLED:
            reason = f"S3 is throttling {doing} ({code}): the next run tries again"
        else:
            reason = f"S3 answered {doing} with {code}: {message}"
        return RemoteFailure(reason)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return RemoteFailure(
            f"no AWS credentials for {where} ({_clean(str(exc))}): configure a profile, SSO, a role or the AWS_* "
            "variables, or turn the remote cache off (--no-remote-cache / CDK_LAYER_REMOTE_CACHE=off)"
        )
    if isinstance(exc, (ProfileNotFound, CredentialRetrievalError, TokenRetrievalError, SSOError)):
        return RemoteFailure(
            f"the AWS credentials for {where} cannot be had ({_clean(str(exc))}): fix AWS_PROFILE, log in again "
            "(aws sso login) or renew them, or turn the remote cache off (--no-remote-cache / "
            "CDK_LAYER_REMOTE_CACHE=off)"
        )
    if isinstance(exc, (ConnectionError, HTTPClientError)):  # refused, unresolvable, a timeout, cut off
        return RemoteFailure(
            f"cannot reach {endpoint} for {where} ({_clean(str(exc))}): check the network, the proxy "
            "(HTTPS_PROXY) and AWS_ENDPOINT_URL_S3"
        )
    if isinstance(exc, BotoCoreError):
        return RemoteFailure(f"{doing} failed: {_clean(str(exc))}")
    return RemoteFailure(f"{doing} failed: {_clean(f'{exc.__class__.__name__}: {exc}')}")


def _cause(exc: BaseException) -> BaseException:
    """The botocore error under boto3's transfer errors (S3UploadFailedError wraps the ClientError)."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen = exc
    while not isinstance(seen, (ClientError, BotoCoreError)):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            return exc
        seen = inner
    return seen


def _clean(text: str) -> str:
    """One line, with every credential of the environment replaced by ***."""
    secrets = [os.environ.get(v, "") for v in _SECRET_VARIABLES]
    return redact(" ".join(text.split()), secrets)[:300]
