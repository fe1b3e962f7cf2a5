"""File sets: manifests, splits by path or label key, storage through put_bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from blake3 import blake3

from dmv.data.files import (
    Manifest,
    bucket,
    read_labels,
    scan_files,
    split_files,
    store_file_parts,
)
from dmv.data.records import SplitSpec
from dmv.errors import DataError, InvalidInput


def _images(root: Path, n: int = 60) -> Path:
    for i in range(n):
        sub = root / f"class{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"img{i:03d}.bin").write_bytes(bytes([i % 256]) * (i + 1))
    return root


def test_manifest_lists_relative_paths_sizes_and_digests(tmp_path: Path) -> None:
    root = _images(tmp_path / "imgs")
    manifest = scan_files(str(root))
    assert len(manifest.files) == 60 and manifest.root == str(root)
    entry = next(f for f in manifest.files if f.path == "class1/img004.bin")
    assert entry.size == 5 and entry.digest == blake3(bytes([4]) * 5).hexdigest()
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    globbed = scan_files(str(root) + "/class0/*.bin")
    assert len(globbed.files) == 20 and globbed.files[0].path == "img000.bin"
    assert globbed.root == str(root / "class0")
    before = manifest.fingerprint
    (root / "class1" / "img004.bin").write_bytes(b"changed")
    assert scan_files(str(root)).fingerprint != before


def test_fsspec_urls_work(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    for i in range(5):
        fs.pipe(f"/dmvtest/set/f{i}.txt", f"file {i}".encode())
    manifest = scan_files("memory://dmvtest/set")
    assert [f.path for f in manifest.files] == [f"f{i}.txt" for i in range(5)]
    store: dict[str, bytes] = {}
    parts = split_files(manifest, SplitSpec("row", ratios={"train": 0.5, "test": 0.5}))

    def put(name: str, data: bytes) -> str:
        store[name] = data
        return str(blake3(data).hexdigest())

    stored = store_file_parts(parts, put, "datasets/m/d/s")
    assert sum(len(p.manifest.files) for p in stored.values()) == 5
    assert store["datasets/m/d/s/train/manifest.json"]


def test_split_by_path_is_deterministic_and_complete(tmp_path: Path) -> None:
    manifest = scan_files(str(_images(tmp_path / "imgs")))
    spec = SplitSpec("row", salt="s")
    parts = split_files(manifest, spec)
    assert list(parts) == ["train", "valid", "test"]
    paths = [f.path for p in parts.values() for f in p.files]
    assert sorted(paths) == sorted(f.path for f in manifest.files)
    assert parts == split_files(manifest, spec)
    for name, part in parts.items():
        assert all(bucket(f.path, spec) == name for f in part.files)


def test_split_by_label_key_keeps_a_key_together(tmp_path: Path) -> None:
    root = _images(tmp_path / "imgs")
    labels_csv = tmp_path / "labels.csv"
    lines = ["path,patient"] + [f"class{i % 3}/img{i:03d}.bin,p{i // 4}" for i in range(60)]
    labels_csv.write_text("\n".join(lines) + "\n")
    labels = read_labels(str(labels_csv), key_column="patient")
    parts = split_files(scan_files(str(root)), SplitSpec("group", "patient"), labels)
    where = {labels[f.path]: name for name, p in parts.items() for f in p.files}
    for name, part in parts.items():
        assert all(where[labels[f.path]] == name for f in part.files)
    assert len(set(where.values())) >= 2
    with pytest.raises(InvalidInput, match="no column"):
        read_labels(str(labels_csv), key_column="nope")
    labels_csv.write_text("path,patient\nclass0/img000.bin,p0\n")
    with pytest.raises(DataError, match="59 file"):
        split_files(
            scan_files(str(root)),
            SplitSpec("group", "patient"),
            read_labels(str(labels_csv), key_column="patient"),
        )
    with pytest.raises(InvalidInput):
        split_files(scan_files(str(root)), SplitSpec("time", "t"))


def test_store_puts_files_and_manifest_and_refuses_changed_files(tmp_path: Path) -> None:
    root = _images(tmp_path / "imgs", 12)
    manifest = scan_files(str(root))
    parts = split_files(manifest, SplitSpec("row"))
    store: dict[str, bytes] = {}

    def put(name: str, data: bytes) -> str:
        store[name] = data
        return str(blake3(data).hexdigest())

    progress: list[int] = []
    stored = store_file_parts(
        parts, put, "datasets/m/0123/efgh", progress=lambda s, d, t: progress.append(d)
    )
    assert progress[-1] == 12
    for name, part in stored.items():
        body = json.loads(store[part.manifest_name])
        assert part.manifest_name == f"datasets/m/0123/efgh/{name}/manifest.json"
        assert [f["path"] for f in body["files"]] == [f.path for f in parts[name].files]
        for f in parts[name].files:
            assert (
                store[f"datasets/m/0123/efgh/{name}/files/{f.path}"] == (root / f.path).read_bytes()
            )
            assert part.stored[f.path] == f.digest
    (root / manifest.files[0].path).write_bytes(b"tampered")
    with pytest.raises(DataError, match="changed since"):
        store_file_parts(parts, put, "datasets/m/0123/other")


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no files"):
        scan_files(str(tmp_path / "nothing-here"))
    with pytest.raises(DataError, match="no files match"):
        scan_files(str(tmp_path) + "/*.png")
