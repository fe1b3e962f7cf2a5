"""Review on the pull request: check, evaluate, policy show, approve."""

from __future__ import annotations

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, print_json, table
from dmv.reports.check import render_markdown, render_text

__all__ = ["approve", "check", "evaluate", "policy"]


@click.command()
@click.argument("model")
@click.option(
    "--against",
    metavar="REF",
    help="The baseline (default: MODEL@production, else MODEL@latest).",
)
@click.option(
    "--candidate",
    metavar="REF",
    help="The version to review (default: the newest trained from the current git commit).",
)
@click.option(
    "--part",
    default="test",
    show_default=True,
    help="The split part both versions' metrics are compared on.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown: a pull-request comment or GitHub step summary.",
)
@json_option
@pass_ctx
def check(
    ctx: Context,
    model: str,
    against: str | None,
    candidate: str | None,
    part: str,
    fmt: str,
    as_json: bool,
) -> None:
    """Review what the current commit's candidate of MODEL changes, for a pull request.

    Reports the version the candidate got and why (interface fields with their
    compatibility class, code, libraries, hyperparameters, DATA, SPLIT), whether the
    interface breaks the baseline's clients, the metrics of both on the same rows (the
    missing cross-evaluation is run first), leakage, verify and dirty flags, and every
    gate of the release policy ([release] in dmv.toml).

    Exit 0: the policy would accept the candidate; 1: it would not (every reason is
    listed); 2 or more: an error.
    """
    result = ctx.project.check(model, against=against, candidate=candidate, part=part)
    if as_json or fmt == "json":
        print_json(result)
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        click.echo(render_text(result))
    if not result["ok"]:
        click.get_current_context().exit(1)


@click.command()
@click.argument("ref")
@click.option(
    "--on",
    "on",
    required=True,
    metavar="DATA.SPLIT",
    help="The stored split to evaluate on.",
)
@click.option("--part", default="test", show_default=True, help="The split's part.")
@click.option("--target", metavar="COLUMN", help="The target column (default: the recorded one).")
@click.option(
    "--metric",
    metavar="MODULE:FUNCTION",
    help="Also compute fn(y_true, y_pred), e.g. sklearn.metrics:median_absolute_error.",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    default=None,
    help="Load a pickled model (it can run code): only if you trust every writer.",
)
@json_option
@pass_ctx
def evaluate(
    ctx: Context,
    ref: str,
    on: str,
    part: str,
    target: str | None,
    metric: str | None,
    trust_pickle: bool | None,
    as_json: bool,
) -> None:
    """Evaluate REF's model on another stored split's part, so that two versions'
    metrics can be compared on the same rows.

    The part is read verified (its fingerprint checked), the model answers it in a
    fresh process through its own flavor, and the metrics (the model's primary one and
    the standard ones for its function) are recorded as an evaluation of REF on
    DATA.SPLIT — never as a training run.
    """
    record = ctx.project.evaluate(
        ref, on, part=part, target=target, metric=metric, trust_pickle=trust_pickle
    )

    def human() -> str:
        lines = [f"{record.version} on {record.on} ({record.rows} rows, target {record.target})"]
        lines += table(
            [(k, f"{v:.6g}") for k, v in sorted(record.metrics.items())], ("metric", "value")
        ).splitlines()
        return "\n".join(lines)

    emit(as_json, record.to_dict(), human)


@click.group()
def policy() -> None:
    """The release policy: the gates a release must pass ([release] in dmv.toml)."""


@policy.command("show")
@json_option
@pass_ctx
def policy_show(ctx: Context, as_json: bool) -> None:
    """Show every [release] key in effect, the defaults included."""
    data = ctx.project.policy()
    rows = [(k, "-" if v is None or v == "" else str(v).lower()) for k, v in data.items()]
    emit(as_json, data, lambda: table(rows, ("key", "value")))


@click.command()
@click.argument("ref")
@click.option("--comment", default="", help="Why, for the audit log.")
@json_option
@pass_ctx
def approve(ctx: Context, ref: str, comment: str, as_json: bool) -> None:
    """Approve the prerelease REF for release, as this repository's git user.email.

    The one who trained REF cannot approve it; each person approves once. The
    release policy's 'approvals' key says how many distinct approvals a release needs.
    """
    record = ctx.project.approve(ref, comment=comment)
    emit(as_json, record.to_dict(), f"{record.approver} approved {record.version}")
