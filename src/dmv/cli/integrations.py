"""The integration commands: export (MLflow model format), import (from MLflow), card."""

from __future__ import annotations

from pathlib import Path

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option
from dmv.cli._progress import Bars

__all__ = ["card", "export", "import_group"]


@click.command("export")
@click.argument("ref")
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mlflow"]),
    default="mlflow",
    show_default=True,
    help="The model format to write.",
)
@click.option("--trust-pickle", is_flag=True, help="Export a pickled (unsafe-format) model too.")
@pass_ctx
@json_option
def export(ctx: Context, ref: str, out: str, fmt: str, trust_pickle: bool, as_json: bool) -> None:
    """Write version REF as an MLflow model directory DIR (servable by `mlflow models serve`)."""
    result = ctx.project.export_model(ref, out, format=fmt, trust_pickle=trust_pickle or None)
    emit(
        as_json,
        result,
        f"exported {result['version']} ({result['run']}) to {result['path']}: "
        f"flavors {', '.join(result['flavors'])}",
    )


@click.group("import")
def import_group() -> None:
    """Bring models in from other registries."""


@import_group.command("mlflow")
@click.option(
    "--tracking-uri", required=True, help="MLflow tracking/registry URI (sqlite:///…, http://…)."
)
@click.option("--model", "model_name", help="Only this registered model.")
@click.option(
    "--mlflow-python",
    metavar="PATH",
    help="Python of an environment with MLflow (default: $DMV_MLFLOW_PYTHON, .venv-mlflow).",
)
@pass_ctx
@json_option
def import_mlflow(
    ctx: Context,
    tracking_uri: str,
    model_name: str | None,
    mlflow_python: str | None,
    as_json: bool,
) -> None:
    """Copy MLflow's registered models, versions (runs, files, signatures) and aliases.

    Safe to repeat: a second import adds only what is new.
    """
    with Bars(not as_json) as bars:
        result = ctx.project.import_mlflow(
            tracking_uri, model=model_name, python=mlflow_python, progress=bars
        )

    def human() -> str:
        lines = [f"{v['mlflow']} → {v['version']} ({v['status']})" for v in result["versions"]]
        lines += [f"alias {a['model']}@{a['alias']} → {a['version']}" for a in result["aliases"]]
        lines += [f"skipped: {s}" for s in result["skipped"]]
        return "\n".join(lines) or "nothing to import"

    emit(as_json, result, human())


@click.command()
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html"]),
    default="md",
    show_default=True,
    help="Markdown (with YAML front matter) or a standalone HTML page.",
)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), help="Write to a file.")
@pass_ctx
@json_option
def card(ctx: Context, ref: str, fmt: str, out: str | None, as_json: bool) -> None:
    """A model card for REF: metadata, interface, data, runs, environment, releases."""
    text = ctx.project.card(ref, format=fmt)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    if as_json:
        emit(True, {"ref": ref, "format": fmt, "path": out, "card": None if out else text}, "")
    elif out:
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)
