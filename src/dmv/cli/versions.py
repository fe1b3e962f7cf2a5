"""``dmv versions``, ``show`` and ``resolve``: reading versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when
from dmv.errors import NotFound

if TYPE_CHECKING:
    pass

__all__ = ["resolve", "show", "versions"]


@click.command()
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
    primary metric's median over each version's runs, and a flags column when a version
    was trained from uncommitted code (DIRTY) or released past the [release] policy."""

    from dmv.reports.explain import fmt, metric_summary, primary_value  # lazy: the facade

    project = ctx.project
    infos = project.versions(model_name, state=state)
    metric = project.model(model_name).primary_metric
    headers = ["version", "state", "runs", "aliases", "serves", "created"]
    rows: list[tuple[Any, ...]] = []
    # A listing knows only 'dirty'; a release's policy overrides are in its full record.
    flags = {i.version: (project.show(i.version) if i.released_from else i).flags for i in infos}
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
        if any(flags.values()):
            row += (", ".join(flags[i.version]).upper() or "-",)
        rows.append(row)
    if metric:
        headers.append(metric)
    if any(flags.values()):
        headers.append("flags")
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


def _num(value: Any) -> str:

    from dmv.reports.explain import fmt  # lazy: the facade

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
    sig = d.get("signature")
    if sig is not None:
        if sig["status"] == "unsigned":
            lines.append("  signature    not signed")
        else:
            key = f"{sig['key'] or 'unknown key'} ({str(sig['key_id'])[:16]}…)"
            lines.append(f"  signature    {sig['status']}: {key}, by {sig['signer']}")
            lines.append(f"  signed at    {sig['signed_at']}")
            if sig["problem"]:
                lines.append(f"  problem      {sig['problem']}")
    if d["metrics"]:
        on = d.get("metrics_on")
        lines += ["", f"metrics on {on} (median over runs, min … max, n)"]
        rows = []
        for split, metrics in d["metrics"].items():
            for name, m in metrics.items():
                mark = " *" if name == d.get("primary_metric") else ""
                spread = f"{_num(m['min'])} … {_num(m['max'])}" if m["n"] > 1 else ""
                rows.append((f"{name}{mark}", split, _num(m["median"]), spread, m["n"]))
        lines.append(table(rows, ["metric", "split", "median", "spread", "n"]))
        lines.append(
            f"  compare with another version only on the same rows: "
            f"dmv evaluate OTHER --on {on} (or dmv check)"
        )
    if d.get("evaluations"):
        lines += ["", "evaluations on other splits (dmv evaluate; not training runs)"]
        evaluated = [
            (
                e["on"],
                e["part"],
                e["rows"],
                ", ".join(f"{k} {_num(x)}" for k, x in e["metrics"].items()),
            )
            for e in d["evaluations"]
        ]
        lines.append(table(evaluated, ["on", "part", "rows", "metrics"]))
    if d.get("history"):
        lines += ["", f"metric history ({d['serving_run']}: last and best by step)"]
        rows = [
            (
                h["name"],
                h["split"],
                h["steps"],
                f"{_num(h['last'])} @{h['last_step']}",
                f"{_num(h['best'])} @{h['best_step']}",
            )
            for h in d["history"]
        ]
        lines.append(table(rows, ["metric", "split", "steps", "last", "best"]))
    if d["params"]:
        lines += ["", f"params ({d['serving_run']})"]
        for k, v in sorted(d["params"].items()):
            vary = "   (differs between runs)" if k in d["params_vary"] else ""
            lines.append(f"  {k:<12} {v}{vary}")
    if d.get("domain"):
        lines += ["", "domain (learned from the training rows; never moves Y)"]
        for name, words in d["domain"].items():
            lines.append(f"  {name:<12} {words}")
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


@click.command()
@click.argument("ref")
@pass_ctx
@json_option
def show(ctx: Context, ref: str, as_json: bool) -> None:
    """Explain the version REF points at (e.g. price-model@1.1 or price-model@production):
    each part of its number, metrics per split over its runs, params, each input's learned
    domain, code, data, release."""

    d = ctx.project.explain(ref)
    exact = f"{d['model']}@{d['version']}"
    try:
        d["model_file"] = ctx.project.model_file(exact)
    except NotFound:
        d["model_file"] = None
    released = d["state"] != "prerelease"
    d["signature"] = ctx.project.signature(exact).to_dict() if released else None
    emit(as_json, d, lambda: _version_text(d))


@click.command()
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
