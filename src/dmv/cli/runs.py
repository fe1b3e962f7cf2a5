"""``dmv runs``: the training runs of a version, with their evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when

if TYPE_CHECKING:
    from dmv.registry import RunInfo

__all__ = ["runs"]


def _metrics_text(run: RunInfo) -> str:
    parts = []
    for split, values in run.metrics.items():
        inner = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        parts.append(inner if split == "all" else f"{split}: {inner}")
    return "; ".join(parts) or "-"


@click.command()
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
