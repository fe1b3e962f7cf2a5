"""Shared split storage: rows stored once, parts as views over them.

On an engine that can align two tables row by row (DuckDB's ``POSITIONAL JOIN``), a
split does not copy its rows into one table per part. The retrieved rows are stored
once, in *segments*, and each split adds one small *membership* column per segment —
the part of every row, or :data:`GONE` for a row the split does not hold — aligned
with the segment position by position. Each ``<prefix>__<part>`` is a view::

    SELECT s.<columns> FROM <segment> AS s POSITIONAL JOIN <membership> AS m
    WHERE m.__dmv_part = <part>                  -- UNION ALL over the split's segments

A new split of the same retrieval (the same source, query and parameters, the same
columns) is stored against the latest one:

* the same rows (another salt, other ratios): no rows are written, only memberships;
* a grown or changed source: only the rows the earlier split did not hold are written,
  as a new segment; rows it held that are gone now are marked :data:`GONE`.

Rows are matched by value with ``EXCEPT ALL`` (every column, duplicates counted), so
sharing never changes which rows a part holds, and the fingerprints stay those of the
rows. Before anything is committed, the engine check of every part view is compared
with that of the retrieved rows: a difference stores the split as a fresh segment.

Segments and memberships are never changed once written; the warehouse table
:data:`LAYOUT` says which split uses which. Dropping a split drops its views and
memberships, and a segment only when no split uses it any more. ``dmv fsck`` reads the
layout: what it names is not an orphan; what it names and is missing is a problem.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dmv.data._sql import quote_ident, quote_literal
from dmv.data.warehouse import Column, Warehouse, columns_sql

if TYPE_CHECKING:
    from dmv.data.sources import Retrieval

__all__ = [
    "GONE",
    "LAYOUT",
    "Layout",
    "Segment",
    "drop_split_tables",
    "layout_of",
    "layouts",
    "origin_of",
    "tagged_rows",
]

LAYOUT = "__dmv_layout"
#: the membership value of a segment row that a split does not hold
GONE = 255
#: above this share of changed rows, a new split is stored as a fresh segment
_MAX_CHANGED = 0.5


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment a split reads, with the membership that says which rows it holds."""

    table: str
    membership: str


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a split's rows are: its segments in order, and what it was retrieved by."""

    prefix: str
    segments: tuple[Segment, ...]
    origin: str
    columns: str
    content: str = ""  # the split's content fingerprint
    engine: str = ""  # rows:sum of the engine's row hash over the split


def shares_storage(wh: Warehouse) -> bool:
    return wh.aligns_rows


def origin_of(retrieval: Retrieval) -> str:
    """What identifies a retrieval across splits: its source, query and parameters."""
    body = json.dumps(
        [retrieval.source.kind, retrieval.source.url, retrieval.sql, dict(retrieval.params)],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def columns_key(columns: Sequence[Column]) -> str:
    return json.dumps([[c.name, c.type] for c in columns])


def _ensure_layout(wh: Warehouse) -> None:
    wh.execute(
        f"CREATE TABLE IF NOT EXISTS {LAYOUT} (prefix VARCHAR NOT NULL, position INTEGER "
        "NOT NULL, segment VARCHAR NOT NULL, membership VARCHAR NOT NULL, origin VARCHAR NOT "
        "NULL, columns VARCHAR NOT NULL, content VARCHAR NOT NULL, engine VARCHAR NOT NULL, "
        "created TIMESTAMP DEFAULT current_timestamp)"
    )


def _has_layout(wh: Warehouse) -> bool:
    return bool(wh.table_columns(LAYOUT))


def layouts(wh: Warehouse) -> list[Layout]:
    """Every split stored on shared segments, oldest first."""
    if not _has_layout(wh):
        return []
    rows = wh.rows(
        f"SELECT prefix, position, segment, membership, origin, columns, content, engine "
        f"FROM {LAYOUT} ORDER BY created, prefix, position"
    )
    found: dict[str, Layout] = {}
    for prefix, _, segment, member, origin, columns, content, engine in rows:
        known = found.get(prefix)
        seg = Segment(str(segment), str(member))
        if known is None:
            found[prefix] = Layout(
                str(prefix), (seg,), str(origin), str(columns), str(content), str(engine)
            )
        else:
            found[prefix] = replace(known, segments=(*known.segments, seg))
    return list(found.values())


def layout_of(wh: Warehouse, prefix: str) -> Layout | None:
    return next((lay for lay in layouts(wh) if lay.prefix == prefix), None)


def _held(wh: Warehouse, seg: Segment) -> set[int]:
    """The part numbers a segment's membership holds (GONE included)."""
    rows = wh.rows(f"SELECT DISTINCT __dmv_part FROM {quote_ident(seg.membership)}")
    return {int(r[0]) for r in rows}


def tagged_rows(
    wh: Warehouse, prefix: str, tables: Sequence[str], columns: Sequence[Column]
) -> str:
    """A FROM clause of every row of a split with its part index as ``__dmv_part``."""
    cols = columns_sql(columns)
    layout = layout_of(wh, prefix) if shares_storage(wh) else None
    if layout is None:
        selects = [
            f"SELECT {cols}, {i} AS __dmv_part FROM {quote_ident(t)}" for i, t in enumerate(tables)
        ]
    else:
        picked = ", ".join(f"s.{quote_ident(c.name)}" for c in columns)
        selects = []
        for seg in layout.segments:
            held = _held(wh, seg)
            if len(held) == 1 and GONE not in held:  # all one part: no alignment needed
                selects.append(
                    f"SELECT {picked}, {min(held)} AS __dmv_part FROM {quote_ident(seg.table)} AS s"
                )
            else:
                selects.append(
                    f"SELECT {picked}, m.__dmv_part FROM {quote_ident(seg.table)} AS s "
                    f"POSITIONAL JOIN {quote_ident(seg.membership)} AS m "
                    f"WHERE m.__dmv_part <> {GONE}"
                )
    return "(" + " UNION ALL ".join(selects) + ") AS dmv_tagged"


# -- storing ---------------------------------------------------------------------


@dataclass
class Planned:
    """The segments a new split will read, built inside the split's transaction."""

    segments: list[Segment]
    written: list[str]  # the tables built for it besides the staged rows
    shared_rows: int  # rows read from earlier segments
    new_rows: int  # rows written by this split


def _name(kind: str) -> str:
    return f"__dmv_{kind}_{secrets.token_hex(6)}"


def membership(
    wh: Warehouse, segment: str, part_of: str, previous: str | None, pk_raw: str | None
) -> str:
    """A membership of ``segment``: ``part_of`` for each row, GONE where ``previous`` says."""
    name = _name("mem")
    pk = f", {pk_raw} AS __dmv_pk" if pk_raw else ""
    inner = f"(SELECT dmv_q.*{pk} FROM {quote_ident(segment)} AS dmv_q) AS dmv_s"
    if previous is None:
        select = f"SELECT CAST({part_of} AS UTINYINT) AS __dmv_part FROM {inner}"
    else:
        # the segment and the earlier membership, aligned row by row
        select = (
            f"SELECT CAST(CASE WHEN dmv_p.__dmv_part = {GONE} THEN {GONE} ELSE {part_of} END "
            f"AS UTINYINT) AS __dmv_part FROM {inner} POSITIONAL JOIN "
            f"{quote_ident(previous)} AS dmv_p"
        )
    wh.execute(f"CREATE TABLE {quote_ident(name)} AS {select}")
    return name


def _live_rows(layout: Layout, columns: Sequence[Column]) -> str:
    picked = ", ".join(f"s.{quote_ident(c.name)}" for c in columns)
    return " UNION ALL ".join(
        f"SELECT {picked} FROM {quote_ident(seg.table)} AS s POSITIONAL JOIN "
        f"{quote_ident(seg.membership)} AS m WHERE m.__dmv_part <> {GONE}"
        for seg in layout.segments
    )


def _mark_gone(
    wh: Warehouse, layout: Layout, memberships: Sequence[str], gone: str, columns: Sequence[Column]
) -> None:
    """Mark GONE, in the new memberships, the earlier rows the new retrieval lacks.

    ``gone`` holds those rows by value (with duplicates); the same number of matching
    live rows is marked, the earliest first. A segment's rows are numbered by position
    (``rowid``: segments are only ever appended to once, when written).
    """
    cols = columns_sql(columns)
    same = " AND ".join(
        f"c.{quote_ident(c.name)} IS NOT DISTINCT FROM g.{quote_ident(c.name)}" for c in columns
    )
    picked = ", ".join(f"s.{quote_ident(c.name)}" for c in columns)
    candidates = " UNION ALL ".join(
        f"SELECT {i} AS __dmv_seg, s.rowid AS __dmv_row, {picked} FROM "
        f"{quote_ident(seg.table)} AS s POSITIONAL JOIN {quote_ident(seg.membership)} AS m "
        f"WHERE m.__dmv_part <> {GONE} AND hash({picked}) IN "
        f"(SELECT hash({cols}) FROM {gone})"
        for i, seg in enumerate(layout.segments)
    )
    counted = f"(SELECT {cols}, count(*) AS __dmv_n FROM {gone} GROUP BY ALL)"
    marked = quote_ident(_name("gone"))
    partition = ", ".join(f"c.{quote_ident(c.name)}" for c in columns)
    wh.execute(
        f"CREATE TEMP TABLE {marked} AS SELECT __dmv_seg, __dmv_row FROM ("
        f"SELECT c.__dmv_seg, c.__dmv_row, g.__dmv_n, row_number() OVER (PARTITION BY "
        f"{partition} ORDER BY c.__dmv_seg, c.__dmv_row) AS __dmv_rn "
        f"FROM ({candidates}) AS c JOIN {counted} AS g ON {same}) WHERE __dmv_rn <= __dmv_n"
    )
    for i, membership in enumerate(memberships):
        # a table written in this transaction numbers its rows from an offset: the
        # position of a row is its rowid less the smallest
        m = quote_ident(membership)
        wh.execute(
            f"UPDATE {m} SET __dmv_part = {GONE} WHERE rowid IN (SELECT __dmv_row + "
            f"(SELECT min(rowid) FROM {m}) FROM {marked} WHERE __dmv_seg = {i})"
        )
    wh.execute(f"DROP TABLE {marked}")


def constant_membership(wh: Warehouse, table: str, part: int, *, temp: bool = False) -> str:
    """A membership saying every row of ``table`` is in ``part`` (a split's own parts)."""
    name = _name("mem")
    kind = "TEMP TABLE" if temp else "TABLE"
    wh.execute(
        f"CREATE {kind} {quote_ident(name)} AS SELECT CAST({part} AS UTINYINT) AS __dmv_part "
        f"FROM {quote_ident(table)}"
    )
    return name


def base_for(wh: Warehouse, origin: str, columns: Sequence[Column]) -> Layout | None:
    """The latest stored split of the same retrieval and columns, if any."""
    key = columns_key(columns)
    return next(
        (lay for lay in reversed(layouts(wh)) if lay.origin == origin and lay.columns == key),
        None,
    )


def reuse(
    wh: Warehouse,
    base: Layout,
    content: str,
    columns: Sequence[Column],
    part_of: str,
    pk_raw: str | None,
    expected: Mapping[int, tuple[int, int]],
) -> Planned | None:
    """Store a split of ``base``'s very rows as memberships of its segments alone.

    ``content`` and ``expected`` are the new split's content fingerprint and engine
    checks, measured on the retrieved rows (nothing written). None, with nothing
    left behind, unless both match ``base`` and the memberships give exactly the
    expected parts: the split is then stored the ordinary way.
    """
    if (base.content, base.engine) != (content, _totals(expected)):
        return None
    memberships = [
        membership(wh, seg.table, part_of, seg.membership, pk_raw) for seg in base.segments
    ]
    segments = [Segment(seg.table, m) for seg, m in zip(base.segments, memberships, strict=True)]
    if part_checks(wh, segments, columns) != dict(expected):
        for table in memberships:  # cannot happen unless the engine misaligns rows
            wh.execute(f"DROP TABLE {quote_ident(table)}")
        return None
    rows = sum(n for n, _ in expected.values())
    return Planned(segments, memberships, rows, 0)


def against(
    wh: Warehouse,
    base: Layout,
    from_sql: str,
    params: Mapping[str, Any],
    columns: Sequence[Column],
    part_of: str,
    pk_raw: str | None,
    expected: Mapping[int, tuple[int, int]],
) -> Planned | None:
    """Store a split of a grown or changed source against ``base``, from the source itself.

    The rows ``base`` holds are shared; only the others are written, as one new
    segment; no part is built first. None, with nothing left behind, when most
    rows changed or the parts do not come out as ``expected`` (measured on the
    retrieved rows): the split is then stored the ordinary way.
    """
    alias = from_sql if from_sql.endswith("AS dmv_q") else f"{from_sql} AS dmv_q"
    new_rows = f"SELECT {columns_sql(columns)} FROM {alias}"
    rows = sum(n for n, _ in expected.values())
    planned = _difference(wh, base, new_rows, columns, part_of, pk_raw, rows, params)
    if planned is None:
        return None
    if part_checks(wh, planned.segments, columns) != dict(expected):
        for table in planned.written:  # cannot happen unless the engine misaligns rows
            wh.execute(f"DROP TABLE {quote_ident(table)}")
        return None
    return planned


def _persist(wh: Warehouse, fresh: Sequence[Segment]) -> list[Segment]:
    """Write temporary segments into the warehouse file (a split stored anew)."""
    kept = []
    for i, seg in enumerate(fresh):
        table = _name("seg")
        wh.execute(f"CREATE TABLE {quote_ident(table)} AS SELECT * FROM {quote_ident(seg.table)}")
        kept.append(Segment(table, constant_membership(wh, table, i)))
        wh.execute(f"DROP TABLE {quote_ident(seg.membership)}")
        wh.execute(f"DROP TABLE {quote_ident(seg.table)}")
    return kept


def _totals(checks: Mapping[int, tuple[int, int]]) -> str:
    rows = sum(n for n, _ in checks.values())
    total = sum(t for _, t in checks.values()) % (1 << 64)
    return f"{rows}:{total:016x}"


def plan(
    wh: Warehouse,
    built: Sequence[str],
    content: str,
    columns: Sequence[Column],
    origin: str,
    part_of: str,
    pk_raw: str | None,
    *,
    temp: bool = False,
    checks: Mapping[int, tuple[int, int]] | None = None,
) -> tuple[Planned, dict[int, tuple[int, int]]]:
    """The segments of a new split whose part ``i`` was built as table ``built[i]``.

    Returns the plan and the engine check of every part. Against the latest split of
    the same origin and columns: the rows both hold are read from its segments and
    only the rest is written; otherwise (or when most rows changed) the built tables
    are the segments. The built tables are dropped when they are not used.

    ``temp``: the tables were built as temporary tables, so that what is not kept
    never reaches the warehouse file; they are written into it only when the split
    is stored anew.

    ``checks``: the engine checks of the built tables, when they were measured with
    the fingerprints (one scan fewer); otherwise they are measured here.
    """
    fresh = [Segment(t, constant_membership(wh, t, i, temp=temp)) for i, t in enumerate(built)]
    expected = dict(checks) if checks is not None else part_checks(wh, fresh, columns)
    rows = sum(n for n, _ in expected.values())
    base = base_for(wh, origin, columns)

    def own() -> Planned:
        return Planned(_persist(wh, fresh) if temp else fresh, [], 0, rows)

    if base is None:
        return own(), expected
    if (base.content, base.engine) == (content, _totals(expected)):
        # the same rows (the md5 sum and the engine's own hash sum agree): share them all
        memberships = [
            membership(wh, seg.table, part_of, seg.membership, pk_raw) for seg in base.segments
        ]
        segments = [
            Segment(seg.table, m) for seg, m in zip(base.segments, memberships, strict=True)
        ]
        planned = Planned(segments, memberships, rows, 0)
    else:
        cols = columns_sql(columns)
        new_rows = " UNION ALL ".join(
            f"SELECT {cols} FROM {quote_ident(seg.table)}" for seg in fresh
        )
        found = _difference(wh, base, new_rows, columns, part_of, pk_raw, rows)
        if found is None:
            return own(), expected
        planned = found
    if part_checks(wh, planned.segments, columns) != expected:
        for table in planned.written:  # cannot happen unless the engine misaligns rows
            wh.execute(f"DROP TABLE {quote_ident(table)}")
        return own(), expected
    for seg in fresh:
        wh.execute(f"DROP TABLE {quote_ident(seg.membership)}")
        wh.execute(f"DROP TABLE {quote_ident(seg.table)}")
    return planned, expected


def _difference(
    wh: Warehouse,
    base: Layout,
    new_rows: str,
    columns: Sequence[Column],
    part_of: str,
    pk_raw: str | None,
    rows: int,
    params: Mapping[str, Any] | None = None,
) -> Planned | None:
    """Share ``base``'s rows that the new rows hold too; write only the others.

    Rows are compared by the engine's row hash first; where the counts of a hash
    differ, by value (``EXCEPT ALL``, every column, duplicates counted). None when
    more than half the rows changed.
    """
    live = _live_rows(base, columns)
    bound = dict(params or {})
    engine = wh.engine_row_hash(columns, "dmv_r")
    differ = quote_ident(_name("differ"))
    wh.execute(
        f"CREATE TEMP TABLE {differ} AS SELECT h FROM (SELECT {engine} AS h, 1 AS n FROM "
        f"({new_rows}) AS dmv_r UNION ALL SELECT {engine} AS h, -1 AS n FROM ({live}) AS dmv_r) "
        "AS d GROUP BY h HAVING sum(n) <> 0",
        bound,
    )
    added = quote_ident(_name("added"))
    gone = quote_ident(_name("gone"))
    pick = f"WHERE {engine} IN (SELECT h FROM {differ})"
    ours = f"SELECT * FROM ({new_rows}) AS dmv_r {pick}"
    theirs = f"SELECT * FROM ({live}) AS dmv_r {pick}"
    wh.execute(f"CREATE TEMP TABLE {added} AS {ours} EXCEPT ALL {theirs}", bound)
    wh.execute(f"CREATE TEMP TABLE {gone} AS {theirs} EXCEPT ALL {ours}", bound)
    n_added = int(wh.rows(f"SELECT count(*) FROM {added}")[0][0])
    n_gone = int(wh.rows(f"SELECT count(*) FROM {gone}")[0][0])
    try:
        if n_added + n_gone > _MAX_CHANGED * max(rows, 1):
            return None
        memberships = [
            membership(wh, seg.table, part_of, seg.membership, pk_raw) for seg in base.segments
        ]
        if n_gone:
            _mark_gone(wh, base, memberships, gone, columns)
        segments = [
            Segment(seg.table, m) for seg, m in zip(base.segments, memberships, strict=True)
        ]
        written = list(memberships)
        if n_added:
            delta = _name("seg")
            wh.execute(f"CREATE TABLE {quote_ident(delta)} AS SELECT * FROM {added}")
            segments.append(Segment(delta, membership(wh, delta, part_of, None, pk_raw)))
            written += [delta, segments[-1].membership]
        return Planned(segments, written, rows - n_added, n_added)
    finally:
        for table in (differ, added, gone):
            wh.execute(f"DROP TABLE {table}")


def part_checks(
    wh: Warehouse, segments: Sequence[Segment], columns: Sequence[Column]
) -> dict[int, tuple[int, int]]:
    """``{part: (rows, engine check sum)}`` of what the segments hold, in one pass."""
    engine = wh.engine_row_hash(columns, "s")
    union = " UNION ALL ".join(
        f"SELECT m.__dmv_part AS p, {engine} AS h FROM {quote_ident(seg.table)} AS s "
        f"POSITIONAL JOIN {quote_ident(seg.membership)} AS m WHERE m.__dmv_part <> {GONE}"
        for seg in segments
    )
    found = wh.rows(f"SELECT p, count(*), {wh.engine_hash_sum('h')} FROM ({union}) AS u GROUP BY p")
    return {int(p): (int(n), int(total or 0) % (1 << 64)) for p, n, total in found}


def create_views(
    wh: Warehouse,
    prefix: str,
    parts: Sequence[str],
    planned: Planned,
    columns: Sequence[Column],
    origin: str,
    content: str,
    expected: Mapping[int, tuple[int, int]],
) -> None:
    """The part views and the layout rows of a split.

    A segment whose rows all belong to one part is read by that part's view as it is
    (as fast as a table); a segment shared across parts through its membership.
    """
    picked = ", ".join(f"s.{quote_ident(c.name)}" for c in columns)
    held = {seg: _held(wh, seg) for seg in planned.segments}
    for i, name in enumerate(parts):
        selects = []
        for seg in planned.segments:
            source = f"{quote_ident(seg.table)} AS s"
            if held[seg] == {i}:
                selects.append(f"SELECT {picked} FROM {source}")
            elif i in held[seg]:
                selects.append(
                    f"SELECT {picked} FROM {source} POSITIONAL JOIN "
                    f"{quote_ident(seg.membership)} AS m WHERE m.__dmv_part = {i}"
                )
        if not selects:  # an empty part (stored with allow_empty)
            selects = [
                f"SELECT {picked} FROM {quote_ident(planned.segments[0].table)} AS s WHERE false"
            ]
        body = " UNION ALL ".join(selects)
        wh.execute(f"CREATE VIEW {quote_ident(f'{prefix}__{name}')} AS {body}")
    _ensure_layout(wh)
    values = [
        quote_literal(v) for v in (prefix, origin, columns_key(columns), content, _totals(expected))
    ]
    for position, seg in enumerate(planned.segments):
        wh.execute(
            f"INSERT INTO {LAYOUT} (prefix, position, segment, membership, origin, columns, "
            f"content, engine) VALUES ({values[0]}, {position}, {quote_literal(seg.table)}, "
            f"{quote_literal(seg.membership)}, {', '.join(values[1:])})"
        )


# -- dropping and checking ----------------------------------------------------------


def _views(wh: Warehouse) -> set[str]:
    return set(wh.list_views())


def drop_split_tables(wh: Warehouse, tables: Sequence[str]) -> None:
    """Drop a split's part tables or views, and the shared storage only it used.

    A segment goes only when no other split's layout names it.
    """
    views = _views(wh) if shares_storage(wh) else set()
    prefixes: set[str] = set()
    for table in tables:
        if table in views:
            wh.execute(f"DROP VIEW IF EXISTS {quote_ident(table)}")
            prefixes.add(table.rsplit("__", 1)[0])
        else:
            wh.drop_table(quote_ident(table), temp=True)  # __dmv_… names too
            prefixes.add(table.rsplit("__", 1)[0])
    if prefixes and _has_layout(wh):
        release_layouts(wh, prefixes)


def release_layouts(wh: Warehouse, prefixes: set[str]) -> list[str]:
    """Forget the layouts of ``prefixes``; drop what no other layout uses. Returns it."""
    mine = [lay for lay in layouts(wh) if lay.prefix in prefixes]
    if not mine:
        return []
    kept = {seg.table for lay in layouts(wh) if lay.prefix not in prefixes for seg in lay.segments}
    listed = ", ".join(quote_literal(p) for p in sorted(prefixes))
    wh.execute(f"DELETE FROM {LAYOUT} WHERE prefix IN ({listed})")
    dropped = []
    for lay in mine:
        for seg in lay.segments:
            wh.execute(f"DROP TABLE IF EXISTS {quote_ident(seg.membership)}")
            dropped.append(seg.membership)
            if seg.table not in kept:
                wh.execute(f"DROP TABLE IF EXISTS {quote_ident(seg.table)}")
                dropped.append(seg.table)
                kept.add(seg.table)  # once
    return dropped


def storage_problems(wh: Warehouse) -> list[tuple[str, str]]:
    """``(object, what is wrong)`` for every layout entry that is missing or misaligned."""
    problems = []
    present = set(wh.list_tables())
    counts: dict[str, int] = {}

    def count(table: str) -> int:
        if table not in counts:
            counts[table] = int(wh.rows(f"SELECT count(*) FROM {quote_ident(table)}")[0][0])
        return counts[table]

    for lay in layouts(wh):
        for seg in lay.segments:
            missing = [t for t in (seg.table, seg.membership) if t not in present]
            for table in missing:
                problems.append((table, f"shared storage of {lay.prefix} is missing"))
            if not missing and count(seg.table) != count(seg.membership):
                problems.append(
                    (
                        seg.membership,
                        f"{count(seg.membership)} rows for the {count(seg.table)} of segment "
                        f"{seg.table} ({lay.prefix})",
                    )
                )
    return problems


def owned_objects(wh: Warehouse) -> dict[str, str]:
    """``{table: prefix}`` for every segment and membership a layout names."""
    owned: dict[str, str] = {LAYOUT: ""}
    for lay in layouts(wh):
        for seg in lay.segments:
            owned.setdefault(seg.table, lay.prefix)
            owned[seg.membership] = lay.prefix
    return owned


def storage_summary(wh: Warehouse) -> Mapping[str, Any]:
    """How many splits share how many segments (for fsck and ``data list``)."""
    found = layouts(wh)
    segments = {seg.table for lay in found for seg in lay.segments}
    return {"splits": len(found), "segments": len(segments)}
