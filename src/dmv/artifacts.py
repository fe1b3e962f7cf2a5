"""A content-addressed blob store over fsspec: a local folder by default, S3 at scale.

Blobs are named by their BLAKE3 digest (``blake3:<64 hex>``) and stored at
``blobs/<2 hex>/<62 hex>``. A write goes to a temporary name first and is
renamed into place only once complete, so a crash never leaves a partial blob
under a real name. Every read re-hashes what it read; a missing or corrupted
blob raises :class:`~dmv.errors.ArtifactError` naming what it belongs to,
and its bytes are never returned.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dmv.errors import ArtifactError, InvalidInput, StorageError

if TYPE_CHECKING:
    import fsspec

__all__ = ["CHUNK", "ArtifactStore", "Blob", "hash_bytes", "hash_file"]

CHUNK = 4 * 1024 * 1024
_PREFIX = "blake3:"
Progress = Callable[[int, int | None], None]


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
        raise InvalidInput(f"{digest!r} is not a dmv digest (blake3:<64 hex digits>)")
    return hexpart


class ArtifactStore:
    """Blobs by digest, in a folder or any fsspec URL."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._fs: fsspec.AbstractFileSystem | None = None
        self._root = ""

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            from fsspec.core import url_to_fs

            try:
                fs, root = url_to_fs(self.location)
            except (ImportError, ValueError) as exc:
                raise StorageError(
                    f"cannot open artifact store {self.location!r}: {exc}",
                    hint="for s3:// install dmv[s3]",
                ) from None
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    @property
    def is_local(self) -> bool:
        return "://" not in self.location or self.location.startswith("file://")

    def path_of(self, digest: str) -> str:
        """Where the blob with ``digest`` lives in the store."""
        hexpart = _check_digest(digest)
        _ = self.fs
        return f"{self._root}/blobs/{hexpart[:2]}/{hexpart[2:]}"

    def _tmp_path(self) -> str:
        _ = self.fs
        return f"{self._root}/tmp/{uuid.uuid4().hex}"

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
            raise InvalidInput(f"file {os.fspath(path)!r} does not exist") from None
        except IsADirectoryError:
            raise InvalidInput(f"{os.fspath(path)!r} is a folder, not a file") from None
        if self.exists(blob):
            if progress:
                progress(blob.size, blob.size)
            return blob

        def write(out: IO[bytes]) -> None:
            done = 0
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, blob.size)

        return self._commit(blob, write)

    def _commit(self, blob: Blob, write: Callable[[IO[bytes]], Any]) -> Blob:
        fs, final, tmp = self.fs, self.path_of(blob.digest), self._tmp_path()
        try:
            fs.makedirs(fs._parent(tmp), exist_ok=True)
            fs.makedirs(fs._parent(final), exist_ok=True)
            with fs.open(tmp, "wb") as out:
                write(out)
            if self.is_local:
                # One atomic rename; a concurrent writer of the same content is harmless.
                os.replace(tmp, final)
            else:
                fs.mv(tmp, final)
        except OSError as exc:
            raise StorageError(f"could not store blob in {self.location}: {exc}") from None
        finally:
            try:
                if fs.exists(tmp):
                    fs.rm(tmp)
            except OSError:
                pass
        return blob

    # -- reading ------------------------------------------------------------

    def exists(self, blob: Blob) -> bool:
        try:
            return bool(self.fs.size(self.path_of(blob.digest)) == blob.size)
        except (FileNotFoundError, OSError):
            return False

    def get_bytes(self, blob: Blob, *, what: str = "") -> bytes:
        """The blob's bytes, verified against its digest and size."""
        path = self.path_of(blob.digest)
        try:
            with self.fs.open(path, "rb") as fh:
                data: bytes = fh.read()
        except FileNotFoundError:
            raise self._missing(blob, path, what) from None
        if len(data) != blob.size or hash_bytes(data) != blob.digest:
            raise self._corrupt(blob, path, what)
        return data

    def fetch(self, blob: Blob, dest: str | os.PathLike[str], *, what: str = "") -> Path:
        """Copy the blob to ``dest`` (streaming); ``dest`` appears only once verified."""
        path, dest = self.path_of(blob.digest), Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        h, size = _hasher(), 0
        try:
            with self.fs.open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if size != blob.size or _PREFIX + str(h.hexdigest()) != blob.digest:
                raise self._corrupt(blob, path, what)
            os.replace(tmp, dest)
        except FileNotFoundError:
            raise self._missing(blob, path, what) from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def verify(self, blob: Blob, *, what: str = "") -> ArtifactError | None:
        """None when the blob is present and intact, else the error that reading would raise."""
        path = self.path_of(blob.digest)
        h, size = _hasher(), 0
        try:
            with self.fs.open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return self._missing(blob, path, what)
        if size != blob.size or _PREFIX + str(h.hexdigest()) != blob.digest:
            return self._corrupt(blob, path, what)
        return None

    def iter_blobs(self) -> Iterator[str]:
        """Every digest present in the store."""
        base = f"{self._root}/blobs" if self.fs else ""
        try:
            paths = self.fs.find(base)
        except FileNotFoundError:
            return
        for path in paths:
            parts = str(path).rstrip("/").split("/")
            if len(parts) >= 2 and len(parts[-2]) == 2 and len(parts[-1]) == 62:
                yield _PREFIX + parts[-2] + parts[-1]

    def remove(self, digest: str) -> None:
        path = self.path_of(digest)
        if self.fs.exists(path):
            self.fs.rm(path)

    @staticmethod
    def _missing(blob: Blob, path: str, what: str) -> ArtifactError:
        label = f"{what}: " if what else ""
        return ArtifactError(
            f"{label}artifact {blob.digest[:19]}… is missing from {path}",
            hint="restore the artifact store from a backup, or run 'dmv fsck'",
            digest=blob.digest,
            path=path,
        )

    @staticmethod
    def _corrupt(blob: Blob, path: str, what: str) -> ArtifactError:
        label = f"{what}: " if what else ""
        return ArtifactError(
            f"{label}artifact at {path} does not match its digest {blob.digest[:19]}… "
            "(corrupted or truncated)",
            hint="restore the file from a backup, or run 'dmv fsck'",
            digest=blob.digest,
            path=path,
        )
