"""API tokens: who may read, change or administer a project's registry over HTTP.

A token is ``dmv_`` followed by 32 random bytes (URL-safe base64). It is shown
once, when it is created; the registry keeps only its SHA-256, so a stolen
database does not hand out access. Scopes are ordered: ``read`` < ``write`` <
``admin``; a token may also be limited to one model. Creating and revoking a
token are audited like every other write.

Each function takes the registry; the statements are the registry's
(:mod:`dmv.registry.tokens`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.errors import Forbidden, InvalidInput, Unauthorized
from dmv.registry.records import iso
from dmv.version import check_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from dmv.registry import RegistryStore
    from dmv.registry.tokens import TokenRecord

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
        raise InvalidInput(
            f"scope {scope!r} must be one of {', '.join(SCOPES)}",
            hint=f"pass --scope with one of {', '.join(SCOPES)}",
        )
    return scope


def _digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: TokenRecord) -> TokenInfo:
    return TokenInfo(row.name, row.scope, row.model, row.created_at, row.revoked_at)


def create_token(
    registry: RegistryStore, name: str, scope: str, model: str | None = None
) -> tuple[str, TokenInfo]:
    """A new token: its plaintext (show it once, it is not stored) and its record."""
    check_name(name, "token name")
    _check_scope(scope)
    if model is not None:
        registry.get_model(check_name(model))  # NotFound when the model does not exist
    plaintext = PREFIX + secrets.token_urlsafe(32)
    row = registry.add_token(name, _digest(plaintext), scope, model, time.time())
    return plaintext, _info(row)


def list_tokens(registry: RegistryStore, *, include_revoked: bool = True) -> list[TokenInfo]:
    """Every token, oldest first (revoked ones too, unless asked not to)."""
    return [_info(r) for r in registry.list_tokens(include_revoked=include_revoked)]


def revoke_token(registry: RegistryStore, name: str) -> TokenInfo:
    """Revoke the token ``name`` (servers refuse it within ``serve_refresh``); not twice."""
    return _info(registry.revoke_token(name, time.time()))


def has_tokens(registry: RegistryStore) -> bool:
    """Whether any token was ever created (revoked ones count: the server stays locked)."""
    return registry.has_tokens()


def authenticate(
    registry: RegistryStore,
    token: str | None,
    lookup: Callable[[str], TokenRecord | None] | None = None,
) -> TokenInfo:
    """The active token whose secret is ``token``; :class:`Unauthorized` otherwise.

    ``lookup`` (default: the registry's ``token_by_hash``) finds a token's row by
    the hash of its secret; a server passes one that answers from memory.
    """
    if not token:
        raise Unauthorized(
            "this server needs a token",
            hint="send 'Authorization: Bearer dmv_…'; create one with 'dmv token create'",
        )
    if not token.startswith(PREFIX) or len(token) > 200:
        raise Unauthorized(
            "the token is not a dmv token", hint="pass a token that 'dmv token create' printed"
        )
    digest = _digest(token)
    row = (lookup or registry.token_by_hash)(digest)
    # The lookup is by hash; the constant-time comparison guards against a
    # database that matches loosely (collations, trailing blanks).
    if row is None or not hmac.compare_digest(str(row.hash), digest):
        raise Unauthorized("unknown token", hint="check the token, or create one")
    if row.revoked_at is not None:
        raise Unauthorized(
            f"token {row.name!r} was revoked", hint="ask for a new token: 'dmv token create NAME'"
        )
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
        raise Forbidden(
            f"token {info.name!r} is limited to model {info.model!r}, not {what}",
            hint="use a token for this model, or one without --model",
        )
