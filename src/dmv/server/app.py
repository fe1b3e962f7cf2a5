"""The one ASGI application: REST API, model serving and the web UI, over one project.

Errors become responses here and nowhere else, all in the one JSON shape of
:meth:`dmv.errors.DmvError.to_dict`: dmv's own errors with their HTTP status,
request validation as ``invalid_input`` (422) naming each bad field, unknown
routes as ``not_found``, and anything unexpected as ``internal`` (500) without
a traceback (uvicorn logs it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import dmv
from dmv.errors import DmvError, InvalidInput, NotFound
from dmv.server import api, inference
from dmv.server.auth import Gate
from dmv.server.openapi import model_documents, security_scheme
from dmv.server.security import Policy, SecurityMiddleware, default_hosts
from dmv.server.serving import ModelServer

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["create_app", "default_policy", "error_response"]

log = logging.getLogger("dmv.server")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(exc: DmvError, request: Request | None = None) -> JSONResponse:
    """The response for a dmv error: its status and its one JSON shape."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    content = _shaped(request, exc.to_dict())
    return JSONResponse(status_code=exc.http_status, content=content, headers=headers)


def _shaped(request: Request | None, body: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's routes answer ``{"error": "<message>"}`` instead."""
    if request is not None and inference.is_v2_path(request.url.path):
        return inference.v2_error(body)
    return body


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_dmv_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DmvError)
        return error_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            {
                "row": None,
                "field": _field(e.get("loc", ())),
                "in": str(e.get("loc", ("body",))[0]),
                "problem": str(e.get("type", "invalid")),
                "message": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        fields = ", ".join(dict.fromkeys(str(p["field"]) for p in problems))
        error = InvalidInput(
            f"the request is not valid: {fields}",
            hint="see details.problems and the OpenAPI document at /openapi.json",
            problems=problems,
        )
        return error_response(error, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        body = _shaped(request, {"error": {"code": code, "message": message}})
        return JSONResponse(status_code=exc.status_code, content=body, headers=exc.headers)

    app.add_exception_handler(DmvError, on_dmv_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_middleware(_CrashBarrier)


class _CrashBarrier:
    """Anything unexpected becomes a 500 in the one error shape, on a connection that lives.

    Starlette's own handler for ``Exception`` re-raises after answering, and
    uvicorn then closes the keep-alive connection: the client's next request
    on it fails. Answering here, inside that middleware, keeps it open.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:  # too late for an error answer: let the server drop it
                raise
            request = Request(scope)
            log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
            body = {
                "error": {
                    "code": "internal",
                    "message": f"internal error: {type(exc).__name__}",
                    "hint": "this is a bug in dmv; the server log has the details",
                }
            }
            await JSONResponse(status_code=500, content=_shaped(request, body))(
                scope, receive, send
            )


def _ui_router(project: Project) -> Any:
    try:
        from dmv.server import ui  # written separately; the app works without it
    except ImportError:
        return None
    create = getattr(ui, "create_router", None)
    return None if create is None else create(project)


def default_policy(project: Project, bind: str = "127.0.0.1", hosts: Sequence[str] = ()) -> Policy:
    """The request checks for ``project`` served on ``bind``: its settings plus ``hosts``."""
    return Policy(
        allowed_hosts=default_hosts(bind, [*project.config["allowed_hosts"], *hosts]),
        max_request_size=project.config["max_request_size"],
    )


def create_app(
    project: Project,
    *,
    serve_refs: list[str] | None = None,
    allow_deprecated: bool = False,
    trust_pickle: bool = False,
    policy: Policy | None = None,
) -> FastAPI:
    """The dmv server for ``project``.

    ``serve_refs`` (``["price-model@production", …]``) makes a prediction server
    for those models only: their predict and v2 routes, nothing else. Without
    it the app serves everything: the REST API, prediction for every model and
    the web UI. Deprecated versions answer 410 unless ``allow_deprecated`` (and
    then only when asked for by exact version). Models stored in a format that can
    run code when loaded (pickle) are served only with ``trust_pickle``.

    ``policy`` says which Host names it answers and how large a request may be
    (:func:`default_policy`: loopback and the project's ``allowed_hosts``).
    Every request passes :class:`~dmv.server.security.SecurityMiddleware` first.
    """
    serving_only = serve_refs is not None
    for text in serve_refs or []:
        dmv.Reference.parse(text)  # a bad reference fails here, not on a request
    server = ModelServer(project, serve_refs, allow_deprecated=allow_deprecated)
    server.trust_pickle = trust_pickle
    g = Gate(project)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        g.close()

    app = FastAPI(
        title="dmv" if not serving_only else f"dmv serve: {', '.join(serve_refs or [])}",
        version=dmv.__version__,
        description="Data and model versioning: registry API, model serving "
        "(dmv predict API and Open Inference Protocol v2).",
        lifespan=lifespan,
        # Swagger UI and ReDoc run third-party scripts from a CDN on the origin that
        # holds the login cookie; the document itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    policy = policy or default_policy(project)
    app.add_middleware(SecurityMiddleware, policy=policy)
    app.state.policy = policy
    app.state.project = project
    app.state.gate = g
    app.state.model_server = server
    _install_error_handlers(app)

    if not serving_only:
        app.include_router(api.create_router())
    app.include_router(inference.create_router(server))
    if not serving_only:
        ui_router = _ui_router(project)
        if ui_router is not None:
            app.include_router(ui_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            base = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            base.setdefault("components", {}).setdefault("securitySchemes", {}).update(
                security_scheme()
            )
            app.openapi_schema = base
        # A locked server requires a token on every operation; an open one on none.
        doc = {**app.openapi_schema, "security": [{"bearer": []}] if g.locked() else [{}]}
        # The per-model part follows the registry (aliases move), so it is not cached.
        refs = serve_refs if serving_only else _every_model(project)
        return model_documents(doc, project, server, refs)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _every_model(project: Project) -> list[str]:
    """For the full server: each model's newest release (else prerelease), documented."""
    refs = []
    try:
        for m in project.models()[:100]:
            newest = m.latest_release or m.latest_prerelease
            if newest:
                refs.append(f"{m.name}@{newest}")
    except NotFound:  # pragma: no cover - a model deleted meanwhile
        pass
    return refs
