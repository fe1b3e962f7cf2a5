"""``dmv fsck``, ``backup`` and ``restore``: checking, copying and replacing the stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._progress import Bars
from dmv.integrity import RECOVERY

if TYPE_CHECKING:
    pass

__all__ = ["backup_cmd", "fsck", "restore_cmd"]


@click.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Remove orphans older than the grace period; give unused warehouse space back.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Re-hash every artifact, run SQLite's full integrity_check, re-fingerprint every split.",
)
@click.option("--quick", is_flag=True, hidden=True, help="The default now (kept for scripts).")
@click.option(
    "--grace",
    "grace",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds an orphan is left alone (a run may own it).",
)
@pass_ctx
@json_option
def fsck(ctx: Context, repair: bool, deep: bool, quick: bool, grace: float, as_json: bool) -> None:
    """Check every store: registry, artifacts, warehouse and (--deep) stored splits.

    One line per store with its status (ok, problems, damaged, skipped), then
    every problem and orphan. Exits 0 when all is well, 6 when something
    registered is missing or does not match, 8 when a store cannot be read.
    """
    report = ctx.project.fsck(repair=repair, deep=deep, grace_seconds=grace)

    def human() -> str:
        rows = [(s.store, s.status, s.summary, s.location) for s in report.stores]
        lines = [table(rows, ["store", "status", "summary", "location"])]
        for p in report.problems:
            # Artifact and store errors name what they are about already.
            said = p["what"] in p["error"]
            where = "" if said else f"{p['what']}: "
            lines.append(f"PROBLEM {p['store']} {p['kind']}: {where}{p['error']}")
        done = {id(o) for o in report.repaired}
        for o in report.orphans:
            state = "removed" if id(o) in done else "orphan"
            lines.append(f"{state} {o['kind']}: {o.get('digest') or o.get('table') or o['path']}")
        for r in report.repaired:
            if r["kind"] == "warehouse space":
                lines.append(f"reclaimed {r['bytes']:,} bytes of {r['path']}")
        if report.ok:
            lines.append("ok")
        else:
            lines.append(f"{len(report.problems)} problem(s)")

            lines.append(f"hint: {RECOVERY}")
        return "\n".join(lines)

    emit(as_json, report.to_dict(), human)
    if not report.ok:
        raise click.exceptions.Exit(report.exit_code)


@click.command("backup")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--warehouse-external",
    is_flag=True,
    help="A PostgreSQL or Spark warehouse: do not copy its dmv-owned tables as Parquet; "
    "record them and the exact pg_dump command that backs them up.",
)
@pass_ctx
@json_option
def backup_cmd(ctx: Context, dest: str, warehouse_external: bool, as_json: bool) -> None:
    """Copy registry, warehouse and artifacts consistently into the new folder DIR.

    Safe while dmv is in use. A PostgreSQL or Spark warehouse's dmv-owned tables
    are written as Parquet, checked against their fingerprints (or, with
    --warehouse-external, named with the command to back them up). A PostgreSQL
    registry is backed up with pg_dump instead (dmv says so).
    """
    with Bars(not as_json) as bars:
        data = ctx.project.backup(dest, warehouse_external=warehouse_external, progress=bars)
    emit(
        as_json,
        data,
        f"backed up to {data['path']}: registry {data['registry_bytes']:,} bytes, "
        f"{data['warehouse_tables']} warehouse table(s), {data['artifacts']} artifact(s)"
        + ("" if data["artifacts_copied"] else " (manifest only: they stay in the object store)")
        + "\ncontains: "
        + "; ".join(data["contains"]),
    )


@click.command("restore")
@click.argument("src", metavar="DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a project that already holds data.")
@pass_ctx
@json_option
def restore_cmd(ctx: Context, src: str, force: bool, as_json: bool) -> None:
    """Replace this project's stores with the backup in DIR (checked before anything changes).

    Refuses a project that holds data unless --force. Stop other dmv processes first.
    """
    with Bars(not as_json) as bars:
        data = ctx.project.restore(src, force=force, progress=bars)
    missing = data["missing_artifacts"]
    emit(
        as_json,
        data,
        f"restored {data['path']}: {data['warehouse_tables']} warehouse table(s), "
        f"{data['artifacts']} artifact(s)"
        + (f"; {len(missing)} artifact(s) missing from the store" if missing else "")
        + (
            f"; the warehouse lacks {len(data['missing_tables'])} table(s): back them up "
            f"and restore them with: {data['warehouse_command']}"
            if data["missing_tables"]
            else ""
        )
        + "\nrun 'dmv fsck --deep' to prove it",
    )
