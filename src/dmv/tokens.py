"""API tokens: who may read, change or administer a project's registry over HTTP.

A token is ``dmv_`` followed by 32 random bytes (URL-safe base64). It is shown
once, when it is created; the registry keeps only its SHA-256, so a stolen
database does not hand out access. Scopes are ordered: ``read`` < ``write`` <
``admin``; a token may also be limited to one model. Creating and revoking a
token are audited like every other write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, Forbidden, InvalidInput, NotFound, Unauthorized
from dmv.registry import schema as t
from dmv.registry.records import iso
from dmv.version import check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

    from dmv.project import Project

__all__ = [
    "PREFIX",
    "SCOPES",
    "TokenInfo",
    "authenticate",
    "create_token",
    "has_tokens",
    "list_tokens",
    "require",
    "revoke_token",
    "scope_allows",
]

PREFIX = "dmv_"
#: Scopes from least to most powerful; each includes the ones before it.
SCOPES: tuple[str, ...] = ("read", "write", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as the registry knows it: never its secret."""

    name: str
    scope: str
    model: str | None
    created_at: float
    revoked_at: float | None = None

    @property
    def actor(self) -> str:
        """Who the audit log names for a write made with this token."""
        return f"token:{self.name}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str, model: str | None = None) -> bool:
        """Whether this token may act with ``scope`` (on ``model``, when given)."""
        if not scope_allows(self.scope, scope):
            return False
        return self.model is None or model is None or model == self.model

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "model": self.model,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "active": self.active,
        }


def scope_allows(have: str, need: str) -> bool:
    """``admin`` allows everything, ``write`` allows write and read, ``read`` only read."""
    return _RANK[have] >= _RANK[need]


def _check_scope(scope: str) -> str:
    if scope not in _RANK:
        raise InvalidInput(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    return scope


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    hash: str
    scope: str
    model: str | None
    created_at: float
    revoked_at: float | None


def _digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: Any) -> TokenInfo:
    return TokenInfo(row.name, row.scope, row.model, row.created_at, row.revoked_at)


def create_token(
    project: Project, name: str, scope: str, model: str | None = None
) -> tuple[str, TokenInfo]:
    """A new token: its plaintext (show it once, it is not stored) and its record."""
    import sqlalchemy as sa

    check_name(name, "token name")
    _check_scope(scope)
    if model is not None:
        project.model(model)  # NotFound when the model does not exist
    plaintext = PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    registry = project.registry

    def write(conn: sa.Connection) -> None:
        exists = conn.execute(sa.select(t.tokens.c.id).where(t.tokens.c.name == name)).first()
        if exists is not None:
            raise ConflictError(
                f"a token named {name!r} exists already",
                hint="token names are never reused; pick another name",
            )
        conn.execute(
            sa.insert(t.tokens).values(
                name=name,
                hash=_digest(plaintext),
                scope=scope,
                model=model,
                created_at=now,
                revoked_at=None,
            )
        )
        registry._audit(conn, "token.create", model, name, {"scope": scope})

    registry._write(write)
    return plaintext, TokenInfo(name, scope, model, now)


def list_tokens(project: Project, *, include_revoked: bool = True) -> list[TokenInfo]:
    """Every token, oldest first (revoked ones too, unless asked not to)."""
    import sqlalchemy as sa

    def read(conn: sa.Connection) -> list[TokenInfo]:
        query = sa.select(t.tokens).order_by(t.tokens.c.id)
        if not include_revoked:
            query = query.where(t.tokens.c.revoked_at.is_(None))
        return [_info(r) for r in conn.execute(query)]

    result: list[TokenInfo] = project.registry._read(read)
    return result


def revoke_token(project: Project, name: str) -> TokenInfo:
    """Revoke the token ``name``; it stops working at once. Revoking twice is an error."""
    import sqlalchemy as sa

    registry = project.registry
    now = time.time()

    def write(conn: sa.Connection) -> TokenInfo:
        row = conn.execute(sa.select(t.tokens).where(t.tokens.c.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name!r}", hint="list them with 'dmv token list'")
        if row.revoked_at is not None:
            raise ConflictError(f"token {name!r} was revoked already")
        conn.execute(sa.update(t.tokens).where(t.tokens.c.id == row.id).values(revoked_at=now))
        registry._audit(conn, "token.revoke", row.model, name, {"scope": row.scope})
        return TokenInfo(row.name, row.scope, row.model, row.created_at, now)

    result: TokenInfo = registry._write(write)
    return result


_SQL_ANY = "SELECT id FROM tokens LIMIT 1"
_SQL_BY_HASH = "SELECT name, hash, scope, model, created_at, revoked_at FROM tokens WHERE hash = ?"


def _fast(project: Project, sql: str, params: tuple[Any, ...]) -> list[Any] | None:
    """``sql`` on the registry's SQLite fast path (no SQLAlchemy), or None without one.

    Both token checks run on every request the server answers.
    """
    fast = project.registry._fast
    if fast is None:
        return None
    rows: list[Any] = fast.query(sql, params)
    return rows


def has_tokens(project: Project) -> bool:
    """Whether any token was ever created (revoked ones count: the server stays locked)."""
    import sqlalchemy as sa

    rows = _fast(project, _SQL_ANY, ())
    if rows is not None:
        return bool(rows)

    def read(conn: sa.Connection) -> bool:
        return conn.execute(sa.select(t.tokens.c.id).limit(1)).first() is not None

    result: bool = project.registry._read(read)
    return result


def authenticate(project: Project, token: str | None) -> TokenInfo:
    """The active token whose secret is ``token``; :class:`Unauthorized` otherwise."""
    import sqlalchemy as sa

    if not token:
        raise Unauthorized(
            "this server needs a token",
            hint="send 'Authorization: Bearer dmv_…'; create one with 'dmv token create'",
        )
    if not token.startswith(PREFIX) or len(token) > 200:
        raise Unauthorized("the token is not a dmv token")
    digest = _digest(token)

    def read(conn: sa.Connection) -> Any:
        return conn.execute(sa.select(t.tokens).where(t.tokens.c.hash == digest)).first()

    rows = _fast(project, _SQL_BY_HASH, (digest,))
    row: Any = None
    if rows is None:
        row = project.registry._read(read)
    elif rows:
        row = _Row(*rows[0])
    # The lookup is by hash; the constant-time comparison guards against a
    # database that matches loosely (collations, trailing blanks).
    if row is None or not hmac.compare_digest(str(row.hash), digest):
        raise Unauthorized("unknown token", hint="check the token, or create one")
    if row.revoked_at is not None:
        raise Unauthorized(f"token {row.name!r} was revoked")
    return _info(row)


def require(info: TokenInfo, scope: str, model: str | None = None) -> None:
    """Raise :class:`Forbidden` unless ``info`` may act with ``scope`` on ``model``."""
    if not scope_allows(info.scope, scope):
        raise Forbidden(
            f"token {info.name!r} has scope {info.scope}; this needs {scope}",
            hint=f"use a token created with --scope {scope}",
        )
    if info.model is not None and model != info.model:
        what = f"model {model!r}" if model else "every model"
        raise Forbidden(f"token {info.name!r} is limited to model {info.model!r}, not {what}")
