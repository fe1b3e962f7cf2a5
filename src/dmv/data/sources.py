"""Sources: where a retrieval reads from, built from a URL.

===========================  ========================================================
URL                          reads with
===========================  ========================================================
``None`` / ``warehouse``     the project's warehouse itself (SQL runs inside it)
``path.duckdb``              another DuckDB file, opened read-only
``sqlite:///file.db``        SQLite, opened read-only (``mode=ro``, ``query_only``);
                             through ADBC's Arrow-native driver when installed
``postgresql://…``           psycopg 3, ``READ ONLY`` transactions, ``statement_timeout``
any other SQLAlchemy URL     the dialect's DB-API driver (single-SELECT check only)
``*.parquet``, ``*.csv``,    DuckDB's ``read_parquet`` / ``read_csv``; the files are
folders, globs               the view ``source`` (``SELECT * FROM source``)
===========================  ========================================================

Query parameters use the source's own named style: ``$name`` for DuckDB and files,
``:name`` for SQLite and other SQLAlchemy sources, ``%(name)s`` for PostgreSQL.
Only one SELECT (or WITH … SELECT) statement is accepted, as the engine's own parser
reads it (PostgreSQL's grammar through pglast, DuckDB's parser; the portable scan for
SQLite and other SQLAlchemy sources); the engine-level guards above refuse writes
that slip past that check, and PostgreSQL receives the statement over the extended
protocol, which holds one command. DuckDB connections that run
retrieval SQL are sandboxed (:meth:`~dmv.data.warehouse.Warehouse.sandbox`): no
file, URL or extension but the files the source names.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.data._arrow import cursor_reader, with_progress
from dmv.data._sql import check_identifier, check_select, quote_ident, quote_literal
from dmv.data.credentials import connect_url, strip_credentials
from dmv.data.engines.base import retrieval_text
from dmv.data.engines.duckdb import DuckDBWarehouse, check_duckdb_select
from dmv.data.engines.postgres import PostgresWarehouse, check_postgres_select
from dmv.data.ids import normalise_sql
from dmv.data.warehouse import Column, Progress, Warehouse
from dmv.errors import DataError, InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Retrieval", "Source", "retrieve"]

_FILE_SUFFIXES = (".parquet", ".csv", ".tsv", ".csv.gz", ".parquet.gz")


def _file_kind(url: str) -> str | None:
    for prefix in ("parquet:", "csv:"):
        if url.startswith(prefix):
            return prefix[:-1]
    lower = url.lower()
    if lower.endswith((".parquet", ".parquet.gz")) or "*.parquet" in lower:
        return "parquet"
    if lower.endswith((".csv", ".tsv", ".csv.gz")) or "*.csv" in lower:
        return "csv"
    if "://" not in url and os.path.isdir(url):
        names = os.listdir(url)
        if any(n.endswith(".parquet") for n in names):
            return "parquet"
        if any(n.endswith((".csv", ".tsv")) for n in names):
            return "csv"
    return None


@dataclass(frozen=True)
class Source:
    """A place to retrieve rows from. Build one with :meth:`from_url`."""

    url: str
    kind: str  # warehouse | duckdb | sqlite | postgresql | sqlalchemy | parquet | csv
    warehouse: Warehouse | None = field(default=None, compare=False, repr=False)
    #: seconds a statement may run on a PostgreSQL source (None: no limit)
    timeout: float | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_url(
        cls,
        url: str | Path | None = None,
        warehouse: Warehouse | None = None,
        *,
        timeout: float | None = None,
    ) -> Source:
        """Recognise ``url`` (see the module docstring); ``None`` means the warehouse."""
        found = cls._recognise(url, warehouse)
        return replace(found, timeout=timeout) if timeout else found

    @classmethod
    def _recognise(cls, url: str | Path | None, warehouse: Warehouse | None) -> Source:
        text = "" if url is None else str(url).strip()
        if text in ("", "warehouse") or (warehouse is not None and text == warehouse.url):
            if warehouse is None:
                raise InvalidInput(
                    "the warehouse source needs an open warehouse",
                    hint="open the project (its warehouse) before reading from it",
                )
            return cls("warehouse", "warehouse", warehouse)
        file_kind = _file_kind(text)
        if file_kind:
            path = text.split(":", 1)[1] if text.startswith(("parquet:", "csv:")) else text
            if "://" not in path and not any(c in path for c in "*?["):
                path = str(Path(path).resolve())
            return cls(path, file_kind, warehouse)
        if "://" in text:
            text = connect_url(text)  # credentials from the user's config; never stored
        if text.startswith(("postgresql", "postgres:")):
            return cls(text, "postgresql", warehouse)
        if text.startswith("sqlite:"):
            return cls(text, "sqlite", warehouse)
        if text.startswith("duckdb:") or text.endswith((".duckdb", ".db.duckdb")):
            path = text.removeprefix("duckdb:///").removeprefix("duckdb://")
            return cls(str(Path(path).resolve()), "duckdb", warehouse)
        if "://" in text:
            return cls(text, "sqlalchemy", warehouse)
        raise InvalidInput(
            f"cannot tell what kind of source {text!r} is",
            hint="use a SQLAlchemy URL (postgresql://…, sqlite:///file.db), a .duckdb file, "
            "or Parquet/CSV files",
        )

    def identity(self) -> str:
        """What the registry stores: the URL with passwords and tokens removed."""
        if self.kind in {"parquet", "csv"}:
            return f"{self.kind}:{strip_credentials(self.url)}"
        if self.kind == "duckdb":
            return f"duckdb:///{self.url}"
        return strip_credentials(self.url)

    @property
    def sqlite_path(self) -> str:
        path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
        if not path:
            raise InvalidInput(f"{self.identity()} names no SQLite file", hint="sqlite:///file.db")
        return path

    # -- checking ----------------------------------------------------------------------------
    def describe(
        self, sql: str | None = None, params: Mapping[str, Any] | None = None
    ) -> tuple[Column, ...]:
        """Check the query and return its result's columns and types (rows not fetched)."""
        query = self.query_text(sql)
        with self._duck() as duck:
            if duck is not None:
                return duck.query_columns(query, params)
        if self.kind == "postgresql":
            with self._pg() as wh:
                return wh.query_columns(query, params)
        limited = f"SELECT * FROM (\n{query}\n) AS dmv_q LIMIT 1000"
        with self._open_reader(limited, params) as reader:
            return tuple(Column(f.name, str(f.type)) for f in reader.schema)

    def query_text(self, sql: str | None) -> str:
        if sql is None:
            if self.kind in {"parquet", "csv"}:
                return "SELECT * FROM source"
            raise InvalidInput("a retrieval needs SQL", hint="give --sql or --file")
        # PostgreSQL and DuckDB SQL is decided by the engine's own parser; SQLite and
        # other SQLAlchemy sources by the portable scan (and their drivers' one statement)
        if self.kind == "warehouse" and self.warehouse is not None:
            return retrieval_text(self.warehouse, sql)
        if self.kind == "postgresql":
            return check_postgres_select(sql)
        if self.kind in {"duckdb", "parquet", "csv"}:
            return check_duckdb_select(sql)
        return check_select(sql)

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reader(
        self,
        sql: str | None = None,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[pa.RecordBatchReader]:
        """Stream the query's rows as Arrow record batches."""
        query = self.query_text(sql)
        with self._open_reader(query, params) as reader:
            yield with_progress(reader, progress, "retrieve")

    @contextlib.contextmanager
    def _open_reader(
        self, query: str, params: Mapping[str, Any] | None
    ) -> Iterator[pa.RecordBatchReader]:
        with self._duck() as duck:
            if duck is not None:
                yield duck.reader(query, params)
                return
        if self.kind == "postgresql":
            with self._pg() as wh:
                yield wh.reader(query, params)
            return
        if self.kind == "sqlite":
            with self._sqlite_reader(query, params) as reader:
                yield reader
            return
        with self._sqlalchemy_reader(query, params) as reader:
            yield reader

    @contextlib.contextmanager
    def _duck(self) -> Iterator[Warehouse | None]:
        """A DuckDB connection for DuckDB-readable sources (None for the others)."""
        if self.kind == "warehouse":
            yield self.warehouse
            return
        if self.kind not in {"duckdb", "parquet", "csv"}:
            yield None
            return
        paths: list[str] = []
        directories: list[str] = []
        if self.kind == "duckdb":
            if not Path(self.url).exists():
                raise DataError(
                    f"the DuckDB source {self.url} does not exist",
                    hint="check the path of the DuckDB file",
                )
            wh = DuckDBWarehouse(self.url, read_only=True)
        else:
            wh = DuckDBWarehouse(":memory:")
            fn = "read_parquet" if self.kind == "parquet" else "read_csv"
            pattern = self.url
            if "://" not in pattern and os.path.isdir(pattern):
                directories.append(pattern)
                pattern = os.path.join(pattern, "**", f"*.{self.kind}")
            elif any(c in pattern for c in "*?["):
                directories.append(_glob_root(pattern))
            else:
                paths.append(pattern)
            try:
                wh.execute(f"CREATE VIEW source AS SELECT * FROM {fn}({quote_literal(pattern)})")
            except DataError as exc:
                wh.close()
                raise DataError(
                    f"cannot read {self.kind} files at {self.url}: {exc.message}",
                    hint="check the path or glob; folders are read recursively",
                ) from exc
        try:
            # the retrieval's SQL may read the files it names, nothing else
            wh.sandbox(paths=paths, directories=directories)
            yield wh
        finally:
            wh.close()

    @contextlib.contextmanager
    def _pg(self) -> Iterator[Warehouse]:
        try:
            wh = PostgresWarehouse(self.url)
        except Exception as exc:
            raise DataError(
                f"cannot reach the source {self.identity()}",
                hint="check the URL, that the server runs and accepts this user",
            ) from exc
        try:
            wh.sandbox(timeout=self.timeout)
            yield wh
        finally:
            wh.close()

    @contextlib.contextmanager
    def _sqlite_reader(
        self, query: str, params: Mapping[str, Any] | None
    ) -> Iterator[pa.RecordBatchReader]:
        path = self.sqlite_path
        if not Path(path).exists():
            raise DataError(
                f"the SQLite source {path} does not exist",
                hint="check the path; a SQLite source is sqlite:////absolute/path.db",
            )
        if not params:
            adbc = _adbc_sqlite()
            if adbc is not None:
                with _adbc_reader(adbc, path, query) as reader:
                    yield reader
                return
        import sqlite3

        # the warehouse may pull batches from another thread
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            con.execute("PRAGMA query_only = ON")
            cur = con.execute(query, dict(params or {}))
            names = [d[0] for d in cur.description]
            yield cursor_reader(cur, names)
        except sqlite3.Error as exc:
            raise DataError(
                f"the query failed on {self.identity()}: {exc}",
                hint="fix the retrieval SQL and register it again with 'dmv data query'",
            ) from exc
        finally:
            con.close()

    @contextlib.contextmanager
    def _sqlalchemy_reader(
        self, query: str, params: Mapping[str, Any] | None
    ) -> Iterator[pa.RecordBatchReader]:
        import sqlalchemy as sa

        try:
            engine = sa.create_engine(self.url)
            raw = engine.raw_connection()
        except Exception as exc:
            raise DataError(
                f"cannot reach the source {self.identity()}: {exc}",
                hint="check the URL, that the server is up and that the user may connect",
            ) from exc
        try:
            cur: Any = raw.cursor()
            cur.execute(query, dict(params or {}))
            names = [d[0] for d in cur.description]
            yield cursor_reader(cur, names)
        except sa.exc.DBAPIError as exc:
            raise DataError(
                f"the query failed on {self.identity()}: {exc}",
                hint="fix the retrieval SQL and register it again with 'dmv data query'",
            ) from exc
        finally:
            raw.close()
            engine.dispose()


def _glob_root(pattern: str) -> str:
    """The folder above a glob's first wildcard (what the glob may read)."""
    head = pattern[: min(pattern.index(c) for c in "*?[" if c in pattern)]
    root = head if head.endswith("/") else posixpath.dirname(head)
    return root if "://" in pattern else os.path.abspath(root or ".")


def _adbc_sqlite() -> Any:
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:
        return None
    return adbc


@contextlib.contextmanager
def _adbc_reader(adbc: Any, path: str, query: str) -> Iterator[pa.RecordBatchReader]:
    uri = "file:" + Path(path).resolve().as_posix() + "?mode=ro"
    try:
        con = adbc.connect(uri)
    except Exception as exc:
        raise DataError(
            f"cannot open the SQLite source {path}: {exc}",
            hint="check that the file is a SQLite database readable by this user",
        ) from exc
    try:
        cur = con.cursor()
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "100000"})
        try:
            cur.execute(query)
            reader = cur.fetch_record_batch()
        except Exception as exc:
            raise DataError(
                f"the query failed on sqlite:///{path}: {exc}",
                hint="fix the retrieval SQL and register it again with 'dmv data query'",
            ) from exc
        yield reader
    finally:
        con.close()


@dataclass(frozen=True)
class Retrieval:
    """A retrieval: a source, its SQL and parameters."""

    source: Source
    sql: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        """The normalised definition (no credentials) that the DATA id is derived from."""
        sql = self.source.query_text(self.sql)
        return {
            "kind": "sql",
            "source": self.source.identity(),
            "sql": normalise_sql(sql),
            "params": dict(sorted(self.params.items())),
        }


def retrieve(
    retrieval: Retrieval,
    warehouse: Warehouse,
    table: str,
    *,
    temp: bool = False,
    progress: Progress | None = None,
) -> int:
    """Run the retrieval and store its rows as ``table`` in ``warehouse``; return the row count.

    SQL on the warehouse itself runs as ``CREATE TABLE … AS SELECT`` in place; any other
    source streams Arrow batches into the warehouse.
    """
    source = retrieval.source
    name = table if temp else quote_ident(check_identifier(table))
    kind = "TEMP TABLE" if temp else "TABLE"
    if source.kind == "warehouse":
        query = source.query_text(retrieval.sql)
        warehouse.execute(
            f"CREATE {kind} {name} AS SELECT * FROM (\n{query}\n) AS dmv_q", retrieval.params
        )
    else:
        with source.reader(retrieval.sql, retrieval.params, progress) as reader:
            warehouse.create_from_arrow(table, reader, temp=temp)
    row = warehouse.rows(f"SELECT count(*) FROM {name}")
    count = int(row[0][0])
    if progress is not None:
        progress("retrieve", count, count)
    return count
