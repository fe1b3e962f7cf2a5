"""The registry's API tokens: their hashes, scopes and revocations (never a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, NotFound
from dmv.registry import schema as t
from dmv.registry import statements as s
from dmv.registry.core import RegistryCore

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["TokenRecord", "TokensMixin"]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token's row: its name, the SHA-256 of its secret, scope, model and times."""

    name: str
    hash: str
    scope: str
    model: str | None
    created_at: float
    revoked_at: float | None


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        row["name"], row["hash"], row["scope"], row["model"], row["created_at"], row["revoked_at"]
    )


class TokensMixin(RegistryCore):
    """Tokens: add, list and revoke them; look one up by the hash of its secret."""

    def add_token(
        self, name: str, digest: str, scope: str, model: str | None, now: float
    ) -> TokenRecord:
        """Store a new token (names are never reused); audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> None:
            exists = conn.execute(sa.select(t.tokens.c.id).where(t.tokens.c.name == name)).first()
            if exists is not None:
                raise ConflictError(
                    f"a token named {name!r} exists already",
                    hint="token names are never reused; pick another name",
                )
            values = {"name": name, "hash": digest, "scope": scope, "model": model}
            conn.execute(sa.insert(t.tokens).values(created_at=now, revoked_at=None, **values))
            self._audit(conn, "token.create", model, name, {"scope": scope})

        self._write(write)
        return TokenRecord(name, digest, scope, model, now, None)

    def list_tokens(self, *, include_revoked: bool = True) -> list[TokenRecord]:
        """Every token, oldest first (revoked ones too, unless asked not to)."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[TokenRecord]:
            query = sa.select(t.tokens).order_by(t.tokens.c.id)
            if not include_revoked:
                query = query.where(t.tokens.c.revoked_at.is_(None))
            return [_record(r._mapping) for r in conn.execute(query)]

        return self._read(read)

    def revoke_token(self, name: str, now: float) -> TokenRecord:
        """Revoke the token ``name``; revoking twice is an error. Audited."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> TokenRecord:
            row = conn.execute(sa.select(t.tokens).where(t.tokens.c.name == name)).first()
            if row is None:
                raise NotFound(f"no token named {name!r}", hint="list them with 'dmv token list'")
            if row.revoked_at is not None:
                raise ConflictError(
                    f"token {name!r} was revoked already",
                    hint="nothing to do; 'dmv token list' shows the live ones",
                )
            conn.execute(sa.update(t.tokens).where(t.tokens.c.id == row.id).values(revoked_at=now))
            self._audit(conn, "token.revoke", row.model, name, {"scope": row.scope})
            return TokenRecord(row.name, row.hash, row.scope, row.model, row.created_at, now)

        return self._write(write)

    def has_tokens(self) -> bool:
        """Whether any token was ever created (revoked ones count). Runs on every request."""
        return self._tfirst(s.token_any(), {}) is not None

    def token_mark(self) -> tuple[int, int]:
        """(tokens ever created, tokens revoked): it changes with every token write.

        A token is only ever created or revoked (never deleted, never un-revoked),
        so an unchanged mark proves no token changed: a server keeps the rows it
        looked up for as long as the mark holds.
        """
        row = self._tfirst(s.token_mark(), {})
        assert row is not None
        return int(row["created"]), int(row["revoked"])

    def token_by_hash(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest``, if any. Runs on every request."""
        row = self._tfirst(s.token_by_hash(), {"hash": digest})
        return None if row is None else _record(row)
