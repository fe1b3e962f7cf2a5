"""``dmv tag``, ``dmv branch`` and ``dmv checkout``: versions linked to the commits they
were trained from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option

if TYPE_CHECKING:
    pass

__all__ = ["branch", "checkout", "tag"]


@click.command()
@click.argument("ref")
@pass_ctx
@json_option
def tag(ctx: Context, ref: str, as_json: bool) -> None:
    """Create the git tag name@X.Y.Z-DATA.SPLIT on the commit REF was trained from."""
    name = ctx.project.tag(ref)
    emit(as_json, {"tag": name}, f"tagged {name}")


@click.command()
@click.argument("ref")
@pass_ctx
@json_option
def checkout(ctx: Context, ref: str, as_json: bool) -> None:
    """Check out the commit REF was trained from (the tree must be clean)."""
    commit = ctx.project.checkout(ref)
    emit(as_json, {"commit": commit}, f"checked out {commit[:12]} for {ref}")


@click.command()
@click.argument("ref")
@pass_ctx
@json_option
def branch(ctx: Context, ref: str, as_json: bool) -> None:
    """Create the git branch of REF (MODEL/X.Y.Z-DATA) at the commit it was trained from.

    The name follows [git] branch_pattern in dmv.toml (default
    {model}/{x}.{y}.{z}-{data}). Nothing is checked out; an existing branch of that
    name is never moved.
    """
    made = ctx.project.branch(ref)
    emit(as_json, made, f"branch {made['branch']} at {made['commit'][:12]} for {made['version']}")
