"""What a browser may do to a dmv server: the checks every request passes first.

One ASGI middleware, wrapped around both apps (``dmv server`` and ``dmv serve``),
in this order:

1. **Host allow-list.** ``Host`` must be exactly ``name[:port]`` (see
   :func:`parse_host`) and name loopback (``localhost``, ``127.0.0.1``, ``::1``)
   or a name the operator allowed (``--allow-host``). A page on ``evil.example``
   whose DNS is rebound to 127.0.0.1 still sends ``Host: evil.example``, and is
   refused before any route runs (400).
1b. **No other site's page, reads included** (``Sec-Fetch-Site: cross-site`` or
   ``same-site``), but a top-level link to follow: 403.
2. **Origin on every state-changing request** (anything but GET/HEAD/OPTIONS):
   a browser names the page that sent it in ``Origin`` (or ``Sec-Fetch-Site``); it
   must be this server's own origin. Clients that are not browsers send neither
   and pass (they cannot be driven by a foreign page). 403 otherwise.
3. **Cookie sessions need a CSRF token.** The web UI's login cookie is sent by the
   browser on its own; a state-changing request that authenticates with it (no
   ``Authorization`` header) must carry ``X-CSRF-Token`` — a per-session value
   (an HMAC of the session under a per-server secret) that only pages of this
   origin can read (``<meta name="csrf-token">``). The UI's own forms
   (``/login``, ``/logout``) carry it as a form field, checked by their routes.
4. **Bodies**: at most ``max_request_size`` bytes (413, also for chunked bodies);
   writes are JSON only (415 for forms and ``text/plain``, the only bodies a
   foreign page can send without asking first); JSON nested deeper than
   :data:`MAX_JSON_DEPTH` is a 400 before any parser recurses into it.
5. **A locked server documents itself only to a reader**: ``/openapi.json`` needs a
   read token once the registry has tokens.

Every response then gets the security headers of :data:`SECURITY_HEADERS`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dmv.errors import BadRequest, DmvError, Forbidden, TooLarge, UnsupportedMediaType
from dmv.server.errors import error_response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOOPBACK_HOSTS",
    "MAX_JSON_DEPTH",
    "SECURITY_HEADERS",
    "Policy",
    "SecurityMiddleware",
    "csrf_token",
    "default_hosts",
    "host_name",
    "parse_host",
]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_JSON_DEPTH = 64
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "dmv_token"  # the web UI's login cookie (see dmv.server.auth.COOKIE)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes whose forms carry the CSRF token themselves (checked by the route).
FORM_ROUTES = frozenset({"/login", "/logout"})

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # Not no-referrer: under it Chromium sends "Origin: null" on the UI's own form posts.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)


def _authority(value: str) -> tuple[str, int | None]:
    """``Host`` split into its name and port (None when it names none)."""
    name = host_name(value)
    rest = value.strip().lower()
    rest = rest[rest.find("]") + 1 :] if rest.startswith("[") else rest
    if rest.count(":") != 1:
        return name, None
    port = rest.rpartition(":")[2]
    return name, int(port) if port.isdigit() else None


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_HEADER = re.compile(
    rf"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>{_LABEL}(?:\.{_LABEL})*))(?::(?P<port>[0-9]{{1,5}}))?"
)


def parse_host(value: str) -> tuple[str, int | None] | None:
    """A ``Host`` header as ``(name, port)``, or None unless it is exactly ``host[:port]``.

    The name is a DNS name (any case, no trailing dot), an IPv4 address or a
    bracketed IPv6 address; the port is 1-65535. Anything else — userinfo
    (``localhost:80@evil.example``), a path, a second port, an empty value — is
    not a name this server can be asked for under.
    """
    m = _HOST_HEADER.fullmatch(value.lower())
    if m is None:
        return None
    port = int(m["port"]) if m["port"] is not None else None
    if port is not None and not 1 <= port <= 65535:
        return None
    if m["v6"] is not None:
        try:
            return str(ipaddress.IPv6Address(m["v6"])), port
        except ValueError:
            return None
    return m["name"], port


def host_name(value: str) -> str:
    """The host of a ``Host`` header or URL authority, lowercased, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    return value.partition(":")[0].rstrip(".")


def default_hosts(bind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Loopback, the bound address when it is one specific IP, and ``extra``."""
    hosts = [*LOOPBACK_HOSTS]
    name = host_name(bind)
    try:
        if not ipaddress.ip_address(name).is_unspecified:
            hosts.append(name)
    except ValueError:
        hosts.append(name)  # a name given to --host is a name the operator means
    hosts.extend(host_name(h) if not h.startswith("*") else h.lower() for h in extra)
    return tuple(dict.fromkeys(hosts))


def _host_allowed(name: str, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of one login session: only this server can make it."""
    return hmac.new(secret, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Policy:
    """What the middleware lets through; one per app."""

    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    max_request_size: int = 16 * 1024**2
    max_json_depth: int = MAX_JSON_DEPTH
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deep ``body``'s arrays and objects nest, without parsing (no recursion)."""
    brackets = _STRINGS.sub(b"", body).translate(None, bytes(set(range(256)) - set(_DEPTH_STEP)))
    if not brackets:
        return 0
    return max(0, *accumulate(_DEPTH_STEP[b] for b in brackets))


def _is_binary_inference(path: str, content_type: str | None, headers: _Headers) -> bool:
    """An Open Inference Protocol binary tensor request: a JSON header, then raw tensors.

    Its ``application/octet-stream`` body and ``Inference-Header-Content-Length``
    header are outside what a cross-origin page may send without a CORS preflight,
    so accepting it opens no cross-site write.
    """
    media = (content_type or "").partition(";")[0].strip().lower()
    return (
        media == "application/octet-stream"
        and path.startswith("/v2/models/")
        and path.endswith("/infer")
        and headers.get("inference-header-content-length") is not None
    )


def _is_inference(path: str) -> bool:
    return path.startswith(("/v2/models/", "/models/")) and path.endswith(("/infer", "/predict"))


def _header_length(headers: _Headers) -> int:
    try:
        return max(0, int(headers.get("inference-header-content-length") or 0))
    except ValueError:
        return 0


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _Headers:
    def __init__(self, scope: Scope) -> None:
        self.values: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            self.values.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def cookie(self, name: str) -> str | None:
        from http.cookies import SimpleCookie

        raw = self.values.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:  # a malformed Cookie header carries no session
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None


class SecurityMiddleware:
    """The checks of this module's docstring, then the app; headers on every answer."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS:
                    if key not in present:
                        headers.append((key.encode("latin-1"), value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            receive = await self._check(scope, receive)
        except DmvError as exc:
            await self._refuse(scope, exc, send_secured)
            return
        await self.app(scope, receive, send_secured)

    async def _refuse(self, scope: Scope, exc: DmvError, send: Send) -> None:
        from starlette.requests import Request

        # A Request only for its path: /v2 answers in the protocol's own error shape.
        response = error_response(exc, Request(scope))
        await response(scope, _no_body, send)

    async def _check(self, scope: Scope, receive: Receive) -> Receive:
        headers = _Headers(scope)
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET").upper()
        host = headers.get("host") or ""
        parsed = parse_host(host)
        if parsed is None:
            raise BadRequest(
                f"the Host header {host[:100]!r} is not a host name with an optional port",
                hint="send Host: NAME or NAME:PORT, as HTTP clients do by themselves",
            )
        if not _host_allowed(parsed[0], self.policy.allowed_hosts):
            raise BadRequest(
                f"this server does not answer for host {parsed[0]!r}",
                hint="start it with --allow-host NAME to serve under that name",
            )
        self._check_fetch_site(headers, method)
        if path.startswith("/api/"):
            _check_query(scope.get("query_string", b""))
        unsafe = method not in SAFE_METHODS
        if unsafe:
            self._check_origin(headers, host)
            if (
                path not in FORM_ROUTES
                and headers.get("authorization") is None
                and (session := headers.cookie(SESSION_COOKIE))
            ):
                sent = headers.get(CSRF_HEADER) or ""
                if not hmac.compare_digest(sent, csrf_token(self.policy.secret, session)):
                    raise Forbidden(
                        "a request authenticated by the login cookie needs the "
                        f"{CSRF_HEADER} header of its session",
                        hint="scripts send Authorization: Bearer TOKEN instead of the cookie",
                    )
        if path == "/openapi.json" and method in SAFE_METHODS:
            await self._check_reader(scope)
        return await self._checked_body(scope, receive, headers, method, path, unsafe)

    def _check_fetch_site(self, headers: _Headers, method: str) -> None:
        """Nothing for pages of other sites, reads included, but a link to follow.

        A browser names where a request comes from in ``Sec-Fetch-Site``. An
        ``<img src>``, ``<script src>`` or no-cors ``fetch`` from another site would
        otherwise make this server do the work of a read (list the registry, load
        a model) for a page that cannot even read the answer. A top-level
        navigation (a link someone clicks) is let through on reads, so links into
        the web UI keep working; nothing a GET does changes state. dmv grants no
        CORS, so no route is meant for another origin's scripts. Clients that are
        not browsers send no ``Sec-Fetch-Site`` and are unaffected.
        """
        site = headers.get("sec-fetch-site")
        if site not in ("cross-site", "same-site"):
            return
        navigation = (
            headers.get("sec-fetch-mode") == "navigate"
            and headers.get("sec-fetch-dest") == "document"
        )
        if method in SAFE_METHODS and navigation:
            return
        raise Forbidden(
            f"a {site} page may not use this server (Sec-Fetch-Site: {site})",
            hint="open the page from this server itself; scripts and CLIs send no "
            "Sec-Fetch-Site and are unaffected",
        )

    def _check_origin(self, headers: _Headers, host: str) -> None:
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            default = {"http": 80, "https": 443}.get(parts.scheme)
            try:
                port = parts.port or default
            except ValueError:
                port = None
            own_name, own_port = _authority(host)
            own_port = own_port or default
            if origin != "null" and parts.hostname == own_name and port == own_port:
                return
            raise Forbidden(
                f"a page on {origin} may not change anything on this server",
                hint="the web UI and clients that are not browsers are unaffected",
            )
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise Forbidden(
                f"a {site} page may not change anything on this server",
                hint="make the change from the dmv UI itself, or use the API with a token",
            )

    async def _check_reader(self, scope: Scope) -> None:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        gate = getattr(getattr(scope.get("app"), "state", None), "gate", None)
        if gate is None:
            return
        request = Request(scope)
        await run_in_threadpool(gate.visible, request)

    async def _checked_body(
        self,
        scope: Scope,
        receive: Receive,
        headers: _Headers,
        method: str,
        path: str,
        unsafe: bool,
    ) -> Receive:
        limit = self.policy.max_request_size
        length = headers.get("content-length")
        declared: int | None = None
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise BadRequest(
                    f"Content-Length {length!r} is not a number",
                    hint="send Content-Length as the body's size in bytes",
                ) from None
            if declared > limit:
                raise TooLarge(
                    _too_large(limit),
                    limit=limit,
                    hint="send a smaller body, split the rows over several requests, or raise "
                    "the server's limit",
                )
        content_type = headers.get("content-type")
        form_route = path in FORM_ROUTES
        binary = _is_binary_inference(path, content_type, headers)
        if content_type is None and _is_inference(path):
            # Inference clients (tritonclient) send JSON without naming it; prediction
            # changes nothing, and the Origin check above still holds for browsers.
            content_type = "application/json"
        if (
            unsafe
            and content_type is not None
            and not form_route
            and not binary
            and not _is_json(content_type)
        ):
            raise UnsupportedMediaType(
                f"{method} {path} takes a JSON body, not {content_type.partition(';')[0]}",
                hint="send Content-Type: application/json",
            )
        if declared == 0 and (content_type is None or not _is_json(content_type)):
            return receive
        if (
            method in ("GET", "HEAD")
            and length is None
            and "transfer-encoding" not in headers.values
        ):
            return receive
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _replay(b"", receive)
            body.extend(message.get("body", b""))
            if len(body) > limit:
                raise TooLarge(
                    _too_large(limit),
                    limit=limit,
                    hint="send a smaller body, split the rows over several requests, or raise "
                    "the server's limit",
                )
            more = message.get("more_body", False)
        if body and unsafe and content_type is None and not form_route:
            raise UnsupportedMediaType(
                f"{method} {path} takes a JSON body; the request names no Content-Type",
                hint="send Content-Type: application/json",
            )
        if body and content_type is not None and (binary or _is_json(content_type)):
            head = bytes(body[: _header_length(headers)]) if binary else bytes(body)
            depth = json_depth(head)
            if depth > self.policy.max_json_depth:
                raise BadRequest(
                    f"the JSON body nests {depth} levels deep; at most "
                    f"{self.policy.max_json_depth} are accepted",
                    hint="flatten the JSON body",
                )
        return _replay(bytes(body), receive)


def _check_query(raw: bytes) -> None:
    """One value per named query parameter: a repeated one would be read as its last copy."""
    from urllib.parse import parse_qsl

    seen: set[str] = set()
    for key, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if not key:
            raise BadRequest("a query parameter has no name", hint="send ?name=value pairs")
        if key in seen:
            raise BadRequest(
                f"query parameter {key!r} is given more than once",
                hint="give each query parameter once",
            )
        seen.add(key)


def _too_large(limit: int) -> str:
    return f"the request body is larger than this server accepts ({limit:,} bytes)"


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read once, handed to the app; then the client's own messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
