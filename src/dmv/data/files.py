"""Unstructured data: a retrieval that is a set of files (local or any fsspec URL).

A file set becomes a :class:`Manifest` of (relative path, size, BLAKE3 digest).
It is split with the same md5-v1 bucket formula as tables (see
:mod:`dmv.data.split`; :func:`bucket` is its reference implementation in Python):
by the file's relative path (``by="row"``: each file is a row), or by a key read
from a label file (``by="key"``/``"group"``: a CSV with ``path`` and key columns).
Each part is stored through a ``put_bytes(name, data) -> digest`` callable under
``<prefix>/<part>/files/<path>`` plus ``<prefix>/<part>/manifest.json``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dmv.data._sql import thresholds
from dmv.data.credentials import strip_credentials
from dmv.data.records import SplitSpec
from dmv.data.warehouse import Progress
from dmv.errors import DataError, InvalidInput

__all__ = [
    "FileEntry",
    "Manifest",
    "StoredFilePart",
    "bucket",
    "read_labels",
    "scan_files",
    "split_files",
    "store_file_parts",
]

CHUNK = 1 << 20
_GLOB = "*?["
PutBytes = Callable[[str, bytes], str]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file: its path relative to the manifest root, size and BLAKE3 digest."""

    path: str
    size: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": self.digest}


@dataclass(frozen=True)
class Manifest:
    """A set of files under one root, sorted by path."""

    root: str
    files: tuple[FileEntry, ...]

    @property
    def fingerprint(self) -> str:
        """BLAKE3 over ``digest size path`` lines: changes with any file, name or size."""
        from blake3 import blake3

        lines = "".join(f"{f.digest} {f.size} {f.path}\n" for f in self.files)
        return "blake3:" + str(blake3(lines.encode()).hexdigest())

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def definition(self) -> dict[str, Any]:
        """The DATA definition of this file set (its root, without credentials)."""
        return {"kind": "files", "source": strip_credentials(self.root)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": strip_credentials(self.root),
            "count": len(self.files),
            "bytes": self.bytes,
            "fingerprint": self.fingerprint,
            "files": [f.to_dict() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        files = tuple(
            FileEntry(str(f["path"]), int(f["size"]), str(f["digest"])) for f in data["files"]
        )
        return cls(str(data["root"]), files)


def _fs(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        return fs, str(path)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(
            f"cannot open {strip_credentials(url)}: {exc}",
            hint="check the URL's scheme and install the fsspec filesystem it needs (e.g. s3fs for s3://)",
        ) from exc


def _join(root: str, rel: str) -> str:
    return root.rstrip("/") + "/" + rel if root else rel


def _digest(fs: Any, path: str) -> tuple[int, str]:
    from blake3 import blake3

    h = blake3()
    size = 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, str(h.hexdigest())


def scan_files(
    path_or_glob: str,
    *,
    progress: Progress | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Manifest of a file, a folder (recursively) or a glob, local or fsspec URL."""
    fs, path = _fs(path_or_glob, storage_options)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if any(c in path for c in _GLOB):
        base = path[: min(path.index(c) for c in _GLOB if c in path)].rsplit("/", 1)[0]
        found = [p for p in fs.glob(path) if fs.isfile(p)]
    elif fs.isdir(path):
        base, found = path.rstrip("/"), list(fs.find(path))
    elif fs.isfile(path):
        base, found = posixpath.dirname(path), [path]
    else:
        raise DataError(
            f"no files at {strip_credentials(path_or_glob)}", hint="check the path or glob"
        )
    if not found:
        raise DataError(
            f"no files match {strip_credentials(path_or_glob)}",
            hint="check the path or glob pattern, and that the files are readable from this "
            "machine",
        )
    entries = []
    for i, p in enumerate(sorted(found)):
        rel = posixpath.relpath(p, base) if base else p
        size, digest = _digest(fs, p)
        entries.append(FileEntry(rel, size, digest))
        if progress:
            progress("scan", i + 1, len(found))
    root = base if protocol in ("file", "local") else f"{protocol}://{base}"
    return Manifest(root, tuple(entries))


def read_labels(
    path: str,
    *,
    path_column: str = "path",
    key_column: str = "key",
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """``{relative path: key}`` from a CSV label file with a header row."""
    fs, p = _fs(path, storage_options)
    try:
        with fs.open(p, "rb") as f:
            text = f.read().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise DataError(
            f"label file {strip_credentials(path)} does not exist",
            hint="check the label file's path; it is a CSV of path,key rows",
        ) from exc
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    for column in (path_column, key_column):
        if column not in header:
            raise InvalidInput(
                f"label file has no column {column!r}", hint="columns: " + ", ".join(header)
            )
    labels: dict[str, str] = {}
    for row in reader:
        labels[posixpath.normpath(row[path_column])] = row[key_column]
    return labels


def bucket(text: str, spec: SplitSpec) -> str:
    """md5-v1 in Python: the part ``text`` (a key's canonical text) falls into."""
    h = int(hashlib.md5((spec.salt + ":" + text).encode()).hexdigest()[:15], 16)
    for name, cut in zip(spec.parts, thresholds(list(spec.ratios.values())), strict=False):
        if h < cut:
            return name
    return spec.parts[-1]


def split_files(
    manifest: Manifest, spec: SplitSpec, labels: Mapping[str, str] | None = None
) -> dict[str, Manifest]:
    """Split a manifest into one manifest per part (every part present, maybe empty)."""
    if spec.by == "time":
        raise InvalidInput(
            "files split by path (--by row) or by a label key, not by time",
            hint="split files with --by row, or by key/group with a label file",
        )
    if spec.by in ("key", "group") and labels is None:
        raise InvalidInput(
            f"a {spec.by} split of files needs a label file (path,key)",
            hint="pass --labels with a CSV file of path,key rows",
        )
    chosen: dict[str, list[FileEntry]] = {name: [] for name in spec.parts}
    missing = []
    for entry in manifest.files:
        if spec.by == "row":
            text = entry.path
        else:
            assert labels is not None
            key = labels.get(entry.path)
            if key is None or key == "":
                missing.append(entry.path)
                continue
            text = key
        chosen[bucket(text, spec)].append(entry)
    if missing:
        raise DataError(
            f"{len(missing)} file(s) have no {spec.column or 'key'} in the label file, "
            f"e.g. {', '.join(missing[:3])}",
            hint="add them to the label file or leave them out of the file set",
        )
    return {name: Manifest(manifest.root, tuple(files)) for name, files in chosen.items()}


@dataclass(frozen=True)
class StoredFilePart:
    """Where one file part went: its manifest's name and digest, each file's digest."""

    part: str
    manifest: Manifest
    manifest_name: str
    manifest_digest: str
    stored: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "manifest_name": self.manifest_name,
            "manifest_digest": self.manifest_digest,
            "manifest": self.manifest.to_dict(),
            "stored": dict(self.stored),
        }


def store_file_parts(
    parts: Mapping[str, Manifest],
    put_bytes: PutBytes,
    prefix: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, StoredFilePart]:
    """Store each part's files and manifest under ``prefix`` (``datasets/<model>/<DATA>/<SPLIT>``).

    Every file is re-read and checked against its manifest digest before it is stored,
    so a file that changed since the scan is refused rather than stored silently.
    """
    from blake3 import blake3

    total = sum(len(m.files) for m in parts.values())
    done = 0
    result: dict[str, StoredFilePart] = {}
    for name, manifest in parts.items():
        fs, root = _fs(manifest.root, storage_options)
        stored: dict[str, str] = {}
        for entry in manifest.files:
            with fs.open(_join(root, entry.path), "rb") as f:
                data = f.read()
            if str(blake3(data).hexdigest()) != entry.digest:
                raise DataError(
                    f"file {entry.path} changed since it was scanned",
                    hint="scan the files again to make a new DATA version",
                )
            stored[entry.path] = put_bytes(f"{prefix}/{name}/files/{entry.path}", data)
            done += 1
            if progress:
                progress("store", done, total)
        body = json.dumps(manifest.to_dict(), sort_keys=True, indent=1).encode()
        manifest_name = f"{prefix}/{name}/manifest.json"
        digest = put_bytes(manifest_name, body)
        result[name] = StoredFilePart(name, manifest, manifest_name, digest, stored)
    return result
