"""The ``dmv`` command: a thin layer over :class:`dmv.Project`, one method per command.

Errors are turned into output here and nowhere else: one line ``error: …``
(plus a hint) on stderr, or the JSON error body with ``--json``, and the
error's exit code. ``--traceback`` shows the Python traceback instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["main"]

#: Exit code for a bug in dmv itself (EX_SOFTWARE).
INTERNAL_ERROR = 70


def main(argv: list[str] | None = None) -> int:
    """Run the ``dmv`` command; returns (and, as a script, exits with) its exit code."""
    import click

    from dmv.cli.commands import cli
    from dmv.errors import DmvError

    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    as_json = "--json" in args
    try:
        # Without standalone mode click returns the code of a ctx.exit()/Exit instead.
        code = cli.main(args=args, prog_name="dmv", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except DmvError as exc:
        if show_traceback:
            raise
        _report(exc.to_dict(), exc.message, exc.hint, as_json)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except OSError as exc:
        # The file system said no (permissions, a missing folder, a full disk…).
        if show_traceback:
            raise
        from dmv.errors import StorageError

        where = f": {exc.filename}" if exc.filename else ""
        error = StorageError(
            f"{exc.strerror or exc}{where}", hint="check the path and its permissions"
        )
        _report(error.to_dict(), error.message, error.hint, as_json)
        return error.exit_code
    except Exception as exc:
        if show_traceback:
            raise
        from dmv.integrity import as_storage_error

        # A damaged database file that escaped its store is still not a bug in dmv.
        damaged = as_storage_error(exc)
        if damaged is not None:
            _report(damaged.to_dict(), damaged.message, damaged.hint, as_json)
            return damaged.exit_code
        message = f"internal error: {type(exc).__name__}: {exc}"
        body: dict[str, Any] = {"error": {"code": "internal", "message": message}}
        _report(
            body, message, "this is a bug in dmv; rerun with --traceback and report it", as_json
        )
        return INTERNAL_ERROR
    return 0


def _report(body: dict[str, Any], message: str, hint: str | None, as_json: bool) -> None:
    import click

    if as_json:
        click.echo(json.dumps(body, indent=2, default=str))
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def run() -> None:
    sys.exit(main())
