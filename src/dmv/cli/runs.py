"""``dmv runs``: the training runs of a version, with their evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._output import when as _when

if TYPE_CHECKING:
    from dmv.registry import RunInfo

__all__ = ["runs", "train"]


def _metrics_text(run: RunInfo) -> str:
    parts = []
    for split, values in run.metrics.items():
        inner = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        parts.append(inner if split == "all" else f"{split}: {inner}")
    return "; ".join(parts) or "-"


def _history_text(run: RunInfo) -> str:
    parts = []
    for h in run.metric_summary():
        name = h["name"] if h["split"] == "all" else f"{h['split']}.{h['name']}"
        parts.append(
            f"{name} last {h['last']:.4g}@{h['last_step']} best {h['best']:.4g}@{h['best_step']}"
        )
    return "; ".join(parts) or "-"


@click.command()
@click.argument("ref")
@click.option("--env", "with_env", is_flag=True, help="Include each run's environment (JSON).")
@pass_ctx
@json_option
def runs(ctx: Context, ref: str, with_env: bool, as_json: bool) -> None:
    """List the training runs (tr0, tr1, …) of REF with their evaluations.

    REF may also be a bare model name, to list its experiments and failed runs.
    The history column gives, per metric logged with a step, its last and best
    value; --json carries every step of it ("history").
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
            _history_text(r),
            next((a.name for a in r.artifacts if a.kind == "model"), "-"),
            _when(r.started_at),
        )
        for r in infos
    ]
    emit(
        as_json,
        [r.to_dict(environment=with_env) for r in infos],
        lambda: (
            table(rows, ["run", "version", "status", "metrics", "history", "model", "started"])
            if rows
            else "no runs"
        ),
    )


@click.command()
@click.argument("model")
@click.option("--data", "data", required=True, help="The stored split to train on: DATA.SPLIT.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter for {NAME} in the entry and DMV_PARAMS (repeatable).",
)
@pass_ctx
@json_option
def train(ctx: Context, model: str, data: str, params: tuple[str, ...], as_json: bool) -> None:
    """Run MODEL's declared training entry on the stored split DATA.SPLIT.

    The entry is declared in dmv.toml:

    \b
        [models.price-model]
        train = "python train.py {data} --lr {lr}"

    {data} and each {NAME} given by --param NAME=VALUE are substituted, shell-quoted,
    and the command runs (without a shell) in the project folder with the project's
    stores, DMV_DATA and DMV_PARAMS (JSON; dmv.params() reads it) in its environment.
    Its output is shown as it comes (on stderr under --json); then the version and
    run it registered. An entry that fails ends with exit code 16 and its own code in
    the message.
    """
    from dmv.training.entry import parse_params

    def show(line: str) -> None:
        click.echo(line, nl=False, err=as_json)

    result = ctx.project.train(model, data, parse_params(params), on_output=show)
    run = result.run
    emit(
        as_json,
        result.to_dict(),
        lambda: f"trained {run.label} {run.id}  ({result.seconds:.1f}s: {result.command})",
    )
