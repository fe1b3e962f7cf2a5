"""fsck of the warehouse: registered tables present, orphans, unused space."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dmv._urls import source_url as strip_credentials
from dmv.data.engines import open_warehouse
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
            _warehouse_space(location, report, repair=repair)
        except DmvError as exc:
            report.problem(status, "warehouse", status.location, exc.message)
            status.status = "damaged"
    tables = report.checked.get("split tables")
    parts = [f"{tables} registered split table(s) present" if tables is not None else "opens"]
    space = report.space
    if space.get("reclaimable_bytes"):
        verb = "reclaimed" if repair else "reclaimable with --repair"
        amount = space["reclaimed_bytes"] if repair else space["reclaimable_bytes"]
        parts.append(f"{_mb(amount)} {verb}")
    if space.get("reusable_bytes"):
        parts.append(f"{_mb(space['reusable_bytes'])} free inside the file (reused by new splits)")
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


def _warehouse_space(location: str, report: FsckReport, *, repair: bool) -> None:
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
