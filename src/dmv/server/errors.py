"""Errors as HTTP responses: the one place the server turns an error into output.

Every answer has the one JSON shape of :meth:`dmv.errors.DmvError.to_dict`: dmv's
own errors with their HTTP status, request validation as ``invalid_input`` (422)
naming each bad field, unknown routes as ``not_found``, and anything unexpected as
``internal`` (500) without a traceback (the server log has it). The Open Inference
Protocol's routes answer in the protocol's own error shape instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dmv.errors import (
    BadRequest,
    DmvError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from dmv.server import predict_routes

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("dmv.server")

#: The code of an HTTP error the framework raises: dmv's own where it has one.
_HTTP_CODES = {
    **{
        e.http_status: e.code
        for e in (BadRequest, Unauthorized, Forbidden, NotFound, TooLarge, UnsupportedMediaType)
    },
    405: "method_not_allowed",
    406: "not_acceptable",
}


def error_response(exc: DmvError, request: Request | None = None) -> JSONResponse:
    """The response for a dmv error: its status and its one JSON shape."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    content = _shaped(request, exc.to_dict())
    return JSONResponse(status_code=exc.http_status, content=content, headers=headers)


def _shaped(request: Request | None, body: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's routes answer ``{"error": "<message>"}`` instead."""
    if request is not None and predict_routes.is_v2_path(request.url.path):
        return predict_routes.v2_error(body)
    return body


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """dmv's errors, request validation and framework errors as the one JSON shape."""

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
