"""The remote layer cache (issue 18): a fresh machine whose layers are in the remote cache, against the
same machine building them and against a warm local layer cache, with the example app's synth.

    python bench/bench_remote.py [--runs 5]

S3 is moto's server on loopback (a real HTTP S3 API, through real boto3): the network costs of a real
bucket are not in these figures, only everything this library does around them (records, download,
checks, unpacking into the local cache). Every scenario runs the example app as the CDK CLI runs it
(bench/synth_app.py, ``python app`` with CDK_OUTDIR), interleaved, medians; writes the "remote"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Scenario, machine, measure, synth, table, write_section

BUCKET = "layers"


def start_s3() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    import boto3

    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", **keys).create_bucket(Bucket=BUCKET)
    return server, url


def remote_suite(keep: Path) -> list[Scenario]:
    shared = f"s3://{BUCKET}/shared"
    warm_cache = keep / "warm-layer-cache"
    with _remote(shared):
        synth(keep / "fill-cdk.out", "construct", cache=warm_cache)  # builds, fills the local cache and the remote
    fresh = itertools.count()

    def building_and_uploading(work: Path) -> None:
        with _remote(f"s3://{BUCKET}/run-{next(fresh)}"):  # an empty prefix each run: every layer is built
            synth(work / "cdk.out", "construct", cache=work / "empty-cache")

    def remote_hits(work: Path) -> None:
        with _remote(shared, read_only=True):
            synth(work / "cdk.out", "construct", cache=work / "empty-cache")

    return [
        Scenario(
            "warm local layer cache, fresh cdk.out (floor)",
            lambda work: synth(work / "cdk.out", "construct", cache=warm_cache),
        ),
        Scenario("new machine: empty local cache, fresh cdk.out, layers in the remote cache", remote_hits),
        Scenario(
            "same machine building every layer (empty local cache, no remote)",
            lambda work: synth(work / "cdk.out", "construct", cache=work / "empty-cache"),
        ),
        Scenario(
            "building every layer and uploading it (empty local cache, empty remote prefix)", building_and_uploading
        ),
    ]


@contextlib.contextmanager
def _remote(url: str, *, read_only: bool = False):
    before = dict(os.environ)
    os.environ["CDK_LAYER_REMOTE_CACHE"] = url
    os.environ["CDK_LAYER_REMOTE_CACHE_READ_ONLY"] = "1" if read_only else "0"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def write_remote_page(scenarios: list[Scenario], runs: int) -> None:
    floor, hits, building, uploading = (statistics.median(s.times) for s in scenarios)
    body = f"""## Remote layer cache on S3 (issue 18)

`bench/bench_remote.py`: the example app (`bench/synth_app.py`, five layers) synthesized as the CDK CLI
runs it, against moto's S3 server on loopback (real HTTP, real boto3; the bandwidth and latency of a real
bucket are not in these figures). Each "new machine" run starts with an empty local layer cache and a
fresh cdk.out; the remote cache holds the app's layers. {runs} runs each, interleaved.

Machine: {machine()}.

{table(scenarios)}

Goals: a new machine taking every layer from the remote ≤ 1.3× the warm-local-cache synth:
**{hits / floor:.2f}×** ({"met" if hits / floor <= 1.3 else "missed"}); ≤ 0.5× the same machine building
them: **{hits / building:.2f}×** ({"met" if hits / building <= 0.5 else "missed"}). A building machine that
uploads takes **{uploading / building:.2f}×** the time of one that does not (for each layer the construct
builds a zip is made, since CDK zips assets itself, then the blob and the record go up; within the noise
of this machine when the figure is near 1×, see the min–max column).
"""
    write_section("remote", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server, url = start_s3()
    keys = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update({**keys, "AWS_ENDPOINT_URL_S3": url, "AWS_EC2_METADATA_DISABLED": "true"})
    try:
        with tempfile.TemporaryDirectory(prefix="bench-remote-") as keep:
            scenarios = remote_suite(Path(keep))
            measure(scenarios, args.runs)
        write_remote_page(scenarios, args.runs)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
