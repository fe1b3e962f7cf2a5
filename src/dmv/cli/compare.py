"""``dmv diff`` and ``dmv tree``: how versions differ and how they descend from each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option

if TYPE_CHECKING:
    pass

__all__ = ["diff", "tree"]


@click.command()
@click.argument("ref_a")
@click.argument("ref_b")
@pass_ctx
@json_option
def diff(ctx: Context, ref_a: str, ref_b: str, as_json: bool) -> None:
    """What changed from REF_A to REF_B: interface, code, libraries, params, data, metrics.

    Value domains learned from the rows (categories seen, ranges, nulls) are listed
    in their own section: they never make a change breaking and never move Y."""

    from dmv.reports.diff import render  # lazy: the facade

    report = ctx.project.diff(ref_a, ref_b)
    emit(as_json, report, lambda: render(report))


@click.command()
@click.argument("model_name", metavar="MODEL")
@pass_ctx
@json_option
def tree(ctx: Context, model_name: str, as_json: bool) -> None:
    """Draw MODEL's versions by stage, each arrow labelled with what changed."""

    from dmv.reports.tree_arrange import render_text  # lazy: the facade

    t = ctx.project.tree(model_name)
    emit(as_json, t.to_dict(), lambda: render_text(t).rstrip())
