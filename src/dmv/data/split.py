"""Stored splits: a retrieval's rows split into parts, stored as warehouse tables.

The assignment is a pure function of the key, written in SQL and run inside the
warehouse (DuckDB, or PostgreSQL by pushdown), so rows never pass through Python.

``hash = "md5-v1"`` (the only one so far), exactly::

    h      = int(md5_hex(salt + ":" + text)[:15], 16)      # 0 <= h < 2**60
    part i = the first i with h < floor(cum_i * 2**60)     # cum_i = ratios summed
             in order up to part i; the last part takes the rest

``text`` is the key's canonical text for ``by="key"``/``"group"`` and the whole
row's canonical text (every column, in order, joined by U+001F; NULL as U+001E)
for ``by="row"`` (see :mod:`dmv.data._sql`). Keys may be integers, text, uuids,
dates, timestamps, decimals or booleans — not floats, whose text and equality are
not portable. Because ``h`` depends on nothing but the key, rows already present
keep their part when the source grows, and DuckDB and PostgreSQL assign alike.

``by="time"`` cuts at boundaries of the time column: by default its discrete
quantiles at the cumulative ratios (``percentile_disc``, the same definition in
both engines), or the fixed ``cutoffs`` of the spec. Part i holds the times up to
and including cutoff i (after cutoff i-1), so earlier parts hold strictly earlier
times and rows with equal times stay together. The cutoffs are recorded.

A split runs in one transaction: a failure leaves no table behind.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any, Literal

from dmv.data import _build
from dmv.data._sql import (
    bucket_case,
    check_identifier,
    hash_from_raw,
    hash_raw,
    key_text,
    quote_ident,
    quote_literal,
    row_text,
    thresholds,
    type_family,
)
from dmv.data.fingerprint import FINGERPRINT_ALGO, combine, make_fingerprint
from dmv.data.leakage import check_leakage
from dmv.data.records import (
    ColumnProfile,
    LeakageReport,
    PartInfo,
    SplitBy,
    SplitResult,
    SplitSpec,
)
from dmv.data.shared import (
    against,
    base_for,
    create_views,
    origin_of,
    plan,
    reuse,
    shares_storage,
)
from dmv.data.sources import Retrieval, Source, retrieve
from dmv.data.warehouse import Column, Progress, Warehouse
from dmv.errors import DataError, ImmutableError, InvalidInput

__all__ = [
    "AlreadyStored",
    "parse_by",
    "parse_ratios",
    "shortfalls",
    "store_split",
]

#: a part must hold at least this fraction of its ratio's share of the rows
DEFAULT_MIN_SHARE = 0.5
_TYPE_RE = re.compile(r"[A-Za-z0-9_ (),\[\]]+")
_TIME_FAMILIES = {"int", "float", "decimal", "date", "timestamp", "timestamptz"}
_RESERVED = {"__dmv_part", "__dmv_h", "__dmv_check"}


class AlreadyStored(Exception):
    """Raised by a ``table_prefix`` function: the content is stored already as ``split``.

    :func:`store_split` stops, stores nothing and lets it through to its caller.
    """

    def __init__(self, split: str) -> None:
        super().__init__(split)
        self.split = split


def parse_by(text: str) -> tuple[SplitBy, str | None]:
    """``key:user_id`` → ("key", "user_id"); ``row`` → ("row", None)."""
    by, _, column = text.partition(":")
    if by not in ("key", "group", "time", "row"):
        raise InvalidInput(
            f"--by {text!r}: use key:COLUMN, group:COLUMN, time:COLUMN or row",
            hint="e.g. --by key:user_id, --by time:created_at or --by row",
        )
    return by, (column or None)  # type: ignore[return-value]


def parse_ratios(text: str) -> dict[str, float]:
    """``train=0.8,valid=0.1,test=0.1`` → a dict in that order."""
    ratios: dict[str, float] = {}
    for item in text.split(","):
        name, eq, value = item.strip().partition("=")
        try:
            ratios[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            raise InvalidInput(
                f"ratio {item!r} must be NAME=NUMBER, e.g. train=0.8",
                hint="e.g. --ratios train=0.8,valid=0.1,test=0.1",
            )
    return ratios


def _find(columns: tuple[Column, ...], name: str) -> Column:
    for c in columns:
        if c.name == name:
            return c
    raise InvalidInput(
        f"column {name!r} is not in the retrieved data",
        hint="columns: " + ", ".join(c.name for c in columns),
    )


def _time_cutoffs(
    wh: Warehouse, base: str, column: Column, spec: SplitSpec, params: Mapping[str, Any]
) -> tuple[str, ...]:
    if spec.cutoffs:
        return spec.cutoffs
    cum: list[float] = []
    total = Fraction(0)
    for r in list(spec.ratios.values())[:-1]:
        total += Fraction(repr(float(r)))
        cum.append(float(total))
    if not cum:
        return ()
    values = wh.quantiles(base, quote_ident(column.name), cum, params)
    if values is None:
        return ()
    return tuple(str(v) for v in values)


def _assignment(
    wh: Warehouse,
    base: str,
    spec: SplitSpec,
    columns: tuple[Column, ...],
    params: Mapping[str, Any],
) -> tuple[str | None, str, tuple[str, ...]]:
    """``(md5 of the hashed text or None, part index SQL, time cutoffs used)``.

    The part SQL reads the digest as ``__dmv_pk``, computed once per row in an inner SELECT.
    """
    d = wh.sql
    cuts = thresholds(list(spec.ratios.values()))
    salt = quote_literal(spec.salt + ":")
    part = bucket_case(hash_from_raw(d, "__dmv_pk"), cuts)
    if spec.by == "row":
        text = row_text(d, [(c.name, c.type) for c in columns])
        return hash_raw(d, f"{salt} || {text}"), part, ()
    assert spec.column is not None
    col = _find(columns, spec.column)
    if spec.by in ("key", "group"):
        return hash_raw(d, f"{salt} || {key_text(d, col.name, col.type)}"), part, ()
    if type_family(col.type) not in _TIME_FAMILIES or not _TYPE_RE.fullmatch(col.type):
        q = quote_ident(col.name)
        raise InvalidInput(
            f"column {col.name!r} has type {col.type}; a time split needs a date, timestamp "
            "or number column",
            hint=f"cast it in the retrieval, e.g. SELECT *, CAST({q} AS TIMESTAMP) AS "
            f"{quote_ident(col.name + '_ts')} (or AS DATE), register that query "
            f"(dmv data query) and split by time:{col.name}_ts",
        )
    cutoffs = _time_cutoffs(wh, base, col, spec, params)
    bounds = [f"CAST({quote_literal(c)} AS {col.type})" for c in cutoffs]
    return None, bucket_case(quote_ident(col.name), bounds, "<="), cutoffs


def store_split(
    warehouse: Warehouse,
    retrieval: str | Retrieval,
    spec: SplitSpec,
    table_prefix: str | Callable[[str], str],
    *,
    progress: Progress | None = None,
    check: bool = False,
    strict: bool = False,
    check_keys: Sequence[str] = (),
    check_time: str | None = None,
    check_rows: bool = True,
    allow_empty: bool = False,
    min_share: float = DEFAULT_MIN_SHARE,
    storage: Literal["shared", "tables"] = "shared",
    algo: str = FINGERPRINT_ALGO,
) -> SplitResult:
    """Run ``retrieval``, split its rows by ``spec`` and store ``<prefix>__<part>`` tables.

    ``retrieval`` is SQL run inside the warehouse, or a :class:`Retrieval` from any
    source (its rows are streamed into a temporary table first). ``table_prefix``
    may be a function of the content fingerprint, called once the rows are known
    (to derive the SPLIT id from them); it raises :class:`AlreadyStored` when a split
    of that content exists, and that reaches the caller. Nothing is left behind on
    failure.

    ``check`` runs :func:`~dmv.data.leakage.check_leakage` before committing and puts
    its report in ``result.leakage``; ``strict`` (implies ``check``) fails the split,
    storing nothing, when the report is not clean. ``check_keys`` and ``check_time``
    name more columns to check (e.g. the user of a split by transaction id);
    ``check_rows=False`` skips the identical-rows check, the costliest one (a fresh
    split cannot put identical rows in two parts: they share key, time and row hash).

    A part that is empty or holds less than ``min_share`` of its ratio's rows is
    refused (see :func:`shortfalls`) unless ``allow_empty``; then it is stored and
    said in ``result.warnings``. ``strict`` refuses warnings too, so it cannot be
    combined with ``allow_empty``.

    ``storage="shared"`` (the default, where the engine can: DuckDB) stores the rows
    once and each part as a view, sharing rows with earlier splits of the same
    retrieval (see :mod:`dmv.data.shared`); ``"tables"`` copies each part into a table.

    ``algo`` is the fingerprint algorithm (``md5sum-v2``; ``md5sum-v1`` only to
    rebuild a split recorded with it).
    """
    if strict and allow_empty:
        raise InvalidInput(
            "--strict refuses short and empty parts; it cannot be combined with --allow-empty",
            hint="pass one of --strict and --allow-empty",
        )
    if not 0 <= min_share <= 1:
        raise InvalidInput(
            f"min_share must be between 0 and 1, got {min_share!r}",
            hint="e.g. --min-share 0.5: a part may hold half its ratio's share",
        )
    if isinstance(retrieval, str):
        retrieval = Retrieval(Source.from_url(None, warehouse), retrieval)
    params = dict(retrieval.params)
    if isinstance(table_prefix, str):
        _check_targets(warehouse, table_prefix, spec)
    if storage not in ("shared", "tables"):
        raise InvalidInput(f"unknown split storage {storage!r}", hint="use 'shared' or 'tables'")
    token = secrets.token_hex(4)
    shared = storage == "shared" and shares_storage(warehouse)
    with warehouse.transaction():
        if retrieval.source.kind == "warehouse":
            base = f"(\n{retrieval.source.query_text(retrieval.sql)}\n) AS dmv_q"
            base_params = params
        else:
            raw = quote_ident(f"__dmv_in_{token}")
            retrieve(retrieval, warehouse, raw, temp=True, progress=progress)
            base, base_params = raw, {}
            warehouse.analyze(raw)  # statistics for the planner (and for prefer_keyed)
        columns = warehouse.query_columns(f"SELECT * FROM {base}", base_params)
        if _RESERVED & {c.name for c in columns}:
            raise InvalidInput(
                "columns named __dmv_part, __dmv_h or __dmv_check are reserved",
                hint="rename those columns in the retrieval's SELECT",
            )
        pk_raw, part_sql, cutoffs = _assignment(warehouse, base, spec, columns, base_params)
        notes = []
        if spec.by == "time" and spec.column is not None:
            notes = _time_notes(warehouse, base, base_params, spec, cutoffs)
        if progress:
            progress("split", 0, None)
        # parts are built under temporary names, renamed once the prefix is known
        kind = "seg" if shared else "new"
        building = [f"__dmv_{kind}_{token}_{i}" for i in range(len(spec.parts))]
        key = _find(columns, spec.column) if spec.by in ("key", "group") and spec.column else None
        origin = origin_of(retrieval)
        # the latest split of the same retrieval: rows it holds are not written again
        earlier = base_for(warehouse, origin, columns) if shared else None

        # the engine checks of the built parts, measured with their fingerprints
        built: _build.Checks | None = {} if shared else None

        def build() -> _build.Measured:
            temp = earlier is not None  # what is not kept never reaches the file
            if key is not None and _build.prefer_keyed(warehouse, base, base_params, key):
                salt = quote_literal(spec.salt + ":")
                return _build.keyed(
                    warehouse, base, base_params, key, part_sql, salt, building, progress,
                    temp=temp, algo=algo, checks=built,
                )  # fmt: skip
            return _build.staged(
                warehouse, base, base_params, columns, part_sql, pk_raw, building, progress,
                temp=temp, algo=algo, checks=built,
            )  # fmt: skip

        probed: dict[int, tuple[int, int]] | None = None
        if earlier is not None:
            # measured without writing anything: what the earlier split holds is not
            # written again, and an identical split writes nothing at all
            measured, probed = _build.probe(
                warehouse, base, base_params, columns, part_sql, pk_raw, algo
            )
        else:
            measured = build()
        if not sum(m[0] for m in measured.values()):
            raise DataError(
                "the retrieval returned no rows; there is nothing to split",
                hint="check the query's WHERE clause and the source",
            )
        if spec.column is not None and spec.by != "row":
            nulls = sum(m[2][spec.column].nulls for m in measured.values())
            if nulls:
                raise DataError(
                    f"{spec.by} column {spec.column!r} has {nulls} NULL value(s)",
                    hint=f"filter them out ({spec.column} IS NOT NULL) "
                    "or COALESCE them in the query",
                )
        counts = {name: measured.get(i, (0,))[0] for i, name in enumerate(spec.parts)}
        warnings = shortfalls(spec, counts, min_share) + notes
        if warnings and (strict or not allow_empty):
            raise DataError(
                "the split would mislead: " + "; ".join(warnings) + "; nothing was stored",
                hint="change --by or --ratios (a time column needs at least as many distinct "
                "times as parts), or store it anyway with --allow-empty; the tolerance is "
                "the split_min_share setting",
                warnings=warnings,
            )
        empty = make_empty(columns, algo)
        content = combine([measured.get(i, empty)[1] for i in range(len(spec.parts))])
        prefix = table_prefix(content) if callable(table_prefix) else table_prefix
        if callable(table_prefix):
            _check_targets(warehouse, prefix, spec)
        expected: dict[int, tuple[int, int]] = {}
        planned = None
        if probed is not None and earlier is not None:
            expected = probed
            planned = reuse(warehouse, earlier, content, columns, part_sql, pk_raw, probed)
            if planned is None:  # a grown or changed source: write only what is new
                planned = against(
                    warehouse, earlier, base, base_params, columns, part_sql, pk_raw, probed
                )
            if planned is None:  # most rows changed: store them anew
                measured = build()
        if shared and planned is None:
            planned, expected = plan(
                warehouse, building, content, columns, origin, part_sql, pk_raw,
                temp=earlier is not None, checks=built,
            )  # fmt: skip
        parts: list[PartInfo] = []
        engine_key = warehouse.check_key()
        for i, name in enumerate(spec.parts):
            table = f"{prefix}__{name}"
            if planned is None:
                warehouse.rename_table(building[i], table)
            rows, fp, profile = measured.get(i, empty)
            n, total = expected.get(i, (0, 0))
            checks = {engine_key: f"{n}:{total:016x}"} if planned is not None else {}
            parts.append(PartInfo(name, table, rows, columns, fp, profile, checks))
        if planned is not None:
            create_views(warehouse, prefix, spec.parts, planned, columns, origin, content, expected)
            kept = {
                "kind": "shared",
                "segments": len(planned.segments),
                "shared_rows": planned.shared_rows,
                "new_rows": planned.new_rows,
            }
        if retrieval.source.kind != "warehouse":
            warehouse.drop_table(base, temp=True)
        assignment = part_sql.replace("__dmv_pk", f"md5-v1({pk_raw})") if pk_raw else part_sql
        result = SplitResult(
            spec, prefix, tuple(parts), content, columns, warehouse.dialect, assignment,
            cutoffs, None, tuple(warnings), kept if planned is not None else {"kind": "tables"},
        )  # fmt: skip
        if check or strict:
            if progress:
                progress("check", 0, None)
            report = check_leakage(
                warehouse,
                result,
                key_columns=check_keys,
                time_column=check_time,
                identical_rows=check_rows,
            )
            _refuse_leaks(report, strict)
            result = replace(result, leakage=report)
    if progress:
        progress("store", len(spec.parts), len(spec.parts))
    return result


def shortfalls(spec: SplitSpec, counts: Mapping[str, int], min_share: float) -> list[str]:
    """Parts that are empty or hold less than ``min_share`` x their ratio of the rows."""
    total = sum(counts.values())
    found = []
    for name, ratio in spec.ratios.items():
        rows = counts.get(name, 0)
        share = rows / total if total else 0.0
        if rows == 0 or share < ratio * min_share:
            what = "is empty" if rows == 0 else "is far below its ratio"
            found.append(
                f"part {name} {what}: {rows:,} of {total:,} rows ({share:.1%}, ratio {ratio:.1%})"
            )
    return found


def _time_notes(
    wh: Warehouse,
    base: str,
    params: Mapping[str, Any],
    spec: SplitSpec,
    cutoffs: Sequence[str],
) -> list[str]:
    """What makes a time split degenerate: too few distinct times, cutoffs that coincide."""
    assert spec.column is not None
    q = quote_ident(spec.column)
    distinct = int(wh.rows(f"SELECT count(DISTINCT {q}) FROM {base}", params)[0][0])
    notes = []
    if distinct < len(spec.parts):
        notes.append(
            f"time column {spec.column!r} has {distinct} distinct value(s) "
            f"for {len(spec.parts)} parts"
        )
    if len(set(cutoffs)) < len(cutoffs):
        notes.append(f"time cutoffs coincide ({', '.join(cutoffs)})")
    return notes


def _refuse_leaks(report: LeakageReport, strict: bool) -> None:
    if strict and not report.ok:
        found = ", ".join(
            f"{c.kind} {c.column or ''} ({c.count})" for c in report.checks if not c.ok
        )
        raise DataError(
            f"leakage between parts: {found}; nothing was stored",
            hint="split by the key or group column that identifies the entity, or by time",
            leakage=report.to_dict(),
        )


def make_empty(
    columns: tuple[Column, ...], algo: str = FINGERPRINT_ALGO
) -> tuple[int, str, dict[str, Any]]:
    return 0, make_fingerprint(0, 0, algo), {c.name: ColumnProfile(0) for c in columns}


def _check_targets(warehouse: Warehouse, prefix: str, spec: SplitSpec) -> None:
    check_identifier(prefix, "table prefix")
    for name in spec.parts:
        table = check_identifier(f"{prefix}__{name}", "part table name")
        if warehouse.table_exists(table):
            raise ImmutableError(
                f"table {table} already exists; a stored split is never overwritten",
                hint="use a new SPLIT id, or drop the old tables with dmv's own commands",
            )
