"""Commands that compare versions or link them to code: interface, diff, tag, checkout, promote."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._progress import Bars
from dmv.errors import IntegrityError

if TYPE_CHECKING:
    from dmv.reproduce import Report

__all__ = ["checkout", "diff", "interface", "promote", "reproduce", "tag", "tree", "verify"]


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


@click.command()
@click.argument("ref_a")
@click.argument("ref_b")
@pass_ctx
@json_option
def diff(ctx: Context, ref_a: str, ref_b: str, as_json: bool) -> None:
    """What changed from REF_A to REF_B: interface, code, libraries, params, data, metrics."""
    from dmv.diff import render

    report = ctx.project.diff(ref_a, ref_b)
    emit(as_json, report, lambda: render(report))


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
@click.argument("model_name", metavar="MODEL")
@click.argument("experiment", metavar="EXPERIMENT")
@pass_ctx
@json_option
def promote(ctx: Context, model_name: str, experiment: str, as_json: bool) -> None:
    """Number the experiment run EXPERIMENT (exN) of MODEL: derive its version."""
    run = ctx.project.promote(model_name, experiment)
    emit(as_json, run.to_dict(), f"{experiment} is now {run.label} {run.id}")


def _report(as_json: bool, report: Report) -> None:
    marks = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}
    rows = [(marks.get(c.status, c.status), c.name, c.detail) for c in report.checks]
    verdict = "all checks passed" if report.ok else "FAILED"
    emit(
        as_json,
        report.to_dict(),
        lambda: f"{report.version}\n" + table(rows, ["", "check", "detail"]) + f"\n\n{verdict}",
    )
    if not report.ok:
        raise click.exceptions.Exit(IntegrityError.exit_code)


@click.command()
@click.argument("ref")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model stored as pickle (unsafe-format) for the behavioural check.",
)
@pass_ctx
@json_option
def verify(ctx: Context, ref: str, trust_pickle: bool, as_json: bool) -> None:
    """Re-check REF: artifact hashes, split fingerprints, interface, code at its commit, env,
    and the model's behaviour (loaded in a fresh process, its recorded sample predicted).

    Exits non-zero when any check fails; differences in the environment are warnings.
    """
    with Bars(not as_json) as bars:
        report = ctx.project.verify(ref, trust_pickle=trust_pickle, progress=bars)
    _report(as_json, report)


@click.command()
@click.argument("ref")
@click.option(
    "--tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help="Relative and absolute tolerance for metrics.",
)
@click.option(
    "--from-source",
    is_flag=True,
    help="Re-run the retrieval and compare with the stored split's fingerprints.",
)
@click.option("--timeout", type=float, help="Give up on training after this many seconds.")
@pass_ctx
@json_option
def reproduce(
    ctx: Context,
    ref: str,
    tolerance: float,
    from_source: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Re-run REF's training from its recorded commit in a temporary worktree.

    The new run is recorded on the same version; dmv checks that the derived version is
    identical and the metrics are within the tolerance, and says what differs.
    """
    with Bars(not as_json) as bars:
        report = ctx.project.reproduce(
            ref, tolerance=tolerance, from_source=from_source, timeout=timeout, progress=bars
        )
    _report(as_json, report)


@click.command()
@click.argument("model_name", metavar="MODEL")
@pass_ctx
@json_option
def tree(ctx: Context, model_name: str, as_json: bool) -> None:
    """Draw MODEL's versions by stage, each arrow labelled with what changed."""
    from dmv.tree import render_text

    t = ctx.project.tree(model_name)
    emit(as_json, t.to_dict(), lambda: render_text(t).rstrip())
