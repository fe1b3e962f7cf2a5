"""Rows to records, by column name: the one place a VersionInfo is built from a row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dmv.registry.records import VersionInfo
from dmv.version import Version

__all__ = ["number_of", "source_number", "version_info"]

Row = Mapping[str, Any]


def number_of(row: Row, prefix: str = "") -> str:
    """``X.Y.Z-DATA.SPLIT`` from a row's (prefixed) x, y, z, data and split columns."""
    p = prefix
    return f"{row[p + 'x']}.{row[p + 'y']}.{row[p + 'z']}-{row[p + 'data']}.{row[p + 'split']}"


def source_number(row: Row) -> str | None:
    """The number of the prerelease a release was made from (``source_*`` columns)."""
    return None if row["source_x"] is None else number_of(row, "source_")


def version_info(
    row: Row,
    name: str,
    aliases: tuple[str, ...],
    run_count: int,
    *,
    documents: bool = True,
) -> VersionInfo:
    """A VersionInfo from a version row (``versions`` columns plus ``source_*``).

    ``documents``: whether the row carries the interface, logic and meta
    documents (a listing leaves them out; the record then holds None).
    """
    serving = row["serving_run"]
    return VersionInfo(
        version=Version._trusted(name, row["x"], row["y"], row["z"], row["data"], row["split"]),
        state=row["state"],
        created_at=row["created_at"],
        interface_fp=row["interface_fp"],
        logic_fp=row["logic_fp"],
        interface=row["interface"] if documents else None,
        interface_compat=row["interface_compat"],
        logic=row["logic"] if documents else None,
        dirty=bool(row["dirty"]),
        released_from=source_number(row),
        serving_run=None if serving is None else f"tr{serving}",
        aliases=aliases,
        run_count=int(run_count),
        meta=row["meta"] if documents else None,
    )
