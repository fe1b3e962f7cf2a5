"""Warehouse adapters: where stored splits live (a DuckDB file, or PostgreSQL).

One small interface, two built-in backends that register the same way. A
warehouse runs SQL, reports column types, streams Arrow record batches out and
creates tables from Arrow streams, so rows never gather in pandas.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.data._sql import Dialect, check_identifier, quote_ident, quote_literal
from dmv.errors import DataError, InvalidInput, StorageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BATCH_ROWS", "Column", "Progress", "Warehouse", "open_warehouse"]

Progress = Callable[[str, int, "int | None"], None]
Params = Mapping[str, Any] | None
BATCH_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class Column:
    """A column's name and its engine type, as the engine spells it."""

    name: str
    type: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Column:
        return cls(str(data["name"]), str(data["type"]))


_REFUSED_FILE = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


def _sql_error(
    exc: Exception, what: str = "the query", *, where: str = "the DuckDB warehouse"
) -> DataError | StorageError:
    from dmv.integrity import corrupt_warehouse, is_duckdb_corruption

    if is_duckdb_corruption(exc):  # a damaged file, not a bad query
        return corrupt_warehouse(where, exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    refused = _REFUSED_FILE.search(str(exc))
    if refused or "disabled by configuration" in first:
        name = refused.group(1) if refused else "a file or extension"
        return DataError(
            f"{what} was refused: it reads {name}, which this retrieval does not name",
            hint="retrieval SQL reads only the warehouse's tables and the files given as its "
            "source (--source data.parquet, a folder or a glob); no other file, URL or extension",
            refused=name,
        )
    if "statement timeout" in first:
        return DataError(
            f"{what} was stopped: {first}",
            hint="raise the source_timeout setting (seconds), or make the query cheaper",
        )
    return DataError(f"{what} failed: {first}", hint="check table and column names in the SQL")


class Warehouse:
    """A warehouse connection. Use :func:`open_warehouse`; close it when done."""

    dialect: Dialect
    url: str

    def identity(self) -> str:
        from dmv.data.sources import strip_credentials

        return strip_credentials(self.url)

    # -- the interface every backend implements -------------------------------------------
    def execute(self, sql: str, params: Params = None) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: DDL included (both built-in engines have transactional DDL)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def table_columns(self, table: str) -> tuple[Column, ...]:
        """The columns of ``table`` (empty when it does not exist)."""
        raise NotImplementedError

    def query_columns(self, sql: str, params: Params = None) -> tuple[Column, ...]:
        """Columns and types of a query's result, without fetching its rows."""
        raise NotImplementedError

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches."""
        raise NotImplementedError

    def create_from_arrow(
        self, table: str, reader: pa.RecordBatchReader, *, temp: bool = False
    ) -> None:
        """Create ``table`` from an Arrow stream (batch by batch)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def sandbox(
        self,
        *,
        paths: Sequence[str] = (),
        directories: Sequence[str] = (),
        timeout: float | None = None,
    ) -> None:
        """Limit this connection to what user SQL may do: read, and only what it was given.

        ``paths`` and ``directories`` are the files a DuckDB connection may still read;
        ``timeout`` (seconds) bounds each statement where the engine can. Irreversible.
        """

    # -- shared helpers ---------------------------------------------------------------------
    def table_exists(self, table: str) -> bool:
        return bool(self.table_columns(table))

    def drop_table(self, table: str, *, temp: bool = False) -> None:
        name = table if temp else quote_ident(check_identifier(table))
        self.execute(f"DROP TABLE IF EXISTS {name}")

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBWarehouse(Warehouse):
    """The embedded default: one DuckDB file (``.dmv/warehouse.duckdb``)."""

    dialect: Dialect = "duckdb"

    def __init__(self, path: str, *, read_only: bool = False, memory_limit: str | None = None):
        import duckdb

        self.url = path
        config: dict[str, str | bool | int | float | list[str]] = {
            "preserve_insertion_order": False
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            from dmv.integrity import corrupt_warehouse, is_duckdb_corruption

            if is_duckdb_corruption(exc):
                raise corrupt_warehouse(path, exc) from None
            raise StorageError(
                f"cannot open the DuckDB warehouse {path}: {exc}",
                hint="another process may hold it open for writing",
            ) from exc
        self._in_tx = False
        from dmv.integrity import check_duckdb_file

        try:
            check_duckdb_file(self.con, path)
        except StorageError:
            self.con.close()
            raise

    def execute(self, sql: str, params: Params = None) -> None:
        import duckdb

        try:
            self.con.execute(sql, dict(params) if params else None)
        except duckdb.Error as exc:
            raise _sql_error(exc, where=self.url) from exc

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self.con.execute(sql, dict(params) if params else None).fetchall()
        except duckdb.Error as exc:
            raise _sql_error(exc, where=self.url) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:  # DuckDB has no savepoints: an inner block joins the outer one
            yield
            return
        self.con.begin()
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        else:
            self.con.commit()
        finally:
            self._in_tx = False

    def table_columns(self, table: str) -> tuple[Column, ...]:
        rows = self.rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = $t AND table_schema = current_schema() "
            "AND table_catalog = current_database() ORDER BY ordinal_position",
            {"t": table},
        )
        return tuple(Column(str(n), str(t)) for n, t in rows)

    def query_columns(self, sql: str, params: Params = None) -> tuple[Column, ...]:
        import duckdb

        try:
            rel = self.con.sql(sql, params=dict(params) if params else None)
            return tuple(Column(n, str(t)) for n, t in zip(rel.columns, rel.types, strict=True))
        except duckdb.Error as exc:
            raise _sql_error(exc, where=self.url) from exc

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        import duckdb

        try:
            rel = self.con.sql(sql, params=dict(params) if params else None)
            return rel.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise _sql_error(exc, where=self.url) from exc

    def create_from_arrow(
        self, table: str, reader: pa.RecordBatchReader, *, temp: bool = False
    ) -> None:
        import duckdb

        name = table if temp else quote_ident(check_identifier(table))
        view = "__dmv_arrow_in"
        self.con.register(view, reader)
        try:
            kind = "TEMP TABLE" if temp else "TABLE"
            self.con.execute(f"CREATE {kind} {name} AS SELECT * FROM {view}")
        except duckdb.Error as exc:
            raise _sql_error(exc, "loading rows into the warehouse", where=self.url) from exc
        finally:
            self.con.unregister(view)

    def sandbox(
        self,
        *,
        paths: Sequence[str] = (),
        directories: Sequence[str] = (),
        timeout: float | None = None,
    ) -> None:
        # allowed_* first: they cannot be changed once external access is off
        settings = []
        if directories:
            listed = ", ".join(quote_literal(d.rstrip("/") + "/") for d in directories)
            settings.append(f"allowed_directories = [{listed}]")
        if paths:
            settings.append(f"allowed_paths = [{', '.join(quote_literal(p) for p in paths)}]")
        settings += [
            "enable_external_access = false",
            "autoinstall_known_extensions = false",
            "autoload_known_extensions = false",
            "lock_configuration = true",  # user SQL cannot SET any of this back
        ]
        for setting in settings:
            self.execute(f"SET {setting}")

    def close(self) -> None:
        self.con.close()


_PG_ARROW = {
    "boolean": "bool",
    "smallint": "int16",
    "integer": "int32",
    "bigint": "int64",
    "real": "float32",
    "double precision": "float64",
    "text": "string",
    "character varying": "string",
    "date": "date32",
    "timestamp without time zone": "timestamp[us]",
    "timestamp with time zone": "timestamp[us, tz=UTC]",
    "uuid": "string",
    "bytea": "binary",
}


def pg_arrow_type(type_name: str) -> pa.DataType | None:
    """The Arrow type rows of a PostgreSQL type become (None: infer from values)."""
    import pyarrow as pa

    base = type_name.split("(", 1)[0].strip()
    name = _PG_ARROW.get(base)
    if name is None:
        if base == "numeric" and "(" in type_name:
            precision, _, scale = type_name.split("(", 1)[1].rstrip(")").partition(",")
            return pa.decimal128(int(precision), int(scale or 0))
        return None
    if name.startswith("timestamp"):
        return pa.timestamp("us", tz="UTC" if "tz" in name else None)
    return pa.type_for_alias(name)


def _arrow_pg_type(t: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return {8: "smallint", 16: "smallint", 32: "integer"}.get(t.bit_width, "bigint")
    if pa.types.is_float32(t):
        return "real"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp without time zone"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytea"
    return "text"


class PostgresWarehouse(Warehouse):
    """A PostgreSQL warehouse: splits are pushed down and run inside the server."""

    dialect: Dialect = "postgresql"
    work_mem = "256MB"  # per sort/hash step, only inside dmv's own transactions

    def __init__(self, url: str, *, schema: str | None = None):
        import psycopg

        self.url = url
        conninfo = "postgresql" + url[url.index(":") :] if url.startswith("postgres") else url
        try:
            self.con = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot reach the PostgreSQL warehouse {self.identity()}: "
                f"{str(exc).strip().splitlines()[0]}",
                hint="check the host, port, database name and that the server is running",
            ) from exc
        self.execute("SET extra_float_digits = 1")
        self.execute("SET standard_conforming_strings = on")
        if schema:
            check_identifier(schema, "schema")
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            self.execute(f"SET search_path TO {quote_ident(schema)}")
        self.schema = schema

    def _cursor(self, params: Params) -> Any:
        import psycopg

        return psycopg.ClientCursor(self.con) if params else self.con.cursor()

    def execute(self, sql: str, params: Params = None) -> None:
        import psycopg

        try:
            with self._cursor(params) as cur:
                cur.execute(sql, dict(params) if params else None)
        except psycopg.Error as exc:
            raise _sql_error(exc) from exc

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._cursor(params) as cur:
                cur.execute(sql, dict(params) if params else None)
                return list(cur.fetchall())
        except psycopg.Error as exc:
            raise _sql_error(exc) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        from psycopg.pq import TransactionStatus

        outer = self.con.info.transaction_status == TransactionStatus.IDLE
        with self.con.transaction():
            if outer:  # one snapshot for every statement of a split
                self.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # JIT-compiling the long hashing expressions costs more than it saves
                self.execute("SET LOCAL jit = off")
                # the default 4MB makes hash aggregates over millions of keys spill
                # batch after batch (minutes instead of seconds)
                self.execute(f"SET LOCAL work_mem = {quote_literal(self.work_mem)}")
            yield

    def table_columns(self, table: str) -> tuple[Column, ...]:
        rows = self.rows(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%(t)s) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            {"t": quote_ident(table)},
        )
        return tuple(Column(str(n), str(t)) for n, t in rows)

    def query_columns(self, sql: str, params: Params = None) -> tuple[Column, ...]:
        import psycopg
        from psycopg.pq import TransactionStatus

        outer = self.con.info.transaction_status != TransactionStatus.IDLE
        try:
            with self.con.transaction(), self._cursor(params) as cur:
                if not outer:  # inside a split's transaction it must stay writable
                    cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(f"SELECT * FROM (\n{sql}\n) AS dmv_q LIMIT 0", params)
                desc = cur.description or []
                oids = [(d.name, d.type_code, d.internal_size, d) for d in desc]
                types = []
                for _name, oid, _size, d in oids:
                    cur.execute("SELECT format_type(%s, %s)", (oid, _typmod(d)))
                    row = cur.fetchone()
                    types.append(str(row[0]) if row else "unknown")
                return tuple(Column(o[0], t) for o, t in zip(oids, types, strict=True))
        except psycopg.Error as exc:
            raise _sql_error(exc) from exc

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        from dmv.data._arrow import cursor_reader

        columns = self.query_columns(sql, params)
        hints = [pg_arrow_type(c.type) for c in columns]
        cur = self.con.cursor(name="dmv_reader")
        self.con.autocommit = False
        try:
            cur.execute(sql, dict(params) if params else None)
        except Exception as exc:
            self.con.rollback()
            self.con.autocommit = True
            raise _sql_error(exc) from exc

        def finish() -> None:
            cur.close()
            self.con.rollback()
            self.con.autocommit = True

        return cursor_reader(cur, [c.name for c in columns], hints, on_close=finish)

    def create_from_arrow(
        self, table: str, reader: pa.RecordBatchReader, *, temp: bool = False
    ) -> None:
        import psycopg
        import pyarrow.csv as pacsv

        name = table if temp else quote_ident(check_identifier(table))
        cols = ", ".join(f"{quote_ident(f.name)} {_arrow_pg_type(f.type)}" for f in reader.schema)
        kind = "TEMP TABLE" if temp else "TABLE"
        try:
            with self.con.cursor() as cur:
                cur.execute(f"CREATE {kind} {name} ({cols})")
                with cur.copy(f"COPY {name} FROM STDIN (FORMAT csv)") as copy:
                    options = pacsv.WriteOptions(include_header=False)
                    for batch in reader:
                        buf = io.BytesIO()
                        pacsv.write_csv(batch, buf, options)
                        copy.write(buf.getvalue())
        except psycopg.Error as exc:
            raise _sql_error(exc, "loading rows into the warehouse") from exc

    def sandbox(
        self,
        *,
        paths: Sequence[str] = (),
        directories: Sequence[str] = (),
        timeout: float | None = None,
    ) -> None:
        # Every transaction READ ONLY; reading server files is a role privilege
        # (pg_read_server_files), which the source's user should not have.
        self.execute("SET default_transaction_read_only = on")
        if timeout:
            self.execute(f"SET statement_timeout = {int(timeout * 1000)}")

    def close(self) -> None:
        self.con.close()


def _typmod(desc: Any) -> int | None:
    # psycopg exposes precision/scale; rebuild the typmod PostgreSQL's format_type expects.
    if desc.type_code == 1700 and desc.precision is not None:  # numeric
        return ((int(desc.precision) << 16) | int(desc.scale or 0)) + 4
    return None


def open_warehouse(
    url: str | Path,
    *,
    schema: str | None = None,
    read_only: bool = False,
    memory_limit: str | None = None,
) -> Warehouse:
    """Open a warehouse: a DuckDB file path (or ``duckdb:///path``) or a PostgreSQL URL."""
    text = str(url)
    if text.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        return PostgresWarehouse(text, schema=schema)
    if "://" in text and not text.startswith("duckdb://"):
        raise InvalidInput(
            f"unsupported warehouse URL {text.split('://')[0]}://…",
            hint="use a DuckDB file path or a postgresql:// URL",
        )
    path = text.removeprefix("duckdb:///").removeprefix("duckdb://")
    return DuckDBWarehouse(path or ":memory:", read_only=read_only, memory_limit=memory_limit)


def columns_sql(columns: Sequence[Column]) -> str:
    """The quoted, comma-separated column list."""
    return ", ".join(quote_ident(c.name) for c in columns)
