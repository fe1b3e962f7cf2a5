"""The embedded default engine: one DuckDB file (``.dmv/warehouse.duckdb``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.data._sql import SqlDialect, check_identifier, quote_ident, quote_literal
from dmv.data.engines.base import BaseWarehouse, params_dict
from dmv.data.warehouse import BATCH_ROWS, Column, Params, Progress, sql_error
from dmv.errors import DataError, InvalidInput, StorageError
from dmv.integrity import check_duckdb_file, corrupt_warehouse, is_duckdb_corruption
from dmv.interrupts import register, unregister

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DuckDBDialect",
    "DuckDBWarehouse",
    "check_duckdb_select",
    "check_duckdb_statement",
    "open_duckdb",
]


class DuckDBDialect(SqlDialect):
    name = "duckdb"
    text_type = "VARCHAR"

    def as_double(self, c: str) -> str:
        return f"CAST({c} AS DOUBLE)"

    def float_text(self, x: str) -> str:
        # Commonest case first (CASE is evaluated branch by branch); NULL falls through to
        # the final CAST, which keeps it NULL. DuckDB writes 1.0 where PostgreSQL writes 1.
        return (
            f"CASE WHEN abs({x}) < 1e15 AND {x} <> trunc({x}) THEN {self.cast_text(x)} "
            f"WHEN abs({x}) < 1e15 THEN {self.cast_text(f'CAST({x} AS BIGINT)')} "
            f"WHEN isnan({x}) THEN 'nan' WHEN isinf({x}) AND {x} > 0 THEN 'inf' "
            f"WHEN isinf({x}) THEN '-inf' WHEN abs({x}) < 1e16 THEN {self.float_mid(x)} "
            f"ELSE {self.cast_text(x)} END"
        )

    def text_value(self, c: str) -> str:
        return c

    def epoch_us(self, c: str) -> str:
        return self.cast_text(f"epoch_us({c})")

    def hex_bytes(self, c: str) -> str:
        return f"lower(hex({c}))"

    def hash_raw(self, text_sql: str) -> str:
        # md5_number is the digest read little-endian; its low 64 bits are digest bytes 0-7.
        return f"CAST(md5_number({text_sql}) & 18446744073709551615 AS UBIGINT)"

    def hash_from_raw(self, raw_sql: str) -> str:
        # Byte-swap to big-endian and keep the top 60 bits. The engine would compute
        # md5 once per mention, so ``raw_sql`` must be a column from an inner SELECT.
        swapped = " | ".join(f"((({raw_sql} >> {8 * i}) & 255) << {8 * (7 - i)})" for i in range(8))
        return f"CAST(({swapped}) >> 4 AS BIGINT)"

    def double_bits(self, x: str) -> str:
        return f"CAST(CAST({x} AS BIT) AS BIGINT)"

    def float_v2(self, x: str) -> str:
        # canonical ±0 and NaN as doubles, then one path to text: a CASE of doubles
        # costs a third of one that mixes constant texts with the cast (NULL stays NULL)
        same = (
            f"CASE WHEN {x} = 0 THEN CAST(0 AS DOUBLE) "
            f"WHEN isnan({x}) THEN CAST('nan' AS DOUBLE) ELSE {x} END"
        )
        return self.cast_text(self.double_bits(same))

    def byte_length(self, c: str) -> str:
        return f"strlen({c})"

    def hash64_from_raw(self, raw_sql: str) -> str:
        # byte-swap to big-endian: the digest's first 16 hex digits, as a UBIGINT
        return " | ".join(f"((({raw_sql} >> {8 * i}) & 255) << {8 * (7 - i)})" for i in range(8))

    def approx_distinct(self, q: str) -> str:
        return f"approx_count_distinct({q})"


class DuckDBWarehouse(BaseWarehouse):
    """One DuckDB file: transactional DDL, one writer at a time."""

    dialect = "duckdb"
    sql: SqlDialect = DuckDBDialect()
    reclaims_file_space = True
    #: ``POSITIONAL JOIN`` aligns two tables row by row: splits share their storage
    aligns_rows = True

    def __init__(self, path: str, *, read_only: bool = False, memory_limit: str | None = None):
        import duckdb

        self.url = path
        config: dict[str, str | bool | int | float | list[str]] = {
            # shared split storage aligns tables row by row: writes keep the order read
            "preserve_insertion_order": True
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            if is_duckdb_corruption(exc):
                raise corrupt_warehouse(path, exc) from None
            raise StorageError(
                f"cannot open the DuckDB warehouse {path}: {exc}",
                hint="another process may hold it open for writing",
            ) from exc
        self._in_tx = False
        try:
            check_duckdb_file(self.con, path)
        except StorageError:
            self.con.close()
            raise
        register(self)

    def interrupt(self) -> None:
        self.con.interrupt()

    def execute(self, sql: str, params: Params = None) -> None:
        import duckdb

        try:
            self.con.execute(sql, params_dict(params))
        except duckdb.Error as exc:
            raise sql_error(exc, where=self.url) from exc

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return self.con.execute(sql, params_dict(params)).fetchall()
        except duckdb.Error as exc:
            raise sql_error(exc, where=self.url) from exc

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
            rel = self.con.sql(sql, params=params_dict(params))
            return tuple(Column(n, str(t)) for n, t in zip(rel.columns, rel.types, strict=True))
        except duckdb.Error as exc:
            raise sql_error(exc, where=self.url) from exc

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        import duckdb

        try:
            rel = self.con.sql(sql, params=params_dict(params))
            return rel.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as exc:
            raise sql_error(exc, where=self.url) from exc

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
            raise sql_error(exc, "loading rows into the warehouse", where=self.url) from exc
        finally:
            self.con.unregister(view)

    def list_tables(self) -> list[str]:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        return [str(r[0]) for r in self.rows(sql)]

    def list_views(self) -> list[str]:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'VIEW'"
        )
        return [str(r[0]) for r in self.rows(sql)]

    def quantiles(
        self, base: str, q: str, fractions: Sequence[float], params: Params
    ) -> list[Any] | None:
        listed = ", ".join(repr(f) for f in fractions)
        values = self.rows(f"SELECT quantile_disc({q}, [{listed}]) FROM {base}", params)[0][0]
        return None if values is None else list(values)

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

    def retrieval_sandbox(self, timeout: float | None = None) -> None:
        # the warehouse's own tables and nothing else: no files, URLs or extensions
        self.sandbox()

    def check_retrieval(self, query: str) -> None:
        check_duckdb_statement(query)

    def retrieval_text(self, sql: str) -> str:
        return check_duckdb_select(sql)

    def export_parquet(self, name: str, path: Path, progress: Progress | None) -> int:
        self.execute(f"COPY (SELECT * FROM {name}) TO {quote_literal(str(path))} (FORMAT parquet)")
        return int(self.rows(f"SELECT count(*) FROM {name}")[0][0])

    def check_key(self) -> str:
        import duckdb

        return f"duckdb-hash:{duckdb.__version__}"

    def engine_row_hash(self, columns: Sequence[Column], alias: str) -> str:
        return f"hash({', '.join(f'{alias}.{quote_ident(c.name)}' for c in columns)})"

    def read_checked(self, columns: Sequence[Column], source: str) -> tuple[pa.Table, int, int]:
        # DuckDB exports a bare table scan to Arrow much faster than any computed
        # column, so the check is one aggregate and the read a plain scan, both in
        # one transaction: the same snapshot, and this process holds the file alone.
        cols = ", ".join(f"dmv_t.{quote_ident(c.name)}" for c in columns)
        engine = self.engine_row_hash(columns, "dmv_t")
        with self.transaction():
            rows, total = self.rows(f"SELECT count(*), sum({engine}) FROM {source}")[0]
            table = self.reader(f"SELECT {cols} FROM {source}").read_all()
        if table.num_rows != rows:
            return table, table.num_rows, 0
        return table, int(rows), int(total or 0)

    def close(self) -> None:
        unregister(self)
        self.con.close()


def open_duckdb(
    url: str, *, read_only: bool = False, memory_limit: str | None = None, **_: Any
) -> DuckDBWarehouse:
    """``duckdb:///path``, ``duckdb://path`` or a bare file path (``:memory:`` when empty)."""
    path = url.removeprefix("duckdb:///").removeprefix("duckdb://").removeprefix("duckdb:")
    return DuckDBWarehouse(path or ":memory:", read_only=read_only, memory_limit=memory_limit)


def check_duckdb_select(sql: str) -> str:
    """Refuse anything but one SELECT that writes nothing, as DuckDB's parser reads it.

    Both the text as written and the text that is sent (comments and trailing ``;``
    removed with DuckDB's own tokenizer) must pass :func:`check_duckdb_statement`.
    """
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("the query is empty", hint="give a SELECT statement")
    check_duckdb_statement(sql)
    tokens = duckdb.tokenize(sql)
    pieces, end = [], 0
    for i, (start, kind) in enumerate(tokens):
        if kind == duckdb.token_type.comment:
            pieces.append(sql[end:start] + " ")
            end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
    pieces.append(sql[end:])
    text = "".join(pieces).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    check_duckdb_statement(text)
    return text


def check_duckdb_statement(query: str) -> None:
    """Refuse anything but one SELECT that writes nothing (DuckDB's own parse of it)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise DataError(
            f"the SQL does not parse: {str(exc).splitlines()[0]}",
            hint="run the SQL in DuckDB to find the error; a retrieval is one SELECT",
        ) from exc
    if len(statements) != 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise DataError(
            f"the query holds {len(statements)} statements ({kinds}); a retrieval is exactly one",
            hint="dmv never writes to a source: give one SELECT (or WITH … SELECT) statement",
        )
    if statements[0].type != duckdb.StatementType.SELECT:
        raise DataError(
            f"only SELECT queries may retrieve data; this one is {statements[0].type.name}",
            hint="dmv never writes to a source: give a SELECT (or WITH … SELECT) statement",
        )
    writes = _duckdb_writes(query)
    if writes:
        raise DataError(
            f"the query modifies data ({', '.join(writes)} inside WITH)",
            hint="dmv never writes to a source: give a SELECT (or WITH … SELECT) statement",
        )


def _duckdb_writes(query: str) -> list[str]:
    """The data-modifying parts (``WITH d AS (DELETE … RETURNING *) SELECT …``) of a SELECT.

    DuckDB types such a statement SELECT and runs its DELETE as soon as it is
    described, so the parse tree is searched for INSERT/UPDATE/DELETE nodes.
    """
    import json

    import duckdb

    with duckdb.connect() as con:
        row = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()
    tree = json.loads(row[0]) if row else {}
    found: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.endswith("_QUERY_NODE"):
                found.append(kind.removesuffix("_QUERY_NODE").replace("_", " "))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(set(found))
