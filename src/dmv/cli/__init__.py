"""The ``dmv`` command: a thin layer over :class:`dmv.Project`, one method per command.

Errors are turned into output here and nowhere else: one line ``error: …``
(plus a hint) on stderr, or the JSON error body with ``--json``, and the
error's exit code. ``--traceback`` shows the Python traceback instead.

SIGINT (Ctrl-C) and SIGTERM are a normal outcome, not an error: the running
queries are cancelled (:mod:`dmv.interrupts`), transactions roll back, and the
command ends with one line ``interrupted: nothing was registered; …`` and exit
code 130, whatever exception the interrupt surfaced as.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dmv.errors import DmvError, Interrupted, StorageError
from dmv.integrity import as_storage_error
from dmv.interrupts import handle_signals, requested

__all__ = ["main"]

#: Exit code for a bug in dmv itself (EX_SOFTWARE).
INTERNAL_ERROR = 70
#: Exit code for Ctrl-C, SIGTERM or a declined confirmation.
INTERRUPTED = Interrupted.exit_code
#: What an interrupted command says (the registry is written last, in one transaction).
INTERRUPTED_MESSAGE = "nothing was registered"
INTERRUPTED_HINT = "run the same command again to finish it"


def main(argv: list[str] | None = None) -> int:
    """Run the ``dmv`` command; returns (and, as a script, exits with) its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    with handle_signals():
        return _main(args)


def _main(args: list[str]) -> int:
    import click

    from dmv.cli.commands import cli

    show_traceback = "--traceback" in args
    as_json = "--json" in args
    try:
        # Without standalone mode click returns the code of a ctx.exit()/Exit instead.
        code = cli.main(args=args, prog_name="dmv", standalone_mode=False)
        if isinstance(code, int):
            return code
    except click.exceptions.Abort:
        if requested():
            return _interrupted(as_json)
        click.echo("aborted", err=True)
        return INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return _interrupted(as_json)
    except Exception as exc:
        # after a signal, whatever failed failed because its query was cancelled
        if requested():
            return _interrupted(as_json)
        if show_traceback:
            raise
        return _report(exc, as_json)
    return 0


def _interrupted(as_json: bool) -> int:
    """One line, exit 130: an interrupt is an outcome, not a bug."""
    import click

    error = Interrupted(INTERRUPTED_MESSAGE, hint=INTERRUPTED_HINT)
    if as_json:
        click.echo(json.dumps(error.to_dict(), indent=2))
    click.echo(f"interrupted: {error.message}; {error.hint}", err=True)
    return error.exit_code


def _report(exc: Exception, as_json: bool) -> int:
    """Print an error as the CLI shows every error; returns the exit code it ends with.

    A :class:`DmvError` is shown as it is; the file system saying no (permissions, a
    missing folder, a full disk) and a damaged database file that escaped its store
    are storage errors; anything else is a bug in dmv.
    """
    error = _as_error(exc)
    if error is not None:
        _show(error.to_dict(), error.message, error.hint, as_json)
        return error.exit_code
    message = f"internal error: {type(exc).__name__}: {exc}"
    body: dict[str, Any] = {"error": {"code": "internal", "message": message}}
    _show(body, message, "this is a bug in dmv; rerun with --traceback and report it", as_json)
    return INTERNAL_ERROR


def _as_error(exc: Exception) -> DmvError | None:
    """``exc`` as the DmvError the CLI reports it as (None: a bug in dmv)."""
    if isinstance(exc, DmvError):
        return exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return StorageError(
            f"{exc.strerror or exc}{where}", hint="check the path and its permissions"
        )
    return as_storage_error(exc)


def _show(body: dict[str, Any], message: str, hint: str | None, as_json: bool) -> None:
    import click

    if as_json:
        click.echo(json.dumps(body, indent=2, default=str))
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def run() -> None:
    sys.exit(main())
