"""``dmv init``, ``migrate``, ``fsck``, ``backup``, ``restore`` and ``audit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when
from dmv.cli._progress import Bars

if TYPE_CHECKING:
    pass

__all__ = ["audit", "backup_cmd", "fsck", "init", "migrate", "restore_cmd"]


@click.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option("--registry", help="Model repository: SQLite file or postgresql:// URL.")
@click.option("--artifacts", help="Artifact store: a folder or an fsspec URL (s3://…).")
@click.option("--warehouse", help="Warehouse: a DuckDB file or a postgresql:// URL.")
@json_option
def init(
    path: str,
    registry: str | None,
    artifacts: str | None,
    warehouse: str | None,
    as_json: bool,
) -> None:
    """Make PATH (default: here) a dmv project: dmv.toml and a .dmv/ folder."""
    from dmv.project import init as init_project

    project = init_project(path, registry=registry, artifacts=artifacts, warehouse=warehouse)
    settings = project.config.as_dict()
    settings["logic_components"] = list(settings["logic_components"])
    data = {"root": str(project.root), "settings": settings}
    emit(as_json, data, f"initialised dmv project in {project.root}")


@click.command()
@pass_ctx
@json_option
def migrate(ctx: Context, as_json: bool) -> None:
    """Upgrade the registry's schema in place to this dmv's version."""
    from dmv.config import Config, find_root
    from dmv.errors import NotFound
    from dmv.registry.engine import create_engine
    from dmv.registry.migrations import migrate as run_migrate

    root = find_root(ctx.project_dir or ".")
    if root is None:
        raise NotFound("no dmv project here", hint="run 'dmv init' first")
    engine = create_engine(Config(root).location("registry"))
    before, after = run_migrate(engine)
    engine.dispose()
    data = {"from": before, "to": after}
    emit(as_json, data, f"registry schema {before or 'none'} → {after}")


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
            from dmv.integrity import RECOVERY

            lines.append(f"hint: {RECOVERY}")
        return "\n".join(lines)

    emit(as_json, report.to_dict(), human)
    if not report.ok:
        raise click.exceptions.Exit(report.exit_code)


@click.command("backup")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@pass_ctx
@json_option
def backup_cmd(ctx: Context, dest: str, as_json: bool) -> None:
    """Copy registry, warehouse and artifacts consistently into the new folder DIR.

    Safe while dmv is in use. A PostgreSQL registry or warehouse is backed up
    with pg_dump instead (dmv says so).
    """
    with Bars(not as_json) as bars:
        data = ctx.project.backup(dest, progress=bars)
    emit(
        as_json,
        data,
        f"backed up to {data['path']}: registry {data['registry_bytes']:,} bytes, "
        f"{data['warehouse_tables']} warehouse table(s), {data['artifacts']} artifact(s)"
        + ("" if data["artifacts_copied"] else " (manifest only: they stay in the object store)"),
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
        + "\nrun 'dmv fsck --deep' to prove it",
    )


@click.command()
@click.option("--model", "model_name", help="Only entries about this model.")
@click.option("--action", help="Only actions starting with this (e.g. alias).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many entries.",
)
@pass_ctx
@json_option
def audit(
    ctx: Context, model_name: str | None, action: str | None, limit: int, as_json: bool
) -> None:
    """Show the audit log of every write, newest first."""
    entries = ctx.project.audit(model=model_name, action=action, limit=limit)
    rows = [
        (e.id, _when(e.at), e.actor, e.action, e.model or "-", e.target or "-") for e in entries
    ]
    emit(
        as_json,
        [e.to_dict() for e in entries],
        lambda: table(rows, ["id", "at", "actor", "action", "model", "target"]),
    )
