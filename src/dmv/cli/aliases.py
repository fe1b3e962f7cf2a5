"""``dmv alias``: set, remove and list aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when

if TYPE_CHECKING:
    pass

__all__ = ["alias"]


@click.group()
def alias() -> None:
    """Set, remove and list aliases such as production or staging."""


@alias.command("set")
@click.argument("ref")
@click.argument("name")
@pass_ctx
@json_option
def alias_set(ctx: Context, ref: str, name: str, as_json: bool) -> None:
    """Point alias NAME at the version REF resolves to (moves it if set)."""
    info = ctx.project.set_alias(ref, name)
    emit(as_json, info.to_dict(), f"{info.model}@{info.alias} → {info.version.number}")


@alias.command("rm")
@click.argument("model_name", metavar="MODEL")
@click.argument("name")
@pass_ctx
@json_option
def alias_rm(ctx: Context, model_name: str, name: str, as_json: bool) -> None:
    """Remove alias NAME of MODEL."""
    ctx.project.remove_alias(model_name, name)
    emit(
        as_json,
        {"model": model_name, "alias": name, "removed": True},
        f"removed {model_name}@{name}",
    )


@alias.command("list")
@click.argument("model_name", metavar="MODEL")
@pass_ctx
@json_option
def alias_list(ctx: Context, model_name: str, as_json: bool) -> None:
    """List MODEL's aliases."""
    infos = ctx.project.aliases(model_name)
    rows = [(a.alias, a.version.number, _when(a.updated_at)) for a in infos]
    emit(
        as_json,
        [a.to_dict() for a in infos],
        lambda: table(rows, ["alias", "version", "updated"]) if rows else "no aliases",
    )
