"""Spark through Spark Connect: ``warehouse = "sc://host:15002"``.

The URL is Spark Connect's own (``sc://host:port/;param=value;…``) plus two
parameters dmv reads itself: ``catalog`` and ``database`` (where part tables live;
the session's defaults otherwise). Every other parameter (``token``, ``use_ssl``,
``user_id``, …) goes to the Spark Connect client; a token may instead come from the
user's configuration (``[sources]`` in ``~/.config/dmv/config.toml``, keyed by the
URL without it) or the ``DMV_SPARK_TOKEN`` environment variable, and is never
stored: the registry keeps only the URL without credentials.

Everything runs inside Spark: splits are ``CREATE TABLE … AS SELECT`` statements,
fingerprints and profiles aggregates, so rows never pass through the client except
when they are read (``run.dataset``, export), which streams Arrow batches.

Spark has no multi-table transaction. A split builds its tables under ``__dmv_…``
names, renames them into place and is registered last; :meth:`transaction` drops
what the block made when it fails, and ``dmv fsck --repair`` drops what a killed
split left (every ``__dmv_…`` table, and part tables nothing registered).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dmv._urls import source_url
from dmv.data._sql import SqlDialect, check_identifier, quote_ident
from dmv.data.credentials import connect_url
from dmv.data.engines.base import BaseWarehouse, params_dict
from dmv.data.warehouse import Column, Params
from dmv.errors import DataError, InvalidInput, StorageError
from dmv.interrupts import register, unregister

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SparkDialect", "SparkWarehouse", "open_spark", "split_url"]

_OWN_PARAMS = ("catalog", "database")
#: the session settings dmv's SQL relies on (ANSI SQL, "quoted" names, UTC times)
SESSION_CONF = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.session.timeZone": "UTC",
}


class SparkDialect(SqlDialect):
    name = "spark"
    text_type = "STRING"

    def as_double(self, c: str) -> str:
        return f"CAST({c} AS DOUBLE)"

    def text_value(self, c: str) -> str:
        return self.cast_text(c)

    def float_mid(self, x: str) -> str:
        whole = f"CAST({x} AS BIGINT)"  # truncates toward zero, as trunc() does
        return (
            f"{self.cast_text(whole)} || '+' || "
            f"{self.cast_text(f'CAST(({x} - {whole}) * 8 AS BIGINT)')} || '/8'"
        )

    def float_text(self, x: str) -> str:
        # Spark writes doubles as Java does (shortest digits; 1.0E20, 1.5E-4); rebuild
        # PostgreSQL's form from its digits and exponent: plain in [1e-4, 1e15),
        # d.ddde±XX outside.
        s = self.cast_text(x)
        mant = f"regexp_extract({s}, '^-?([0-9.]+)E', 1)"
        exp = f"CAST(regexp_extract({s}, 'E(-?[0-9]+)$', 1) AS INT)"
        sign = f"CASE WHEN {x} < 0 THEN '-' ELSE '' END"
        digits = f"regexp_replace(regexp_replace({mant}, '[.]0$', ''), '[.]', '')"
        plain_big = (
            f"{sign} || substr({digits}, 1, {exp} + 1) || '.' || substr({digits}, {exp} + 2)"
        )
        plain_small = f"{sign} || '0.000' || {digits}"
        short = f"regexp_replace({mant}, '[.]0$', '')"
        sci = (
            f"{sign} || {short} || 'e' || CASE WHEN {exp} < 0 THEN '-' ELSE '+' END || "
            f"lpad(CAST(abs({exp}) AS STRING), 2, '0')"
        )
        return (
            f"CASE WHEN {x} IS NULL THEN NULL WHEN isnan({x}) THEN 'nan' "
            f"WHEN {x} = double('inf') THEN 'inf' WHEN {x} = double('-inf') THEN '-inf' "
            f"WHEN {x} = 0 THEN '0' "
            f"WHEN abs({x}) < 1e15 AND {x} = CAST(CAST({x} AS BIGINT) AS DOUBLE) "
            f"THEN {self.cast_text(f'CAST({x} AS BIGINT)')} "
            f"WHEN abs({x}) >= 1e15 AND abs({x}) < 1e16 THEN {self.float_mid(x)} "
            f"WHEN abs({x}) >= 1e-3 AND abs({x}) < 1e7 THEN {s} "
            f"WHEN abs({x}) >= 1e7 AND abs({x}) < 1e15 THEN {plain_big} "
            f"WHEN abs({x}) >= 1e-4 AND abs({x}) < 1e-3 THEN {plain_small} "
            f"ELSE {sci} END"
        )

    def date_days(self, c: str) -> str:
        return self.cast_text(f"datediff({c}, DATE '1970-01-01')")

    def epoch_us(self, c: str) -> str:
        # TIMESTAMP is an instant; TIMESTAMP_NTZ is read as UTC (the session's zone)
        return self.cast_text(f"unix_micros(CAST({c} AS TIMESTAMP))")

    def hex_bytes(self, c: str) -> str:
        return f"lower(hex({c}))"

    def refuse_family(self, family: str) -> str | None:
        if family == "other":
            return "arrays, maps, structs and intervals have no portable text"
        return None

    def hash_from_raw(self, raw_sql: str) -> str:
        return f"CAST(conv(substr({raw_sql}, 1, 15), 16, 10) AS BIGINT)"

    def double_bits(self, x: str) -> str:
        # Java's own bits of the double (Spark SQL has no bit cast of a DOUBLE)
        return f"CAST(reflect('java.lang.Double', 'doubleToLongBits', {x}) AS BIGINT)"

    def is_nan(self, x: str) -> str:
        return f"isnan({x})"

    def hash64_from_raw(self, raw_sql: str) -> str:
        return f"CAST(conv(substr({raw_sql}, 1, 16), 16, -10) AS BIGINT)"

    def approx_distinct(self, q: str) -> str:
        return f"approx_count_distinct({q})"

    def big_sum(self, expr: str) -> str:
        return f"sum(CAST({expr} AS DECIMAL(38,0)))"  # ANSI bigint sums fail on overflow


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``(Spark Connect URL, dmv's own parameters)`` of an ``sc://`` warehouse URL."""
    if not url.startswith("sc://"):
        raise InvalidInput(
            f"a Spark Connect URL starts with sc://, not {url[:12]!r}",
            hint="write the Spark Connect URL as sc://HOST:PORT",
        )
    head, _, tail = url.partition("/;")
    head = head.rstrip("/")
    own: dict[str, str] = {}
    kept = []
    for item in filter(None, tail.split(";")):
        name, eq, value = item.partition("=")
        if not eq:
            raise InvalidInput(
                f"Spark Connect URL parameter {item!r} must be name=value",
                hint="write parameters as sc://HOST:PORT/;name=value;name=value",
            )
        if name in _OWN_PARAMS:
            own[name] = check_identifier(value, name)
        else:
            kept.append(item)
    return head + ("/;" + ";".join(kept) if kept else ""), own


def strip_token(url: str) -> str:
    """The URL without parameters that look like credentials (:func:`dmv._urls.source_url`)."""
    return source_url(url)


def _reachable(remote: str, identity: str, timeout: float) -> None:
    """Fail fast where nothing listens (the client itself retries for minutes)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(remote.partition("/;")[0])
    host, port = parts.hostname or "localhost", parts.port or 15002
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 10.0)):
            pass
    except OSError as exc:
        raise StorageError(
            f"cannot reach the Spark Connect server {identity}: {exc.strerror or exc}",
            hint="check the host and port (sc://host:15002) and that the server is running",
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SparkWarehouse(BaseWarehouse):
    """A Spark Connect session; tables live in the URL's catalog and database."""

    dialect = "spark"
    sql: SqlDialect = SparkDialect()
    transactional_ddl = False

    def __init__(self, url: str, *, timeout: float = 60.0):
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise InvalidInput(
                "a Spark warehouse needs the Spark Connect client",
                hint="pip install 'dmv[spark]'  (pyspark[connect])",
            ) from exc
        # errors reach the user as DmvErrors; the client would also print each as JSON
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        self.url = strip_token(url)
        full = connect_url(url)
        token = os.environ.get("DMV_SPARK_TOKEN")
        remote, own = split_url(full)
        if token and "token=" not in remote:
            remote += (";" if "/;" in remote else "/;") + f"token={token}"
        self.catalog = own.get("catalog")
        self.database = own.get("database")
        self._made: list[str] | None = None
        #: source_timeout while retrieval SQL runs (seconds; None: no limit)
        self._timeout: float | None = None
        _reachable(remote, self.identity(), timeout)
        try:
            builder = SparkSession.builder.remote(remote)
            for key, value in SESSION_CONF.items():
                builder = builder.config(key, value)
            self.spark = builder.create()
        except Exception as exc:
            raise StorageError(
                f"cannot reach the Spark Connect server {self.identity()}: {_first_line(exc)}",
                hint="check the host and port (sc://host:15002), the token, and that the "
                "server is running",
            ) from exc
        try:
            if self.catalog:
                self.execute(f"SET CATALOG {quote_ident(self.catalog)}")
            if self.database:
                self.execute(f"CREATE NAMESPACE IF NOT EXISTS {quote_ident(self.database)}")
                self.execute(f"USE {quote_ident(self.database)}")
        except DataError as exc:
            self.close()
            raise StorageError(
                f"cannot use the Spark warehouse {self.identity()}: {exc.message}",
                hint="check the catalog and database parameters and the user's privileges",
            ) from exc
        register(self)

    def interrupt(self) -> None:
        self.spark.interruptAll()

    def identity(self) -> str:
        return self.url

    # -- running SQL --------------------------------------------------------------------
    def _df(self, sql: str, params: Params = None) -> Any:
        from pyspark.errors import PySparkException

        try:
            return self.spark.sql(sql, args=params_dict(params))
        except PySparkException as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException, what: str = "the query") -> DataError | StorageError:
        first = _first_line(exc)
        if "UNAVAILABLE" in first or "Connection refused" in str(exc):
            return StorageError(
                f"lost the Spark Connect server {self.identity()}: {first}",
                hint="check that the server is running",
            )
        return DataError(f"{what} failed: {first}", hint="check table and column names in the SQL")

    def execute(self, sql: str, params: Params = None) -> None:
        from pyspark.errors import PySparkException

        with self._deadline():
            df = self._df(sql, params)  # a command runs when it is sent
            try:
                df.collect()
            except PySparkException as exc:
                raise self._error(exc) from exc

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        from pyspark.errors import PySparkException

        with self._deadline():
            try:
                return [tuple(r) for r in self._df(sql, params).collect()]
            except PySparkException as exc:
                raise self._error(exc) from exc

    def retrieval_sandbox(self, timeout: float | None = None) -> None:
        # Spark has no statement timeout of its own: a timer cancels the session's
        # running operations (interruptAll) once a statement has run ``timeout`` s.
        self._timeout = timeout or None

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        timeout = self._timeout
        if not timeout:
            yield
            return
        import threading

        fired = threading.Event()

        def stop() -> None:
            fired.set()
            with contextlib.suppress(Exception):
                self.spark.interruptAll()

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
        try:
            yield
        except DataError as exc:
            if not fired.is_set():
                raise
            raise DataError(
                f"the query was stopped: statement timeout after {timeout:g} s",
                hint="raise the source_timeout setting (seconds), or make the query cheaper",
            ) from exc
        finally:
            timer.cancel()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # The substitute for a transaction: tables made inside are dropped on failure.
        if self._made is not None:
            yield
            return
        self._made = []
        try:
            yield
        except BaseException:
            made, self._made = self._made, None
            for name in reversed(made):
                with contextlib.suppress(Exception):
                    self.execute(f"DROP TABLE IF EXISTS {name}")
            raise
        finally:
            self._made = None

    def _track(self, quoted: str) -> None:
        if self._made is not None:
            self._made.append(quoted)

    # -- schema -------------------------------------------------------------------------
    def table_columns(self, table: str) -> tuple[Column, ...]:
        if not self._exists(table):
            return ()
        return self.query_columns(f"SELECT * FROM {quote_ident(table)}")

    def _exists(self, table: str) -> bool:
        return table.lower() in self.list_tables()

    def query_columns(self, sql: str, params: Params = None) -> tuple[Column, ...]:
        from pyspark.errors import PySparkException

        try:
            fields = self._df(sql, params).dtypes
        except PySparkException as exc:
            raise self._error(exc) from exc
        return tuple(Column(str(n), str(t)) for n, t in fields)

    def list_tables(self) -> list[str]:
        rows = self.rows("SHOW TABLES")
        return [str(r[1]) for r in rows if not r[2]]

    def table_exists(self, table: str) -> bool:
        return self._exists(table)

    # -- writing ------------------------------------------------------------------------
    def create_table_as(
        self, name: str, select_sql: str, params: Params = None, *, temp: bool = False
    ) -> None:
        # no temporary tables in Spark: a __dmv_… table, dropped by the caller (or fsck)
        self.execute(f"CREATE TABLE {name} AS {select_sql}", params)
        self._track(name)

    def rename_table(self, old: str, new: str) -> None:
        self.execute(f"ALTER TABLE {quote_ident(old)} RENAME TO {quote_ident(new)}")
        if self._made is not None and quote_ident(old) in self._made:
            self._made[self._made.index(quote_ident(old))] = quote_ident(new)

    def drop_table(self, table: str, *, temp: bool = False) -> None:
        name = table if temp else quote_ident(check_identifier(table))
        self.execute(f"DROP TABLE IF EXISTS {name}")
        if self._made is not None and name in self._made:
            self._made.remove(name)

    def create_from_arrow(
        self, table: str, reader: pa.RecordBatchReader, *, temp: bool = False
    ) -> None:
        """Rows from outside the cluster: sent in chunks, appended to one table."""
        import pyarrow as pa
        from pyspark.errors import PySparkException

        name = table if temp else quote_ident(check_identifier(table))
        view = "__dmv_arrow_in"
        first = True
        chunks: Iterator[pa.Table] = (pa.Table.from_batches([b]) for b in reader)
        try:
            for chunk in chunks:
                self.spark.createDataFrame(chunk).createOrReplaceTempView(view)
                verb = f"CREATE TABLE {name} AS" if first else f"INSERT INTO {name}"
                self.execute(f"{verb} SELECT * FROM {view}")
                if first:
                    self._track(name)
                first = False
            if first:  # no rows: the table still gets the columns
                self.spark.createDataFrame(reader.schema.empty_table()).createOrReplaceTempView(
                    view
                )
                self.execute(f"CREATE TABLE {name} AS SELECT * FROM {view}")
                self._track(name)
        except PySparkException as exc:
            raise self._error(exc, "loading rows into the warehouse") from exc
        finally:
            with contextlib.suppress(Exception):
                self.spark.catalog.dropTempView(view)

    # -- Python on the executors --------------------------------------------------------
    def map_arrow(
        self,
        select_sql: str,
        fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
        schema: pa.Schema,
        *,
        into: str | None = None,
        limit: int | None = None,
        batch_rows: int | None = None,
        observe: Sequence[str] = (),
    ) -> list[tuple[Any, ...]]:
        """Run ``fn`` on the executors over the Arrow batches of ``select_sql``
        (``mapInArrow``), its batches of ``schema``: written to the table ``into`` (no
        row passes through the client), else the first ``limit`` rows returned.

        ``fn`` is pickled to the executors, whose Python must import what it uses.
        ``batch_rows`` bounds the rows per batch it is handed. ``observe``: aggregate
        SQL expressions over the rows ``fn`` was handed, computed in the same job;
        with ``into``, their values are the one row returned.
        """
        from pyspark.errors import PySparkException
        from pyspark.sql import Observation
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        conf = "spark.sql.execution.arrow.maxRecordsPerBatch"
        before = self.spark.conf.get(conf) if batch_rows else None
        try:
            if batch_rows:
                self.spark.conf.set(conf, str(batch_rows))
            source = self._df(select_sql)
            seen = Observation("dmv_observed") if observe else None
            if seen is not None:
                exprs = [F.expr(e).alias(f"m{i}") for i, e in enumerate(observe)]
                source = source.observe(seen, *exprs)
            df = source.mapInArrow(fn, from_arrow_schema(schema))
            with self._deadline():
                if into is None:
                    return [tuple(r) for r in (df.limit(limit) if limit else df).collect()]
                name = quote_ident(check_identifier(into))
                df.write.saveAsTable(name)
                self._track(name)
                if seen is None:
                    return []
                values = seen.get
                return [tuple(values[f"m{i}"] for i in range(len(observe)))]
        except PySparkException as exc:
            raise self._error(exc, "running on the Spark executors") from exc
        finally:
            if before is not None:
                with contextlib.suppress(Exception):
                    self.spark.conf.set(conf, before)

    # -- reading ------------------------------------------------------------------------
    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        """Arrow batches as the server sends them: client memory stays one batch deep."""
        import pyarrow as pa

        df = self._df(sql, params)
        batches = self._batches(df)
        try:
            first = next(batches)
        except StopIteration:
            return pa.RecordBatchReader.from_batches(df.toArrow().schema, iter(()))

        def rest() -> Iterator[pa.RecordBatch]:
            yield first
            yield from batches

        return pa.RecordBatchReader.from_batches(first.schema, rest())

    def _batches(self, df: Any) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark.errors import PySparkException

        client = df._session.client  # the streaming form of toArrow()
        plan = df._plan.to_proto(client)
        try:
            for item in client.to_table_as_iterator(plan, df._plan.observations):
                if isinstance(item, pa.Table):
                    yield from item.to_batches()
        except PySparkException as exc:
            raise self._error(exc) from exc

    def quantiles(
        self, base: str, q: str, fractions: Sequence[float], params: Params
    ) -> list[Any] | None:
        exprs = ", ".join(f"percentile_disc({f!r}) WITHIN GROUP (ORDER BY {q})" for f in fractions)
        values = self.rows(f"SELECT {exprs} FROM {base}", params)[0]
        return None if all(v is None for v in values) else list(values)

    def check_retrieval(self, query: str) -> None:
        # Spark SQL also accepts WITH … INSERT and FROM t INSERT …; as a subquery only a
        # query parses. Analysed, not run (a command would run when sent).
        from pyspark.errors import PySparkException

        wrapped = f"SELECT * FROM (\n{query}\n) AS dmv_check LIMIT 0"
        try:
            self.spark.sql(wrapped).schema  # noqa: B018
        except PySparkException as exc:
            first = _first_line(exc)
            if "PARSE_SYNTAX_ERROR" in first or "ParseException" in type(exc).__name__:
                raise DataError(
                    f"the query is not one read-only SELECT: {first}",
                    hint="dmv never writes to a source: give a SELECT (or WITH … SELECT) statement",
                ) from exc

    # -- read checks --------------------------------------------------------------------
    def check_key(self) -> str:
        return f"spark-hash:{self.spark.version}"

    def engine_row_hash(self, columns: Sequence[Column], alias: str) -> str:
        return f"xxhash64({', '.join(f'{alias}.{quote_ident(c.name)}' for c in columns)})"

    def engine_hash_sum(self, expr: str) -> str:
        return f"sum(CAST({expr} AS DECIMAL(38,0)))"

    def close(self) -> None:
        unregister(self)
        with contextlib.suppress(Exception):
            self.spark.stop()


def open_spark(url: str, **_: Any) -> SparkWarehouse:
    """``sc://host:port[/;catalog=…;database=…;token=…]``."""
    return SparkWarehouse(url)
