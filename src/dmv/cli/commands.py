"""The ``dmv`` group; each noun's commands live in a module of their own and join it here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dmv.cli._context import Context, pass_ctx

if TYPE_CHECKING:
    pass

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


# -- the commands, one module per noun -------------------------------------------

from dmv.cli import aliases, compare, git, models, project, release, runs, stores, versions  # noqa: E402
from dmv.cli.data import data  # noqa: E402
from dmv.cli.integrations import card, export, import_group  # noqa: E402
from dmv.cli.interface import interface  # noqa: E402
from dmv.cli.predict import predict, predictions  # noqa: E402
from dmv.cli.release import release_cmd  # noqa: E402
from dmv.cli.review import approve, check, evaluate, policy  # noqa: E402
from dmv.cli.server import serve, server, token  # noqa: E402
from dmv.cli.signing import keys, provenance, sign  # noqa: E402
from dmv.cli.webhooks import webhooks  # noqa: E402

for command in (
    project.init,
    project.migrate,
    stores.fsck,
    stores.backup_cmd,
    stores.restore_cmd,
    project.audit,
    models.model,
    versions.versions,
    versions.show,
    versions.resolve,
    runs.runs,
    runs.train,
    release_cmd,
    release.select_cmd,
    release.deprecate,
    release.delete,
    release.promote,
    release.verify,
    predict,
    predictions,
    sign,
    provenance,
    keys,
    release.reproduce,
    check,
    evaluate,
    policy,
    approve,
    aliases.alias,
    interface,
    compare.diff,
    compare.tree,
    git.tag,
    git.branch,
    git.checkout,
    token,
    serve,
    server,
    data,
    export,
    import_group,
    card,
    webhooks,
):
    cli.add_command(command)
