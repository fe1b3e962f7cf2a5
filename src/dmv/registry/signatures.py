"""The registry's release signatures: one row per signing, never changed or removed.

Which key a signature is trusted by is the project's configuration, never a row:
the row says which key signed (its SHA-256 id and public PEM), who and when, and
where the OpenSSF Model Signing bundle and the provenance envelope are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import StoredArtifact
from dmv.version import Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SignatureRecord", "SignaturesMixin"]


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """One signing of a released version: key, signer, time and the two stored blobs."""

    number: int
    version: Version
    key_id: str
    public_key: str
    signer: str
    signed_at: float
    bundle_digest: str
    bundle_size: int
    envelope_digest: str
    envelope_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "version": str(self.version),
            "key_id": self.key_id,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "bundle": {"digest": self.bundle_digest, "size": self.bundle_size},
            "envelope": {"digest": self.envelope_digest, "size": self.envelope_size},
        }


def _record(version: Version, number: int, row: Any) -> SignatureRecord:
    return SignatureRecord(
        number,
        version,
        row.key_id,
        row.public_key,
        row.signer,
        row.signed_at,
        row.bundle_digest,
        int(row.bundle_size),
        row.envelope_digest,
        int(row.envelope_size),
    )


class SignaturesMixin(RegistryCore):
    """Signatures: add one to a released version (audited), list a version's."""

    def _released_id(self, conn: sa.Connection, version: Version) -> int:
        model = self._model_row(conn, version.name)
        row = self._version_row(conn, model.id, version)
        if row is None or row.state == "prerelease":
            raise ConflictError(
                f"{version} is not a released version: only releases are signed",
                hint=f"release it first ('dmv release {version.ref}'), then sign the release",
            )
        return int(row.id)

    def add_signature(
        self,
        version: Version,
        *,
        key_id: str,
        public_key: str,
        signed_at: float,
        bundle: tuple[str, int],
        envelope: tuple[str, int],
    ) -> SignatureRecord:
        """Record a signing of the released ``version``; audited as ``version.sign``."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> SignatureRecord:
            version_id = self._released_id(conn, version)
            values = {
                "version_id": version_id,
                "key_id": key_id,
                "public_key": public_key,
                "signer": self.actor,
                "signed_at": signed_at,
                "bundle_digest": bundle[0],
                "bundle_size": bundle[1],
                "envelope_digest": envelope[0],
                "envelope_size": envelope[1],
            }
            conn.execute(sa.insert(t.signatures).values(**values))
            count = conn.execute(
                sa.select(sa.func.count()).where(t.signatures.c.version_id == version_id)
            ).scalar_one()
            self._audit(
                conn,
                "version.sign",
                version.name,
                version.number,
                {"key_id": key_id, "signature": int(count)},
            )
            return _record(version, int(count), _Values(values))

        result: SignatureRecord = self._write(write)
        return result

    def list_signatures(self, version: Version) -> list[SignatureRecord]:
        """The version's signatures, oldest first (the last is the current one)."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[SignatureRecord]:
            model = self._model_row(conn, version.name)
            row = self._version_row(conn, model.id, version)
            if row is None:
                return []
            query = (
                sa.select(t.signatures)
                .where(t.signatures.c.version_id == row.id)
                .order_by(t.signatures.c.id)
            )
            return [_record(version, n, r) for n, r in enumerate(conn.execute(query), start=1)]

        result: list[SignatureRecord] = self._read(read)
        return result

    def signature_blobs(self) -> list[StoredArtifact]:
        """Every signature's bundle and envelope, with its version (for fsck and backup)."""
        import sqlalchemy as sa

        v = t.versions.c
        query = (
            sa.select(t.signatures, t.models.c.name.label("model"), v.x, v.y, v.z, v.data, v.split)
            .join(t.versions, v.id == t.signatures.c.version_id)
            .join(t.models, t.models.c.id == v.model_id)
            .order_by(t.signatures.c.id)
        )

        def read(conn: sa.Connection) -> list[StoredArtifact]:
            out = []
            for r in conn.execute(query):
                where = {"x": r.x, "y": r.y, "z": r.z, "data": r.data, "split": r.split}
                for name, digest, size in (
                    ("signature bundle", r.bundle_digest, r.bundle_size),
                    ("provenance envelope", r.envelope_digest, r.envelope_size),
                ):
                    out.append(
                        StoredArtifact(name, digest, int(size), r.model, "signature", None, **where)
                    )
            return out

        result: list[StoredArtifact] = self._read(read)
        return result


class _Values:
    """Attribute access over the values just inserted (the row as it will read back)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
