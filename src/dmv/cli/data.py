"""``dmv data``: retrieval versions (DATA) and stored splits (SPLIT)."""

from __future__ import annotations

from pathlib import Path

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._progress import Bars
from dmv.errors import DataError, IntegrityError

__all__ = ["data"]


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        out[key] = value
    return out


@click.group()
def data() -> None:
    """Data retrieval versions (DATA) and stored train/valid/test splits (SPLIT)."""


@data.command("query")
@click.argument("model_name", metavar="MODEL")
@click.option("--sql", help="The retrieval query.")
@click.option(
    "--file",
    "sql_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read the query from a file.",
)
@click.option(
    "--source",
    help="SQLAlchemy URL, DuckDB file or Parquet/CSV files (default: the project's warehouse).",
)
@click.option(
    "--param", "params", multiple=True, metavar="KEY=VALUE", help="A query parameter (repeatable)."
)
@click.option(
    "--files",
    metavar="PATH_OR_GLOB",
    help="A set of files instead of a query (path or fsspec URL).",
)
@click.option("--labels", metavar="CSV", help="With --files: a CSV of path and key columns.")
@click.option("--id", "data_id", help="Use this DATA id instead of deriving one.")
@pass_ctx
@json_option
def data_query(
    ctx: Context,
    model_name: str,
    sql: str | None,
    sql_file: str | None,
    source: str | None,
    params: tuple[str, ...],
    files: str | None,
    labels: str | None,
    data_id: str | None,
    as_json: bool,
) -> None:
    """Register a retrieval method for MODEL and print its DATA id.

    A retrieval is a query (--sql or --file, run against --source) or a set of
    files (--files, split by path or by a key from --labels).
    """
    if files is not None:
        if sql or sql_file:
            raise click.UsageError("--files cannot be combined with --sql or --file")
        info = ctx.project.data_files(model_name, files, labels=labels, id=data_id)
        emit(as_json, info.to_dict(), f"{info.data}\n  files: {info.definition['pattern']}")
        return
    if (sql is None) == (sql_file is None) and not (source and sql is None and not sql_file):
        raise click.UsageError("give exactly one of --sql, --file or --files")
    text = Path(sql_file).read_text(encoding="utf-8") if sql_file else sql
    info = ctx.project.data_query(
        model_name, sql=text, source=source, params=_params(params), id=data_id
    )
    cols = ", ".join(f"{c['name']} {c['type']}" for c in info.columns)
    emit(as_json, info.to_dict(), f"{info.data}\n  columns: {cols}")


@data.command("split")
@click.argument("model_name", metavar="MODEL")
@click.argument("data_id", metavar="DATA")
@click.option(
    "--by",
    default="row",
    show_default=True,
    metavar="KIND[:COLUMN]",
    help="key:COLUMN, group:COLUMN, time:COLUMN or row.",
)
@click.option("--ratios", help="e.g. train=0.8,valid=0.1,test=0.1 (the default).")
@click.option("--salt", default="", help="Changes the assignment, for a fresh split.")
@click.option("--id", "split_id", help="Use this SPLIT id instead of deriving one.")
@click.option(
    "--strict",
    is_flag=True,
    help="Store nothing if any leakage check or split warning fails (see docs/data.md).",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Store a split with empty or short parts anyway (recorded as warnings).",
)
@click.option(
    "--min-share",
    type=float,
    help="A part must hold this fraction of its ratio's rows (default: split_min_share, 0.5).",
)
@pass_ctx
@json_option
def data_split(
    ctx: Context,
    model_name: str,
    data_id: str,
    by: str,
    ratios: str | None,
    salt: str,
    split_id: str | None,
    strict: bool,
    allow_empty: bool,
    min_share: float | None,
    as_json: bool,
) -> None:
    """Run retrieval DATA now, store its rows split into parts, print the SPLIT id.

    Each part's rows, share and key/time range are shown. An empty part, or one
    below --min-share of its ratio, is refused unless --allow-empty. The same split
    again (same DATA, rows, --by, --ratios and --salt) writes nothing: it prints the
    stored SPLIT id and says so ("already_stored" under --json).
    """

    from dmv.data.split import parse_ratios  # lazy: the facade

    with Bars(not as_json) as progress:
        info = ctx.project.data_split(
            model_name,
            data_id,
            by=by,
            ratios=parse_ratios(ratios) if ratios else None,
            salt=salt,
            id=split_id,
            strict=strict,
            allow_empty=allow_empty,
            min_share=min_share,
            progress=progress,
        )

    def human() -> str:
        rows = [
            (
                p["name"],
                p.get("table", "-"),
                f"{p.get('rows', 0):,}",
                f"{p.get('share', 0):.1%}",
                _span(p.get("range")),
            )
            for p in info.parts
        ]
        leak = info.leakage
        if leak is None:
            verdict = "leakage not checked"
        else:
            verdict = "no leakage" if leak.get("ok") else "LEAKAGE FOUND (dmv data check)"
        lines = [f"{info.split}", table(rows, ["part", "table", "rows", "share", "range"])]
        stored = info.result.get("storage") or {}
        total = sum(int(p.get("rows") or 0) for p in info.parts)
        if info.rebuilt:
            lines.append(
                f"split {info.split} already stored, but its parts were missing or damaged "
                f"and were rebuilt ({total:,} row(s))"
            )
        elif info.already_stored:
            lines.append(f"split {info.split} already stored: 0 rows written")
        elif stored.get("kind") == "shared":
            lines.append(
                f"storage: {stored['new_rows']:,} row(s) written, {stored['shared_rows']:,} "
                f"shared with an earlier split ({stored['segments']} segment(s))"
            )
        lines += [f"warning: {w}" for w in info.warnings]
        return "\n".join([*lines, verdict])

    emit(as_json, info.to_dict(), human)


def _span(span: dict[str, object] | None) -> str:
    if not span:
        return "-"
    if "distinct" in span:
        if span["distinct"] is None:
            return f"{span['column']}: {span.get('note') or 'distinct count not estimated'}"
        about = "~" if span.get("approximate") else ""
        return f"{span['column']}: {about}{span['distinct']:,} distinct"
    return f"{span['column']}: {span.get('min')} .. {span.get('max')}"


@data.command("list")
@click.argument("model_name", metavar="MODEL")
@pass_ctx
@json_option
def data_list(ctx: Context, model_name: str, as_json: bool) -> None:
    """List MODEL's retrievals and their stored splits."""
    queries = ctx.project.data_queries(model_name)
    splits = ctx.project.data_splits(model_name)
    rows: list[tuple[str, str, str, str]] = []
    for q in queries:
        source = str(q.definition.get("source", "-"))
        mine = [s for s in splits if s.data == q.data]
        rows += [
            (
                q.data,
                s.split,
                ", ".join(f"{p['name']} {p.get('rows', 0):,}" for p in s.parts),
                source,
            )
            for s in mine
        ] or [(q.data, "-", "-", source)]
    emit(
        as_json,
        {"queries": [q.to_dict() for q in queries], "splits": [s.to_dict() for s in splits]},
        lambda: table(rows, ["data", "split", "rows", "source"]) if rows else "no retrievals",
    )


@data.command("show")
@click.argument("model_name", metavar="MODEL")
@click.argument("ref", metavar="DATA[.SPLIT]")
@pass_ctx
@json_option
def data_show(ctx: Context, model_name: str, ref: str, as_json: bool) -> None:
    """Show a retrieval (DATA) or a stored split (DATA.SPLIT)."""
    if "." in ref:
        s = ctx.project.split_info(model_name, ref)
        rows = [
            (p["name"], p.get("table", "-"), p.get("rows"), p.get("fingerprint")) for p in s.parts
        ]
        emit(
            as_json,
            s.to_dict(),
            lambda: (
                f"{model_name} {s.ref}  spec {s.spec}\n"
                + table(rows, ["part", "table", "rows", "fingerprint"])
            ),
        )
        return
    q = ctx.project.data_show(model_name, ref)
    emit(
        as_json,
        q.to_dict(),
        lambda: "\n".join(
            [
                f"data     {q.data}",
                f"source   {q.definition.get('source')}",
                f"sql      {q.definition.get('sql')}",
                f"params   {q.definition.get('params')}",
            ]
        ),
    )


@data.command("check")
@click.argument("model_name", metavar="MODEL")
@click.argument("ref", metavar="DATA.SPLIT")
@pass_ctx
@json_option
def data_check(ctx: Context, model_name: str, ref: str, as_json: bool) -> None:
    """Check a stored split for leakage: shared keys, identical rows, time overlap."""

    report = ctx.project.data_check(model_name, ref)
    body = report.to_dict()

    def human() -> str:
        rows = [
            (
                c["kind"],
                c.get("column") or "-",
                c["count"],
                "ok" if c["ok"] else "LEAK",
                ", ".join(map(str, c.get("examples", [])[:3])),
            )
            for c in body["checks"]
        ]
        return table(rows, ["check", "column", "count", "", "examples"])

    emit(as_json, body, human)
    if not report.ok:
        raise click.exceptions.Exit(DataError.exit_code)


@data.command("verify")
@click.argument("model_name", metavar="MODEL")
@click.argument("ref", metavar="DATA.SPLIT")
@click.option("--against-source", is_flag=True, help="Re-run the retrieval and compare.")
@click.option(
    "--full",
    is_flag=True,
    help="Recompute the md5 fingerprint of every row, even of parts proven by an engine check.",
)
@pass_ctx
@json_option
def data_verify(
    ctx: Context, model_name: str, ref: str, against_source: bool, full: bool, as_json: bool
) -> None:
    """Recompute a stored split's row counts, schemas and fingerprints and compare.

    A part whose engine check was recorded on this engine version is proven by it (one
    fast pass: the same rows as when their fingerprint was computed); --full recomputes
    the md5 fingerprint of every row.
    """

    report = ctx.project.data_verify(model_name, ref, against_source=against_source, full=full)

    def human() -> str:
        lines = [
            f"{m['part']}: {m['what']} {m['expected']} → {m['actual']}"
            for m in report["mismatches"]
        ]
        lines.append("stored split matches its fingerprints" if report["ok"] else "MISMATCH")
        if "source" in report:
            lines.append(
                "source unchanged"
                if report["source"]["same"]
                else "the source has changed since the split was stored"
            )
        return "\n".join(lines)

    emit(as_json, report, human)
    if not report["ok"]:
        raise click.exceptions.Exit(IntegrityError.exit_code)


@data.command("export")
@click.argument("model_name", metavar="MODEL")
@click.argument("ref", metavar="DATA.SPLIT")
@click.option("--part", default="train", show_default=True, help="Which part.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Parquet file.")
@pass_ctx
@json_option
def data_export(
    ctx: Context, model_name: str, ref: str, part: str, out: str, as_json: bool
) -> None:
    """Write one part of a stored split to a Parquet file."""
    result = ctx.project.data_export(model_name, ref, part, out)
    emit(
        as_json,
        {"path": result.path, "rows": result.rows, "bytes": result.bytes},
        f"wrote {result.rows:,} rows to {result.path}",
    )


@data.command("drop")
@click.argument("model_name", metavar="MODEL")
@click.argument("ref", metavar="DATA.SPLIT")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@json_option
def data_drop(ctx: Context, model_name: str, ref: str, yes: bool, as_json: bool) -> None:
    """Delete a stored split (and its tables) that no version was trained on.

    A drop that would be refused is refused before any question is asked."""
    ctx.project.check_data_drop(model_name, ref)
    if not yes and not as_json:
        click.confirm(f"drop split {ref} of {model_name} and its tables?", abort=True)
    ctx.project.data_drop(model_name, ref)
    emit(as_json, {"dropped": ref}, f"dropped {ref}")
