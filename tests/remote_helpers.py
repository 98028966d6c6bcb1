"""A real S3 API on loopback for the remote cache tests: moto's server mode in its own process, spoken to
through real boto3 (never moto's in-process mocks), with IAM authentication on: a writer's and a reader's
access keys, and anything else refused. Plus a throttled TCP relay in front of it, for a slow network."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3

BUCKET = "layers"
#: Requests moto serves before it starts authenticating: exactly the set-up below.
_SETUP_ACTIONS = 7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


@dataclass
class S3Server:
    url: str
    writer: dict[str, str]
    reader: dict[str, str]
    process: subprocess.Popen = field(repr=False)

    def client(self, keys: dict[str, str] | None = None):
        keys = keys or self.writer
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
        )

    def env(self, keys: dict[str, str] | None = None, *, endpoint: str | None = None) -> dict[str, str]:
        """The variables a machine of the fleet has: its keys and the endpoint, and no AWS config of this
        machine's user (no profile, no instance metadata)."""
        keys = keys or self.writer
        return {
            "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
            "AWS_ENDPOINT_URL_S3": endpoint or self.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def objects(self, prefix: str) -> dict[str, bytes]:
        s3 = self.client()
        found = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in found}

    def put(self, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=BUCKET, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=BUCKET, Key=key)

    def multipart_uploads(self, prefix: str) -> list[dict]:
        return self.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def start_server() -> S3Server:
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(port)
    url = f"http://127.0.0.1:{port}"
    setup = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3, iam = boto3.client("s3", **setup), boto3.client("iam", **setup)
    s3.create_bucket(Bucket=BUCKET)  # 1
    keys = {}
    for user, actions in (("writer", "s3:*"), ("reader", ["s3:GetObject", "s3:ListBucket"])):
        iam.create_user(UserName=user)  # 2, 5
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(policy))  # 3, 6
        keys[user] = iam.create_access_key(UserName=user)["AccessKey"]  # 4, 7
    return S3Server(url=url, writer=keys["writer"], reader=keys["reader"], process=process)


def new_prefix() -> str:
    return f"fleet-{uuid.uuid4().hex[:10]}"


class SlowRelay:
    """A TCP relay to ``port`` that passes at most ``rate`` bytes per second each way: a slow network, so
    that a transfer is still going when a test kills the process making it."""

    def __init__(self, port: int, rate: int) -> None:
        self.target, self.rate = port, rate
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        chunk = max(1024, self.rate // 20)
        with contextlib.suppress(OSError):
            while data := source.recv(chunk):
                sink.sendall(data)
                time.sleep(len(data) / self.rate)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


def cli(project: Path, cache: Path, env: dict[str, str], *args: str, build_dir: Path | None = None, **popen):
    """``cdk-lambda-layer build PROJECT --json`` as a machine of the fleet runs it (its own process)."""
    argv = [sys.executable, "-m", "cdk_lambda_layer", "build", str(project), "--json", *args]
    if build_dir is not None:
        argv += ["--build-dir", str(build_dir)]
    full = {**os.environ, **env, "CDK_LAYER_CACHE_DIR": str(cache)}
    if popen:
        return subprocess.Popen(argv, env=full, text=True, **popen)
    return subprocess.run(argv, env=full, capture_output=True, text=True, check=False, timeout=900)


class Blackhole:
    """An endpoint that accepts every connection and never answers a byte (a firewall that drops replies, a
    hung proxy): how long a build waits on it is what the remote's timeouts are worth."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.server.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


class NotS3:
    """An HTTP endpoint that is not S3: it answers every request with ``status`` and ``body`` (a web page,
    a captive portal, a throttling front with 503 SlowDown)."""

    def __init__(self, status: int, body: bytes) -> None:
        import http.server

        class Answer(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_HEAD = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
