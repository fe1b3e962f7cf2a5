"""Commands for the server: ``dmv token …``, ``dmv serve REF…`` and ``dmv server``."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import click

from dmv.cli._output import emit, json_option, stderr, table
from dmv.errors import ConfigError, DmvError, InvalidInput, NotFound, SignatureError
from dmv.version import Reference, RefKind

if TYPE_CHECKING:
    from dmv.cli.commands import Context
    from dmv.project import Project
    from dmv.server.predictors import ModelServer

__all__ = ["serve", "server", "token", "worker_app"]


def _ctx() -> Context:
    obj: Context = click.get_current_context().find_root().obj
    return obj


# -- tokens ------------------------------------------------------------------------


@click.group()
def token() -> None:
    """Create, list and revoke the tokens the server asks for."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "admin"]),
    required=True,
    help="read < write < admin: reads, changes, token management.",
)
@click.option("--model", "model_name", metavar="NAME", help="Limit the token to one model.")
@json_option
def token_create(name: str, scope: str, model_name: str | None, as_json: bool) -> None:
    """Create token NAME and print it once: only its hash is stored."""
    from dmv.tokens import create_token  # lazy: sqlalchemy

    plaintext, info = create_token(_ctx().project.registry, name, scope, model_name)
    limited = f" for model {info.model}" if info.model else ""
    emit(
        as_json,
        {**info.to_dict(), "token": plaintext},
        f"{plaintext}\n"
        f"created token {info.name!r} ({info.scope}{limited}); this is the only time it is shown",
    )


@token.command("list")
@json_option
def token_list(as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from dmv.registry.records import iso  # lazy: sqlalchemy
    from dmv.tokens import list_tokens  # lazy: sqlalchemy

    infos = list_tokens(_ctx().project.registry)
    rows = [
        (
            i.name,
            i.scope,
            i.model or "-",
            (iso(i.created_at) or "")[:19].replace("T", " "),
            "revoked" if i.revoked_at else "active",
        )
        for i in infos
    ]
    emit(
        as_json,
        [i.to_dict() for i in infos],
        lambda: (
            table(rows, ["name", "scope", "model", "created", "state"])
            if rows
            else "no tokens: the server is open on loopback only; "
            "create one with 'dmv token create NAME --scope admin'"
        ),
    )


@token.command("revoke")
@click.argument("name")
@json_option
def token_revoke(name: str, as_json: bool) -> None:
    """Revoke token NAME; running servers refuse it within serve_refresh (≤ 1 s)."""
    from dmv.tokens import revoke_token  # lazy: sqlalchemy

    info = revoke_token(_ctx().project.registry, name)
    emit(as_json, info.to_dict(), f"revoked token {info.name!r}")


# -- serving -----------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(project: Project, host: str) -> bool:
    """Refuse an open server (no tokens) on anything but loopback; True when tokens exist."""
    from dmv.tokens import has_tokens  # lazy: sqlalchemy

    locked = has_tokens(project.registry)
    if not locked and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host}: the registry has no tokens, so anyone who can "
            "reach the server could read and change it",
            hint="create a token first with 'dmv token create NAME --scope admin', "
            "or serve on 127.0.0.1",
        )
    return locked


_WORKER_ENV = "DMV_SERVE_WORKER"


def _run(
    project: Project,
    host: str,
    port: int,
    refs: list[str] | None,
    access_log: bool,
    allow_deprecated: bool = False,
    allow_hosts: tuple[str, ...] = (),
    trust_pickle: bool = False,
    workers: int = 1,
) -> None:
    import uvicorn

    locked = check_bind(project, host)
    bind = host.strip("[]")  # uvicorn takes an IPv6 address bare: ::1, not [::1]
    mode = "tokens required" if locked else "open: no tokens yet, loopback only"
    shown = f"[{bind}]" if ":" in bind else bind
    settings = {
        "root": str(project.root),
        "refs": refs,
        "allow_deprecated": allow_deprecated,
        "trust_pickle": trust_pickle,
        "bind": bind,
        "allow_hosts": list(allow_hosts),
    }
    if workers > 1:
        # Worker processes share the listening socket (uvicorn's supervisor binds it
        # and restarts a worker that dies); each opens the project and loads its models.
        import json
        import os

        what = ", ".join(refs) if refs else "API, UI and every model"
        stderr(f"dmv: serving {what} on http://{shown}:{port} ({mode}), {workers} workers")
        os.environ[_WORKER_ENV] = json.dumps(settings)
        uvicorn.run(
            "dmv.cli.server:worker_app",
            factory=True,
            workers=workers,
            host=bind,
            port=port,
            log_level="warning",
            access_log=access_log,
        )
        return
    app = _app(project, settings)
    what = "API, UI and every model"
    if refs:
        what = ", ".join(_warm(app.state.model_server, refs))
    _freeze_heap()
    stderr(f"dmv: serving {what} on http://{shown}:{port} ({mode})")
    uvicorn.run(app, host=bind, port=port, log_level="warning", access_log=access_log)


def _app(project: Project, settings: dict[str, Any]) -> Any:
    from dmv.server import create_app  # lazy: fastapi
    from dmv.server.app import default_policy  # lazy: fastapi

    return create_app(
        project,
        serve_refs=settings["refs"],
        allow_deprecated=settings["allow_deprecated"],
        trust_pickle=settings["trust_pickle"],
        policy=default_policy(project, settings["bind"], tuple(settings["allow_hosts"])),
    )


def worker_app() -> Any:
    """The app of one ``--workers`` process, from the settings its parent put in the environment."""
    import json
    import os

    from dmv.project import open_project  # lazy: the facade

    settings = json.loads(os.environ[_WORKER_ENV])
    app = _app(open_project(settings["root"]), settings)
    if settings["refs"]:
        _warm(app.state.model_server, settings["refs"], quiet=True)
    _freeze_heap()
    return app


def _freeze_heap() -> None:
    """Leave what start-up loaded (libraries, models) out of every garbage collection.

    A request allocates thousands of small containers, which triggers collections;
    a full one walked the millions of objects scikit-learn, pandas and the models
    hold, a pause of several milliseconds in the middle of a request.
    """
    import gc

    gc.collect()
    gc.freeze()


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
_port = click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
_access_log = click.option("--access-log", is_flag=True, help="Log every request.")
_allow_host = click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Answer requests for this host name too (repeatable; *.example.org for "
    "subdomains). Loopback names are always allowed; others are refused (DNS rebinding).",
)
_trust_pickle = click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load models stored as pickle (unsafe-format): they can run any code when loaded.",
)


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF [REF …]")
@_host
@_port
@_access_log
@_allow_host
@_trust_pickle
@click.option(
    "--allow-deprecated",
    is_flag=True,
    help="Also serve deprecated versions, when asked for by exact version "
    "(otherwise they answer 410).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port (one per core uses them all).",
)
def serve(
    refs: tuple[str, ...],
    host: str,
    port: int,
    access_log: bool,
    allow_hosts: tuple[str, ...],
    allow_deprecated: bool,
    trust_pickle: bool,
    workers: int,
) -> None:
    """Serve predictions for the versions REF names (e.g. price-model@production).

    The server answers only for what each REF points at: POST
    /models/NAME/versions/REF/predict resolves REF on every request, so a moved
    alias or a new release is served without a restart, and no other version
    of the model is reachable. Also the Open Inference Protocol v2 under /v2 and
    an OpenAPI document at /openapi.json. A REF that points at nothing is refused
    at start; a model that cannot be loaded answers 503 while the others serve.
    """
    project = _ctx().project
    _check_refs(project, refs, allow_deprecated)
    _run(
        project,
        host,
        port,
        list(refs),
        access_log,
        allow_deprecated,
        allow_hosts,
        trust_pickle,
        workers,
    )


@click.command()
@_host
@_port
@_access_log
@_allow_host
@_trust_pickle
def server(
    host: str, port: int, access_log: bool, allow_hosts: tuple[str, ...], trust_pickle: bool
) -> None:
    """Serve the REST API (/api/v1), the web UI (/) and predictions for every model.

    Requests must name this server by a loopback name, the --host address or an
    --allow-host NAME; state-changing requests from pages on other origins are
    refused. See docs/security.md.
    """
    _run(
        _ctx().project,
        host,
        port,
        None,
        access_log,
        allow_hosts=allow_hosts,
        trust_pickle=trust_pickle,
    )


def _check_refs(project: Project, refs: tuple[str, ...], allow_deprecated: bool) -> None:
    """Refuse, before listening, references that point at nothing (or only at deprecated)."""
    problems = []
    for text in refs:
        ref = Reference.parse(text)  # a malformed reference is its own clear error
        try:
            info = project.show(ref)
        except NotFound as exc:
            problems.append(f"{text}: {exc.message}")
            continue
        if info.state == "deprecated" and not (allow_deprecated and ref.kind is RefKind.EXACT):
            problems.append(
                f"{text}: {info.version} is deprecated"
                + ("" if allow_deprecated else " (--allow-deprecated serves it by exact version)")
            )
    # [signing] require_signed: refused before listening, naming what is wrong with each.
    unsigned = []
    for text in refs:
        try:
            project.require_signature(Reference.parse(text))
        except SignatureError as exc:
            unsigned.append(exc)
        except NotFound:
            pass  # named above
    if unsigned and not problems:
        raise SignatureError(
            "nothing to serve: " + "; ".join(e.message for e in unsigned),
            hint=unsigned[0].hint,
            check=unsigned[0].details.get("check"),
        )
    if problems:
        error = InvalidInput if any("deprecated" in p for p in problems) else NotFound
        raise error(
            "nothing to serve for " + "; ".join(problems),
            hint="check the references with 'dmv versions NAME' and 'dmv show REF'",
        )


def _warm(model_server: ModelServer, refs: list[str], *, quiet: bool = False) -> list[str]:
    """Load each served model now (its hash checked), so the first request is fast.

    Returns what is served, one line per reference; a model that fails to load is
    reported here and answers 503 (with the reason) while the others serve.
    """
    served: list[str] = []
    failed = 0
    for text in refs:
        name, _, ref = text.partition("@")
        try:
            info = model_server.resolve(name, ref or "latest")
            model_server.served(info)
            served.append(f"{text} ({info.version.number})")
        except DmvError as exc:
            failed += 1
            stderr(f"dmv: FAILED {text}: {exc.message} — its endpoints answer {exc.http_status}")
            served.append(f"{text} (failed)")
    if failed and not quiet:
        stderr(f"dmv: {failed} of {len(refs)} models failed to load; serving the others")
    return served
