"""Who is asking: tokens on every request, and the project their writes are audited as.

A request carries its token as ``Authorization: Bearer dmv_…`` or in the
``dmv_token`` cookie (which the web UI's login page sets). Until the first
token is created the server is open (local, single-user mode; the CLI refuses
to bind such a server to anything but loopback); the first token locks it for
good: revoking every token does not open it again. Tokens are checked from
memory re-read at most every ``serve_refresh`` seconds (≤ 1 s,
:class:`~dmv.server.resolver.Tokens`): the first token locks, and a revoked
token is refused by, every server on the registry within that bound (at once on
the server whose API made the change).

Writes are audited with the token's name as the actor (``token:ci-bot``). Each
actor gets its own :class:`~dmv.project.Project` over the same stores, so the
name is recorded by the registry itself, in the write's own transaction.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from starlette.requests import Request

from dmv.project import Project
from dmv.server.resolver import Tokens
from dmv.tokens import TokenInfo, authenticate, require

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

__all__ = ["COOKIE", "Gate", "gate", "model_readable", "model_readable_inline", "token_of"]

COOKIE = "dmv_token"
_SCOPE_KEY = "dmv.token"  # the request's authenticated token, once looked up
_OPEN = False  # ... or this: the server was open when the request came


def token_of(request: HTTPConnection) -> str | None:
    """The token a request carries, from its Authorization header or cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header.strip()  # a bare token, or another scheme: authenticate() refuses it
    return request.cookies.get(COOKIE)


class Gate:
    """Checks tokens against the registry and hands out per-actor projects."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._locked = False
        #: Token rows from memory at most ``serve_refresh`` seconds old.
        self.tokens = Tokens(lambda: project.registry, project.config["serve_refresh"])
        self._projects: dict[str, Project] = {}
        self._lock = threading.Lock()

    def locked(self) -> bool:
        """Whether a token is needed; once true it stays true (tokens are never deleted)."""
        if not self._locked:
            self._locked = self.tokens.exist()
        return self._locked

    def identify(self, request: HTTPConnection) -> TokenInfo | None:
        """The request's token (None in open mode); :class:`Unauthorized` without a good one."""
        # One token check per request, however many checks the request passes
        # (open mode included).
        cached: TokenInfo | bool | None = request.scope.get(_SCOPE_KEY)
        if cached is _OPEN:
            return None
        if cached is None:
            if not self.locked():
                request.scope[_SCOPE_KEY] = _OPEN
                return None
            cached = authenticate(self.project.registry, token_of(request), self.tokens.by_hash)
            request.scope[_SCOPE_KEY] = cached
        assert isinstance(cached, TokenInfo)
        return cached

    def allow(self, request: HTTPConnection, scope: str, model: str | None = None) -> Project:
        """The project to act on for this request, after checking ``scope`` on ``model``.

        Raises :class:`~dmv.errors.Unauthorized` (401) or :class:`~dmv.errors.Forbidden`
        (403) before anything is read or changed.
        """
        info = self.identify(request)
        if info is None:
            return self.project
        require(info, scope, model)
        if scope == "read":
            return self.project
        return self.acting_as(info.actor)

    def visible(self, request: HTTPConnection) -> str | None:
        """The one model a read token is limited to (None: every model); checks read scope."""
        info = self.identify(request)
        if info is None:
            return None
        require(info, "read", info.model)
        return info.model

    def acting_as(self, actor: str) -> Project:
        """A project over the same stores whose registry audits writes as ``actor``."""
        with self._lock:
            project = self._projects.get(actor)
            if project is None:
                settings = {**self.project.config.as_dict(), "actor": actor}
                project = Project(self.project.root, **settings)
                self._projects[actor] = project
            return project

    def close(self) -> None:
        with self._lock:
            for project in self._projects.values():
                project.close()
            self._projects.clear()


def gate(request: HTTPConnection) -> Gate:
    """The app's :class:`Gate` (for routes in other modules, e.g. the web UI)."""
    g: Gate = request.app.state.gate
    return g


def model_readable(request: Request) -> None:
    """A route dependency: the model the path names must be readable by the token.

    It runs before the body is validated, so every route that names a model the
    token may not read answers the same 403, whatever the body holds.
    """
    name = request.path_params.get("name")
    if isinstance(name, str):
        gate(request).allow(request, "read", name)


async def model_readable_inline(request: Request) -> None:
    """:func:`model_readable` on the event loop, for the serving routes.

    FastAPI runs a plain function dependency on a worker thread; for a predict
    request that hop cost more than the check (one indexed read, which the async
    handlers already do inline). Same check, same answers.
    """
    model_readable(request)
