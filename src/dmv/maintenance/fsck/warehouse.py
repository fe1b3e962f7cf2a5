"""fsck of the warehouse: registered tables present, orphans, unused space."""

from __future__ import annotations

import json
import os
import secrets
from typing import TYPE_CHECKING, Any

from dmv._urls import source_url as strip_credentials
from dmv.data._sql import quote_ident, quote_literal
from dmv.data.engines import open_warehouse
from dmv.data.shared import Layout, layouts, part_checks
from dmv.data.warehouse import Column, Warehouse
from dmv.errors import DmvError
from dmv.integrity import DUCKDB_HEADER_BYTES, check_duckdb_file
from dmv.maintenance.fsck.report import FsckReport, StoreStatus

if TYPE_CHECKING:
    from dmv.data.service import ProjectData
    from dmv.stores import Stores


# -- warehouse ------------------------------------------------------------------


def _check_warehouse(
    stores: Stores,
    data: ProjectData,
    report: FsckReport,
    *,
    repair: bool,
    grace_seconds: float,
    registry_ok: bool,
) -> set[str]:
    """Check the warehouse; returns the artifact digests stored splits reference."""
    location = stores.config.location("warehouse")
    status = StoreStatus("warehouse", strip_credentials(location))
    report.stores.append(status)
    referenced: set[str] = set()
    if registry_ok:
        found = data.fsck_tables(repair, grace_seconds)
        referenced = found.digests
        report.orphans += found.orphans
        report.repaired += found.repaired
        report.checked.update(found.checked)
        for p in found.problems:
            report.problem(status, p["kind"], p["what"], p["error"])
            if p["kind"] == "warehouse":
                status.status = "damaged"
    if status.status != "damaged":
        try:
            _warehouse_space(location, report, status, repair=repair)
        except DmvError as exc:
            report.problem(status, "warehouse", status.location, exc.message)
            status.status = "damaged"
    tables = report.checked.get("split tables")
    parts = [f"{tables} registered split table(s) present" if tables is not None else "opens"]
    space = report.space
    if repair and space.get("reclaimed_bytes"):
        parts.append(f"{_mb(space['reclaimed_bytes'])} reclaimed")
    elif space.get("reclaimable_bytes"):
        verb = "reclaimed" if repair else "reclaimable with --repair"
        amount = space["reclaimed_bytes"] if repair else space["reclaimable_bytes"]
        parts.append(f"{_mb(amount)} {verb}")
    if space.get("reusable_bytes"):
        tail = "" if repair else ": reused by new splits, or given back by --repair"
        parts.append(f"{_mb(space['reusable_bytes'])} free inside the file{tail}")
    orphan_tables = sum(1 for o in report.orphans if o["kind"] == "split table")
    if orphan_tables:
        parts.append(f"{orphan_tables} orphan table(s)")
    if not registry_ok:
        parts.append("split tables not checked: needs a readable registry")
    if status.status == "damaged":
        status.summary = next(
            (p["error"] for p in report.problems if p["store"] == "warehouse"), "damaged"
        )
    else:
        status.summary = "; ".join(parts)
    return referenced


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _warehouse_space(
    location: str, report: FsckReport, status: StoreStatus, *, repair: bool
) -> None:
    """Measure (and with ``repair`` reclaim) the file space no table uses.

    A split killed part-way has already written its blocks to the end of the
    file; DuckDB rolls the tables back on the next open but keeps the file's
    length until a checkpoint that has something to write. A checkpoint after a
    no-op change (a probe table created and dropped) gives the tail back.
    """
    with open_warehouse(location) as wh:
        if not wh.reclaims_file_space:
            report.space = {"engine": wh.dialect, "note": "space is the database's own (VACUUM)"}
            return
        path = wh.url
        if path == ":memory:" or not os.path.exists(path):
            return
        con: Any = wh.con  # type: ignore[attr-defined]
        check_duckdb_file(con, path, exact=True)
        before = _duckdb_space(con, path)
        report.space = dict(before)
        if repair and before["reclaimable_bytes"] > 0:
            con.execute("CREATE TABLE __dmv_fsck_probe (x INTEGER)")
            con.execute("DROP TABLE __dmv_fsck_probe")
            con.execute("CHECKPOINT")
            after = _duckdb_space(con, path)
            report.space = {
                **after,
                "file_bytes_before": before["file_bytes"],
                "reclaimed_bytes": before["file_bytes"] - after["file_bytes"],
            }
            report.repaired.append(
                {
                    "kind": "warehouse space",
                    "path": path,
                    "bytes": before["file_bytes"] - after["file_bytes"],
                }
            )
    if repair and report.space.get("reusable_bytes", 0) >= _COMPACT_MIN:
        _compact(path, report, status)


#: free blocks inside the file worth rewriting it for
_COMPACT_MIN = 1 << 20


def _snapshot(wh: Warehouse) -> dict[str, Any]:
    """What must survive a compaction: every table's rows, every view, every part.

    Tables by count and engine hash sum; each shared segment with its membership by
    the engine check of every part (it depends on their rows staying aligned).
    """
    tables: dict[str, tuple[int, int]] = {}
    for name in sorted(wh.list_tables()):
        cols = wh.table_columns(name)
        found = wh.rows(
            f"SELECT count(*), sum({wh.engine_row_hash(cols, 't')}) FROM {quote_ident(name)} AS t"
        )
        tables[name] = (int(found[0][0]), int(found[0][1] or 0))
    parts = {
        f"{lay.prefix}/{seg.table}": part_checks(wh, [seg], _columns_of(lay))
        for lay in layouts(wh)
        for seg in lay.segments
    }
    return {"tables": tables, "views": sorted(wh.list_views()), "parts": parts}


def _columns_of(lay: Layout) -> list[Column]:
    return [Column(str(n), str(t)) for n, t in json.loads(lay.columns)]


def _compact(path: str, report: FsckReport, status: StoreStatus) -> None:
    """Rewrite the DuckDB file without its free blocks; replace it only once verified.

    The copy is written beside the file (``COPY FROM DATABASE``), checked against
    the original (:func:`_snapshot`), and moved over it in one rename; the original
    is untouched until then, and kept when anything differs or was written meanwhile.
    """
    import duckdb  # lazy: duckdb

    start = os.path.getsize(path)
    copy = f"{path}.compact-{secrets.token_hex(4)}"
    try:
        with open_warehouse(path) as wh:
            expected = _snapshot(wh)
            con: Any = wh.con  # type: ignore[attr-defined]
            con.execute("CHECKPOINT")
            con.execute(f"ATTACH {quote_literal(copy)} AS dmv_compact")
            try:
                con.execute("COPY FROM DATABASE " + _current(con) + " TO dmv_compact")
            finally:
                con.execute("DETACH dmv_compact")
            con.execute("CHECKPOINT")
            stamp = _stamp(path)
        with open_warehouse(copy) as new:
            found = _snapshot(new)
            new.execute("CHECKPOINT")
        if found != expected:
            report.problem(
                status,
                "warehouse space",
                path,
                "the compacted copy differed from the warehouse; the warehouse was left as it was",
            )
            return
        if _stamp(path) != stamp or os.path.exists(f"{path}.wal"):
            return  # written meanwhile: keep it, compact another time
        with open(copy, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(copy, path)
    except duckdb.Error as exc:
        report.problem(status, "warehouse space", path, f"not compacted: {exc}")
        return
    finally:
        for leftover in (copy, f"{copy}.wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
    end = os.path.getsize(path)
    with open_warehouse(path) as wh:
        con = wh.con  # type: ignore[attr-defined]
        after = _duckdb_space(con, path)
    first = int(report.space.get("file_bytes_before", start))
    report.space = {
        **after,
        "file_bytes_before": first,
        "reclaimed_bytes": first - end,
        "compacted": True,
    }
    report.repaired.append({"kind": "warehouse compaction", "path": path, "bytes": start - end})


def _current(con: Any) -> str:
    ((name,),) = con.execute("SELECT current_database()").fetchall()
    return quote_ident(str(name))


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _duckdb_space(con: Any, path: str) -> dict[str, int]:
    ((total, block, free),) = con.execute(
        "SELECT total_blocks, block_size, free_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()
    size = os.path.getsize(path)
    described = DUCKDB_HEADER_BYTES + int(total) * int(block) if total else size
    in_file_free = max(0, int(free) * int(block) - max(0, described - size))
    return {
        "file_bytes": size,
        "used_bytes": DUCKDB_HEADER_BYTES + (int(total) - int(free)) * int(block),
        "reclaimable_bytes": max(0, size - described),
        "reusable_bytes": in_file_free,
    }
