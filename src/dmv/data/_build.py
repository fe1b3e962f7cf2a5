"""How a split's part tables get built, inside the caller's transaction.

Two strategies that store the same rows and measure them the same way:

* ``staged`` — one pass computes every row's part and md5 row hash into a temporary
  table; the parts are copied out of it and measured by one grouped aggregate. Used
  for row and time splits, and for keys that are (nearly) unique.
* ``keyed`` — for key/group splits whose keys repeat: the md5 bucket is
  computed once per *distinct* key into a small table, each part is a join on it,
  and each stored part is then fingerprinted. Hashing far fewer keys and writing
  no staging copy of the rows makes it about a third faster on such data.

Where splits share storage (:mod:`dmv.data.shared`), the tables built here become
the split's segments, or are dropped when an earlier split already holds the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dmv.data._sql import hash_raw, key_text, quote_ident
from dmv.data.fingerprint import (
    FINGERPRINT_ALGO,
    aggregate_sql,
    hashed,
    read_aggregate,
    row_hash,
    row_hash_raw,
)
from dmv.data.records import ColumnProfile
from dmv.data.warehouse import Column, Progress, Warehouse, columns_sql
from dmv.errors import DataError

__all__ = ["Checks", "Measured", "keyed", "prefer_keyed", "probe", "staged"]

Measured = dict[int, tuple[int, str, dict[str, ColumnProfile]]]
#: ``{part: (rows, engine hash sum mod 2^64)}``, measured with the fingerprints
Checks = dict[int, tuple[int, int]]
_REPEAT = 4  # keyed when there are at least this many rows per distinct key


def prefer_keyed(wh: Warehouse, base: str, params: Mapping[str, Any], column: Column) -> bool:
    """Whether the keyed strategy pays off: when keys repeat enough.

    Each engine counts as cheaply as it can (DuckDB approximately in one pass,
    PostgreSQL from its planner's statistics without running anything). Either way
    the choice only changes speed, never the stored rows.
    """
    rows, distinct = wh.rows_and_distinct(base, params, quote_ident(column.name))
    return distinct * _REPEAT <= rows


def probe(
    wh: Warehouse,
    base: str,
    params: Mapping[str, Any],
    columns: Sequence[Column],
    part_sql: str,
    pk_raw: str | None,
    algo: str = FINGERPRINT_ALGO,
) -> tuple[Measured, dict[int, tuple[int, int]]]:
    """Measure the parts of a split without writing anything: one scan of ``base``.

    Returns what :func:`staged` would measure, and the engine check of every part
    (``{part: (rows, engine hash sum)}``), so that a split whose rows are stored
    already can be stored as memberships alone (see :mod:`dmv.data.shared`).
    """
    d = wh.sql
    pk = f", {pk_raw} AS __dmv_pk" if pk_raw else ""
    alias = base if base.endswith("AS dmv_q") else f"{base} AS dmv_q"
    exprs = ", ".join(aggregate_sql(columns, "__dmv_h", d))
    engine = wh.engine_row_hash(columns, "dmv_q")
    found = wh.rows(
        f"SELECT __dmv_part, {wh.engine_hash_sum('__dmv_e')}, {exprs} FROM ("
        f"SELECT {columns_sql(columns)}, {part_sql} AS __dmv_part, "
        f"{row_hash(d, '__dmv_r', algo)} AS __dmv_h, __dmv_e FROM (SELECT dmv_q.*, "
        f"{row_hash_raw(d, columns, algo)} AS __dmv_r, {engine} AS __dmv_e{pk} FROM {alias}) "
        "AS dmv_s"
        ") AS dmv_p GROUP BY __dmv_part",
        params,
    )
    measured = {int(r[0]): read_aggregate(r[2:], columns, algo) for r in found}
    checks = {int(r[0]): (int(r[2]), int(r[1] or 0) % (1 << 64)) for r in found}
    return measured, checks


def staged(
    wh: Warehouse,
    base: str,
    params: Mapping[str, Any],
    columns: Sequence[Column],
    part_sql: str,
    pk_raw: str | None,
    tables: Sequence[str],
    progress: Progress | None,
    *,
    temp: bool = False,
    algo: str = FINGERPRINT_ALGO,
    checks: Checks | None = None,
) -> Measured:
    """Build ``tables[i]`` (part i) through one staging pass; measure from the stage.

    ``temp`` builds them as temporary tables: they never reach the warehouse file
    (for a split that will most likely keep only what earlier splits lack).
    ``checks``, when given, is filled with each part's engine check, measured in the
    same aggregate as the fingerprints (no further scan).
    """
    d = wh.sql
    stage = quote_ident(f"{tables[0]}_stage")
    pk = f", {pk_raw} AS __dmv_pk" if pk_raw else ""
    alias = base if base.endswith("AS dmv_q") else f"{base} AS dmv_q"
    wh.create_table_as(
        stage,
        f"SELECT {columns_sql(columns)}, "
        f"{part_sql} AS __dmv_part, {row_hash(d, '__dmv_r', algo)} AS __dmv_h "
        f"FROM (SELECT dmv_q.*, {row_hash_raw(d, columns, algo)} AS __dmv_r{pk} FROM {alias}) "
        "AS dmv_s",
        params,
        temp=True,
    )
    exprs = ", ".join(aggregate_sql(columns, "__dmv_h", d))
    engine = (
        wh.engine_hash_sum(wh.engine_row_hash(columns, "dmv_st")) if checks is not None else "0"
    )
    found = wh.rows(
        f"SELECT __dmv_part, {engine}, {exprs} FROM {stage} AS dmv_st GROUP BY __dmv_part"
    )
    measured = {int(r[0]): read_aggregate(r[2:], columns, algo) for r in found}
    if checks is not None:
        checks.update(_checks((int(r[0]), int(r[2]), r[1]) for r in found))
    for i, table in enumerate(tables):
        if progress:
            progress("store", i, len(tables))
        wh.create_table_as(
            quote_ident(table),
            f"SELECT {columns_sql(columns)} FROM {stage} WHERE __dmv_part = {i}",
            temp=temp,
        )
    wh.drop_table(stage, temp=True)
    return measured


def keyed(
    wh: Warehouse,
    base: str,
    params: Mapping[str, Any],
    column: Column,
    part_sql: str,
    salt_sql: str,
    tables: Sequence[str],
    progress: Progress | None,
    *,
    temp: bool = False,
    algo: str = FINGERPRINT_ALGO,
    checks: Checks | None = None,
) -> Measured:
    """Build ``tables[i]`` by joining on a distinct-key → part table; measure each part
    (and its engine check, in the same aggregate, when ``checks`` is given)."""
    d = wh.sql
    keys = quote_ident(f"{tables[0]}_keys")
    q = quote_ident(column.name)
    raw = hash_raw(d, f"{salt_sql} || {key_text(d, 'k', column.type)}")
    wh.create_table_as(
        keys,
        f"SELECT k, {part_sql} AS __dmv_part FROM "
        f"(SELECT k, {raw} AS __dmv_pk FROM (SELECT DISTINCT {q} AS k FROM {base}) AS dmv_d) "
        "AS dmv_h",
        params,
        temp=True,
    )
    wh.analyze(keys)
    if wh.rows(f"SELECT count(*) FROM {keys} WHERE k IS NULL")[0][0]:
        nulls = wh.rows(f"SELECT count(*) FROM {base} WHERE {q} IS NULL", params)[0][0]
        raise DataError(
            f"column {column.name!r} has {nulls} NULL value(s)",
            hint=f"filter them out ({column.name} IS NOT NULL) or COALESCE them in the query",
        )
    alias = base if base.endswith("AS dmv_q") else f"{base} AS dmv_q"
    measured: Measured = {}
    for i, table in enumerate(tables):
        if progress:
            progress("store", i, len(tables))
        wh.create_table_as(
            quote_ident(table),
            f"SELECT dmv_q.* FROM {alias} "
            f"JOIN {keys} AS dmv_k ON dmv_q.{q} = dmv_k.k WHERE dmv_k.__dmv_part = {i}",
            params,
            temp=temp,
        )
        cols = wh.query_columns(f"SELECT * FROM {quote_ident(table)}")  # temp tables too
        source, h = hashed(d, cols, quote_ident(table), algo)
        engine = (
            wh.engine_hash_sum(wh.engine_row_hash(cols, "dmv_hr")) if checks is not None else "0"
        )
        values = wh.rows(f"SELECT {engine}, {', '.join(aggregate_sql(cols, h, d))} FROM {source}")[
            0
        ]
        measured[i] = read_aggregate(values[1:], cols, algo)
        if checks is not None:
            checks.update(_checks([(i, int(values[1]), values[0])]))
    wh.drop_table(keys, temp=True)
    return measured


def _checks(found: Iterable[tuple[int, int, Any]]) -> Checks:
    """``{part: (rows, sum mod 2^64)}`` of the parts that hold rows (as ``part_checks``)."""
    return {part: (rows, int(total or 0) % (1 << 64)) for part, rows, total in found if rows}
