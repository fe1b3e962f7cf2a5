"""How the CLI shows results: human tables by default, JSON with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

__all__ = ["emit", "json_option", "print_json", "table", "when"]


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def emit(as_json: bool, data: Any, human: Callable[[], str] | str) -> None:
    """Print ``data`` as JSON, or the human rendering of it."""
    if as_json:
        print_json(data)
        return
    text = human if isinstance(human, str) else human()
    if text:
        click.echo(text)


def stderr(message: str) -> None:
    click.echo(message, file=sys.stderr)


def when(ts: float | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC), or ``-``."""
    from dmv.registry.records import iso

    return (iso(ts) or "-")[:19].replace("T", " ")
