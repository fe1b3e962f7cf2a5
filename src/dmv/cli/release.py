"""Releasing versions, and proving them: release, select, deprecate, delete, promote, verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table
from dmv.cli._progress import Bars
from dmv.errors import IntegrityError

if TYPE_CHECKING:
    from dmv.release.reproduce import Report

__all__ = ["delete", "deprecate", "promote", "release_cmd", "reproduce", "select_cmd", "verify"]


@click.command("release")
@click.argument("ref")
@click.option("--major", is_flag=True, help="Start the next release generation (N+1).")
@pass_ctx
@json_option
def release_cmd(ctx: Context, ref: str, major: bool, as_json: bool) -> None:
    """Release the prerelease REF (0.Y.Z-D.S) as N.Y.Z-D.S, serving its chosen or best run.

    A release is a gate: it runs the full 'dmv verify' of REF first and refuses
    (exit 6), listing the failed checks, unless everything verifies. A version trained
    from uncommitted code is refused too (exit 4). The project's [release] policy in
    dmv.toml (allow_dirty, allow_unverified_data, allow_failed_behaviour) may let
    these through; the release is then flagged and the override audited.

    A prerelease is released once; --major starts a new generation for a prerelease
    not released yet.
    """
    info = ctx.project.release(ref, major=major)
    text = f"released {info.version} (from {info.released_from}, serves {info.serving_run})"
    if info.flags:
        text += f"\nwarning: flagged {', '.join(info.flags)}: let through by [release] in dmv.toml"
    data = info.to_dict()
    status = ctx.project.signature(info.version, full=False)
    if status.signature is not None:
        data["signature"] = status.to_dict()
        text += f"\n{status.summary()}"
    emit(as_json, data, text)


@click.command("select")
@click.argument("ref")
@click.argument("run_id", metavar="RUN")
@pass_ctx
@json_option
def select_cmd(ctx: Context, ref: str, run_id: str, as_json: bool) -> None:
    """Choose the training run (trN) the prerelease REF serves once released."""
    info = ctx.project.select_run(ref, run_id)
    emit(as_json, info.to_dict(), f"{info.version} will serve {info.serving_run}")


@click.command()
@click.argument("ref")
@click.option("--reason", default="", help="Why, for the audit log.")
@pass_ctx
@json_option
def deprecate(ctx: Context, ref: str, reason: str, as_json: bool) -> None:
    """Deprecate the version REF: only its exact reference resolves to it from now on."""
    info = ctx.project.deprecate(ref, reason=reason)
    emit(as_json, info.to_dict(), f"deprecated {info.version}")


@click.command()
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@json_option
def delete(ctx: Context, ref: str, yes: bool, as_json: bool) -> None:
    """Delete the prerelease REF and its runs (never a released version).

    A delete that would be refused is refused before any question is asked.
    """
    version = ctx.project.check_deletable(ref)
    if not yes and not as_json:
        click.confirm(f"delete {version} and its runs?", abort=True)
    ctx.project.delete_version(version)
    emit(as_json, {"deleted": version.ref}, f"deleted {version}")


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.argument("experiment", metavar="EXPERIMENT")
@pass_ctx
@json_option
def promote(ctx: Context, model_name: str, experiment: str, as_json: bool) -> None:
    """Number the experiment run EXPERIMENT (exN) of MODEL: derive its version."""
    run = ctx.project.promote(model_name, experiment)
    emit(as_json, run.to_dict(), f"{experiment} is now {run.label} {run.id}")


def _report(as_json: bool, report: Report) -> None:
    marks = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}
    rows = [(marks.get(c.status, c.status), c.name, c.detail) for c in report.checks]
    verdict = "all checks passed" if report.ok else "FAILED"
    emit(
        as_json,
        report.to_dict(),
        lambda: f"{report.version}\n" + table(rows, ["", "check", "detail"]) + f"\n\n{verdict}",
    )
    if not report.ok:
        raise click.exceptions.Exit(IntegrityError.exit_code)


@click.command()
@click.argument("ref", required=False)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Load a model stored as pickle (unsafe-format) for the behavioural check.",
)
@click.option(
    "--prediction",
    metavar="ID",
    help="Re-check a prediction run's output instead (see 'dmv predictions').",
)
@pass_ctx
@json_option
def verify(
    ctx: Context, ref: str | None, trust_pickle: bool, prediction: str | None, as_json: bool
) -> None:
    """Re-check REF: artifact hashes, split fingerprints, interface, code at its commit, env,
    and the model's behaviour (loaded in a fresh process, its recorded sample predicted).

    With --prediction ID, re-check that prediction run's output table (or file) and its
    rejects: still there, with the fingerprint recorded when it was written.

    Exits non-zero when any check fails; differences in the environment are warnings.
    """
    if prediction is not None:
        if ref is not None:
            raise click.UsageError("give REF or --prediction ID, not both")
        _report(as_json, ctx.project.verify_prediction(prediction))
        return
    if ref is None:
        raise click.UsageError("give the version to verify (REF) or --prediction ID")
    with Bars(not as_json) as bars:
        report = ctx.project.verify(ref, trust_pickle=trust_pickle, progress=bars)
    _report(as_json, report)


@click.command()
@click.argument("ref")
@click.option(
    "--tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help="Relative and absolute tolerance for metrics.",
)
@click.option(
    "--from-source",
    is_flag=True,
    help="Re-run the retrieval and compare with the stored split's fingerprints.",
)
@click.option("--timeout", type=float, help="Give up on training after this many seconds.")
@pass_ctx
@json_option
def reproduce(
    ctx: Context,
    ref: str,
    tolerance: float,
    from_source: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Re-run REF's training from its recorded commit in a temporary worktree.

    The new run is recorded on the same version; dmv checks that the derived version is
    identical and the metrics are within the tolerance, and says what differs.
    """
    with Bars(not as_json) as bars:
        report = ctx.project.reproduce(
            ref, tolerance=tolerance, from_source=from_source, timeout=timeout, progress=bars
        )
    _report(as_json, report)
