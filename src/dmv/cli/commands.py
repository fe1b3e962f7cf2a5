"""The registry commands: init, model, versions, show, runs, resolve, alias, audit, migrate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table

if TYPE_CHECKING:
    from dmv.registry import RunInfo

__all__ = ["Context", "cli", "pass_ctx"]


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "terminal_width": 100,
    }
)
@click.option(
    "-C",
    "--project",
    "project_dir",
    metavar="PATH",
    envvar="DMV_PROJECT",
    help="Project folder (default: the nearest folder with dmv.toml at or above the current one).",
)
@click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
@click.version_option(package_name="dmv", prog_name="dmv")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, traceback: bool) -> None:
    """dmv: one derived version, model-name X.Y.Z-DATA.SPLIT, for every model.

    X release (0 = prerelease), Y interface, Z logic, DATA the data retrieval
    version, SPLIT the stored train/valid/test split. References: name@X.Y.Z-D.S,
    name@X.Y.Z, name@X.Y, name@X, name@latest, name@ALIAS.
    """
    ctx.obj = Context(project_dir)


# -- project ----------------------------------------------------------------


@cli.command()
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


@cli.command()
@pass_ctx
@json_option
def migrate(ctx: Context, as_json: bool) -> None:
    """Upgrade the registry's schema in place to this dmv's version."""
    from dmv.config import Config, find_root
    from dmv.errors import NotFound
    from dmv.registry import upgrade_schema

    root = find_root(ctx.project_dir or ".")
    if root is None:
        raise NotFound("no dmv project here", hint="run 'dmv init' first")
    before, after = upgrade_schema(Config(root).location("registry"))
    data = {"from": before, "to": after}
    emit(as_json, data, f"registry schema {before or 'none'} → {after}")


@cli.command()
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


@cli.command("backup")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False))
@pass_ctx
@json_option
def backup_cmd(ctx: Context, dest: str, as_json: bool) -> None:
    """Copy registry, warehouse and artifacts consistently into the new folder DIR.

    Safe while dmv is in use. A PostgreSQL registry or warehouse is backed up
    with pg_dump instead (dmv says so).
    """
    data = ctx.project.backup(dest)
    emit(
        as_json,
        data,
        f"backed up to {data['path']}: registry {data['registry_bytes']:,} bytes, "
        f"{data['warehouse_tables']} warehouse table(s), {data['artifacts']} artifact(s)"
        + ("" if data["artifacts_copied"] else " (manifest only: they stay in the object store)"),
    )


@cli.command("restore")
@click.argument("src", metavar="DIR", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace a project that already holds data.")
@pass_ctx
@json_option
def restore_cmd(ctx: Context, src: str, force: bool, as_json: bool) -> None:
    """Replace this project's stores with the backup in DIR (checked before anything changes).

    Refuses a project that holds data unless --force. Stop other dmv processes first.
    """
    data = ctx.project.restore(src, force=force)
    missing = data["missing_artifacts"]
    emit(
        as_json,
        data,
        f"restored {data['path']}: {data['warehouse_tables']} warehouse table(s), "
        f"{data['artifacts']} artifact(s)"
        + (f"; {len(missing)} artifact(s) missing from the store" if missing else "")
        + "\nrun 'dmv fsck --deep' to prove it",
    )


# -- models -----------------------------------------------------------------


@cli.group()
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
    if not yes:
        if as_json:
            from dmv.errors import InvalidInput

            raise InvalidInput(f"deleting {name} needs --yes with --json (nothing to confirm with)")
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
    from dmv.errors import InvalidInput

    raise InvalidInput(
        "models cannot be renamed: the name is in every split table "
        "(name__DATA__SPLIT__part), git tag (name@X.Y.Z-D.S) and reference clients hold",
        hint="create a model under the new name and train it there; archive the old one "
        "with 'dmv model archive NAME'",
    )


# -- versions ---------------------------------------------------------------


@cli.command()
@click.argument("model_name", metavar="MODEL")
@click.option(
    "--state",
    type=click.Choice(["prerelease", "released", "deprecated"]),
    help="Only versions in this state.",
)
@pass_ctx
@json_option
def versions(ctx: Context, model_name: str, state: str | None, as_json: bool) -> None:
    """List MODEL's versions in dmv's precedence (X, Y, Z, then creation), with the
    primary metric's median over each version's runs."""
    from dmv.explain import fmt, metric_summary, primary_value

    project = ctx.project
    infos = project.versions(model_name, state=state)
    metric = project.model(model_name).primary_metric
    headers = ["version", "state", "runs", "aliases", "serves", "created"]
    rows: list[tuple[Any, ...]] = []
    for i in infos:
        row: tuple[Any, ...] = (
            i.version.number,
            i.state,
            i.run_count,
            ", ".join(i.aliases) or "-",
            i.serving_run or "-",
            _when(i.created_at),
        )
        if metric and not as_json:
            found = primary_value(metric_summary(project.runs(i.version)), metric)
            row += (f"{fmt(found[1]['median'])} ({found[0]}, n={found[1]['n']})" if found else "-",)
        rows.append(row)
    if metric:
        headers.append(metric)
    if state and not rows:
        empty = f"{model_name} has no {state} versions"
    else:
        empty = f"{model_name} has no versions yet"
    emit(
        as_json,
        # The listing leaves the interface and logic records out; --json carries them.
        [project.show(i.version).to_dict() for i in infos] if as_json else None,
        lambda: table(rows, headers) if rows else empty,
    )


def _when(ts: float | None) -> str:
    from dmv.registry.records import iso

    return (iso(ts) or "-")[:19].replace("T", " ")


def _num(value: Any) -> str:
    from dmv.explain import fmt

    return fmt(value) if isinstance(value, float) else str(value)


def _version_text(d: dict[str, Any]) -> str:
    """``dmv show``: the version part by part, then what went into it and what came out."""
    lines = [f"{d['model']} {d['version']}   {d['state']}", ""]
    parts = [
        (p["part"], str(p["value"]), p["meaning"], (p.get("fingerprint") or "")[:27])
        for p in d["parts"]
    ]
    lines.append(table(parts, ["part", "value", "meaning", "fingerprint"]))
    derivation = d.get("derivation") or {}
    if derivation.get("reason"):
        lines.append(f"\nwhy this number: {derivation['reason']}")
    release = d["release"]
    lines += ["", "release"]
    lines.append(f"  state        {d['state']}" + (" (uncommitted code)" if d["dirty"] else ""))
    if release["released_from"]:
        lines.append(f"  from         {release['released_from']}")
    if release["released_as"]:
        lines.append(f"  released as  {', '.join(release['released_as'])}")
    lines.append(f"  aliases      {', '.join('@' + a for a in release['aliases']) or '-'}")
    serving = d["serving_run"] or "-"
    if d["serving_run"] and not d["serving_run_selected"]:
        serving += " (the newest; not chosen yet)"
    lines.append(f"  serving run  {serving}   (runs: {' '.join(d['runs']) or 'none'})")
    if d["metrics"]:
        lines += ["", "metrics (median over runs, min … max, n)"]
        rows = []
        for split, metrics in d["metrics"].items():
            for name, m in metrics.items():
                mark = " *" if name == d.get("primary_metric") else ""
                spread = f"{_num(m['min'])} … {_num(m['max'])}" if m["n"] > 1 else ""
                rows.append((f"{name}{mark}", split, _num(m["median"]), spread, m["n"]))
        lines.append(table(rows, ["metric", "split", "median", "spread", "n"]))
    if d["params"]:
        lines += ["", f"params ({d['serving_run']})"]
        for k, v in sorted(d["params"].items()):
            vary = "   (differs between runs)" if k in d["params_vary"] else ""
            lines.append(f"  {k:<12} {v}{vary}")
    code = d["code"]
    lines += ["", "code"]
    if code["commit"]:
        clean = "clean" if code["clean"] else "dirty (patch stored)"
        lines.append(f"  commit       {code['commit']}  {code['branch'] or '(no branch)'}  {clean}")
        if code["paths"]:
            lines.append(f"  paths        {' '.join(code['paths'])}")
    else:
        lines.append("  no git commit recorded")
    data = d["data_lineage"]
    lines += ["", "data"]
    retrieval = data.get("retrieval")
    if retrieval:
        what = retrieval.get("sql") or retrieval.get("path") or retrieval.get("kind")
        lines.append(
            f"  DATA {data['data']}    {retrieval.get('kind')} from {retrieval.get('source')}"
        )
        for line in str(what).strip().splitlines():
            lines.append(f"      {line}")
    else:
        lines.append(f"  DATA {data['data']}    {data.get('retrieval_error') or 'not registered'}")
    stored = data.get("stored")
    if stored:
        lines.append(f"  SPLIT {data['split']}   {stored['rule']}")
        for p in stored["parts"]:
            rows_text = f"{p['rows']:,} rows" if isinstance(p.get("rows"), int) else ""
            lines.append(f"      {p['name']:<6} {rows_text:>12}  {p.get('table', '')}")
    else:
        lines.append(f"  SPLIT {data['split']}   {data.get('split_error') or 'not stored'}")
    for note in d.get("notes") or []:
        lines.append(f"\nnote: {note}")
    file = d.get("model_file")
    if file:
        unsafe = " — unsafe-format: can run code, served only with --trust-pickle"
        lines.append(
            f"\nmodel file   {file['flavor']} ({file['format']}), {file['run']}/{file['name']}"
            + (unsafe if file["unsafe_format"] else "")
        )
    return "\n".join(lines)


@cli.command()
@click.argument("ref")
@pass_ctx
@json_option
def show(ctx: Context, ref: str, as_json: bool) -> None:
    """Explain the version REF points at (e.g. price-model@1.1 or price-model@production):
    each part of its number, metrics per split over its runs, params, code, data, release."""
    from dmv.errors import NotFound

    d = ctx.project.explain(ref)
    try:
        d["model_file"] = ctx.project.model_file(f"{d['model']}@{d['version']}")
    except NotFound:
        d["model_file"] = None
    emit(as_json, d, lambda: _version_text(d))


@cli.command()
@click.argument("ref")
@pass_ctx
@json_option
def resolve(ctx: Context, ref: str, as_json: bool) -> None:
    """Print the exact version REF points at now."""
    version = ctx.project.resolve(ref)
    emit(
        as_json,
        {"model": version.name, "version": version.number, "ref": version.ref},
        str(version),
    )


def _metrics_text(run: RunInfo) -> str:
    parts = []
    for split, values in run.metrics.items():
        inner = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        parts.append(inner if split == "all" else f"{split}: {inner}")
    return "; ".join(parts) or "-"


@cli.command()
@click.argument("ref")
@click.option("--env", "with_env", is_flag=True, help="Include each run's environment (JSON).")
@pass_ctx
@json_option
def runs(ctx: Context, ref: str, with_env: bool, as_json: bool) -> None:
    """List the training runs (tr0, tr1, …) of REF with their evaluations.

    REF may also be a bare model name, to list its experiments and failed runs.
    """
    project = ctx.project
    if "@" in ref or " " in ref:
        infos = project.runs(ref)
    else:
        infos = project.experiments(ref) + project.failed_runs(ref)
    rows = [
        (
            r.id,
            r.label.split(" ", 1)[1],
            r.status,
            _metrics_text(r),
            next((a.name for a in r.artifacts if a.kind == "model"), "-"),
            _when(r.started_at),
        )
        for r in infos
    ]
    emit(
        as_json,
        [r.to_dict(environment=with_env) for r in infos],
        lambda: (
            table(rows, ["run", "version", "status", "metrics", "model", "started"])
            if rows
            else "no runs"
        ),
    )


# -- release ----------------------------------------------------------------


@cli.command("release")
@click.argument("ref")
@click.option("--major", is_flag=True, help="Start the next release generation (N+1).")
@pass_ctx
@json_option
def release_cmd(ctx: Context, ref: str, major: bool, as_json: bool) -> None:
    """Release the prerelease REF (0.Y.Z-D.S) as N.Y.Z-D.S, serving its chosen or best run.

    A release is a gate: it runs the full 'dmv verify' of REF first and refuses
    (exit 6), listing the failed checks, unless everything verifies.
    """
    info = ctx.project.release(ref, major=major)
    emit(
        as_json,
        info.to_dict(),
        f"released {info.version} (from {info.released_from}, serves {info.serving_run})",
    )


@cli.command("select")
@click.argument("ref")
@click.argument("run_id", metavar="RUN")
@pass_ctx
@json_option
def select_cmd(ctx: Context, ref: str, run_id: str, as_json: bool) -> None:
    """Choose the training run (trN) the prerelease REF serves once released."""
    info = ctx.project.select_run(ref, run_id)
    emit(as_json, info.to_dict(), f"{info.version} will serve {info.serving_run}")


@cli.command()
@click.argument("ref")
@click.option("--reason", default="", help="Why, for the audit log.")
@pass_ctx
@json_option
def deprecate(ctx: Context, ref: str, reason: str, as_json: bool) -> None:
    """Deprecate the version REF: only its exact reference resolves to it from now on."""
    info = ctx.project.deprecate(ref, reason=reason)
    emit(as_json, info.to_dict(), f"deprecated {info.version}")


@cli.command()
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@json_option
def delete(ctx: Context, ref: str, yes: bool, as_json: bool) -> None:
    """Delete the prerelease REF and its runs (never a released version)."""
    version = ctx.project.resolve(ref)
    if not yes and not as_json:
        click.confirm(f"delete {version} and its runs?", abort=True)
    ctx.project.delete_version(version)
    emit(as_json, {"deleted": version.ref}, f"deleted {version}")


# -- aliases ----------------------------------------------------------------


@cli.group()
def alias() -> None:
    """Set, remove and list aliases such as production or staging."""


@alias.command("set")
@click.argument("ref")
@click.argument("name")
@pass_ctx
@json_option
def alias_set(ctx: Context, ref: str, name: str, as_json: bool) -> None:
    """Point alias NAME at the version REF resolves to (moves it if set)."""
    info = ctx.project.set_alias(ref, name)
    emit(as_json, info.to_dict(), f"{info.model}@{info.alias} → {info.version.number}")


@alias.command("rm")
@click.argument("model_name", metavar="MODEL")
@click.argument("name")
@pass_ctx
@json_option
def alias_rm(ctx: Context, model_name: str, name: str, as_json: bool) -> None:
    """Remove alias NAME of MODEL."""
    ctx.project.remove_alias(model_name, name)
    emit(
        as_json,
        {"model": model_name, "alias": name, "removed": True},
        f"removed {model_name}@{name}",
    )


@alias.command("list")
@click.argument("model_name", metavar="MODEL")
@pass_ctx
@json_option
def alias_list(ctx: Context, model_name: str, as_json: bool) -> None:
    """List MODEL's aliases."""
    infos = ctx.project.aliases(model_name)
    rows = [(a.alias, a.version.number, _when(a.updated_at)) for a in infos]
    emit(
        as_json,
        [a.to_dict() for a in infos],
        lambda: table(rows, ["alias", "version", "updated"]) if rows else "no aliases",
    )


@cli.command()
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


# -- command groups from other modules (each adds its commands here) --------

from dmv.cli import compare  # noqa: E402

cli.add_command(compare.interface)
cli.add_command(compare.diff)
cli.add_command(compare.tag)
cli.add_command(compare.checkout)
cli.add_command(compare.promote)
cli.add_command(compare.verify)
cli.add_command(compare.reproduce)
cli.add_command(compare.tree)

from dmv.cli.server import serve, server, token  # noqa: E402

cli.add_command(token)
cli.add_command(serve)
cli.add_command(server)
from dmv.cli.data import data  # noqa: E402

cli.add_command(data)
from dmv.cli.integrations import card, export, import_group  # noqa: E402

cli.add_command(export)
cli.add_command(import_group)
cli.add_command(card)
