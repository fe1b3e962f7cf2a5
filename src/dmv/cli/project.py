"""``dmv init``, ``migrate`` and ``audit``: the project itself and its history."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv._urls import redact
from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when
from dmv.config import Config, find_root
from dmv.errors import NotFound

if TYPE_CHECKING:
    pass

__all__ = ["audit", "init", "migrate"]


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

    from dmv.project import init as init_project  # lazy: the facade

    project = init_project(path, registry=registry, artifacts=artifacts, warehouse=warehouse)
    settings = project.config.as_dict()
    settings["logic_components"] = list(settings["logic_components"])
    for store in ("registry", "artifacts", "warehouse"):
        settings[store] = redact(str(settings[store]))
    data = {"root": str(project.root), "settings": settings}
    emit(as_json, data, f"initialised dmv project in {project.root}")


@click.command()
@pass_ctx
@json_option
def migrate(ctx: Context, as_json: bool) -> None:
    """Upgrade the registry's schema in place to this dmv's version."""

    root = find_root(ctx.project_dir or ".")
    if root is None:
        raise NotFound("no dmv project here", hint="run 'dmv init' first")
    from dmv.registry import upgrade_schema  # lazy: sqlalchemy

    before, after = upgrade_schema(Config(root).location("registry"))
    data = {"from": before, "to": after}
    emit(as_json, data, f"registry schema {before or 'none'} → {after}")


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
