"""Rows to records, by column name: the one place a VersionInfo is built from a row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from dmv.registry.records import VersionInfo
from dmv.version import Version

__all__ = [
    "LISTING_COLUMNS",
    "number_of",
    "source_number",
    "source_numbers",
    "version_info",
    "version_listing",
]

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


#: What a listing reads of each version, by name (``statements.versions_of_model``).
LISTING_COLUMNS = (
    "id",
    "x",
    "y",
    "z",
    "data",
    "split",
    "state",
    "created_at",
    "interface_fp",
    "logic_fp",
    "interface_compat",
    "dirty",
    "serving_run",
    "released_from",
)


class _NewVersion:
    """A :class:`Version` being built: the same slots, without the frozen ``__setattr__``.

    A listing fills each record's slots with plain attribute stores, then makes
    the object what it is by assigning ``__class__`` (allowed between classes of
    one layout): the result is an ordinary, frozen :class:`Version`. Building a
    thousand records this way takes a fraction of the time ``object.__setattr__``
    per field takes.
    """

    __slots__ = Version.__slots__
    name: str
    x: int
    y: int
    z: int
    data: str
    split: str


class _NewVersionInfo:
    """A :class:`VersionInfo` being built (see :class:`_NewVersion`)."""

    __slots__ = VersionInfo.__slots__
    version: Version
    state: str
    created_at: float
    interface_fp: str | None
    logic_fp: str | None
    interface: dict[str, Any] | None
    interface_compat: str | None
    logic: dict[str, Any] | None
    dirty: bool
    released_from: str | None
    serving_run: str | None
    aliases: tuple[str, ...]
    run_count: int
    meta: dict[str, Any] | None


def version_listing(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    model: str,
    aliases: Mapping[int, tuple[str, ...]],
    runs: Mapping[int, int],
    sources: Mapping[int, str],
) -> tuple[VersionInfo, ...]:
    """The VersionInfos of a listing's rows (without documents), columns found by name.

    ``aliases`` and ``runs`` are by version id, ``sources`` the numbers of the
    releases' sources by id; a release counts its source's runs. This is
    :func:`version_info` for many rows at once, built without a dict per row
    and without a call per field.
    """
    if tuple(names) != LISTING_COLUMNS:  # not the listing statement's order: pick them out
        where = {name: i for i, name in enumerate(names)}
        rows = list(map(itemgetter(*(where[c] for c in LISTING_COLUMNS)), rows))
    new = object.__new__
    no_aliases: tuple[str, ...] = ()
    aliased, counted = aliases.get, runs.get
    out: list[Any] = []
    add = out.append
    for vid, x, y, z, data, split, state, created, ifp, lfp, compat, dirty, srun, sid in rows:
        version = new(_NewVersion)
        version.name = model
        version.x = x
        version.y = y
        version.z = z
        version.data = data
        version.split = split
        version.__class__ = Version  # type: ignore[assignment]
        info = new(_NewVersionInfo)
        info.version = version  # type: ignore[assignment]
        info.state = state
        info.created_at = created
        info.interface_fp = ifp
        info.logic_fp = lfp
        info.interface = None
        info.interface_compat = compat
        info.logic = None
        info.dirty = dirty == 1
        if sid is None:
            info.released_from = None
            info.run_count = counted(vid, 0)
        else:
            info.released_from = sources[sid]
            info.run_count = counted(sid, 0)
        info.serving_run = None if srun is None else f"tr{srun}"
        info.aliases = aliased(vid, no_aliases)
        info.meta = None
        info.__class__ = VersionInfo  # type: ignore[assignment]
        add(info)
    return tuple(out)


def source_numbers(
    names: Sequence[str], rows: Sequence[Sequence[Any]], wanted: set[int]
) -> dict[int, str]:
    """``{id: number}`` for the ``wanted`` ids among version rows (columns found by name)."""
    where = {name: i for i, name in enumerate(names)}
    pick = itemgetter(*(where[c] for c in ("id", "x", "y", "z", "data", "split")))
    out = {}
    for row in rows:
        vid, x, y, z, data, split = pick(row)
        if vid in wanted:
            out[vid] = f"{x}.{y}.{z}-{data}.{split}"
    return out
