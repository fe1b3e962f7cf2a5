"""A content-addressed blob store over fsspec: a local folder by default, S3 at scale.

Blobs are named by their BLAKE3 digest (``blake3:<64 hex>``) and stored at
``blobs/<2 hex>/<62 hex>``. A crash never leaves a partial blob under a real
name: on a filesystem a write goes to ``tmp/`` and is renamed into place once
complete; on an object store (S3, GCS), where a "rename" is a copy, the blob is
written under its final name by one upload that becomes visible only when it
completes, and a failed upload is aborted. What is written is hashed on the way
and the upload is abandoned if it does not match the digest it is stored under.

Every read re-hashes what it read; a missing or corrupted blob raises
:class:`~dmv.errors.ArtifactError` naming what it belongs to, and its bytes are
never returned. Large files move in chunks of :data:`CHUNK` bytes in both
directions, reporting progress as ``progress(done, total)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from dmv._urls import redact, redact_text
from dmv.errors import ArtifactError, InvalidInput, StorageError
from dmv.plugins import Backends

if TYPE_CHECKING:
    import fsspec

__all__ = [
    "BACKENDS",
    "CHUNK",
    "ArtifactStore",
    "Blob",
    "FsspecArtifacts",
    "Progress",
    "damaged_blob",
    "hash_bytes",
    "hash_file",
    "missing_blob",
    "open_artifacts",
]

CHUNK = 4 * 1024 * 1024
_PREFIX = "blake3:"
Progress = Callable[[int, int | None], None]

# Stores where an object appears only once its upload completes, so a blob is
# written under its final name directly. S3 multipart parts are 5 MiB..5 GiB and
# at most 10,000 per object; parts grow with the file to stay under that count.
_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs"})
_MIN_PART = 8 * 1024 * 1024
_MAX_PARTS = 9_000
_S3_HINT = (
    "S3 credentials and endpoint come from the environment: AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_ENDPOINT_URL for S3-compatible "
    "servers; see docs/storage.md"
)


@dataclass(frozen=True, slots=True)
class Blob:
    digest: str
    size: int


def _hasher() -> Any:
    from blake3 import blake3

    return blake3(max_threads=1)


def hash_bytes(data: bytes) -> str:
    h = _hasher()
    h.update(data)
    return _PREFIX + str(h.hexdigest())


def hash_file(path: str | os.PathLike[str]) -> Blob:
    h, size = _hasher(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return Blob(_PREFIX + str(h.hexdigest()), size)


def _check_digest(digest: str) -> str:
    hexpart = digest[len(_PREFIX) :] if digest.startswith(_PREFIX) else ""
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidInput(
            f"{digest!r} is not a dmv digest (blake3:<64 hex digits>)",
            hint="a digest is 'blake3:' and 64 lowercase hex digits, as 'dmv show' prints it",
        )
    return hexpart


def _part_size(size: int) -> int:
    return max(_MIN_PART, -(-size // _MAX_PARTS))


class _Sink:
    """Where a write goes: hashes and counts what passes, and reports progress.

    What is sent is re-hashed so that a file changed since it was hashed is
    never stored under the old digest.
    """

    def __init__(self, out: IO[bytes], total: int, progress: Progress | None) -> None:
        self._out, self._total, self._progress = out, total, progress
        self._hash, self.done = _hasher(), 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._hash.update(data)
        self.done += len(data)
        if self._progress:
            self._progress(self.done, self._total)
        return len(data)

    def check(self, blob: Blob, source: str) -> None:
        if self.done != blob.size or _PREFIX + str(self._hash.hexdigest()) != blob.digest:
            raise ArtifactError(
                f"{source or 'the content'} changed while it was being stored; nothing was stored",
                hint="store it again once nothing is writing to it",
                digest=blob.digest,
            )


@runtime_checkable
class ArtifactStore(Protocol):
    """Every call dmv makes on an artifact store, grouped by noun.

    * the store: ``location``, ``is_local``;
    * blobs, written: ``put_bytes``, ``put_file``;
    * blobs, read (every read re-hashed): ``get_bytes``, ``fetch``, ``verify``;
    * blobs, looked up: ``exists``, ``size_of``, ``stored_at``, ``path_of``,
      ``iter_blobs``;
    * upkeep: ``remove``, ``incomplete_uploads``, ``abort_upload``.

    A backend that provides these, with these signatures, is an artifact store:
    dmv calls nothing else on it. :class:`FsspecArtifacts` is the built-in one.
    """

    location: str

    @property
    def is_local(self) -> bool: ...

    def put_bytes(self, data: bytes) -> Blob: ...

    def put_file(self, path: str | os.PathLike[str], progress: Progress | None = None) -> Blob: ...

    def get_bytes(self, blob: Blob, *, what: str = "") -> bytes: ...

    def fetch(
        self,
        blob: Blob,
        dest: str | os.PathLike[str],
        *,
        what: str = "",
        progress: Progress | None = None,
    ) -> Path: ...

    def verify(self, blob: Blob, *, what: str = "") -> ArtifactError | None: ...

    def exists(self, blob: Blob) -> bool: ...

    def size_of(self, digest: str) -> int | None: ...

    def stored_at(self, digest: str) -> float | None: ...

    def path_of(self, digest: str) -> str: ...

    def iter_blobs(self) -> Iterator[str]: ...

    def remove(self, digest: str) -> None: ...

    def incomplete_uploads(self) -> list[dict[str, Any]]: ...

    def abort_upload(self, upload: dict[str, Any]) -> None: ...


def missing_blob(blob: Blob, what: str = "") -> ArtifactError:
    """The error for a blob the store does not have, named by what it belongs to."""
    label = f"{what}: " if what else ""
    return ArtifactError(
        f"{label}artifact {blob.digest[:19]}… is missing from the artifact store",
        hint="restore the artifact store from a backup, or run 'dmv fsck'",
        digest=blob.digest,
    )


def damaged_blob(blob: Blob, what: str = "") -> ArtifactError:
    """The error for a blob whose bytes do not match its digest (never where it is kept)."""
    label = f"{what}: " if what else ""
    return ArtifactError(
        f"{label}artifact {blob.digest[:19]}… is damaged: it does not match its digest "
        "(corrupted or truncated)",
        hint="restore the artifact store from a backup, or run 'dmv fsck'",
        digest=blob.digest,
    )


def _fsspec_protocol(scheme: str) -> Callable[[str], ArtifactStore] | None:
    """The built-in backend for any other protocol fsspec knows (``az``, ``sftp``…)."""
    from fsspec.registry import known_implementations, registry

    return FsspecArtifacts if scheme in known_implementations or scheme in registry else None


#: Artifact backends by URL scheme; other packages add theirs in ``dmv.artifacts``.
BACKENDS: Backends[ArtifactStore] = Backends("artifact store", "dmv.artifacts", _fsspec_protocol)


def open_artifacts(location: str) -> ArtifactStore:
    """The artifact store at ``location`` (a folder, ``file://``, ``s3://``, or a plugin's)."""
    return BACKENDS.open(location)


class FsspecArtifacts:
    """Blobs by digest, in a folder or any fsspec URL (the built-in local and S3 backends)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""
        self._protocol = "file"
        self._errors: tuple[type[BaseException], ...] = (OSError,)

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            from fsspec.core import url_to_fs
            from fsspec.utils import get_protocol

            protocol = get_protocol(self.location)
            options: dict[str, Any] = {}
            if protocol in _OBJECT_STORES:
                # Another process may add or remove blobs at any time: a cached
                # listing would make exists() and fsck lie.
                options["use_listings_cache"] = False
            try:
                fs, root = url_to_fs(self.location, **options)
            except (ImportError, ValueError) as exc:
                raise StorageError(
                    f"cannot open artifact store {redact(self.location)!r}: "
                    f"{redact_text(str(exc))}",
                    hint="for s3:// install dmv[s3]",
                ) from None
            if protocol in ("s3", "s3a"):
                from botocore.exceptions import BotoCoreError

                # Missing credentials or an unreachable endpoint are botocore errors.
                self._errors = (OSError, BotoCoreError)
            self._fs, self._root, self._protocol = fs, root.rstrip("/"), protocol
        return self._fs

    @property
    def is_local(self) -> bool:
        return "://" not in self.location or self.location.startswith("file://")

    @property
    def is_object_store(self) -> bool:
        """True when blobs are uploaded under their final name (no rename exists)."""
        _ = self.fs
        return self._protocol in _OBJECT_STORES

    def path_of(self, digest: str) -> str:
        """Where the blob with ``digest`` lives in the store."""
        hexpart = _check_digest(digest)
        _ = self.fs
        return f"{self._root}/blobs/{hexpart[:2]}/{hexpart[2:]}"

    def _tmp_path(self) -> str:
        _ = self.fs
        return f"{self._root}/tmp/{uuid.uuid4().hex}"

    def _storage_error(self, doing: str, exc: BaseException) -> StorageError:
        hint = _S3_HINT if self._protocol in ("s3", "s3a") else None
        where, why = redact(self.location), redact_text(str(exc))
        return StorageError(f"could not {doing} in {where}: {why}", hint=hint)

    # -- writing ------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Blob:
        blob = Blob(hash_bytes(data), len(data))
        if self.exists(blob):
            return blob
        return self._commit(blob, lambda out: out.write(data))

    def put_file(self, path: str | os.PathLike[str], progress: Progress | None = None) -> Blob:
        """Store a file, streaming it in chunks; the same content is stored once."""
        try:
            blob = hash_file(path)
        except FileNotFoundError:
            raise InvalidInput(
                f"file {os.fspath(path)!r} does not exist",
                hint="check the path, or run the command from the folder the path is relative to",
            ) from None
        except IsADirectoryError:
            raise InvalidInput(
                f"{os.fspath(path)!r} is a folder, not a file",
                hint="pass a file; log each file of a folder on its own",
            ) from None
        if self.exists(blob):
            if progress:
                progress(blob.size, blob.size)
            return blob

        def write(out: _Sink) -> None:
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    out.write(chunk)

        return self._commit(blob, write, progress, source=os.fspath(path))

    def _commit(
        self,
        blob: Blob,
        write: Callable[[_Sink], Any],
        progress: Progress | None = None,
        source: str = "",
    ) -> Blob:
        """Store what ``write`` writes as ``blob``: it appears whole, or not at all."""
        fs, final = self.fs, self.path_of(blob.digest)
        direct = self.is_object_store
        target = final if direct else self._tmp_path()
        try:
            if direct:
                out = fs.open(final, "wb", block_size=_part_size(blob.size))
            else:
                fs.makedirs(fs._parent(target), exist_ok=True)
                fs.makedirs(fs._parent(final), exist_ok=True)
                out = fs.open(target, "wb")
            try:
                sink = _Sink(out, blob.size, progress)
                write(sink)
                sink.check(blob, source)
                # On an object store this completes the upload: the blob appears now.
                out.close()
            except BaseException:
                _abandon(out, direct)
                raise
            if self.is_local:
                # One atomic rename; a concurrent writer of the same content is harmless.
                os.replace(target, final)
            elif not direct:
                fs.mv(target, final)
        except self._errors as exc:
            raise self._storage_error("store a blob", exc) from None
        finally:
            if not direct:
                try:
                    if fs.exists(target):
                        fs.rm(target)
                except self._errors:
                    pass
        return blob

    # -- reading ------------------------------------------------------------

    def _open_read(self, path: str) -> Any:
        if self.is_object_store:
            # Sequential ranged reads of CHUNK bytes: memory stays bounded.
            return self.fs.open(path, "rb", block_size=CHUNK, cache_type="none")
        return self.fs.open(path, "rb")

    def exists(self, blob: Blob) -> bool:
        """True when a blob of the right size is present (not re-hashed)."""
        path = self.path_of(blob.digest)
        try:
            return bool(self.fs.size(path) == blob.size)
        except FileNotFoundError:
            return False
        except self._errors as exc:
            raise self._storage_error("look up a blob", exc) from None

    def size_of(self, digest: str) -> int | None:
        """The stored size of the blob ``digest``, None when the store does not have it."""
        try:
            return int(self.fs.size(self.path_of(digest)))
        except FileNotFoundError:
            return None
        except self._errors as exc:
            raise self._storage_error("look up a blob", exc) from None

    def stored_at(self, digest: str) -> float | None:
        """When the blob ``digest`` was written (epoch seconds), None when unknown."""
        try:
            return _modified(self.fs, self.path_of(digest))
        except self._errors as exc:
            raise self._storage_error("look up a blob", exc) from None

    def get_bytes(self, blob: Blob, *, what: str = "") -> bytes:
        """The blob's bytes, verified against its digest and size."""
        path = self.path_of(blob.digest)
        try:
            with self._open_read(path) as fh:
                data: bytes = fh.read()
        except FileNotFoundError:
            raise self._missing(blob, path, what) from None
        except self._errors as exc:
            raise self._storage_error("read a blob", exc) from None
        if len(data) != blob.size or hash_bytes(data) != blob.digest:
            raise self._corrupt(blob, path, what)
        return data

    def _stream(
        self, blob: Blob, path: str, sink: Callable[[bytes], Any], progress: Progress | None
    ) -> tuple[str, int]:
        h, size = _hasher(), 0
        with self._open_read(path) as src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                sink(chunk)
                if progress:
                    progress(size, blob.size)
        return _PREFIX + str(h.hexdigest()), size

    def fetch(
        self,
        blob: Blob,
        dest: str | os.PathLike[str],
        *,
        what: str = "",
        progress: Progress | None = None,
    ) -> Path:
        """Copy the blob to ``dest`` in chunks; ``dest`` appears only once verified."""
        path, dest = self.path_of(blob.digest), Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with open(tmp, "wb") as out:
                digest, size = self._stream(blob, path, out.write, progress)
            if size != blob.size or digest != blob.digest:
                raise self._corrupt(blob, path, what)
            os.replace(tmp, dest)
        except FileNotFoundError:
            raise self._missing(blob, path, what) from None
        except self._errors as exc:
            raise self._storage_error("read a blob", exc) from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def verify(self, blob: Blob, *, what: str = "") -> ArtifactError | None:
        """None when the blob is present and intact, else the error that reading would raise."""
        path = self.path_of(blob.digest)
        try:
            digest, size = self._stream(blob, path, lambda _: None, None)
        except FileNotFoundError:
            return self._missing(blob, path, what)
        except self._errors as exc:
            raise self._storage_error("read a blob", exc) from None
        if size != blob.size or digest != blob.digest:
            return self._corrupt(blob, path, what)
        return None

    def iter_blobs(self) -> Iterator[str]:
        """Every digest present in the store (one listing; on S3, paged by the server)."""
        _ = self.fs
        try:
            paths = self.fs.find(f"{self._root}/blobs")
        except FileNotFoundError:
            return
        except self._errors as exc:
            raise self._storage_error("list blobs", exc) from None
        for path in paths:
            parts = str(path).rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and len(parts[-1]) == 62:
                yield _PREFIX + parts[-2] + parts[-1]

    def incomplete_uploads(self) -> list[dict[str, Any]]:
        """Writes that were started and never completed nor abandoned.

        Each is ``{"kind", "path", "started"}`` (``started`` in epoch seconds,
        or None): a ``"partial upload"`` is a write a crash left in ``tmp/``; an
        ``"incomplete upload"`` is an S3 multipart upload never completed nor
        aborted. Neither is a blob nor listed as one, but both hold storage
        until :meth:`abort_upload` (or, on S3, a bucket lifecycle rule) ends it.
        """
        _ = self.fs
        if self._protocol in ("s3", "s3a"):
            return self._multipart_uploads()
        if self.is_object_store:
            return []
        try:
            leftovers = self.fs.ls(f"{self._root}/tmp", detail=False)
        except FileNotFoundError:
            return []
        except self._errors as exc:
            raise self._storage_error("list partial uploads", exc) from None
        return [
            {"kind": "partial upload", "path": str(p), "started": _modified(self.fs, str(p))}
            for p in leftovers
        ]

    def _multipart_uploads(self) -> list[dict[str, Any]]:
        bucket, _, key = self._root.partition("/")
        prefix = f"{key}/blobs/" if key else "blobs/"
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        try:
            while True:
                page = self.fs.call_s3("list_multipart_uploads", **kwargs)
                for up in page.get("Uploads", []):
                    found.append(
                        {
                            "kind": "incomplete upload",
                            "path": f"{bucket}/{up['Key']}",
                            "upload_id": up["UploadId"],
                            "started": up["Initiated"].timestamp(),
                        }
                    )
                if not page.get("IsTruncated"):
                    return found
                kwargs["KeyMarker"] = page["NextKeyMarker"]
                kwargs["UploadIdMarker"] = page["NextUploadIdMarker"]
        except self._errors as exc:
            raise self._storage_error("list incomplete uploads", exc) from None

    def abort_upload(self, upload: dict[str, Any]) -> None:
        """End one write listed by :meth:`incomplete_uploads`: its storage is freed."""
        try:
            if upload.get("kind") == "partial upload":
                if self.fs.exists(str(upload["path"])):
                    self.fs.rm(str(upload["path"]))
                return
            bucket, _, key = str(upload["path"]).partition("/")
            self.fs.abort_mpu(bucket, key, upload["upload_id"])
        except self._errors as exc:
            raise self._storage_error("abort an upload", exc) from None

    def remove(self, digest: str) -> None:
        path = self.path_of(digest)
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except self._errors as exc:
            raise self._storage_error("remove a blob", exc) from None

    @staticmethod
    def _missing(blob: Blob, path: str, what: str) -> ArtifactError:
        # Named by what it belongs to and its digest: where the store keeps it
        # (a local path, a bucket key) is not the reader's business.
        return missing_blob(blob, what)

    @staticmethod
    def _corrupt(blob: Blob, path: str, what: str) -> ArtifactError:
        return damaged_blob(blob, what)


def _modified(fs: fsspec.AbstractFileSystem, path: str) -> float | None:
    """When ``path`` was last written, as the filesystem reports it; None when unknown."""
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return None
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def _abandon(out: Any, direct: bool) -> None:
    """Give up on a write: abort the upload so nothing becomes visible."""
    if not direct:
        out.close()
        return
    # Closing would complete the upload and publish a partial object; discard
    # aborts it instead (s3fs aborts the multipart upload, gcsfs the resumable one).
    try:
        out.discard()
    finally:
        out.closed = True


# The built-ins are in the table before any entry point can be read (and mypy
# checks here that FsspecArtifacts is an ArtifactStore).
for _scheme in ("file", "s3", "s3a", "gs", "gcs"):
    BACKENDS.register(_scheme, FsspecArtifacts)
