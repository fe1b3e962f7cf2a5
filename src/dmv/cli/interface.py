"""``dmv interface``: show, compare and export model interfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table

if TYPE_CHECKING:
    pass

__all__ = ["interface"]


@click.group()
def interface() -> None:
    """Show, compare and export model interfaces (the Y in X.Y.Z)."""


@interface.command("show")
@click.argument("ref")
@pass_ctx
@json_option
def interface_show(ctx: Context, ref: str, as_json: bool) -> None:
    """Show the input and output fields of REF."""
    iface = ctx.project.interface(ref)
    rows = [
        (side, f.name, f.type_text, "yes" if f.required else "no", "yes" if f.nullable else "no")
        for side in ("input", "output")
        for f in iface.fields(side)
    ]
    emit(
        as_json,
        {**iface.to_dict(), "fingerprint": iface.fingerprint},
        lambda: table(rows, ["side", "field", "type", "required", "nullable"]),
    )


@interface.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@pass_ctx
@json_option
def interface_diff(ctx: Context, ref_a: str, ref_b: str, as_json: bool) -> None:
    """List each field change from REF_A to REF_B and classify it (none/compatible/breaking)."""
    d = ctx.project.interface_diff(ref_a, ref_b)

    def human() -> str:
        if not d.changed:
            return "no interface change"
        rows = [(c.side, c.field, c.kind, c.detail, c.compat) for c in d.changes]
        return (
            table(rows, ["side", "field", "change", "detail", "class"]) + f"\n\noverall: {d.compat}"
        )

    emit(as_json, d.to_dict(), human)


@interface.command("export")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["openapi", "jsonschema", "proto"]),
    default="openapi",
    show_default=True,
    help="Document format.",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Write to a file.")
@pass_ctx
@json_option
def interface_export(ctx: Context, ref: str, fmt: str, out: str | None, as_json: bool) -> None:
    """Export REF's interface as OpenAPI 3.1, JSON Schema or a proto3 file."""
    text = ctx.project.export_interface(ref, fmt)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        emit(as_json, {"format": fmt, "path": out}, f"wrote {fmt} to {out}")
        return
    emit(as_json, {"format": fmt, "document": text}, text)
