"""Database engines for the registry: SQLite (WAL) by default, PostgreSQL at scale.

Writes are serialised where they must be: on SQLite every write transaction
starts with ``BEGIN IMMEDIATE`` (so two writers never deadlock upgrading a read
lock), on PostgreSQL the writes that hand out numbers lock their model's row.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dmv._urls import database_url, registry_url
from dmv.errors import StorageError
from dmv.integrity import corrupt_registry, is_sqlite_corruption

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["create_engine", "is_sqlite", "local_writes", "transaction", "wrote"]

T = TypeVar("T")

_SQLITE_BUSY_MS = 60_000

_writes = itertools.count(1)  # next() is atomic: no lock on the write path
_last_write = 0


def wrote() -> None:
    """Count one registry write transaction of this process as finished (after its commit)."""
    global _last_write
    _last_write = next(_writes)


def local_writes() -> int:
    """A number that changes whenever this process finishes a write to any registry.

    A server compares it with the value it last saw to learn of writes made in its
    own process (through its API, or a test's in-process CLI) at once, without
    asking the database; writes by other processes it learns of by asking.
    """
    return _last_write


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(location: str) -> sa.Engine:
    """An engine for ``location``; the SQLite file's folder is created on demand."""
    import sqlalchemy as sa

    url = registry_url(location)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False},
            pool_size=4,
            max_overflow=8,
        )
        _configure_sqlite(engine)
        _report_corruption(engine, path)
        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
    except ModuleNotFoundError as exc:
        raise StorageError(
            f"the driver for {database_url(url)} is not installed ({exc.name})",
            hint="pip install 'dmv[postgres]'",
        ) from None
    except sa.exc.ArgumentError as exc:
        raise StorageError(
            f"registry URL {database_url(url)!r} is not valid: {exc}",
            hint="a registry is a path or a URL such as sqlite:///path/registry.db or postgresql://user@host/db",
        ) from None


def _configure_sqlite(engine: sa.Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is possible.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        _set_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("dmv_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _report_corruption(engine: sa.Engine, path: str) -> None:
    """A damaged file is a storage error naming it, wherever SQLAlchemy meets it."""
    from sqlalchemy import event

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if is_sqlite_corruption(context.original_exception):
            raise corrupt_registry(path, context.original_exception) from None


def _set_wal(cur: Any) -> None:
    # Switching a fresh file to WAL needs a moment of exclusive access; several
    # processes opening a new project at once may each have to wait their turn.
    import sqlite3

    deadline = time.monotonic() + _SQLITE_BUSY_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _retryable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in ("database is locked", "deadlock detected", "could not serialize", "busy")
    )


def transaction(engine: sa.Engine, fn: Callable[[sa.Connection], T], *, write: bool) -> T:
    """Run ``fn`` in one transaction; retry it when the database asks us to.

    ``fn`` may run more than once, so it must not have effects outside the
    transaction.
    """
    import sqlalchemy as sa

    attempt = 0
    while True:
        try:
            with engine.connect() as conn:
                if write:
                    conn.execution_options(dmv_write=True)
                try:
                    with conn.begin():
                        return fn(conn)
                finally:
                    if write:  # after the commit (or the rollback: counting more is harmless)
                        wrote()
        except sa.exc.OperationalError as exc:
            attempt += 1
            if attempt < 8 and _retryable(exc):
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            raise StorageError(
                f"the registry at {database_url(str(engine.url))} failed: {exc.orig}",
                hint="check that the database is reachable and not corrupted (dmv fsck)",
            ) from None
        except sa.exc.DBAPIError as exc:
            attempt += 1
            if attempt < 8 and _retryable(exc):
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                continue
            raise


def pid_actor() -> str:
    """Who to record in the audit log when nothing says otherwise."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or f"uid:{os.getuid()}"
