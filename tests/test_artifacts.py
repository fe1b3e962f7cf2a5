"""The content-addressed artifact store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dmv import ArtifactError, InvalidInput
from dmv.artifacts import ArtifactStore, Blob, FsspecArtifacts, hash_bytes


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return FsspecArtifacts(str(tmp_path / "artifacts"))


def test_same_content_same_digest_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    a = store.put_bytes(b"hello")
    f = tmp_path / "f.txt"
    f.write_bytes(b"hello")
    b = store.put_file(f)
    assert a == b
    assert a.digest == hash_bytes(b"hello") and a.digest.startswith("blake3:")
    assert list(store.iter_blobs()) == [a.digest]
    assert store.get_bytes(a) == b"hello"


def test_large_file_streams_with_progress(store: ArtifactStore, tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    seen: list[int] = []
    blob = store.put_file(f, progress=lambda done, total: seen.append(done))
    assert seen[-1] == blob.size == f.stat().st_size and len(seen) >= 3
    out = store.fetch(blob, tmp_path / "copy.bin")
    assert out.read_bytes() == f.read_bytes()


def test_corrupted_blob_is_reported_never_returned(store: ArtifactStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"model bytes")
    path = Path(store.path_of(blob.digest))
    path.write_bytes(b"model bytez")  # same size, different content
    with pytest.raises(ArtifactError) as info:
        store.get_bytes(blob, what="price-model 0.0.1-a.b tr0 model")
    assert "price-model 0.0.1-a.b tr0 model" in str(info.value)
    assert blob.digest[:19] in str(info.value) and "damaged" in str(info.value)
    # which artifact of which version, never where the store keeps it on disk
    assert str(path) not in str(info.value) and str(path) not in str(info.value.to_dict())
    assert str(tmp_path) not in str(info.value.to_dict())
    dest = tmp_path / "out.bin"
    with pytest.raises(ArtifactError):
        store.fetch(blob, dest)
    assert not dest.exists()
    assert store.verify(blob) is not None


def test_missing_blob_is_reported(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"x")
    os.remove(store.path_of(blob.digest))
    with pytest.raises(ArtifactError, match="missing") as info:
        store.get_bytes(blob, what="m 0.0.1-a.b tr0 model")
    assert store.location not in str(info.value.to_dict())
    assert store.verify(blob) is not None


def test_artifact_backends_open_by_scheme_like_any_plugin(tmp_path: Path) -> None:
    from dmv.artifacts import BACKENDS, open_artifacts
    from dmv.errors import ConfigError

    local = open_artifacts(str(tmp_path / "a"))
    assert isinstance(local, FsspecArtifacts) and isinstance(local, ArtifactStore)
    assert {"file", "s3"} <= set(BACKENDS.schemes())

    class Memory(FsspecArtifacts):
        pass

    BACKENDS.register("dmvtestmem", Memory)
    try:
        store = open_artifacts("dmvtestmem://bucket")
        assert type(store) is Memory and store.location == "dmvtestmem://bucket"
        with pytest.raises(ConfigError, match="registered already"):
            BACKENDS.register("file", Memory)  # a package cannot take over a scheme
    finally:
        BACKENDS._factories.pop("dmvtestmem")
    assert type(open_artifacts("memory://dmv-test")) is FsspecArtifacts  # fsspec's own
    with pytest.raises(ConfigError, match="no artifact store backend for nosuch://"):
        open_artifacts("nosuch://x")


def test_no_partial_blob_under_a_real_name(store: ArtifactStore, tmp_path: Path) -> None:
    class Boom(Exception):
        pass

    def failing_write(out: object) -> None:
        out.write(b"partial")  # type: ignore[attr-defined]
        raise Boom

    blob = Blob(hash_bytes(b"partial content"), 15)
    with pytest.raises(Boom):
        store._commit(blob, failing_write)
    assert not store.exists(blob)
    assert list(store.iter_blobs()) == []
    assert not any((tmp_path / "artifacts" / "tmp").iterdir())


def test_digest_paths_cannot_escape(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInput):
        store.path_of("blake3:../../etc/passwd")
    with pytest.raises(InvalidInput):
        store.get_bytes(Blob("sha1:abc", 1))
