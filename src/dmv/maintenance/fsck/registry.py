"""fsck of the registry: SQLite's own checks, the schema stamp, row counts."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dmv._urls import database_url as redact_url
from dmv._urls import registry_url
from dmv.errors import DmvError
from dmv.maintenance.fsck.report import FsckReport, StoreStatus

if TYPE_CHECKING:
    from dmv.stores import Stores


# -- registry -------------------------------------------------------------------


def _check_registry(stores: Stores, report: FsckReport, *, deep: bool) -> bool:
    """True when the registry can be read (the other checks need it)."""
    url = registry_url(stores.config.location("registry"))
    path = url.split("///", 1)[1] if url.startswith("sqlite") else None
    status = StoreStatus("registry", path or redact_url(url))
    report.stores.append(status)
    notes: list[str] = []
    if path is not None:
        if not os.path.exists(path):
            status.status, status.summary = "damaged", "the registry file does not exist"
            report.problem(status, "registry", path, status.summary)
            status.status = "damaged"
            return False
        damage, dangling = _sqlite_checks(path, deep=deep)
        if damage is not None:
            status.status, status.summary = "damaged", damage
            report.problem(status, "registry", path, damage)
            status.status = "damaged"
            return False
        if dangling:
            report.problem(status, "foreign key", path, dangling)
        notes.append("integrity_check ok" if deep else "quick_check ok")
        notes.append(dangling or "foreign keys ok")
    try:
        registry = stores.registry  # checks the schema stamp, as every command does
        counts = registry.counts()
    except DmvError as exc:
        status.summary = exc.message
        report.problem(status, "registry", status.location, exc.message)
        status.status = "damaged"
        return False
    from dmv.registry import schema  # lazy: sqlalchemy

    notes.insert(0, f"schema {schema.SCHEMA_VERSION}")
    if path is None:
        notes.append("page checks are the server's (pg_amcheck); foreign keys it enforces")
    notes.append(", ".join(f"{n} {k}" for k, n in counts.items()))
    status.summary = "; ".join(notes)
    return True


def _sqlite_checks(path: str, *, deep: bool) -> tuple[str | None, str | None]:
    """(what damages the file, which rows break a foreign key); None when fine."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        return f"cannot open: {exc}", None
    try:
        pragma = "integrity_check" if deep else "quick_check"
        found = [str(r[0]) for r in con.execute(f"PRAGMA {pragma}").fetchall()]
        if found != ["ok"]:
            more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
            return f"{pragma}: " + "; ".join(found[:3]) + more, None
        bad = con.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            tables = sorted({str(r[0]) for r in bad})
            return None, (
                f"{len(bad)} row(s) point at rows that do not exist ({', '.join(tables)})"
            )
    except sqlite3.DatabaseError as exc:
        return str(exc), None
    finally:
        con.close()
    return None, None
