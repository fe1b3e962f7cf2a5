"""The artifact store on S3, against moto's standalone server on 127.0.0.1.

No mocks: the server speaks the S3 protocol over HTTP, and the store reaches it
the way it reaches AWS, through s3fs with credentials and the endpoint taken
from the standard AWS environment variables.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv import ArtifactError
from dmv.artifacts import CHUNK, ArtifactStore, Blob, FsspecArtifacts
from dmv.cli import main

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'dmv[s3]')")
pytest.importorskip("moto.server", reason="moto[server] is not installed")
boto3 = pytest.importorskip("boto3")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a subprocess on a free local port; its URL."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    client = boto3.client("s3", endpoint_url=endpoint, **_boto_kwargs())
    deadline = time.monotonic() + 20
    while True:
        try:
            client.list_buckets()
            break
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode()[-300:] if proc.stderr else ""
                pytest.skip(f"moto's S3 server did not start on {endpoint}: {exc} {err}")
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _boto_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


@dataclass
class Bucket:
    client: Any
    name: str

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    """A boto3 client on a fresh bucket; the AWS environment points dmv at the server."""
    from s3fs import S3FileSystem

    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    # fsspec caches filesystems by their options, not by the environment they saw.
    S3FileSystem.clear_instance_cache()
    client = boto3.client("s3", endpoint_url=s3_endpoint, **_boto_kwargs())
    bucket = f"dmv-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    yield Bucket(client, bucket)
    S3FileSystem.clear_instance_cache()


def _key_of(store: ArtifactStore, digest: str) -> str:
    return store.path_of(digest).partition("/")[2]


@pytest.fixture
def s3_project(s3: Bucket, tmp_path: Path) -> Iterator[dmv.Project]:
    p = dmv.init(tmp_path / "proj", artifacts=f"s3://{s3.name}/team/models")
    yield p
    p.close()


def test_project_logs_a_model_to_s3_and_loads_it_verified(
    s3: Bucket, s3_project: dmv.Project, small_model: Any, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris

    p = s3_project
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on iris\n")
    with p.run("iris", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
        run.log_artifact(notes)
    assert p.artifacts.is_object_store and not p.artifacts.is_local
    keys = s3.keys()
    assert _key_of(p.artifacts, art.digest) in keys
    assert all(k.startswith("team/models/blobs/") for k in keys), keys  # no tmp/ copies
    loaded = p.load_model("iris@0.0.1-a.b")
    x, _ = load_iris(return_X_y=True)
    assert (loaded.predict(x) == small_model.predict(x)).all()
    assert sorted(p.artifacts.iter_blobs()) == sorted(a.digest for a in run.artifacts)
    # The same content is uploaded once.
    assert p.artifacts.put_bytes(Path(notes).read_bytes()).digest in set(p.artifacts.iter_blobs())
    assert len(s3.keys()) == 2


def _cli(project: dmv.Project, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(["-C", str(project.root), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_verify_and_fsck_against_s3(
    s3: Bucket,
    s3_project: dmv.Project,
    small_model: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    p = s3_project
    # The CLI opens the project afresh: it finds the store through DMV_ARTIFACTS.
    monkeypatch.setenv("DMV_ARTIFACTS", p.config["artifacts"])
    with p.run("iris", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
    key = _key_of(p.artifacts, art.digest)

    code, body = _cli(p, "verify", "iris@0.0.1-a.b", capsys=capsys)
    assert code == 0, body
    code, body = _cli(p, "fsck", capsys=capsys)
    assert code == 0 and body["ok"] and body["checked"]["artifacts"] == 1, body

    # Corrupt: same size, other bytes, written behind dmv's back.
    data = s3.client.get_object(Bucket=s3.name, Key=key)["Body"].read()
    s3.client.put_object(Bucket=s3.name, Key=key, Body=bytes([data[0] ^ 1]) + data[1:])
    code, body = _cli(p, "fsck", capsys=capsys)
    assert code == 0, body  # same size: only a re-hash can tell
    code, body = _cli(p, "fsck", "--deep", capsys=capsys)
    assert code == 6 and "does not match its digest" in body["problems"][0]["error"], body
    assert body["problems"][0]["what"] == "iris 0.0.1-a.b tr0 model"
    code, body = _cli(p, "verify", "iris@0.0.1-a.b", capsys=capsys)
    assert code == 6, body
    with pytest.raises(ArtifactError, match="does not match"):
        p.load_model("iris@0.0.1-a.b")  # never unpickled

    # Missing.
    s3.client.delete_object(Bucket=s3.name, Key=key)
    code, body = _cli(p, "fsck", capsys=capsys)
    assert code == 6 and "missing" in body["problems"][0]["error"], body
    code, body = _cli(p, "fsck", "--quick", capsys=capsys)
    assert code == 6 and "missing" in body["problems"][0]["error"], body

    # Present again, plus an orphan: listed, then removed by --repair.
    s3.client.put_object(Bucket=s3.name, Key=key, Body=data)
    orphan = p.artifacts.put_bytes(b"uploaded, never registered")
    code, body = _cli(p, "fsck", capsys=capsys)
    assert code == 0 and [o["digest"] for o in body["orphans"]] == [orphan.digest], body
    code, body = _cli(p, "fsck", "--repair", "--grace", "0", capsys=capsys)
    assert code == 0 and len(body["repaired"]) == 1, body
    assert s3.keys() == [key]


def test_large_file_streams_in_chunks_both_ways(s3: Bucket, tmp_path: Path) -> None:
    store = FsspecArtifacts(f"s3://{s3.name}/big")
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * 1024 * 1024 + 123))
    up: list[tuple[int, int | None]] = []
    blob = store.put_file(src, progress=lambda done, total: up.append((done, total)))
    assert blob.size == src.stat().st_size
    assert len(up) == -(-blob.size // CHUNK) and up[-1] == (blob.size, blob.size)
    assert [d for d, _ in up] == sorted(d for d, _ in up)
    # Uploaded as several parts of one multipart upload (the ETag says how many).
    head = s3.client.head_object(Bucket=s3.name, Key=_key_of(store, blob.digest))
    assert head["ContentLength"] == blob.size and head["ETag"].strip('"').endswith("-3")

    down: list[int] = []
    out = store.fetch(blob, tmp_path / "copy.bin", progress=lambda done, _: down.append(done))
    assert out.read_bytes() == src.read_bytes()
    assert len(down) == len(up) and down[-1] == blob.size
    assert store.verify(blob) is None
    assert list(store.iter_blobs()) == [blob.digest]


def test_listing_sees_every_blob_and_only_blobs(s3: Bucket) -> None:
    store = FsspecArtifacts(f"s3://{s3.name}/many")
    blobs = {store.put_bytes(f"blob {i}".encode()).digest for i in range(25)}
    s3.client.put_object(Bucket=s3.name, Key="many/blobs/README", Body=b"not a blob")
    s3.client.put_object(Bucket=s3.name, Key="elsewhere/blobs/ab/" + "c" * 62, Body=b"x")
    assert set(store.iter_blobs()) == blobs
    assert list(FsspecArtifacts(f"s3://{s3.name}/empty").iter_blobs()) == []


def test_failed_upload_leaves_nothing_visible_and_registers_nothing(
    s3: Bucket, s3_project: dmv.Project, tmp_path: Path
) -> None:
    p, store = s3_project, s3_project.artifacts
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(18 * 1024 * 1024))

    class Interrupted(Exception):
        pass

    def fail_midway(done: int, total: int | None) -> None:
        if done >= 12 * 1024 * 1024:  # after the first part has been uploaded
            raise Interrupted

    with pytest.raises(Interrupted), p.run("m", version="0.0.1-a.b") as run:
        run.log_params(lr=0.1)
        store.put_file(src, progress=fail_midway)
    assert run.id is None and p.versions("m") == []
    assert s3.keys() == []  # nothing under blobs/ nor tmp/
    assert store.incomplete_uploads() == []  # the multipart upload was aborted
    assert list(store.iter_blobs()) == []

    # The file changes between hashing and upload: the upload is abandoned.
    def truncate_midway(done: int, total: int | None) -> None:
        if done == CHUNK:
            with open(src, "r+b") as fh:
                fh.truncate(CHUNK * 3)

    with pytest.raises(ArtifactError, match="changed while it was being stored"):
        store.put_file(src, progress=truncate_midway)
    assert s3.keys() == [] and store.incomplete_uploads() == []


_KILLED_UPLOAD = """
import os, signal, sys
from dmv.artifacts import FsspecArtifacts

def die(done, total):
    if done >= 12 * 1024 * 1024:
        os.kill(os.getpid(), signal.SIGKILL)

FsspecArtifacts(sys.argv[1]).put_file(sys.argv[2], progress=die)
"""


def test_killed_upload_is_invisible(s3: Bucket, tmp_path: Path) -> None:
    """SIGKILL mid-upload: no object appears; the started upload is listed for abort."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(18 * 1024 * 1024))
    location = f"s3://{s3.name}/killed"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_UPLOAD), location, str(src)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    store = FsspecArtifacts(location)
    assert s3.keys() == [] and list(store.iter_blobs()) == []
    pending = store.incomplete_uploads()
    assert len(pending) == 1 and pending[0]["path"].startswith(f"{s3.name}/killed/blobs/")
    store.abort_upload(pending[0])
    assert store.incomplete_uploads() == []


def test_unreachable_store_is_a_storage_error(s3: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    from s3fs import S3FileSystem

    from dmv import StorageError

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    S3FileSystem.clear_instance_cache()
    store = FsspecArtifacts(f"s3://{s3.name}/x")
    with pytest.raises(StorageError) as info:
        store.put_bytes(b"x")
    assert "AWS_ENDPOINT_URL" in (info.value.hint or "")
    with pytest.raises(StorageError):
        store.verify(Blob("blake3:" + "0" * 64, 1))


def test_file_dataset_on_s3_has_the_local_manifest(s3: Bucket, tmp_path: Path) -> None:
    from dmv.data.files import scan_files

    local = tmp_path / "imgs"
    for i in range(6):
        f = local / f"class{i % 2}" / f"img{i}.bin"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(bytes([i]) * (i + 1))
        s3.client.put_object(
            Bucket=s3.name, Key=f"imgs/{f.relative_to(local)}", Body=f.read_bytes()
        )
    remote = scan_files(f"s3://{s3.name}/imgs")
    assert remote.files == scan_files(str(local)).files and len(remote.files) == 6
