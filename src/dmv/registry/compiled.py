"""One way to run a statement, two connections: SQLAlchemy's, and ``sqlite3`` compiled.

The registry's logic runs against a :class:`Tx`: a transaction that executes
SQLAlchemy Core statements and hands back rows keyed by column name.
:class:`SaTx` runs them through SQLAlchemy (any engine); :class:`SqliteTx`
compiles each statement once to SQLite's SQL text and runs it on a plain
``sqlite3`` connection, converting values exactly as SQLAlchemy's types do
(their own bind and result processors), so either path reads what the other
wrote and both return the same records.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Compiled", "Row", "SaTx", "SqliteTx", "Tx", "compile_sqlite"]

#: A row keyed by column name (or label).
Row = Mapping[str, Any]
Params = Mapping[str, Any]


class Tx(Protocol):
    """One transaction the registry's statements run in."""

    @property
    def dialect(self) -> str: ...

    def all(self, stmt: Any, params: Params | None = None) -> list[Row]: ...

    def first(self, stmt: Any, params: Params | None = None) -> Row | None: ...

    def run(self, stmt: Any, params: Params | None = None) -> int:
        """Execute a write; the number of rows it touched."""
        ...

    def insert(self, stmt: Any, params: Params) -> int:
        """Execute an INSERT; the new row's id."""
        ...

    def table(self, stmt: Any, params: Params | None = None) -> tuple[list[str], list[Any]]:
        """Many rows at once: the column names, and the rows as tuples in that order."""
        ...


class SaTx:
    """A :class:`Tx` on a SQLAlchemy connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    @property
    def dialect(self) -> str:
        return str(self.conn.dialect.name)

    def all(self, stmt: Any, params: Params | None = None) -> list[Row]:
        result = self.conn.execute(stmt, dict(params or {}))
        return [cast(Row, r._mapping) for r in result]

    def first(self, stmt: Any, params: Params | None = None) -> Row | None:
        row = self.conn.execute(stmt, dict(params or {})).first()
        return None if row is None else cast(Row, row._mapping)

    def run(self, stmt: Any, params: Params | None = None) -> int:
        return int(self.conn.execute(stmt, dict(params or {})).rowcount)

    def table(self, stmt: Any, params: Params | None = None) -> tuple[list[str], list[Any]]:
        result = self.conn.execute(stmt, dict(params or {}))
        return list(result.keys()), [tuple(r) for r in result]

    def insert(self, stmt: Any, params: Params) -> int:
        pk = self.conn.execute(stmt, dict(params)).inserted_primary_key
        assert pk is not None
        return int(pk[0])


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement as SQLite SQL text, with what converting its values takes."""

    sql: str
    constants: dict[str, Any]  # literal values and column defaults the statement binds itself
    binds: dict[str, Callable[[Any], Any]]  # bind name → the type's bind processor
    results: dict[str, Callable[[Any], Any]]  # column name → the type's result processor

    def params(self, given: Params) -> dict[str, Any]:
        out = {**self.constants, **given}
        for name, process in self.binds.items():
            if name in out:
                out[name] = process(out[name])
        return out


_cache: dict[tuple[int, tuple[str, ...]], tuple[Any, Compiled]] = {}
_cache_lock = threading.Lock()


def compile_sqlite(stmt: Any, keys: Sequence[str] = ()) -> Compiled:
    """``stmt`` compiled for SQLite, once (``keys``: an INSERT's or UPDATE's given columns)."""
    key = (id(stmt), tuple(keys))
    hit = _cache.get(key)
    if hit is not None and hit[0] is stmt:
        return hit[1]
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect(paramstyle="named")
    compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys) or None)
    constants: dict[str, Any] = {}
    binds = {}
    for bind, name in compiled.bind_names.items():
        if not bind.required:
            constants[name] = bind.effective_value
        process = bind.type.bind_processor(dialect)
        if process is not None:
            binds[name] = process
    # Column defaults SQLAlchemy fills in at execution (the schema's, never restated).
    for column in getattr(compiled, "insert_prefetch", ()):
        default = column.default
        if default is not None and default.is_scalar:
            constants[column.key] = default.arg
    results = {}
    for name, column in getattr(stmt, "selected_columns", {}).items():
        process = column.type.result_processor(dialect, None)
        if process is not None:
            results[name] = process
    for column in getattr(stmt, "_returning", ()):
        process = column.type.result_processor(dialect, None)
        if process is not None:
            results[column.key] = process
    out = Compiled(str(compiled), constants, binds, results)
    with _cache_lock:
        _cache[key] = (stmt, out)  # the statement kept alive: its id stays its own
    return out


class SqliteTx:
    """A :class:`Tx` on the fast path's ``sqlite3`` connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @property
    def dialect(self) -> str:
        return "sqlite"

    def cursor(self, stmt: Any, params: Params | None) -> tuple[Compiled, sqlite3.Cursor]:
        given = params or {}
        keys = tuple(given) if getattr(stmt, "is_insert", False) else ()
        c = compile_sqlite(stmt, keys)
        return c, self.conn.execute(c.sql, c.params(given))

    def all(self, stmt: Any, params: Params | None = None) -> list[Row]:
        c, cur = self.cursor(stmt, params)
        return _rows(c, cur, cur.fetchall())

    def first(self, stmt: Any, params: Params | None = None) -> Row | None:
        c, cur = self.cursor(stmt, params)
        row = cur.fetchone()
        return None if row is None else _rows(c, cur, [row])[0]

    def table(self, stmt: Any, params: Params | None = None) -> tuple[list[str], list[Any]]:
        c, cur = self.cursor(stmt, params)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        convert = [(i, c.results[n]) for i, n in enumerate(names) if n in c.results]
        if convert:
            rows = [_converted(row, convert) for row in rows]
        return names, rows

    def run(self, stmt: Any, params: Params | None = None) -> int:
        return int(self.cursor(stmt, params)[1].rowcount)

    def insert(self, stmt: Any, params: Params) -> int:
        cur = self.cursor(stmt, params)[1]
        assert cur.lastrowid is not None
        return int(cur.lastrowid)


def _converted(row: Any, convert: list[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    values = list(row)
    for i, process in convert:
        values[i] = process(values[i])
    return tuple(values)


def _rows(c: Compiled, cur: sqlite3.Cursor, rows: list[Any]) -> list[Row]:
    names = [d[0] for d in cur.description]
    out: list[Row] = []
    convert = [(i, c.results[n]) for i, n in enumerate(names) if n in c.results]
    for row in rows:
        values = list(row)
        for i, process in convert:
            values[i] = process(values[i])
        out.append(dict(zip(names, values, strict=True)))
    return out
