"""The one ASGI application: REST API, model serving and the web UI, over one project.

Errors become responses in :mod:`dmv.server.errors` and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import dmv
from dmv.errors import (
    NotFound,
)
from dmv.server import api, predict_routes
from dmv.server.auth import Gate
from dmv.server.errors import install_error_handlers
from dmv.server.openapi import model_documents, security_scheme
from dmv.server.predictors import ModelServer
from dmv.server.security import Policy, SecurityMiddleware, default_hosts
from dmv.version import split_reference

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["create_app", "default_policy"]

log = logging.getLogger("dmv.server")


def _ui_router(project: Project) -> Any:
    try:
        from dmv.server import ui  # lazy: jinja2 (the app works without the UI)
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
        # The full server delivers the webhook outbox in the background ([[webhooks]]).
        stop = None if serving_only else project.start_webhook_delivery()
        try:
            yield
        finally:
            if stop is not None:
                stop.set()
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
        openapi_url=None,  # served below, for the asking token's view
    )
    policy = policy or default_policy(project)
    app.add_middleware(SecurityMiddleware, policy=policy)
    app.state.policy = policy
    app.state.project = project
    app.state.gate = g
    app.state.model_server = server
    install_error_handlers(app)

    if not serving_only:
        app.include_router(api.create_router())
    app.include_router(predict_routes.create_router(server))
    if not serving_only:
        ui_router = _ui_router(project)
        if ui_router is not None:
            app.include_router(ui_router)

    def document(view: str | None) -> dict[str, Any]:
        """The OpenAPI document as seen by a token limited to ``view`` (None: every model)."""
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
            app.openapi_schema = base  # names no model: the same for every view
        # A locked server requires a token on every operation; an open one on none.
        doc = {**app.openapi_schema, "security": [{"bearer": []}] if g.locked() else [{}]}
        # The per-model part follows the registry (aliases move) and the asking
        # token's view, so it is built for each request, never cached for everybody.
        refs = serve_refs if serving_only else _every_model(project)
        if view is not None:
            refs = [r for r in refs or [] if split_reference(r)[0] == view]
        return model_documents(doc, project, server, refs)

    def openapi() -> dict[str, Any]:
        return document(None)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(document(g.visible(request)))

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
