"""Fingerprints and profiles of stored parts, computed in the database over ALL rows.

A fingerprint is ``<algorithm>:<rows>:<sum of the row hashes mod 2^64, 16 hex
digits>``; the prefix says how each row was hashed (see :mod:`dmv.data._sql`):

* ``md5sum-v2`` (new fingerprints): each row's typed canonical encoding
  (:func:`~dmv.data._sql.row_text_v2`: doubles by their IEEE-754 bits, text
  length-prefixed) is hashed with md5 and the digest's first 16 hex digits are read
  as a 64-bit integer;
* ``md5sum-v1`` (fingerprints recorded before v2): each row's canonical text
  (doubles as shortest decimal text) hashed with md5-v1, the first 15 hex digits of
  the digest (an integer below 2^60).

A recorded fingerprint is always recomputed with the algorithm it names, so splits
stored before v2 keep verifying. A sum does not depend on row order, covers every
row (unlike digests that sample the first rows), changes when any single value
changes, and gives the same answer on DuckDB, PostgreSQL and Spark for the same
rows. Fingerprints of disjoint parts add up: the content fingerprint of a split is
:func:`combine` of its parts' (of one algorithm).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dmv.data._sql import (
    SqlDialect,
    hash64_from_raw,
    hash_from_raw,
    hash_raw,
    quote_ident,
    row_text,
    row_text_v2,
    type_family,
)
from dmv.data.records import ColumnProfile, JSONValue, PartInfo, SplitResult
from dmv.data.sources import Retrieval, retrieve
from dmv.data.warehouse import Column, Progress, Warehouse
from dmv.errors import DataError

__all__ = [
    "ALGORITHMS",
    "FINGERPRINT_ALGO",
    "Mismatch",
    "VerifyReport",
    "algorithm_of",
    "combine",
    "fingerprint_query",
    "fingerprint_retrieval",
    "measure_table",
    "verify_parts",
]

#: the algorithm of new fingerprints
FINGERPRINT_ALGO = "md5sum-v2"
#: every algorithm a recorded fingerprint may name, oldest first
ALGORITHMS = ("md5sum-v1", "md5sum-v2")
_MOD = 1 << 64
_ORDERED = {"int", "float", "decimal", "text", "date", "timestamp", "timestamptz"}
_MAX_TEXT = 100


def algorithm_of(fingerprint: str) -> str:
    """The algorithm a recorded fingerprint names (``md5sum-v1`` or ``md5sum-v2``)."""
    algo = fingerprint.split(":", 1)[0]
    if algo not in ALGORITHMS:
        raise DataError(
            f"fingerprint {fingerprint[:40]!r} is of an unknown kind {algo[:20]!r}",
            hint="it was made by a newer dmv: upgrade dmv to verify it ("
            + ", ".join(ALGORITHMS)
            + " are known)",
        )
    return algo


def make_fingerprint(rows: int, total: int, algo: str = FINGERPRINT_ALGO) -> str:
    return f"{algo}:{rows}:{total % _MOD:016x}"


def combine(fingerprints: Sequence[str]) -> str:
    """The fingerprint of the union of disjoint parts (all of one algorithm)."""
    rows = total = 0
    kinds = {algorithm_of(fp) for fp in fingerprints}
    if len(kinds) > 1:
        raise DataError(
            "cannot combine fingerprints of different kinds (" + ", ".join(sorted(kinds)) + ")",
            hint="fingerprints of one algorithm add up; recompute the older ones with "
            "'dmv data verify --full' or store the split again",
        )
    for fp in fingerprints:
        _, count, digest = fp.split(":")
        rows += int(count)
        total += int(digest, 16)
    return make_fingerprint(rows, total, kinds.pop() if kinds else FINGERPRINT_ALGO)


def json_value(value: Any) -> JSONValue:
    if value is None or isinstance(value, bool | int | str):
        return value[:_MAX_TEXT] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b16encode(bytes(value)).decode().lower()[:_MAX_TEXT]
    return str(value)[:_MAX_TEXT]


def row_hash_raw(
    dialect: SqlDialect, columns: Sequence[Column], algo: str = FINGERPRINT_ALGO
) -> str:
    """SQL for the md5 digest of a row's canonical encoding (see :func:`hashed`)."""
    pairs = [(c.name, c.type) for c in columns]
    if algorithm_of(algo) == "md5sum-v1":
        return hash_raw(dialect, row_text(dialect, pairs))
    return hash_raw(dialect, row_text_v2(dialect, pairs))


def row_hash(dialect: SqlDialect, raw_sql: str, algo: str = FINGERPRINT_ALGO) -> str:
    """A row's hash of ``algo`` from the digest :func:`row_hash_raw` computed."""
    if algorithm_of(algo) == "md5sum-v1":
        return hash_from_raw(dialect, raw_sql)
    return hash64_from_raw(dialect, raw_sql)


def hashed(
    dialect: SqlDialect, columns: Sequence[Column], from_sql: str, algo: str = FINGERPRINT_ALGO
) -> tuple[str, str]:
    """``(FROM clause, row hash expression)``: each row's md5 is computed once, inside."""
    raw = row_hash_raw(dialect, columns, algo)
    inner = f"(SELECT *, {raw} AS __dmv_r FROM {from_sql}) AS dmv_hr"
    return inner, row_hash(dialect, "__dmv_r", algo)


def _text_sql(dialect: SqlDialect, q: str) -> list[str]:
    """Digests of min/max, distinct estimate and lengths of a text column (no values)."""
    return [
        f"md5(min({q}))",
        f"md5(max({q}))",
        dialect.approx_distinct(q),
        f"min(length({q}))",
        f"max(length({q}))",
    ]


def aggregate_sql(columns: Sequence[Column], hash_sql: str, dialect: SqlDialect) -> list[str]:
    """Select-list of the one-pass aggregate behind a fingerprint and profile."""
    exprs = ["count(*)", dialect.big_sum(hash_sql)]
    for c in columns:
        q = quote_ident(c.name)
        exprs.append(f"count({q})")
        family = type_family(c.type)
        if family == "text":
            exprs += _text_sql(dialect, q)
        elif family in _ORDERED:
            exprs += [f"min({q})", f"max({q})"]
    return exprs


def read_aggregate(
    values: Sequence[Any], columns: Sequence[Column], algo: str = FINGERPRINT_ALGO
) -> tuple[int, str, dict[str, ColumnProfile]]:
    """Turn :func:`aggregate_sql`'s row into (rows, fingerprint, profile)."""
    rows = int(values[0])
    total = int(values[1] or 0)
    profile: dict[str, ColumnProfile] = {}
    i = 2

    def digest(value: Any) -> str | None:
        return None if value is None else f"md5:{value}"

    def number(value: Any) -> int | None:
        return None if value is None else int(value)

    for c in columns:
        nulls = rows - int(values[i])
        i += 1
        family = type_family(c.type)
        if family == "text":
            low, high, distinct, shortest, longest = values[i : i + 5]
            profile[c.name] = ColumnProfile(
                nulls, digest(low), digest(high), number(distinct), number(shortest),
                number(longest),
            )  # fmt: skip
            i += 5
        elif family in _ORDERED:
            profile[c.name] = ColumnProfile(nulls, json_value(values[i]), json_value(values[i + 1]))
            i += 2
        else:
            profile[c.name] = ColumnProfile(nulls)
    return rows, make_fingerprint(rows, total, algo), profile


def measure_table(
    warehouse: Warehouse, table: str, name: str | None = None, *, algo: str = FINGERPRINT_ALGO
) -> PartInfo:
    """Row count, schema, fingerprint (of ``algo``) and profile of a warehouse table."""
    columns = warehouse.table_columns(table)
    if not columns:
        raise DataError(
            f"table {table} does not exist in the warehouse {warehouse.identity()}",
            hint="run 'dmv fsck' to find what removed it, or run the split again to store it anew",
        )
    source, h = hashed(warehouse.sql, columns, quote_ident(table), algo)
    exprs = ", ".join(aggregate_sql(columns, h, warehouse.sql))
    values = warehouse.rows(f"SELECT {exprs} FROM {source}")[0]
    rows, fp, profile = read_aggregate(values, columns, algo)
    return PartInfo(name or table, table, rows, columns, fp, profile)


def fingerprint_query(
    warehouse: Warehouse,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    algo: str = FINGERPRINT_ALGO,
) -> str:
    """The content fingerprint (of ``algo``) of a query's result, computed in the warehouse."""
    columns = warehouse.query_columns(sql, params)
    source, h = hashed(warehouse.sql, columns, f"(\n{sql}\n) AS dmv_q", algo)
    row = warehouse.rows(f"SELECT count(*), {warehouse.sql.big_sum(h)} FROM {source}", params)[0]
    return make_fingerprint(int(row[0]), int(row[1] or 0), algo)


def fingerprint_retrieval(
    warehouse: Warehouse,
    retrieval: Retrieval,
    *,
    progress: Progress | None = None,
    algo: str = FINGERPRINT_ALGO,
) -> str:
    """Re-run a retrieval and fingerprint its rows (``data verify --against-source``).

    Equal to the ``content_fingerprint`` of a split of the same rows (computed with
    the same ``algo``), so comparing the two tells whether the source changed since
    the split was stored.
    """
    source = retrieval.source
    if source.kind == "warehouse":
        return fingerprint_query(
            warehouse, source.query_text(retrieval.sql), retrieval.params, algo=algo
        )
    name = quote_ident(f"__dmv_fp_{secrets.token_hex(4)}")
    with warehouse.transaction():
        retrieve(retrieval, warehouse, name, temp=True, progress=progress)
        fingerprint = fingerprint_query(warehouse, f"SELECT * FROM {name}", algo=algo)
        warehouse.drop_table(name, temp=True)
    return fingerprint


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference between what was recorded and what is stored now."""

    part: str
    what: str  # missing | rows | columns | fingerprint
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "what": self.what,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify_parts`: ``ok`` when nothing differs."""

    mismatches: tuple[Mismatch, ...]
    parts: tuple[PartInfo, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mismatches": [m.to_dict() for m in self.mismatches],
            "parts": [p.to_dict() for p in self.parts],
        }


def _engine_check(warehouse: Warehouse, part: PartInfo) -> str:
    """``rows:sum`` of the engine's own row hash over the part (see dmv.data.verified)."""
    engine = warehouse.engine_hash_sum(warehouse.engine_row_hash(part.columns, "dmv_t"))
    rows, total = warehouse.rows(f"SELECT count(*), {engine} FROM {quote_ident(part.table)} dmv_t")[
        0
    ]
    return f"{int(rows)}:{int(total or 0) % _MOD:016x}"


def _verify_one(warehouse: Warehouse, part: PartInfo, known: str | None) -> PartInfo | None:
    """None when the recorded engine check proves the part; else its measure now."""
    if (
        known is not None
        and warehouse.table_columns(part.table) == part.columns
        and _engine_check(warehouse, part) == known
    ):
        return None
    return measure_table(warehouse, part.table, part.name, algo=algorithm_of(part.fingerprint))


def verify_parts(warehouse: Warehouse, result: SplitResult, *, full: bool = False) -> VerifyReport:
    """Recompute every part's rows, schema and fingerprint and compare with ``result``.

    A part whose engine check was recorded (with the split, or by a verified read) on
    this engine version is proven by that check: the same rows as when its md5
    fingerprint was computed. ``full`` recomputes the md5 fingerprint of every row,
    with the algorithm the recorded fingerprint names (v1 parts stay v1).
    """
    mismatches: list[Mismatch] = []
    found: list[PartInfo] = []
    key = warehouse.check_key()
    for part in result.parts:
        if not warehouse.table_exists(part.table):
            mismatches.append(Mismatch(part.name, "missing", part.table, None))
            continue
        try:
            now = _verify_one(warehouse, part, None if full else part.checks.get(key))
        except DataError as exc:  # a part view over shared storage that is gone
            mismatches.append(Mismatch(part.name, "missing", part.table, exc.message))
            continue
        if now is None:
            found.append(part)
            continue
        found.append(now)
        if now.rows != part.rows:
            mismatches.append(Mismatch(part.name, "rows", part.rows, now.rows))
        if now.columns != part.columns:
            mismatches.append(
                Mismatch(
                    part.name,
                    "columns",
                    [c.to_dict() for c in part.columns],
                    [c.to_dict() for c in now.columns],
                )
            )
        if now.fingerprint != part.fingerprint:
            mismatches.append(Mismatch(part.name, "fingerprint", part.fingerprint, now.fingerprint))
    return VerifyReport(tuple(mismatches), tuple(found))
