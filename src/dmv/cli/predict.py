"""Batch prediction by version: predict, predictions."""

from __future__ import annotations

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._progress import Bars

__all__ = ["predict", "predictions"]


@click.command()
@click.argument("ref")
@click.option(
    "--input",
    "input_",
    metavar="DATA.SPLIT:PART | FILE",
    help="A stored split's part (0123.efgh:test) or a Parquet/CSV file.",
)
@click.option("--sql", help="Score what this SELECT returns (read-only, as 'dmv data query').")
@click.option(
    "--source",
    metavar="URL",
    help="Where --sql runs (default: the warehouse): a SQLAlchemy URL, .duckdb or files.",
)
@click.option(
    "--output",
    metavar="TABLE | FILE.parquet",
    help="Write the scores here (default: a warehouse table named after the version).",
)
@click.option(
    "--on-bad-rows",
    type=click.Choice(["refuse", "reject"]),
    default="refuse",
    show_default=True,
    help="Rows that break the interface: refuse the run, or write them to a rejects table.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="COLUMN",
    help="A key column copied from the input to the output (repeat; default: the split's key).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    default=None,
    help="Load a model stored as pickle (unsafe-format): it can run code when loaded.",
)
@pass_ctx
@json_option
def predict(
    ctx: Context,
    ref: str,
    input_: str | None,
    sql: str | None,
    source: str | None,
    output: str | None,
    on_bad_rows: str,
    keys: tuple[str, ...],
    trust_pickle: bool | None,
    as_json: bool,
) -> None:
    """Score rows with the model version REF serves, and record it as a prediction run.

    Every row is validated against the version's interface first. The output holds the
    key columns, the interface's outputs and the version; it appears under its final name
    only when complete, and is then recorded (see 'dmv predictions', 'dmv verify
    --prediction ID').
    """
    with Bars(not as_json) as bars:
        record = ctx.project.predict(
            ref,
            input=input_,
            sql=sql,
            source=source,
            output=output,
            on_bad_rows=on_bad_rows,
            keys=keys,
            # without the flag, the project's own trust setting decides
            trust_pickle=True if trust_pickle else None,
            progress=bars,
        )

    def human() -> str:
        lines = [
            f"prediction {record.id}: {record.version} ({record.run_id}) scored "
            f"{record.rows_out:,} of {record.rows_in:,} rows in {record.seconds}s",
            f"output: {record.output}",
        ]
        if record.rejects:
            lines.append(f"rejected: {record.rows_rejected:,} rows in {record.rejects}")
        return "\n".join(lines)

    emit(as_json, record.to_dict(), human)


@click.command()
@click.argument("ref", metavar="MODEL | REF")
@pass_ctx
@json_option
def predictions(ctx: Context, ref: str, as_json: bool) -> None:
    """List the prediction runs of a model (or of the version REF points at)."""
    records = ctx.project.predictions(ref)
    rows = [
        (
            r.id,
            r.version.number,
            r.run_id,
            f"{r.input_kind} {r.input}",
            r.output,
            r.rows_out,
            r.rows_rejected,
            r.to_dict()["finished_at"],
        )
        for r in records
    ]
    headers = ["id", "version", "run", "input", "output", "rows", "rejected", "finished"]
    emit(as_json, [r.to_dict() for r in records], lambda: table(rows, headers))
