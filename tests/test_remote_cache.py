"""The remote layer cache on S3: each fingerprint built once for a fleet of machines, and never worse
than no remote at all.

Every test runs against a real S3 API on loopback (moto's server mode, IAM authentication on) through
real boto3; a "machine" is a process of its own with an empty local cache. Faults are real ones: a
process killed mid-upload over a slow link, objects tampered with or deleted in the bucket, wrong keys,
a closed port, a reader's keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest
from remote_helpers import BUCKET, SlowRelay, cli, free_port, new_prefix, start_server

from cdk_lambda_layer import RemoteCacheError

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def s3():
    server = start_server()
    yield server
    server.process.kill()
    server.process.wait()


@pytest.fixture
def prefix():
    return new_prefix()


def build(project, tmp_path, name, env, *args):
    """One machine: its own local cache and build folder; the parsed --json and the process."""
    done = cli(project, tmp_path / f"{name}-cache", env, *args, build_dir=tmp_path / f"{name}-build")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout), done


def zip_bytes(result) -> bytes:
    return Path(result["layer_zip"]).read_bytes()


def record_of(s3, prefix, fingerprint):
    return json.loads(s3.objects(f"{prefix}/records/")[f"{prefix}/records/{fingerprint}.json"])


def remote_args(s3, prefix, *extra):
    return ("--remote-cache", f"s3://{BUCKET}/{prefix}", *extra)


def test_a_new_machine_takes_the_layer_from_the_remote_and_builds_nothing(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    first, shown = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    assert first["cache"] == "built" and first["remote"]["uploaded"] is True and first["remote"]["hit"] is False
    assert "uploaded" in shown.stderr
    second, shown = build(project, tmp_path, "b", s3.env(), *remote_args(s3, prefix))
    assert second["cache"] == "remote" and second["cached"] is True
    assert second["remote"]["hit"] is True and second["remote"]["uploaded"] is False
    assert second["remote"]["bytes"] == len(zip_bytes(first)) and second["remote"]["seconds"] > 0
    assert "remote hit" in shown.stderr
    assert "install" not in second["steps"] and "export" not in second["steps"]
    assert second["fingerprint"] == first["fingerprint"]
    assert zip_bytes(second) == zip_bytes(first)  # byte-identical
    assert [p["name"] for p in second["packages"]] == [p["name"] for p in first["packages"]]
    third, _ = build(project, tmp_path, "b", s3.env(), *remote_args(s3, prefix))
    assert third["cache"] == "local" and third["remote"] == {
        "hit": False,
        "uploaded": False,
        "seconds": 0.0,
        "bytes": 0,
    }


def test_another_zip_level_is_made_from_the_fetched_tree_and_still_matches(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    fetched, _ = build(project, tmp_path, "b", s3.env(), *remote_args(s3, prefix), "--zip-level", "1")
    local, _ = build(project, tmp_path, "c", {}, "--zip-level", "1")
    assert fetched["cache"] == "remote" and local["cache"] == "built"
    assert zip_bytes(fetched) == zip_bytes(local)


def test_blob_first_record_last_and_content_addressed(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    result, _ = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    objects = s3.objects(prefix)
    blob = zip_bytes(result)
    sha = hashlib.sha256(blob).hexdigest()
    assert objects[f"{prefix}/blobs/{sha}.zip"] == blob
    record = record_of(s3, prefix, result["fingerprint"])
    assert record["blob"] == {"sha256": sha, "size": len(blob), "zip_level": 6}
    assert record["manifest"]["target"]["runtime"] == result["target"]["runtime"]
    assert set(objects) == {f"{prefix}/blobs/{sha}.zip", f"{prefix}/records/{result['fingerprint']}.json"}


def test_an_upload_killed_mid_multipart_leaves_no_record(s3, prefix, project_copy, tmp_path):
    """Over a slow link the layer's multipart upload is still going when the build is killed: no record
    (nor blob) is left that any machine could take, and the next machine builds and fills the cache."""
    project = project_copy("uv_numpy")
    relay = SlowRelay(int(s3.url.rsplit(":", 1)[1]), rate=3_000_000)
    try:
        args = ("--python", "3.12", *remote_args(s3, prefix))
        child = cli(project, tmp_path / "a-cache", s3.env(endpoint=relay.url), *args, stdout=-1, stderr=-1)
        deadline = time.time() + 600
        while not s3.multipart_uploads(prefix) and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert s3.multipart_uploads(prefix), "the upload was not multipart, or ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        relay.close()
    assert s3.objects(prefix) == {}  # the parts are no object, and no record names them
    second, _ = build(project, tmp_path, "b", s3.env(), "--python", "3.12", *remote_args(s3, prefix))
    assert second["cache"] == "built" and second["remote"]["uploaded"]
    third, _ = build(project, tmp_path, "c", s3.env(), "--python", "3.12", *remote_args(s3, prefix))
    assert third["cache"] == "remote"
    assert zip_bytes(third) == zip_bytes(second)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("blob", "its blob failed the check"),
        ("missing blob", "names a blob that is not in the bucket"),
        ("record sha", "names a blob that is not in the bucket"),
        ("record size", "its blob failed the check"),
        ("record target", "it is a layer for python3.10"),
        ("record json", "its record is not JSON"),
        ("record fingerprint", "the record of another fingerprint"),
    ],
)
def test_a_tampered_record_or_blob_is_never_used_and_is_replaced(s3, prefix, project_copy, tmp_path, damage, said):
    project = project_copy("uv_app")
    first, _ = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    fingerprint, blob = first["fingerprint"], zip_bytes(first)
    sha = hashlib.sha256(blob).hexdigest()
    record_key, blob_key = f"{prefix}/records/{fingerprint}.json", f"{prefix}/blobs/{sha}.zip"
    record = record_of(s3, prefix, fingerprint)
    if damage == "blob":
        s3.put(blob_key, blob[:-100] + b"x" * 100)
    elif damage == "missing blob":
        s3.delete(blob_key)
    elif damage == "record sha":
        record["blob"]["sha256"] = "0" * 64
        s3.put(record_key, json.dumps(record).encode())
    elif damage == "record size":
        record["blob"]["size"] += 1
        s3.put(record_key, json.dumps(record).encode())
    elif damage == "record target":
        record["manifest"]["target"]["runtime"] = "python3.10"
        s3.put(record_key, json.dumps(record).encode())
    elif damage == "record json":
        s3.put(record_key, b'{"format": 1, "blob": ')
    else:
        record["fingerprint"] = "f" * 64
        s3.put(record_key, json.dumps(record).encode())
    second, shown = build(project, tmp_path, "b", s3.env(), *remote_args(s3, prefix))
    assert second["cache"] == "built" and second["remote"]["hit"] is False
    warned = [w for w in second["warnings"] if "remote cache" in w]
    assert len(warned) == 1 and said in warned[0] and "the build's upload replaces it" in warned[0]
    assert said in shown.stderr
    assert zip_bytes(second) == blob
    assert second["remote"]["uploaded"]  # the good layer replaced the bad record (and blob)
    third, _ = build(project, tmp_path, "c", s3.env(), *remote_args(s3, prefix))
    assert third["cache"] == "remote" and zip_bytes(third) == blob


def test_wrong_credentials_cost_one_warning_and_reach_no_output_or_file(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    wrong = {**s3.writer, "SecretAccessKey": "wrong-secret-d41d8cd98f00b204"}
    result, shown = build(project, tmp_path, "a", s3.env(wrong), *remote_args(s3, prefix))
    assert result["cache"] == "built" and result["remote"]["uploaded"] is False
    warned = [w for w in result["warnings"] if w.startswith("remote unavailable")]
    assert len(warned) == 1 and "SignatureDoesNotMatch" in warned[0] and "credentials" in warned[0]
    assert Path(result["layer_zip"]).is_file()
    for secret in (wrong["SecretAccessKey"], s3.writer["SecretAccessKey"]):
        assert secret not in shown.stdout + shown.stderr
        for folder in (tmp_path / "a-build", tmp_path / "a-cache"):
            for path in folder.rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path
    assert s3.objects(prefix) == {}


def test_unknown_keys_are_refused_by_name(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    result, _ = build(
        project, tmp_path, "a", s3.env({"AccessKeyId": "AKIANOBODY", "SecretAccessKey": "x"}), *remote_args(s3, prefix)
    )
    (warned,) = [w for w in result["warnings"] if w.startswith("remote unavailable")]
    assert "InvalidAccessKeyId" in warned and "AWS_PROFILE" in warned


def test_a_closed_port_costs_one_warning_and_the_build_goes_on(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    closed = f"http://127.0.0.1:{free_port()}"
    result, _ = build(project, tmp_path, "a", s3.env(endpoint=closed), *remote_args(s3, prefix))
    assert result["cache"] == "built" and Path(result["layer_zip"]).is_file()
    (warned,) = [w for w in result["warnings"] if w.startswith("remote unavailable")]
    assert "cannot reach" in warned and "AWS_ENDPOINT_URL_S3" in warned
    assert result["remote"]["seconds"] < 30  # a few seconds at most, never a hang (a bound, not a goal)


def test_missing_credentials_say_how_to_give_them(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    env = {k: v for k, v in s3.env().items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k}
    env.update({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    result, _ = build(project, tmp_path, "a", env, *remote_args(s3, prefix))
    (warned,) = [w for w in result["warnings"] if w.startswith("remote unavailable")]
    assert "no AWS credentials" in warned and "--no-remote-cache" in warned


def test_a_read_only_run_writes_nothing_to_the_bucket(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    result, _ = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix, "--remote-cache-read-only"))
    assert result["cache"] == "built" and result["remote"]["uploaded"] is False
    assert s3.objects(prefix) == {}
    env = {**s3.env(), "CDK_LAYER_REMOTE_CACHE_READ_ONLY": "1"}
    result, _ = build(project, tmp_path, "b", env, *remote_args(s3, prefix))
    assert s3.objects(prefix) == {} and not [w for w in result["warnings"] if "remote" in w]
    # what a writer put there, a read-only run takes
    build(project, tmp_path, "c", s3.env(), *remote_args(s3, prefix))
    taken, _ = build(project, tmp_path, "d", s3.env(s3.reader), *remote_args(s3, prefix, "--remote-cache-read-only"))
    assert taken["cache"] == "remote"


def test_a_reader_in_read_write_mode_is_told_it_may_not_write(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    result, _ = build(project, tmp_path, "a", s3.env(s3.reader), *remote_args(s3, prefix))
    assert result["cache"] == "built" and not result["remote"]["uploaded"]
    (warned,) = [w for w in result["warnings"] if w.startswith("remote unavailable")]
    assert "AccessDenied" in warned and "s3:PutObject" in warned
    assert s3.objects(prefix) == {}


def test_two_machines_writing_one_fingerprint_at_once_leave_a_valid_record(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    machines = [
        cli(
            project,
            tmp_path / f"{n}-cache",
            s3.env(),
            *remote_args(s3, prefix),
            build_dir=tmp_path / f"{n}-build",
            stdout=-1,
            stderr=-1,
        )
        for n in ("a", "b")
    ]
    outputs = [m.communicate(timeout=900) for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs
    results = [json.loads(out) for out, _err in outputs]
    assert {r["fingerprint"] for r in results} == {results[0]["fingerprint"]}
    third, _ = build(project, tmp_path, "c", s3.env(), *remote_args(s3, prefix))
    assert third["cache"] == "remote"
    assert zip_bytes(third) in {zip_bytes(r) for r in results}


def test_the_environment_names_the_remote_and_no_remote_cache_turns_it_off(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    env = {**s3.env(), "CDK_LAYER_REMOTE_CACHE": f"s3://{BUCKET}/{prefix}"}
    first, _ = build(project, tmp_path, "a", env)
    assert first["remote"]["uploaded"]
    off, _ = build(project, tmp_path, "b", env, "--no-remote-cache")
    assert off["cache"] == "built" and off["remote"] is None


def test_cache_list_remote_lists_the_records(s3, prefix, project_copy, tmp_path):
    project = project_copy("uv_app")
    result, _ = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    done = cli_cache(s3, "list", "--remote", f"s3://{BUCKET}/{prefix}", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["records"]
    assert row["fingerprint"] == result["fingerprint"] and row["project"] == "uv-app"
    assert row["target"] == f"{result['target']['runtime']} {result['target']['architecture']}"
    assert row["bytes"] == len(zip_bytes(result)) and row["uploaded"][:4].isdigit()
    assert "1 layers" in done.stderr


def cli_cache(s3, *args, env=None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cdk_lambda_layer", "cache", *args],
        env={**os.environ, **(env or s3.env())},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [("layers/prefix", "is not an S3 URL"), ("s3://Bad_Bucket/x", "not an S3 bucket name"), ("s3:///x", "bucket")],
)
def test_a_bad_remote_url_is_refused_saying_how_to_write_it(project_copy, tmp_path, url, said):
    done = cli(project_copy("uv_app"), tmp_path / "cache", {}, "--remote-cache", url)
    assert done.returncode == RemoteCacheError.exit_code == 2
    assert said in done.stderr and "s3://my-bucket/cdk-lambda-layer" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_fetched_tree_is_checked_before_the_local_cache_keeps_it(s3, prefix, project_copy, tmp_path):
    """A blob whose record was rewritten to match it, but which holds a path outside python/, is refused
    by the unpacking, whatever its hash says: a writer's zip never decides where files land."""
    project = project_copy("uv_app")
    first, _ = build(project, tmp_path, "a", s3.env(), *remote_args(s3, prefix))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("python/ok.py", "x = 1\n")
        archive.writestr("../../outside.txt", "planted\n")
    data = evil.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    record = record_of(s3, prefix, first["fingerprint"])
    record["blob"].update(sha256=sha, size=len(data))
    s3.put(f"{prefix}/blobs/{sha}.zip", data)
    s3.put(f"{prefix}/records/{first['fingerprint']}.json", json.dumps(record).encode())
    second, _ = build(project, tmp_path, "b", s3.env(), *remote_args(s3, prefix))
    assert second["cache"] == "built"
    assert any("outside python/" in w for w in second["warnings"])
    assert not list(tmp_path.rglob("outside.txt"))


def synth_example_app(outdir: Path, cache: Path, env: dict[str, str]):
    """The example app (examples/app.py), run as the CDK CLI runs it: ``python app`` with CDK_OUTDIR set."""
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    full = {**os.environ, **env, "CDK_OUTDIR": str(outdir), "CDK_LAYER_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "app.py")], cwd=root, env=full, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def asset_trees(outdir: Path) -> dict[str, dict[str, tuple[str, bool]]]:
    """Each layer asset folder of a cloud assembly: relative path -> (sha256, executable)."""
    trees = {}
    for folder in sorted(outdir.glob("asset.*")):
        if not (folder / "python").is_dir():
            continue
        trees[folder.name] = {
            p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), os.access(p, os.X_OK))
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    return trees


@pytest.mark.cdk_cli
def test_the_example_app_on_a_new_machine_builds_nothing(s3, prefix, tmp_path):
    """Done when: a synth with an empty local cache and a fresh cdk.out takes every layer from the remote
    (each says remote hit), with the building machine's templates, asset hashes and asset contents."""
    env = {**s3.env(), "CDK_LAYER_REMOTE_CACHE": f"s3://{BUCKET}/{prefix}"}
    building = synth_example_app(tmp_path / "a-out", tmp_path / "a-cache", env)
    layers = [line for line in building.stderr.splitlines() if line.startswith("[cdk-lambda-layer] ") and "->" in line]
    assert len(layers) == 5 and all("uploaded" in line for line in layers), building.stderr
    fresh = synth_example_app(tmp_path / "b-out", tmp_path / "b-cache", env)
    lines = [line for line in fresh.stderr.splitlines() if line.startswith("[cdk-lambda-layer] ") and "->" in line]
    assert len(lines) == 5 and all("remote hit" in line for line in lines), fresh.stderr
    assert "remote unavailable" not in fresh.stderr and "was not used" not in fresh.stderr
    for template in (tmp_path / "a-out").glob("*.template.json"):
        assert (tmp_path / "b-out" / template.name).read_text() == template.read_text()
    assert asset_trees(tmp_path / "b-out") == asset_trees(tmp_path / "a-out")


def test_the_remote_cache_is_not_part_of_the_asset_hash(tmp_path, project_copy, monkeypatch):
    from cdk_helpers import SKIP_BUNDLING, layer_s3_key, synth_layer

    project = project_copy("uv_app")
    without, _, _ = synth_layer(project, context=SKIP_BUNDLING)
    remote, _, _ = synth_layer(
        project, context=SKIP_BUNDLING, remote_cache="s3://layers/x", remote_cache_read_only=True
    )
    monkeypatch.setenv("CDK_LAYER_REMOTE_CACHE", "s3://layers/y")
    from_env, _, _ = synth_layer(project, context=SKIP_BUNDLING)
    assert layer_s3_key(without) == layer_s3_key(remote) == layer_s3_key(from_env)
    assert without.to_json() == remote.to_json() == from_env.to_json()


def test_a_bad_remote_cache_prop_or_context_names_the_construct(tmp_path, project_copy, monkeypatch):
    from cdk_helpers import SKIP_BUNDLING, synth_layer

    project = project_copy("uv_app")
    with pytest.raises(RemoteCacheError, match=r"^Stack/Deps: The remote cache 'bucket/x' is not an S3 URL"):
        synth_layer(project, context=SKIP_BUNDLING, remote_cache="bucket/x")
    context = {**SKIP_BUNDLING, "cdk-lambda-layer:remoteCache": 7}
    with pytest.raises(Exception, match=r'Stack/Deps: the cdk.json context key "cdk-lambda-layer:remoteCache"'):
        synth_layer(project, context=context)
    monkeypatch.setenv("CDK_LAYER_REMOTE_CACHE_READ_ONLY", "perhaps")
    with pytest.raises(RemoteCacheError, match=r"CDK_LAYER_REMOTE_CACHE_READ_ONLY is 'perhaps'"):
        synth_layer(project, context={**SKIP_BUNDLING, "cdk-lambda-layer:remoteCache": "s3://layers/x"})


def test_the_context_key_sets_the_remote_and_the_prop_wins(s3, prefix, tmp_path, project_copy, monkeypatch, capfd):
    """In-process synths of one layer: the context key names the remote (the building synth uploads), and
    an explicit remote_cache=False on the next machine wins over it (it builds, nothing is fetched)."""
    from cdk_helpers import synth_layer

    from cdk_lambda_layer.cache.remote import client

    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    project = project_copy("uv_app")
    context = {"cdk-lambda-layer:remoteCache": f"s3://{BUCKET}/{prefix}"}
    client.reset()
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", str(tmp_path / "a-cache"))
    synth_layer(project, outdir=tmp_path / "a-out", context=context)
    assert "uploaded" in capfd.readouterr().err
    assert s3.objects(f"{prefix}/records/")
    client.reset()
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", str(tmp_path / "b-cache"))
    synth_layer(project, outdir=tmp_path / "b-out", context=context, remote_cache=False)
    err = capfd.readouterr().err
    assert "built in" in err and "remote hit" not in err
    client.reset()
    monkeypatch.setenv("CDK_LAYER_CACHE_DIR", str(tmp_path / "c-cache"))
    synth_layer(project, outdir=tmp_path / "c-out", context=context)
    assert "remote hit" in capfd.readouterr().err
