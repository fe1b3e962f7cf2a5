"""The web UI: server-rendered pages over the :class:`~dmv.project.Project` facade.

``create_router(project)`` returns a FastAPI router with

- ``/`` — models, with search (``q``) and filters (``state``, ``metric``);
- ``/ui/models/{name}`` — the version tree, as ``seed/diagram1.png`` draws it, and the versions;
- ``/ui/models/{name}/versions/{ref}`` — one version: components, interface, lineage, runs;
- ``/ui/diff?a=REF&b=REF`` — two versions side by side;
- ``/login`` and ``POST /logout`` — keep an API token in the HttpOnly cookie ``dmv_token``;
  both forms carry a CSRF token (see :mod:`dmv.server.security`);
- ``/ui/static/…`` — the stylesheet. Nothing is loaded from anywhere else.

Pages need no JavaScript. A :class:`~dmv.errors.DmvError` becomes an error page with
its message, hint and HTTP status, in one place (:func:`_guarded`).
"""

from __future__ import annotations

import hmac
import itertools
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dmv.errors import DmvError, Forbidden, NotFound
from dmv.flavors import is_unsafe
from dmv.integrations.card import style_hash
from dmv.reports import tree_layout as _tree
from dmv.server.security import CSRF_FIELD, SECURITY_HEADERS, csrf_token
from dmv.server.ui import _chart, _views
from dmv.tokens import authenticate, has_tokens

if TYPE_CHECKING:
    from dmv.project import Project

__all__ = ["COOKIE", "create_router"]

COOKIE = "dmv_token"
HERE = Path(__file__).parent
STATIC_FILES = {"app.css": "text/css; charset=utf-8"}
log = logging.getLogger(__name__)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        version_url=_views.version_url,
        number_parts=_tree.number_parts,
        part_names=_views.PART_NAMES,
        change_help=_tree.CHANGE_HELP,
        fmt=_chart.fmt,
        quote=quote,
        is_unsafe=is_unsafe,
    )
    env.filters["when"] = _when
    return env


def _when(ts: float | None) -> str:
    """An epoch timestamp as ``2025-01-23 14:05 UTC``."""
    if ts is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


LOGIN_CSRF_COOKIE = "dmv_login_csrf"


def _secret(request: Request) -> bytes:
    policy = getattr(request.app.state, "policy", None)
    if policy is None:  # a standalone router: one secret for this process
        return _process_secret()
    secret: bytes = policy.secret
    return secret


@cache
def _process_secret() -> bytes:
    import secrets

    return secrets.token_bytes(32)


def _csrf(request: Request) -> str:
    """The CSRF token of the request's login session ('' without one)."""
    session = request.cookies.get(COOKIE)
    return csrf_token(_secret(request), session) if session else ""


def _render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("nav", "")
    html = (
        _env()
        .get_template(template)
        .render(
            request=request,
            logged_in=COOKIE in request.cookies,
            csrf=_csrf(request),
            csrf_field=CSRF_FIELD,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)


def _login_page(
    request: Request, status: int, target: str, message: str | None, title: str = "Log in"
) -> Response:
    """The login form, with a fresh double-submit token in a cookie and in the form."""
    import secrets

    nonce = secrets.token_urlsafe(24)
    response = _render(
        request,
        "login.html",
        status,
        title=title,
        nav="login",
        next=target,
        message=message,
        login_csrf=nonce,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


def _error_page(request: Request, exc: DmvError) -> Response:
    if exc.http_status == 401:  # a person in a browser: offer the form, not a header to send
        return _login_page(request, 401, _safe_next(request.url.path), exc.message)
    return _render(
        request,
        "error.html",
        exc.http_status,
        title=f"{exc.http_status} · {exc.code.replace('_', ' ')}",
        error=exc,
    )


def _guarded(request: Request, page: Callable[[], Response]) -> Response:
    """Run ``page``; a DmvError (or a bug) becomes an error page, never a traceback."""
    try:
        return page()
    except DmvError as exc:
        return _error_page(request, exc)
    except Exception:
        log.exception("web UI page %s failed", request.url.path)
        return _error_page(
            request,
            DmvError(
                "dmv could not draw this page (an internal error)",
                hint="the server log has the details",
            ),
        )


def _read_allowed(request: Request, model: str | None = None) -> str | None:
    """Check the request's token through the server's gate, when the app has one.

    Without a model: the one model a token is limited to (None for every model).
    A standalone router (no gate) and a registry without tokens let everyone read.
    """
    gate = getattr(request.app.state, "gate", None)
    if gate is None:
        return None
    if model is None:
        visible: str | None = gate.visible(request)
        return visible
    gate.allow(request, "read", model)
    return None


def _check_token(project: Project, token: str) -> None:
    """Refuse a token the registry does not know (when this dmv has tokens at all)."""
    if has_tokens(project.registry):
        authenticate(project.registry, token)


def _safe_next(target: str | None) -> str:
    """Only local paths after login: no open redirects to other sites."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_router(project: Project) -> APIRouter:
    """The web UI's routes, reading from ``project``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def models_page(
        request: Request, q: str = "", state: str = "", metric: str = "", page: str = "1"
    ) -> Response:
        def render() -> Response:
            only = _read_allowed(request)
            number = _views.page_number(page)
            rows, metrics = _views.model_rows(project, q, state, metric.strip(), only)
            pages = _views.Pages.of(len(rows), number, {"q": q, "state": state, "metric": metric})
            matched = len(rows)
            rows = rows[pages.start : pages.stop]
            return _render(
                request,
                "models.html",
                title="Models",
                nav="models",
                rows=rows,
                metrics=metrics,
                q=q,
                state=state,
                metric=metric.strip(),
                states=_views.STATES,
                total=len(project.models()) if only is None else 1,
                matched=matched,
                pages=pages,
            )

        return _guarded(request, render)

    @router.get("/ui/models/{name}")
    def model_page(request: Request, name: str, expand: str = "", metric: str = "") -> Response:
        def page() -> Response:
            _read_allowed(request, name)
            model = project.model(name)
            versions = project.versions(name)
            experiments = project.experiments(name)
            released_from = {v.version.number: v.released_from for v in versions if v.released_from}
            # A listing knows only 'dirty'; a release's policy overrides are in its record.
            flags = {
                v.version.number: project.show(v.version).flags for v in versions if v.released_from
            }
            href = {v.version.number: _views.version_url(v.version) for v in versions}
            opened = {k for k in expand.split(",") if k.strip()}
            tree = _tree.layout(project.tree(name), href, expand=opened)
            previous = {b.version.number: a.version for a, b in itertools.pairwise(versions)}
            metrics = _views.metric_view(project, model, versions, metric.strip())
            trend = None
            # Only versions measured on the same rows are put side by side.
            rows_alike = _views.same_rows(project, versions, metrics)
            if metrics.metric and metrics.split:
                trend = _chart.trend(
                    [
                        (
                            v.version.number,
                            v.version.x >= 1,
                            rows_alike.summaries[v.version.number],
                            href[v.version.number],
                            0,
                        )
                        for v in versions
                        if v.version.number in rows_alike.summaries
                    ],
                    metrics.metric,
                    metrics.split,
                    model.metric_goal,
                )
            return _render(
                request,
                "model.html",
                title=name,
                nav="models",
                model=model,
                versions=versions,
                experiments=experiments,
                tree=tree,
                released_from=released_from,
                flags=flags,
                previous=previous,
                metrics=metrics,
                trend=trend,
                same_rows=rows_alike,
                audit=project.audit(model=name, limit=12),
            )

        return _guarded(request, page)

    @router.get("/ui/models/{name}/versions/{ref}")
    def version_page(request: Request, name: str, ref: str) -> Response:
        def page() -> Response:
            reference = _views.parse_ref(name, ref)
            _read_allowed(request, name)
            info = project.show(reference)
            model = project.model(name)
            runs = project.runs(info.version)
            run = _views.pick_run(info, runs)
            libraries = (info.logic or {}).get("libraries")
            splits, panels = _chart.metric_panels(runs)
            curves = _chart.curve_panels(runs)
            releases = []
            if info.version.x == 0:
                for v in project.versions(name):
                    if v.released_from == info.version.number:
                        releases.append(v.version)
            return _render(
                request,
                "version.html",
                title=str(info.version),
                nav="models",
                model=model,
                info=info,
                runs=runs,
                run=run,
                ref=ref,
                coded=[r for r in runs if r.code and r.code.get("commit")],
                exact=ref == info.version.number,
                environment=_views.environment_summary(
                    run, libraries if isinstance(libraries, dict) else None
                ),
                lineage=_views.lineage(project, info.version),
                splits=splits,
                panels=panels,
                curves=curves,
                releases=releases,
                branch=project.version_branch(info.version),
                signature=None
                if info.version.x == 0
                else project.signature(info.version, full=False),
                # The release policy's gates, from the one function a release applies.
                gates=project.gates(info.version) if info.state == "prerelease" else None,
            )

        return _guarded(request, page)

    @router.get("/ui/models/{name}/versions/{ref}/card")
    def card_page(request: Request, name: str, ref: str, format: str = "html") -> Response:
        def page() -> Response:
            reference = _views.parse_ref(name, ref)
            _read_allowed(request, name)
            text = project.card(reference, format=format)
            if format == "md":
                filename = f"{reference.name}-card.md"  # the name grammar keeps it a plain name
                disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
                return Response(
                    text, media_type="text/markdown; charset=utf-8", headers=disposition
                )

            # The server's policy, with the card's one inline style allowed by its hash.
            policy = dict(SECURITY_HEADERS)["content-security-policy"].replace(
                "style-src 'self'", f"style-src 'self' {style_hash()}"
            )
            return HTMLResponse(text, headers={"Content-Security-Policy": policy})

        return _guarded(request, page)

    @router.get("/ui/diff")
    def diff_page(request: Request, a: str = "", b: str = "") -> Response:
        def page() -> Response:
            if not a and not b:
                return _render(
                    request, "diff.html", title="Compare versions", nav="diff", a=a, b=b, sides=None
                )
            ra = _views.parse_full_ref(a, "the left version (a)")
            rb = _views.parse_full_ref(b, "the right version (b)")
            for r in (ra, rb):
                _read_allowed(request, r.name)
            ia, ib = project.show(ra), project.show(rb)
            sa = _views.Side(ia, project.runs(ia.version))
            sb = _views.Side(ib, project.runs(ib.version))
            rows = _views.diff_rows(sa, sb)
            overlays = _views.run_overlays(sa, sb)
            sections: dict[str, list[_views.DiffRow]] = {}
            for row in rows:
                sections.setdefault(row.section, []).append(row)
            return _render(
                request,
                "diff.html",
                title=f"{ia.version.ref} ↔ {ib.version.ref}",
                nav="diff",
                a=a,
                b=b,
                sides=(sa, sb),
                sections=sections,
                overlays=overlays,
                changed=sum(r.changed for r in rows),
                interface=_views.interface_changes(ia, ib),
                extra=_views.project_diff(project, ia, ib),
                change=_tree.change_between(ia.version, ib.version) if ia.name == ib.name else "",
            )

        return _guarded(request, page)

    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        return _login_page(request, 200, _safe_next(next), None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        # A plain urlencoded form, parsed here so the UI needs no multipart library.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        target = _safe_next((form.get("next") or ["/"])[0])
        sent = (form.get(CSRF_FIELD) or [""])[0]
        expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if not expected or not hmac.compare_digest(sent, expected):
            # Login CSRF: a foreign page could log this browser in as the attacker.
            return _login_page(
                request, 403, target, "This login form has expired; please log in again."
            )
        if not token:
            return _login_page(request, 422, target, "Paste a token made with 'dmv token create'.")
        try:
            await run_in_threadpool(_check_token, project, token)
        except DmvError as exc:
            return _login_page(request, exc.http_status, target, exc.message)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @router.get("/logout")
    def logout_form(request: Request) -> Response:
        # Logging out changes state, so it is a POST; this page holds its button.
        return _render(request, "logout.html", title="Log out", nav="login")

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        sent = (form.get(CSRF_FIELD) or [""])[0]
        expected = _csrf(request)
        if expected and not hmac.compare_digest(sent, expected):
            return _error_page(
                request,
                Forbidden(
                    "this log-out form is not from this session; use the button",
                    hint="use the log-out button on a page of this server",
                ),
            )
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/ui/static/{filename}")
    def static(request: Request, filename: str) -> Response:
        if filename not in STATIC_FILES:
            return _error_page(
                request,
                NotFound(
                    f"no static file {filename!r}",
                    hint="the UI's static files are listed on docs/ui.md",
                ),
            )
        return FileResponse(
            HERE / "static" / filename,
            media_type=STATIC_FILES[filename],
            headers={"Cache-Control": "public, max-age=300"},
        )

    return router
