"""The SQLite fast path: the registry's hot statements as plain SQL on ``sqlite3``.

SQLAlchemy costs far more per statement than SQLite takes to run one (a no-op
transaction alone is ~60 µs), so on SQLite the hot paths (create a version, get
one by reference, list a model's versions, move an alias) run as plain SQL
strings on a per-thread ``sqlite3`` connection opened with the same settings
as the engine's: WAL, ``busy_timeout``, ``synchronous = NORMAL``,
``foreign_keys = ON``, and transaction control taken from the driver so writes
can start with ``BEGIN IMMEDIATE``. PostgreSQL keeps the SQLAlchemy path; the
test suite runs both and checks they agree.

Values are stored exactly as SQLAlchemy stores them (JSON columns as
``json.dumps`` text, ``None`` included; booleans as 0/1), so either path reads
what the other wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dmv.errors import StorageError
from dmv.registry.engine import _SQLITE_BUSY_MS, _retryable

__all__ = ["SqliteFast", "dumps", "loads"]

T = TypeVar("T")

Conn = sqlite3.Connection


def dumps(value: Any) -> str:
    """A JSON column's value as SQLAlchemy's JSON type stores it (None → 'null')."""
    return "null" if value is None else json.dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None or text == "null" else json.loads(text)


class SqliteFast:
    """Per-thread ``sqlite3`` connections to one registry file, and transactions on them.

    A connection is never shared between threads, nor used in a process other
    than the one that opened it (a forked child opens its own and leaves the
    inherited one alone, as SQLite requires).
    """

    def __init__(self, path: str, where: str) -> None:
        self.path = path
        self.where = where  # the registry's URL, for messages
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[int, Conn]] = []  # (pid, connection), to close
        self._generation = 0

    def connection(self) -> Conn:
        local = self._local
        conn: Conn | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid() and local.generation == self._generation:
            return conn
        conn = sqlite3.connect(
            self.path,
            timeout=_SQLITE_BUSY_MS / 1000,
            isolation_level=None,  # we issue BEGIN / BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # only so close() may close it from another thread
            cached_statements=128,
        )
        conn.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":  # the engine switched the file to WAL before we got here
            conn.close()
            raise StorageError(f"the registry at {self.where} is not in WAL mode ({mode})")
        with self._lock:
            self._open.append((os.getpid(), conn))
        local.conn, local.pid, local.generation = conn, os.getpid(), self._generation
        return conn

    def close(self) -> None:
        """Close this process's connections; later calls open new ones."""
        with self._lock:
            self._generation += 1
            mine = [c for pid, c in self._open if pid == os.getpid()]
            self._open = []
        for conn in mine:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def read(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` in one read transaction (one consistent snapshot)."""
        return self._transaction(fn, "BEGIN")

    def write(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` in one write transaction; writers queue on ``BEGIN IMMEDIATE``."""
        return self._transaction(fn, "BEGIN IMMEDIATE")

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """One statement on its own (an implicit transaction of its own)."""
        attempt = 0
        while True:
            try:
                with self._damage_reported():
                    return self.connection().execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                attempt = self._retry_or_raise(exc, attempt)

    @contextlib.contextmanager
    def _damage_reported(self) -> Any:
        from dmv.integrity import corrupt_registry, is_sqlite_corruption

        try:
            yield
        except sqlite3.DatabaseError as exc:
            if is_sqlite_corruption(exc):
                raise corrupt_registry(self.path, exc) from None
            raise

    def _transaction(self, fn: Callable[[Conn], T], begin: str) -> T:
        with self._damage_reported():
            return self._transaction_retried(fn, begin)

    def _transaction_retried(self, fn: Callable[[Conn], T], begin: str) -> T:
        attempt = 0
        while True:
            conn = self.connection()
            try:
                conn.execute(begin)
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.OperationalError as exc:
                attempt = self._retry_or_raise(exc, attempt)

    def _retry_or_raise(self, exc: sqlite3.OperationalError, attempt: int) -> int:
        # The same policy as engine.transaction: retry what the database asks us
        # to, report anything else as a StorageError naming the registry.
        attempt += 1
        if attempt < 8 and _retryable(exc):
            time.sleep(random.uniform(0.01, 0.05) * attempt)
            return attempt
        raise StorageError(
            f"the registry at {self.where} failed: {exc}",
            hint="check that the database is reachable and not corrupted (dmv fsck)",
        ) from None


# -- the hot statements ----------------------------------------------------------
# Each mirrors a SQLAlchemy statement of dmv.registry.queries or of the registry's
# modules (core, versions, aliases): see there.

_NUMBER = "{p}.x || '.' || {p}.y || '.' || {p}.z || '-' || {p}.data || '.' || {p}.split"

SQL_INSERT_AUDIT = (
    "INSERT INTO audit (at, actor, action, model, target, details) VALUES (?, ?, ?, ?, ?, ?)"
)
SQL_BUMP_SEQ = "UPDATE models SET seq = seq + 1 WHERE name = ?"
SQL_MODEL_TOKEN = "SELECT id, created_at, seq FROM models WHERE name = ?"
SQL_MODEL_ID = "SELECT id FROM models WHERE name = ?"
SQL_INSERT_MODEL = (
    "INSERT INTO models (name, purpose, function, description, primary_metric, metric_goal,"
    " generation, created_at, seq) VALUES (?, '', '', '', NULL, 'max', 0, ?, 0)"
    " ON CONFLICT DO NOTHING"
)
SQL_VERSION_FPS = (
    "SELECT id, interface_fp, logic_fp FROM versions"
    " WHERE model_id = ? AND x = ? AND y = ? AND z = ? AND data = ? AND split = ?"
)

#: Everything a VersionInfo holds, in one statement (see ``INFO_COLUMNS``).
_INFO_SELECT = (
    "SELECT v.id, v.model_id, m.name, v.x, v.y, v.z, v.data, v.split, v.state, v.created_at,"
    " v.interface_fp, v.logic_fp, v.interface, v.interface_compat, v.logic, v.dirty,"
    " v.serving_run, v.meta,"
    f" (SELECT {_NUMBER.format(p='s')} FROM versions s WHERE s.id = v.released_from),"
    " (SELECT count(*) FROM runs r WHERE r.version_id = coalesce(v.released_from, v.id)),"
    " (SELECT group_concat(a.alias, ' ') FROM aliases a WHERE a.version_id = v.id)"
)
SQL_INFO_EXACT = (
    _INFO_SELECT + " FROM models m JOIN versions v ON v.model_id = m.id"
    " WHERE m.name = ? AND v.x = ? AND v.y = ? AND v.z = ? AND v.data = ? AND v.split = ?"
)
SQL_INFO_ALIAS = (
    _INFO_SELECT + " FROM models m JOIN aliases al ON al.model_id = m.id"
    " JOIN versions v ON v.id = al.version_id WHERE m.name = ? AND al.alias = ?"
)
#: Completed with the reference's conditions and ``SQL_INFO_NEWEST_ORDER``.
SQL_INFO_NEWEST = (
    _INFO_SELECT + " FROM versions v JOIN models m ON m.id = v.model_id"
    " WHERE v.model_id = ? AND v.state != 'deprecated'"
)
SQL_INFO_NEWEST_ORDER = " ORDER BY v.x DESC, v.y DESC, v.z DESC, v.id DESC LIMIT 1"

SQL_ALIAS_TARGET = (
    f"SELECT {_NUMBER.format(p='v')} FROM aliases a JOIN versions v ON v.id = a.version_id"
    " WHERE a.model_id = ? AND a.alias = ?"
)
SQL_INSERT_ALIAS = (
    "INSERT INTO aliases (model_id, alias, version_id, updated_at) VALUES (?, ?, ?, ?)"
)
SQL_MOVE_ALIAS = (
    "UPDATE aliases SET version_id = ?, updated_at = ? WHERE model_id = ? AND alias = ?"
)

#: A release's source comes with it: its id (whose runs the release counts) and number.
_LIST_COLUMNS = (
    "SELECT v.id, v.x, v.y, v.z, v.data, v.split, v.state, v.created_at, v.interface_fp,"
    " v.logic_fp, v.interface_compat, v.dirty, v.serving_run, v.released_from,"
    f" {_NUMBER.format(p='s')}"
    " FROM versions v LEFT JOIN versions s ON s.id = v.released_from WHERE v.model_id = ?"
)
SQL_LIST_VERSIONS = _LIST_COLUMNS + " ORDER BY v.x, v.y, v.z, v.id"
SQL_LIST_VERSIONS_STATE = _LIST_COLUMNS + " AND v.state = ? ORDER BY v.x, v.y, v.z, v.id"
SQL_LIST_ALIASES = "SELECT version_id, alias FROM aliases WHERE model_id = ? ORDER BY alias"
SQL_LIST_RUN_COUNTS = (
    "SELECT version_id, count(*) FROM runs"
    " WHERE model_id = ? AND version_id IS NOT NULL GROUP BY version_id"
)
