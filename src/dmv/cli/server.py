"""Commands for the server: ``dmv token …``, ``dmv serve REF…`` and ``dmv server``."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import click

from dmv.cli._output import emit, json_option, stderr, table

if TYPE_CHECKING:
    from dmv.cli.commands import Context
    from dmv.project import Project
    from dmv.server.serving import ModelServer

__all__ = ["serve", "server", "token"]


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
    from dmv.tokens import create_token

    plaintext, info = create_token(_ctx().project, name, scope, model_name)
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
    from dmv.registry.records import iso
    from dmv.tokens import list_tokens

    infos = list_tokens(_ctx().project)
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
    """Revoke token NAME; it stops working at once."""
    from dmv.tokens import revoke_token

    info = revoke_token(_ctx().project, name)
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
    from dmv.errors import ConfigError
    from dmv.tokens import has_tokens

    locked = has_tokens(project)
    if not locked and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host}: the registry has no tokens, so anyone who can "
            "reach the server could read and change it",
            hint="create a token first with 'dmv token create NAME --scope admin', "
            "or serve on 127.0.0.1",
        )
    return locked


def _run(
    project: Project,
    host: str,
    port: int,
    refs: list[str] | None,
    access_log: bool,
    trust_pickle: bool = False,
) -> None:
    import uvicorn

    from dmv.server import create_app

    locked = check_bind(project, host)
    app = create_app(project, serve_refs=refs)
    app.state.model_server.trust_pickle = trust_pickle
    if refs:
        _warm(app.state.model_server, refs)
    what = ", ".join(refs) if refs else "API, UI and every model"
    mode = "tokens required" if locked else "open: no tokens yet, loopback only"
    stderr(f"dmv: serving {what} on http://{host}:{port} ({mode})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=access_log)


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
_port = click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port."
)
_access_log = click.option("--access-log", is_flag=True, help="Log every request.")
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
@_trust_pickle
def serve(
    refs: tuple[str, ...], host: str, port: int, access_log: bool, trust_pickle: bool
) -> None:
    """Serve predictions for the models REF names (e.g. price-model@production).

    POST /models/NAME/versions/REF/predict resolves REF on every request, so a
    moved alias or a new release is served without a restart. Also the Open
    Inference Protocol v2 under /v2 and an OpenAPI document at /openapi.json.
    """
    from dmv.version import Reference

    project = _ctx().project
    for text in refs:
        project.model(Reference.parse(text).name)  # fail now on a typo
    _run(project, host, port, list(refs), access_log, trust_pickle)


@click.command()
@_host
@_port
@_access_log
@_trust_pickle
def server(host: str, port: int, access_log: bool, trust_pickle: bool) -> None:
    """Serve the REST API (/api/v1), the web UI (/) and predictions for every model."""
    _run(_ctx().project, host, port, None, access_log, trust_pickle)


def _warm(model_server: ModelServer, refs: list[str]) -> None:
    """Load each served model now (its hash checked), so the first request is fast."""
    from dmv.errors import DmvError

    for text in refs:
        name, _, ref = text.partition("@")
        try:
            model_server.served(model_server.resolve(name, ref or "latest"))
        except DmvError as exc:
            stderr(f"dmv: {text} is not ready yet: {exc.message}")
