"""Leakage checks on a stored split: what one part lets a model see of another.

Three checks, each a count and up to five examples, all run in the warehouse:

* ``shared_key`` — a key or group value present in more than one part;
* ``identical_rows`` — the same row (every column equal) in more than one part;
* ``time_overlap`` — an earlier part's latest time after a later part's earliest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dmv.data._sql import quote_ident
from dmv.data.fingerprint import hashed, json_value
from dmv.data.warehouse import Warehouse

if TYPE_CHECKING:
    from dmv.data.records import SplitResult

__all__ = ["LeakageCheck", "LeakageReport", "check_leakage"]

EXAMPLES = 5


@dataclass(frozen=True)
class LeakageCheck:
    """One check: what was looked at, how many offenders, a few examples."""

    kind: str  # shared_key | identical_rows | time_overlap
    column: str | None
    count: int
    examples: tuple[Mapping[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.count == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "column": self.column,
            "count": self.count,
            "ok": self.ok,
            "examples": [dict(e) for e in self.examples],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakageCheck:
        return cls(
            str(data["kind"]),
            data.get("column"),
            int(data["count"]),
            tuple(dict(e) for e in data.get("examples", ())),
        )


@dataclass(frozen=True)
class LeakageReport:
    """All checks run on a split; ``ok`` when none found anything."""

    checks: tuple[LeakageCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeakageReport:
        return cls(tuple(LeakageCheck.from_dict(c) for c in data["checks"]))


def _union(tables: Sequence[str], select: str, wrap: Callable[[str], str]) -> str:
    return " UNION ALL ".join(
        f"SELECT DISTINCT {select} AS k, {i} AS p FROM {wrap(quote_ident(t))}"
        for i, t in enumerate(tables)
    )


def _same(table: str) -> str:
    return table


def _shared(
    wh: Warehouse,
    tables: Sequence[str],
    names: Sequence[str],
    expr: str,
    wrap: Callable[[str], str] = _same,
) -> tuple[int, list[tuple[Any, list[str]]]]:
    sql = (
        f"SELECT k, {wh.sql.string_agg('p')}, count(*) OVER () "
        f"FROM ({_union(tables, expr, wrap)}) AS u GROUP BY k HAVING count(*) > 1 "
        f"ORDER BY k LIMIT {EXAMPLES}"
    )
    rows = wh.rows(sql)
    count = int(rows[0][2]) if rows else 0
    found = [(r[0], [names[int(i)] for i in sorted(str(r[1]).split(","), key=int)]) for r in rows]
    return count, found


def _key_check(wh: Warehouse, result: SplitResult, column: str) -> LeakageCheck:
    tables = [p.table for p in result.parts]
    names = [p.name for p in result.parts]
    count, found = _shared(wh, tables, names, quote_ident(column))
    examples = tuple({"value": json_value(k), "parts": parts} for k, parts in found)
    return LeakageCheck("shared_key", column, count, examples)


def _row_check(wh: Warehouse, result: SplitResult) -> LeakageCheck:
    tables = [p.table for p in result.parts]
    names = [p.name for p in result.parts]
    _, h = hashed(wh.sql, result.columns, "unused")

    def wrap(table: str) -> str:
        return str(hashed(wh.sql, result.columns, table)[0])

    count, found = _shared(wh, tables, names, h, wrap)
    examples: list[dict[str, Any]] = []
    cols = [c.name for c in result.columns]
    select = ", ".join(quote_ident(c) for c in cols)
    for k, parts in found:
        table = quote_ident(result.part(parts[0]).table)
        rows = wh.rows(f"SELECT {select} FROM {wrap(table)} WHERE {h} = {int(k)} LIMIT 1")
        row = {c: json_value(v) for c, v in zip(cols, rows[0], strict=True)} if rows else {}
        examples.append({"row": row, "parts": parts})
    return LeakageCheck("identical_rows", None, count, tuple(examples))


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
    Time checked: ``time_column``, else the split column of a time split.
    """
    spec = result.spec
    own = [spec.column] if spec.by in ("key", "group") and spec.column else []
    keys = list(dict.fromkeys([*own, *(key_columns or ())]))
    time = time_column or (spec.column if spec.by == "time" else None)
    known = {c.name for c in result.columns}
    from dmv.errors import InvalidInput

    for column in [*keys, *([time] if time else [])]:
        if column not in known:
            raise InvalidInput(
                f"column {column!r} is not in the split",
                hint="columns: " + ", ".join(sorted(known)),
            )
    checks = [_key_check(warehouse, result, c) for c in keys]
    if identical_rows:
        checks.append(_row_check(warehouse, result))
    if time:
        checks.append(_time_check(warehouse, result, time))
    return LeakageReport(tuple(checks))
