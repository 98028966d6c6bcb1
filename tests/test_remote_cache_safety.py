"""The remote layer cache holds whatever a record or a blob says, whatever the endpoint does: a hostile or
broken zip never writes outside the entry it is unpacked into, a record not shaped as this library writes
it is never used (and never crashes a build), the unpacked layer is the one its manifest describes, and an
endpoint that is slow, hung, not S3 or refusing costs seconds and one warning naming the fix.

Like tests/test_remote_cache.py: a real S3 API (moto's server mode, IAM authentication on) through real
boto3, each machine a process of its own; hung and non-S3 endpoints are real sockets on loopback.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from remote_helpers import BUCKET, Blackhole, NotS3, SlowRelay, cli, new_prefix, start_server

from cdk_lambda_layer.errors import VerificationError
from cdk_lambda_layer.package.unpack import unpack_layer_zip

pytestmark = pytest.mark.network

FILE, LINK, DIR = 0o100644, 0o120777, 0o040755


@pytest.fixture(scope="module")
def s3():
    server = start_server()
    yield server
    server.process.kill()
    server.process.wait()


@pytest.fixture
def prefix():
    return new_prefix()


def remote(prefix, *extra):
    return ("--remote-cache", f"s3://{BUCKET}/{prefix}", *extra)


def machine(project, tmp_path, name, env, *args):
    """One machine (its own process, local cache and build folder): the parsed --json, the process."""
    done = cli(project, tmp_path / f"{name}-cache", env, *args, build_dir=tmp_path / f"{name}-build")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout), done


def remote_warnings(result):
    return [w for w in result["warnings"] if "remote" in w]


def zip_of(members, *, prefix_bytes=b"", comment=b"") -> bytes:
    """A zip of (name, data, mode) members, written member by member as a hostile writer would."""
    buffer = io.BytesIO()
    buffer.write(prefix_bytes)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        archive.comment = comment
    return buffer.getvalue()


def members_of(blob: bytes):
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return [(i.filename, archive.read(i), i.external_attr >> 16) for i in archive.infolist()]


def published(s3, prefix, fingerprint):
    """The record and the blob a writer put there."""
    objects = s3.objects(prefix)
    record = json.loads(objects[f"{prefix}/records/{fingerprint}.json"])
    return record, objects[f"{prefix}/blobs/{record['blob']['sha256']}.zip"]


def replace(s3, prefix, fingerprint, record, blob: bytes | None = None) -> None:
    """What a (broken or hostile) writer does: a blob under its own sha256, and a record naming it."""
    record = json.loads(json.dumps(record))
    if blob is not None:
        sha = hashlib.sha256(blob).hexdigest()
        s3.put(f"{prefix}/blobs/{sha}.zip", blob)
        record["blob"].update(sha256=sha, size=len(blob))
    s3.put(f"{prefix}/records/{fingerprint}.json", json.dumps(record).encode())


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- unpacking: what a zip may put on disk -------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    ("members", "said"),
    [
        ([("python//{outside}", b"x", FILE)], "not a plain path"),
        ([("python/./a", b"x", FILE), ("python/a", b"y", FILE)], "not a plain path"),
        ([("python/.", b"x", FILE)], "not a plain path"),
        ([("python", b"x", FILE)], "not a plain path"),
        ([("python/../x", b"x", FILE)], "not a plain path"),
        ([("python/a\\b", b"x", FILE)], "not a plain path"),
        ([("python/x", b"x", FILE), ("python/x/y", b"y", FILE)], "'python/x' is a file"),
        ([("python/x/", b"", DIR), ("python/x", b"y", FILE)], "twice"),
        ([("python/a", b"x", FILE), ("python/a", b"y", FILE)], "twice"),
        ([("python/l", b"/etc/passwd", LINK)], "not a regular file"),
        ([("python/fifo", b"", stat.S_IFIFO | 0o644)], "not a regular file"),
    ],
)
def test_a_zip_member_that_is_not_a_plain_file_under_python_writes_nothing(tmp_path, members, said):
    outside = tmp_path / "outside.txt"
    members = [(name.format(outside=str(outside).lstrip("/")), data, mode) for name, data, mode in members]
    layer = tmp_path / "layer.zip"
    layer.write_bytes(zip_of(members))
    with pytest.raises(VerificationError, match=said):
        unpack_layer_zip(layer, tmp_path / "python", max_bytes=10**9)
    assert not outside.exists()
    assert not (tmp_path / "python").exists() or files_under(tmp_path / "python") == {}


@pytest.mark.parametrize(
    "shape", ["stub before it", "comment", "declared size too big", "declared size a lie", "empty file"]
)
def test_a_zip_that_is_not_a_plain_layer_zip_is_refused(tmp_path, shape):
    members = [("python/a.py", b"a = 1\n", FILE)]
    if shape == "stub before it":
        data = zip_of(members, prefix_bytes=b'#!/bin/sh\nexec unzip "$0"\n')
    elif shape == "comment":
        data = zip_of(members, comment=b"hello")
    elif shape == "declared size too big":
        data = zip_of([("python/big.bin", b"\0" * 2_000_000, FILE)])  # a 2 MB bomb of a few kB
    elif shape == "declared size a lie":  # the entry says 10 bytes; the data inflates to 2 MB
        data = bytearray(zip_of([("python/big.bin", b"\0" * 2_000_000, FILE)]))
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.find(signature)
            data[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
        data = bytes(data)
    else:
        data = b""
    layer = tmp_path / "layer.zip"
    layer.write_bytes(data)
    with pytest.raises(VerificationError):
        unpack_layer_zip(layer, tmp_path / "python", max_bytes=1_000_000)
    written = sum(p.stat().st_size for p in (tmp_path / "python").rglob("*") if p.is_file())
    assert written <= 1_000_000


# -- a hostile or broken record or blob, through S3 -------------------------------------------------


def test_a_remote_zip_naming_an_absolute_path_writes_nothing_outside_and_is_replaced(
    s3, prefix, project_copy, tmp_path
):
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    record, blob = published(s3, prefix, first["fingerprint"])
    planted = tmp_path / "planted.txt"
    evil = zip_of([*members_of(blob), (f"python//{str(planted).lstrip('/')}", b"owned\n", FILE)])
    replace(s3, prefix, first["fingerprint"], record, evil)
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert not planted.exists()
    assert second["cache"] == "built" and second["remote"]["hit"] is False and second["remote"]["uploaded"]
    (warned,) = remote_warnings(second)
    assert "not a plain path" in warned and "the build's upload replaces it" in warned
    assert published(s3, prefix, first["fingerprint"])[1] == blob


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("nested", "nested deeper"),
        ("not an object", "not a JSON object"),
        ("target", "target is a str"),
        ("sizes", "has no sizes"),
        ("bytecode", "bytecode is a str"),
        ("import_check", "import_check is a list"),
        ("packages", "packages are not names and versions"),
        ("warnings", "warnings are not text"),
        ("tool", "tool is a str"),
        ("zip level", "no size or zip level"),
    ],
)
def test_a_record_not_shaped_as_ours_is_never_used_and_never_stops_the_build(
    s3, prefix, project_copy, tmp_path, damage, said
):
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    fingerprint = first["fingerprint"]
    record, _blob = published(s3, prefix, fingerprint)
    key = f"{prefix}/records/{fingerprint}.json"
    manifest = record["manifest"]
    if damage == "nested":
        s3.put(key, b"[" * 100_000 + b"]" * 100_000)
    elif damage == "not an object":
        s3.put(key, b"[1, 2]")
    else:
        if damage == "target":
            manifest["target"] = "python3.12"
        elif damage == "sizes":
            manifest["sizes"] = {}
        elif damage == "bytecode":
            manifest["bytecode"] = "yes"
        elif damage == "import_check":
            manifest["import_check"] = []
        elif damage == "packages":
            manifest["packages"] = [{"name": 1}]
        elif damage == "warnings":
            manifest["warnings"] = [{"x": 1}]
        elif damage == "tool":
            manifest["tool"] = "uv"
        else:
            record["blob"]["zip_level"] = True
        replace(s3, prefix, fingerprint, record)
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert second["cache"] == "built" and second["remote"]["uploaded"]
    (warned,) = remote_warnings(second)
    assert said in warned and "the build's upload replaces it" in warned
    # the local cache kept the good layer, not the bad record: the next run is a clean local hit
    third, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert third["cache"] == "local" and remote_warnings(third) == []
    fourth, _ = machine(project, tmp_path, "c", s3.env(), *remote(prefix))
    assert fourth["cache"] == "remote"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("empty layer", "unpacks to 0 bytes"),
        ("extra file", "unpacks to"),
        ("package version", "its packages are not its manifest's"),
    ],
)
def test_a_remote_layer_is_served_only_if_it_is_what_its_manifest_says(
    s3, prefix, project_copy, tmp_path, change, said
):
    """Its sha256 is its record's, but the layer inside is not the one described: never served."""
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    record, blob = published(s3, prefix, first["fingerprint"])
    members = members_of(blob)
    if change == "empty layer":
        members = []
    elif change == "extra file":
        members.append(("python/sitecustomize.py", b"import os; os.system('id')\n", FILE))
    else:  # the same bytes, another version: orjson 3.x.y -> 9.x.y in its METADATA
        (index,) = [i for i, m in enumerate(members) if m[0].endswith(".dist-info/METADATA") and "orjson" in m[0]]
        name, data, mode = members[index]
        version = next(line for line in data.decode().splitlines() if line.startswith("Version: "))
        members[index] = (name, data.replace(version.encode(), f"Version: 9{version[10:]}".encode()), mode)
    replace(s3, prefix, first["fingerprint"], record, zip_of(members) if members else zip_of([]))
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert second["cache"] == "built" and second["remote"]["hit"] is False
    (warned,) = remote_warnings(second)
    assert said in warned
    assert sorted((p["name"], p["version"]) for p in second["packages"]) == sorted(
        (p["name"], p["version"]) for p in first["packages"]
    )


def test_a_blob_larger_than_its_record_says_is_not_downloaded(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    record, _blob = published(s3, prefix, first["fingerprint"])
    s3.put(f"{prefix}/blobs/{record['blob']['sha256']}.zip", b"\0" * 30_000_000)
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    (warned,) = remote_warnings(second)
    assert "30000000 bytes" in warned and second["cache"] == "built"
    assert second["remote"]["bytes"] < 10_000_000  # the upload's, not 30 MB downloaded first


def test_a_record_of_a_newer_format_is_left_for_its_version(s3, prefix, project_copy, tmp_path):
    """Mixed versions in one fleet: an older reader neither uses a newer record nor replaces it (no
    ping-pong of rewrites between the versions), and says so once."""
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    record, _blob = published(s3, prefix, first["fingerprint"])
    record["format"] = 99
    replace(s3, prefix, first["fingerprint"], record)
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert second["cache"] == "built" and not second["remote"]["uploaded"]
    (warned,) = remote_warnings(second)
    assert "newer cdk-lambda-layer" in warned and "upgrade" in warned
    assert published(s3, prefix, first["fingerprint"])[0]["format"] == 99


def test_cache_list_survives_records_that_are_not_ours(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    s3.put(f"{prefix}/records/{'a' * 64}.json", b"[1]")
    s3.put(f"{prefix}/records/{'b' * 64}.json", b"[" * 100_000)
    done = subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "cache", "list", "--remote", f"s3://{BUCKET}/{prefix}", "--json"],
        env={**os.environ, **s3.env()},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    rows = {r["fingerprint"]: r for r in json.loads(done.stdout)["records"]}
    assert len(rows) == 3 and rows["a" * 64]["problem"] and rows["b" * 64]["problem"]


# -- read-only ---------------------------------------------------------------------------------------


def test_a_read_only_run_writes_nothing_on_a_miss_a_hit_or_a_damaged_record(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    ro = remote(prefix, "--remote-cache-read-only")
    machine(project, tmp_path, "a", s3.env(), *ro)  # a miss
    assert s3.objects(prefix) == {} and s3.multipart_uploads(prefix) == []
    first, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    record, blob = published(s3, prefix, first["fingerprint"])
    before = s3.objects(prefix)
    hit, _ = machine(project, tmp_path, "c", s3.env(), *ro)
    assert hit["cache"] == "remote"
    for damaged in (zip_of([("python/../x", b"x", FILE)]), blob[:-10] + b"0" * 10):
        replace(s3, prefix, first["fingerprint"], record, damaged)
        before = s3.objects(prefix)
        result, _ = machine(project, tmp_path, f"d{len(before)}", s3.env(), *ro)
        (warned,) = remote_warnings(result)
        assert "replaces" not in warned and not result["remote"]["uploaded"]
        assert s3.objects(prefix) == before and s3.multipart_uploads(prefix) == []


# -- endpoints that hang, are not S3, or refuse -------------------------------------------------------


def test_an_endpoint_that_accepts_and_never_answers_costs_seconds(s3, prefix, project_copy, tmp_path):
    hole = Blackhole()
    try:
        started = time.monotonic()
        result, _ = machine(project_copy("uv_app"), tmp_path, "a", s3.env(endpoint=hole.url), *remote(prefix))
        wall = time.monotonic() - started
    finally:
        hole.close()
    (warned,) = remote_warnings(result)
    assert "cannot reach" in warned and "AWS_ENDPOINT_URL_S3" in warned
    assert result["cache"] == "built" and result["remote"]["seconds"] < 8, result["remote"]
    assert wall < 60


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (200, b"<html>Welcome to the hotel wifi</html>", "does not answer as S3 does"),
        (404, b"<html>no such page</html>", "not the S3 API"),
        (503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>", "throttling"),
    ],
)
def test_an_endpoint_that_is_not_s3_costs_one_warning(s3, prefix, project_copy, tmp_path, status, body, said):
    endpoint = NotS3(status, body)
    try:
        result, _ = machine(project_copy("uv_app"), tmp_path, "a", s3.env(endpoint=endpoint.url), *remote(prefix))
    finally:
        endpoint.close()
    (warned,) = remote_warnings(result)
    assert said in warned and warned.startswith("remote unavailable") and "\n" not in warned
    assert result["cache"] == "built" and not result["remote"]["uploaded"] and result["remote"]["seconds"] < 8


def test_a_profile_that_does_not_exist_costs_one_warning_naming_the_fix(s3, prefix, project_copy, tmp_path):
    env = {**s3.env(), "AWS_PROFILE": "no-such-profile"}
    result, _ = machine(project_copy("uv_app"), tmp_path, "a", env, *remote(prefix))
    (warned,) = remote_warnings(result)
    assert "no-such-profile" in warned and "AWS_PROFILE" in warned and "--no-remote-cache" in warned


def test_credentials_that_expire_mid_run_cost_one_warning_and_no_traceback(s3, prefix, project_copy, tmp_path):
    """A credential_process (SSO, a vault helper) that hands out credentials about to expire, and fails when
    botocore refreshes them: botocore logs that with a traceback; the build shows one line."""
    helper = tmp_path / "credentials.py"
    count = tmp_path / "count"
    helper.write_text(
        "import datetime, json, pathlib, sys\n"
        f"count = pathlib.Path({str(count)!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        "if n: sys.exit('the session expired: log in again')\n"
        "soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': {s3.writer['AccessKeyId']!r}, "
        f"'SecretAccessKey': {s3.writer['SecretAccessKey']!r}, 'Expiration': soon.isoformat()}}))\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[profile fleet]\ncredential_process = {sys.executable} {helper}\n")
    env = {k: v for k, v in s3.env().items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k}
    env.update(AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="", AWS_CONFIG_FILE=str(config), AWS_PROFILE="fleet")
    result, done = machine(project_copy("uv_app"), tmp_path, "a", env, *remote(prefix))
    assert int(count.read_text()) >= 2  # the credentials were had, then their refresh failed
    (warned,) = remote_warnings(result)
    assert "log in again" in warned and "--no-remote-cache" in warned
    assert "Refreshing temporary credentials" not in done.stderr


def test_no_secret_of_the_environment_or_the_endpoint_url_reaches_any_output_or_file(
    s3, prefix, project_copy, tmp_path
):
    secret_in_url = "url-password-5e1f"
    endpoint = s3.url.replace("http://", f"http://fleet:{secret_in_url}@")
    project = project_copy("uv_app")
    seen = []
    first, done = machine(project, tmp_path, "a", s3.env(endpoint=endpoint), *remote(prefix, "-v"))
    assert first["remote"]["uploaded"]
    seen.append(done)
    token = {"AWS_SESSION_TOKEN": "session-token-7c3a"}  # refused by the server: the failure path too
    _, done = machine(project, tmp_path, "b", {**s3.env(endpoint=endpoint), **token}, *remote(prefix, "-v"))
    seen.append(done)
    closed = s3.env(endpoint=f"http://fleet:{secret_in_url}@127.0.0.1:9")
    result, done = machine(project, tmp_path, "c", closed, *remote(prefix, "-v"))
    assert "cannot reach" in remote_warnings(result)[0]
    seen.append(done)
    secrets = (secret_in_url, s3.writer["SecretAccessKey"], "session-token-7c3a")
    for secret in secrets:
        for done in seen:
            assert secret not in done.stdout + done.stderr
        for folder in tmp_path.iterdir():
            if folder.is_dir() and folder.name != project.name:
                for path, data in files_under(folder).items():
                    assert secret.encode() not in data, path
        for key, data in s3.objects(prefix).items():
            assert secret.encode() not in data, key


# -- several layers in one process, killed processes, two fetches at once ----------------------------


def test_many_layers_in_one_process_give_an_unreachable_remote_up_after_the_first(project_copy, tmp_path):
    """A monorepo synth: the first layer pays for the hung endpoint, every later one builds at once."""
    script = tmp_path / "many.py"
    script.write_text(
        "import json, sys\n"
        "from cdk_lambda_layer import UVBasedLambdaLayerLocalBuilder\n"
        "out = []\n"
        "for n, (python, arch) in enumerate([('3.12', 'x86_64'), ('3.13', 'x86_64'), ('3.12', 'arm64')]):\n"
        "    b = UVBasedLambdaLayerLocalBuilder(sys.argv[1], python=python, architecture=arch,\n"
        "        build_dir=f'{sys.argv[2]}/{n}', remote_cache='s3://layers/monorepo', cache_dir=False)\n"
        "    r = b.run()\n"
        "    out.append({'seconds': r.remote.seconds, 'warnings': [w for w in r.warnings if 'remote' in w]})\n"
        "print(json.dumps(out))\n"
    )
    hole = Blackhole()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAFLEET",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_ENDPOINT_URL_S3": hole.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    try:
        done = subprocess.run(
            [sys.executable, str(script), str(project_copy("uv_app")), str(tmp_path / "builds")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        hole.close()
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    first, *later = json.loads(done.stdout.splitlines()[-1])
    assert 0 < first["seconds"] < 8 and "cannot reach" in first["warnings"][0]
    assert all(r["seconds"] == 0 and len(r["warnings"]) == 1 for r in later), later


def test_a_fetch_killed_mid_download_leaves_nothing_served_and_the_next_run_fetches(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    relay = SlowRelay(int(s3.url.rsplit(":", 1)[1]), rate=200_000)  # the 2.9 MB blob takes ~15 s
    cache = tmp_path / "b-cache"
    try:
        child = cli(project, cache, s3.env(endpoint=relay.url), *remote(prefix), stdout=-1, stderr=-1)
        deadline = time.time() + 120
        while not list(cache.glob(".tmp-*/layer.zip*")) and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, "the download ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        relay.close()
    assert not [p for p in cache.iterdir() if len(p.name) == 64]  # no entry, partial or not
    second, _ = machine(project, tmp_path, "b", s3.env(), *remote(prefix))
    assert second["cache"] == "remote" and remote_warnings(second) == []
    assert Path(second["layer_zip"]).read_bytes() == Path(first["layer_zip"]).read_bytes()
    assert not list(cache.glob(".tmp-*"))  # the killed fetch's folder was swept


def test_two_fetches_of_one_layer_into_one_local_cache_both_succeed_with_one_entry(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    first, _ = machine(project, tmp_path, "a", s3.env(), *remote(prefix))
    cache = tmp_path / "shared-cache"
    runs = [
        cli(project, cache, s3.env(), *remote(prefix), build_dir=tmp_path / f"b{n}", stdout=-1, stderr=-1)
        for n in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    results = [json.loads(out) for out, _err in outputs]
    assert sorted(r["cache"] for r in results) == ["local", "remote"]
    assert [p.name for p in cache.iterdir() if len(p.name) == 64] == [first["fingerprint"]]
