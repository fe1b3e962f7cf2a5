"""The SQLite fast path's connections and transactions.

SQLAlchemy costs far more per statement than SQLite takes to run one (a no-op
transaction alone is ~60 µs), so on SQLite the hot paths (create a version, get
one by reference, list a model's versions, move an alias, check a token) run
their SQLAlchemy statements compiled to plain SQL (:mod:`dmv.registry.compiled`)
on a per-thread ``sqlite3`` connection opened with the same settings as the
engine's: WAL, ``busy_timeout``, ``synchronous = NORMAL``, ``foreign_keys = ON``,
and transaction control taken from the driver so writes can start with
``BEGIN IMMEDIATE``. PostgreSQL runs the same statements through SQLAlchemy;
the test suite drives all paths with the same operations and checks they agree.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dmv.errors import StorageError
from dmv.integrity import corrupt_registry, is_sqlite_corruption
from dmv.registry.engine import _SQLITE_BUSY_MS, _retryable, wrote

__all__ = ["SqliteFast"]

T = TypeVar("T")

Conn = sqlite3.Connection


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
            raise StorageError(
                f"the registry at {self.where} is not in WAL mode ({mode})",
                hint="another program holds the file in another journal mode: close it and run "
                "the command again",
            )
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
        try:
            return self._transaction(fn, "BEGIN IMMEDIATE")
        finally:
            wrote()  # after the commit (or the rollback: counting more is harmless)

    def once(self, fn: Callable[[Conn], T]) -> T:
        """``fn``'s one statement on its own (SQLite's implicit transaction of its own)."""
        attempt = 0
        while True:
            try:
                with self._damage_reported():
                    return fn(self.connection())
            except sqlite3.OperationalError as exc:
                attempt = self._retry_or_raise(exc, attempt)

    @contextlib.contextmanager
    def _damage_reported(self) -> Any:

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
