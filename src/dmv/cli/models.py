"""``dmv model``: create, update, list, show, archive, delete and rename models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.errors import ImmutableError, InvalidInput

if TYPE_CHECKING:
    pass

__all__ = ["model"]


@click.group()
def model() -> None:
    """Create, list, show and update models."""


@model.command("create")
@click.argument("name")
@click.option("--purpose", default="", help="The value it brings (e.g. 'price forecast').")
@click.option("--function", "function", default="", help="What it does (e.g. 'regression').")
@click.option("--description", default="", help="Free text.")
@click.option("--metric", "primary_metric", help="Primary metric that picks a version's best run.")
@click.option(
    "--goal",
    type=click.Choice(["max", "min"]),
    default="max",
    show_default=True,
    help="Whether a higher or lower primary metric is better.",
)
@click.option("--exist-ok", is_flag=True, help="Do not fail when the model exists.")
@pass_ctx
@json_option
def model_create(
    ctx: Context,
    name: str,
    purpose: str,
    function: str,
    description: str,
    primary_metric: str | None,
    goal: str,
    exist_ok: bool,
    as_json: bool,
) -> None:
    """Create model NAME (lowercase letters, digits and '-')."""
    info = ctx.project.create_model(
        name,
        purpose=purpose,
        function=function,
        description=description,
        primary_metric=primary_metric,
        metric_goal=goal,
        exist_ok=exist_ok,
    )
    emit(as_json, info.to_dict(), f"created model {info.name}")


@model.command("update")
@click.argument("name")
@click.option("--purpose", help="The value it brings.")
@click.option("--function", "function", help="What it does.")
@click.option("--description", help="Free text.")
@click.option("--metric", "primary_metric", help="Primary metric.")
@click.option("--goal", type=click.Choice(["max", "min"]), help="Direction of the primary metric.")
@pass_ctx
@json_option
def model_update(ctx: Context, name: str, as_json: bool, **fields: Any) -> None:
    """Change a model's purpose, function, description or primary metric."""
    fields["metric_goal"] = fields.pop("goal")
    info = ctx.project.update_model(name, **fields)
    emit(as_json, info.to_dict(), f"updated model {info.name}")


@model.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived models.")
@pass_ctx
@json_option
def model_list(ctx: Context, include_archived: bool, as_json: bool) -> None:
    """List models with their newest prerelease, release and aliases (archived ones with --all)."""
    models = ctx.project.models(include_archived=include_archived)
    rows = [
        (
            m.name + (" (archived)" if m.archived else ""),
            m.purpose,
            m.function,
            m.latest_prerelease or "-",
            m.latest_release or "-",
            ", ".join(f"{a}→{v}" for a, v in m.aliases.items()) or "-",
        )
        for m in models
    ]
    emit(
        as_json,
        [m.to_dict() for m in models],
        lambda: (
            table(rows, ["model", "purpose", "function", "prerelease", "release", "aliases"])
            if rows
            else "no models yet: create one with 'dmv model create NAME'"
        ),
    )


@model.command("show")
@click.argument("name")
@pass_ctx
@json_option
def model_show(ctx: Context, name: str, as_json: bool) -> None:
    """Show one model."""
    m = ctx.project.model(name)
    lines = [
        f"model       {m.name}",
        f"purpose     {m.purpose or '-'}",
        f"function    {m.function or '-'}",
        f"metric      {m.primary_metric or '-'} ({m.metric_goal})",
        f"versions    {m.version_count}",
        f"prerelease  {m.latest_prerelease or '-'}",
        f"release     {m.latest_release or '-'}",
    ]
    lines += [f"alias       {a} → {v}" for a, v in m.aliases.items()]
    if m.archived:
        lines.append(f"archived    yes: no new runs (dmv model unarchive {m.name})")
    emit(as_json, m.to_dict(), "\n".join(lines))


@model.command("archive")
@click.argument("name")
@pass_ctx
@json_option
def model_archive(ctx: Context, name: str, as_json: bool) -> None:
    """Archive model NAME: hidden from listings, refusing new runs, every record kept."""
    info = ctx.project.archive_model(name)
    emit(
        as_json,
        info.to_dict(),
        f"archived model {info.name} (dmv model unarchive {name} undoes it)",
    )


@model.command("unarchive")
@click.argument("name")
@pass_ctx
@json_option
def model_unarchive(ctx: Context, name: str, as_json: bool) -> None:
    """Bring the archived model NAME back: listed again, taking runs again."""
    info = ctx.project.archive_model(name, archived=False)
    emit(as_json, info.to_dict(), f"model {info.name} is active again")


@model.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@json_option
def model_delete(ctx: Context, name: str, yes: bool, as_json: bool) -> None:
    """Delete model NAME, which was never released: its versions, runs, aliases, retrievals,
    stored splits and the blobs nothing else refers to. Audited; cannot be undone."""
    info = ctx.project.model(name)
    if info.generation:  # refused before any question, as delete_model would refuse it
        raise ImmutableError(
            f"model {name} has a release: released versions are kept for good",
            hint=f"archive it instead: dmv model archive {name}",
        )
    if not yes:
        if as_json:
            raise InvalidInput(
                f"deleting {name} needs --yes with --json (nothing to confirm with)",
                hint=f"pass --yes to delete {name} without a question",
            )
        click.confirm(
            f"delete model {name} with its {info.version_count} version(s), their runs and "
            "stored splits?",
            abort=True,
        )
    summary = ctx.project.delete_model(name)
    emit(
        as_json,
        summary,
        f"deleted model {name}: {summary['versions']} version(s), {summary['runs']} run(s), "
        f"{summary['splits']} split(s), {summary['blobs_removed']} blob(s) "
        f"({summary['blobs_kept']} kept: still referred to)",
    )


@model.command("rename", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@json_option
def model_rename(args: tuple[str, ...], as_json: bool) -> None:
    """Not supported: a model's name is part of its table names, git tags and references."""

    raise InvalidInput(
        "models cannot be renamed: the name is in every split table "
        "(name__DATA__SPLIT__part), git tag (name@X.Y.Z-D.S) and reference clients hold",
        hint="create a model under the new name and train it there; archive the old one "
        "with 'dmv model archive NAME'",
    )
