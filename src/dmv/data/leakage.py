"""Leakage checks on a stored split: what one part lets a model see of another.

Three checks, each a count and up to five examples, all run in the warehouse:

* ``shared_key`` — a key or group value present in more than one part;
* ``identical_rows`` — the same row (every column equal) in more than one part;
* ``time_overlap`` — an earlier part's latest time after a later part's earliest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dmv.data._sql import quote_ident
from dmv.data.fingerprint import json_value, verify_parts
from dmv.data.records import LeakageCheck, LeakageReport, SplitResult
from dmv.data.shared import tagged_rows
from dmv.data.warehouse import Warehouse, columns_sql
from dmv.errors import InvalidInput

__all__ = ["LeakageCheck", "LeakageReport", "check_leakage"]

EXAMPLES = 5


def _tagged(wh: Warehouse, result: SplitResult) -> str:
    return tagged_rows(wh, result.table_prefix, [p.table for p in result.parts], result.columns)


def _shared(
    wh: Warehouse, result: SplitResult, expr: str
) -> tuple[int, list[tuple[Any, list[str]]]]:
    """Values of ``expr`` found in more than one part: their count and a few examples.

    One grouped scan of the split's rows (each tagged with its part), whatever its
    storage; the examples only when there is something to show.
    """
    names = [p.name for p in result.parts]
    tagged = _tagged(wh, result)
    offending = (
        f"SELECT {expr} AS k FROM {tagged} GROUP BY {expr} "
        "HAVING min(__dmv_part) <> max(__dmv_part)"
    )
    count = int(wh.rows(f"SELECT count(*) FROM ({offending}) AS o")[0][0])
    if not count:
        return 0, []
    rows = wh.rows(
        f"SELECT k, {wh.sql.string_agg('p')} FROM (SELECT DISTINCT {expr} AS k, __dmv_part AS p "
        f"FROM {tagged} WHERE {expr} IN (SELECT k FROM ({offending}) AS o)) AS u GROUP BY k "
        f"ORDER BY k LIMIT {EXAMPLES}"
    )
    found = [(r[0], [names[int(i)] for i in sorted(str(r[1]).split(","), key=int)]) for r in rows]
    return count, found


def _key_check(wh: Warehouse, result: SplitResult, column: str) -> LeakageCheck:
    count, found = _shared(wh, result, quote_ident(column))
    examples = tuple({"value": json_value(k), "parts": parts} for k, parts in found)
    return LeakageCheck("shared_key", column, count, examples)


def _row_check(wh: Warehouse, result: SplitResult) -> LeakageCheck:
    """Rows in more than one part: found by the engine's row hash, confirmed by value."""
    engine = wh.engine_row_hash(result.columns, "dmv_tagged")
    candidates, _ = _shared(wh, result, engine)
    if not candidates:
        return LeakageCheck("identical_rows", None, 0)
    cols = columns_sql(result.columns)
    names = [p.name for p in result.parts]
    hashes = (
        f"SELECT {engine} FROM {_tagged(wh, result)} GROUP BY {engine} "
        "HAVING min(__dmv_part) <> max(__dmv_part)"
    )
    rows = wh.rows(
        f"SELECT {cols}, {wh.sql.string_agg('p')}, count(*) OVER () FROM (SELECT DISTINCT "
        f"{cols}, __dmv_part AS p FROM {_tagged(wh, result)} WHERE {engine} IN ({hashes})) "
        f"AS u GROUP BY {cols} HAVING count(*) > 1 ORDER BY {cols} LIMIT {EXAMPLES}"
    )
    count = int(rows[0][-1]) if rows else 0
    examples = tuple(
        {
            "row": {c.name: json_value(v) for c, v in zip(result.columns, r, strict=False)},
            "parts": [names[int(i)] for i in sorted(str(r[-2]).split(","), key=int)],
        }
        for r in rows
    )
    return LeakageCheck("identical_rows", None, count, examples)


def _time_check(wh: Warehouse, result: SplitResult, column: str) -> LeakageCheck:
    """Rows of a later part earlier than the latest time of any part before it."""
    q = quote_ident(column)
    bounds = []
    for p in result.parts:
        lo, hi = wh.rows(f"SELECT min({q}), max({q}) FROM {quote_ident(p.table)}")[0]
        bounds.append((p, lo, hi))
    count = 0
    examples: list[dict[str, Any]] = []
    latest: tuple[Any, Any] | None = None  # (part, its max time): the latest of the parts so far
    for part, lo, hi in bounds:
        if latest is not None and lo is not None and latest[1] > lo:
            early, early_max = latest
            n = int(
                wh.rows(
                    f"SELECT count(*) FROM {quote_ident(part.table)} WHERE {q} < "
                    f"(SELECT max({q}) FROM {quote_ident(early.table)})"
                )[0][0]
            )
            count += n
            examples.append(
                {
                    "earlier": early.name,
                    "later": part.name,
                    "earlier_max": json_value(early_max),
                    "later_min": json_value(lo),
                    "rows": n,
                }
            )
        if hi is not None and (latest is None or hi > latest[1]):
            latest = (part, hi)
    return LeakageCheck("time_overlap", column, count, tuple(examples[:EXAMPLES]))


def _intact(wh: Warehouse, result: SplitResult) -> bool:
    """Whether every part is proven, by its recorded engine check, to be as it was split."""
    key = wh.check_key()
    if not result.parts or not all(key in p.checks for p in result.parts):
        return False
    report = verify_parts(wh, result)
    return report.ok


def check_leakage(
    warehouse: Warehouse,
    result: SplitResult,
    *,
    key_columns: Sequence[str] | None = None,
    time_column: str | None = None,
    identical_rows: bool = True,
) -> LeakageReport:
    """Check a stored split for leakage between its parts.

    Keys checked: the split column of a key or group split, and ``key_columns``.
    Time checked: ``time_column``, else the split column of a time split. Identical
    rows are compared by value unless every part is proven intact by its recorded
    engine check: then none can be in two parts (``proof="construction"``).
    """
    spec = result.spec
    own = [spec.column] if spec.by in ("key", "group") and spec.column else []
    keys = list(dict.fromkeys([*own, *(key_columns or ())]))
    time = time_column or (spec.column if spec.by == "time" else None)
    known = {c.name for c in result.columns}
    for column in [*keys, *([time] if time else [])]:
        if column not in known:
            raise InvalidInput(
                f"column {column!r} is not in the split",
                hint="columns: " + ", ".join(sorted(known)),
            )
    checks = [_key_check(warehouse, result, c) for c in keys]
    if identical_rows:
        if _intact(warehouse, result):
            # identical rows share their key, time and row text, so a split that holds
            # exactly the rows its assignment gave each part cannot have them in two
            checks.append(LeakageCheck("identical_rows", None, 0, proof="construction"))
        else:
            checks.append(_row_check(warehouse, result))
    if time:
        checks.append(_time_check(warehouse, result, time))
    return LeakageReport(tuple(checks))
