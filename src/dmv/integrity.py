"""How a damaged store is recognised, and the one message it gets.

A registry file, warehouse file or artifact changed from outside dmv (a disk
fault, a truncated copy, a stray write) is not a bug in dmv and not bad input:
it is reported as a :class:`~dmv.errors.StorageError` that names the file, says
what is wrong with it and how to recover. Every store calls these functions
where it opens or reads its files, and the front ends use :func:`as_storage_error`
as their last safety net, so the wording is decided here once.

This module imports nothing heavy: it is called on error paths of every store.
"""

from __future__ import annotations

import os
import re
from typing import Any

from dmv.errors import StorageError

__all__ = [
    "DUCKDB_HEADER_BYTES",
    "RECOVERY",
    "as_storage_error",
    "check_duckdb_file",
    "corrupt_registry",
    "corrupt_warehouse",
    "is_duckdb_corruption",
    "is_sqlite_corruption",
]

#: What to do about any damaged store; ``dmv fsck`` says which store and how badly.
RECOVERY = (
    "restore the project from a backup ('dmv restore BACKUP_DIR --force'); "
    "'dmv fsck' lists what is damaged"
)

# SQLITE_CORRUPT / SQLITE_NOTADB, as sqlite3 words them.
_SQLITE_CORRUPT = re.compile(
    r"malformed|file is not a database|file is encrypted|disk image|database corrupt", re.I
)
# DuckDB: checksum failures, short reads of a truncated file, a header that is not
# DuckDB's, and the database it invalidates after such a fatal error.
_DUCKDB_CORRUPT = re.compile(
    r"corrupt|checksum|could not read enough bytes|not a valid duckdb database"
    r"|database has been invalidated|serializ|failed to (?:read|load) (?:block|metadata)"
    r"|invalid (?:block|metadata|database)|attempted to read .* bytes",
    re.I,
)


def is_sqlite_corruption(exc: BaseException) -> bool:
    """True for sqlite3's 'malformed' / 'not a database' errors, at any wrapping depth."""
    import sqlite3

    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None)
        for candidate in (seen, orig):
            if (
                isinstance(candidate, sqlite3.DatabaseError)
                and not isinstance(candidate, sqlite3.OperationalError | sqlite3.IntegrityError)
                and _SQLITE_CORRUPT.search(str(candidate))
            ):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_duckdb_corruption(exc: BaseException) -> bool:
    """True for DuckDB's damaged-file errors (checksum, short read, bad header, invalidated)."""
    if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
        return False
    return bool(_DUCKDB_CORRUPT.search(str(exc)))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def corrupt_registry(where: str, exc: BaseException | str) -> StorageError:
    """The error for a registry database that SQLite reports as damaged."""
    what = exc if isinstance(exc, str) else _first_line(exc)
    return StorageError(
        f"the registry at {where} is damaged: {what}",
        hint=RECOVERY,
        store="registry",
        path=where,
    )


def corrupt_warehouse(where: str, exc: BaseException | str) -> StorageError:
    """The error for a DuckDB warehouse file that is damaged."""
    what = exc if isinstance(exc, str) else _first_line(exc)
    return StorageError(
        f"the warehouse at {where} is damaged: {what}",
        hint=RECOVERY,
        store="warehouse",
        path=where,
    )


# A DuckDB file starts with one 4 KiB file header and two 4 KiB database headers.
DUCKDB_HEADER_BYTES = 3 * 4096


def check_duckdb_file(con: Any, path: str, *, exact: bool = False) -> None:
    """Refuse a DuckDB file shorter than the blocks it uses.

    A truncated file opens without complaint and fails only when a missing block
    is read, so a writer would keep adding splits to it. At open time one pragma
    gives the number of blocks in use, which the file must at least hold (free
    blocks past the end are fine: a checkpoint trims them). ``exact`` (fsck)
    also finds the highest block any table or the metadata uses, one query per
    table.
    """
    if path == ":memory:" or not os.path.exists(path):
        return
    rows = con.execute(
        "SELECT used_blocks, block_size FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()  # fetched to the end: DuckDB refuses new work while a result is open
    if not rows:
        return
    used, block = int(rows[0][0]), int(rows[0][1])
    needed = used
    if exact and used:
        needed = max(needed, _highest_block(con) + 1)
    size = os.path.getsize(path)
    expected = DUCKDB_HEADER_BYTES + needed * block if needed else 0
    if size < expected:
        raise corrupt_warehouse(
            path,
            f"the file holds {size:,} bytes but its blocks need {expected:,} (truncated)",
        )


def _highest_block(con: Any) -> int:
    top = max(
        (int(r[0]) for r in con.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()),
        default=-1,
    )
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main'"
    ).fetchall()
    for (table,) in tables:
        quoted = "'" + str(table).replace("'", "''") + "'"
        found = con.execute(f"SELECT max(block_id) FROM pragma_storage_info({quoted})").fetchall()
        if found and found[0][0] is not None:
            top = max(top, int(found[0][0]))
    return top


def as_storage_error(exc: BaseException) -> StorageError | None:
    """The storage error for a raw database exception that escaped a store, if it is one."""
    if is_sqlite_corruption(exc):
        return corrupt_registry("the registry database", exc)
    if is_duckdb_corruption(exc):
        return corrupt_warehouse("the warehouse database", exc)
    return None
