"""PostgreSQL: splits are pushed down and run inside one server."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dmv.data._arrow import cursor_reader
from dmv.data._sql import SqlDialect, check_identifier, quote_ident, quote_literal
from dmv.data.engines.base import BaseWarehouse
from dmv.data.warehouse import Column, Params, sql_error
from dmv.errors import DataError, InvalidInput, StorageError
from dmv.interrupts import register, unregister

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "PostgresDialect",
    "PostgresWarehouse",
    "check_postgres_select",
    "open_postgres",
    "pg_arrow_type",
]

_READ_ONLY_HINT = "dmv never writes to a source: give one SELECT (or WITH … SELECT) statement"

#: Functions a retrieval may not call, by name in any schema: they change settings,
#: write outside the transaction (large objects, sequences, other connections), reach
#: the server's files and processes, or run SQL given as text. A READ ONLY transaction
#: stops most of them on a source; on the warehouse the split's transaction writes, so
#: this list is what stops them there.
_REFUSED_FUNCTIONS = frozenset(
    {
        "set_config",
        "nextval",
        "setval",
        "pg_notify",
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_logical_emit_message",
        "pg_switch_wal",
        "pg_promote",
        "pg_import_system_collations",
        "loread",
        "lowrite",
    }
)
_REFUSED_PREFIXES = (
    "lo_",
    "dblink",
    "pg_ls_",
    "pg_advisory",
    "pg_try_advisory",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_stat_reset",
    "pg_log_",
    "pg_backup_",
)
_WRITES = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}


def check_postgres_select(sql: str) -> str:
    """Refuse anything but one plain SELECT, as PostgreSQL's own grammar reads it.

    The SQL is parsed by libpg_query (``pglast``, the server's parser as a library):
    exactly one statement, a SELECT (or WITH … SELECT, VALUES, TABLE) without
    ``INTO``, locking clause, data-modifying WITH or a call of a function in
    :data:`_REFUSED_FUNCTIONS`. Returns the statement with comments and trailing ``;``
    removed (the text the DATA id is derived from and the text that is sent).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput("the query is empty", hint="give a SELECT statement")
    text = _without_comments(sql)
    for query in (sql, text):  # the text as written, and the text that is sent
        _check_tree(_placeholders_as_params(query))
    return text


# dmv's PostgreSQL parameters: psycopg's named placeholders
_PLACEHOLDER_RE = re.compile(r"%\(\w+\)[sbt]")


def _placeholders_as_params(sql: str) -> str:
    """``sql`` with ``%(name)s`` placeholders as ``$1`` parameters, for the parser.

    psycopg substitutes placeholders in the text wherever they stand; one inside a
    string or a comment would put a value's quotes into the statement's structure,
    so every placeholder must be a parameter where the parser reads it. With
    placeholders, psycopg also reads ``%%`` as ``%``.
    """
    from pglast import parser  # lazy: pglast (libpg_query)

    text, count = _PLACEHOLDER_RE.subn("$1", sql)
    if not count:
        return sql
    text = text.replace("%%", "%")
    if sum(1 for tok in parser.scan(text) if tok.name == "PARAM") != count:
        raise DataError(
            "a query parameter stands inside a string, a quoted name or a comment",
            hint="write %(name)s where a value goes, outside quotes: it is bound as a literal",
        )
    return text


def _parse(sql: str) -> dict[str, Any]:
    from pglast import parser  # lazy: pglast (libpg_query)

    try:
        tree: dict[str, Any] = json.loads(parser.parse_sql_json(sql))
    except parser.ParseError as exc:
        raise DataError(
            f"the query does not parse as PostgreSQL: {exc}",
            hint="a retrieval on PostgreSQL is one SELECT statement in PostgreSQL's SQL",
        ) from exc
    return tree


def _without_comments(sql: str) -> str:
    from pglast import parser  # lazy: pglast (libpg_query)

    _parse(_placeholders_as_params(sql))  # a clear error for SQL that does not parse
    out, end = [], 0
    tokens = parser.scan(sql)
    for tok in tokens:  # token ends are inclusive
        if tok.name in {"SQL_COMMENT", "C_COMMENT"}:
            out.append(sql[end : tok.start] + " ")
            end = tok.end + 1
    out.append(sql[end:])
    text = "".join(out).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _check_tree(sql: str) -> None:
    statements = _parse(sql).get("stmts", [])
    if len(statements) != 1:
        raise DataError(
            f"the query holds {len(statements)} statements; a retrieval is exactly one",
            hint=_READ_ONLY_HINT,
        )
    stmt = statements[0].get("stmt", {})
    kind = next(iter(stmt), "")
    if kind != "SelectStmt":
        word = kind.removesuffix("Stmt").upper() or "nothing"
        raise DataError(
            f"only SELECT queries may retrieve data; this one is {word}", hint=_READ_ONLY_HINT
        )
    stack: list[Any] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key in _WRITES:
                raise DataError(
                    f"the query modifies data ({_WRITES[key]} inside WITH)", hint=_READ_ONLY_HINT
                )
            if key == "intoClause":
                raise DataError("SELECT … INTO creates a table", hint=_READ_ONLY_HINT)
            if key == "lockingClause":
                raise DataError(
                    "the query locks rows (FOR UPDATE / FOR SHARE)",
                    hint="drop the locking clause: a retrieval only reads",
                )
            if key == "FuncCall":
                _check_function(value)
            stack.append(value)


def _check_function(call: dict[str, Any]) -> None:
    names = [n.get("String", {}).get("sval", "") for n in call.get("funcname", [])]
    name = str(names[-1]).lower() if names else ""
    if name in _REFUSED_FUNCTIONS or name.startswith(_REFUSED_PREFIXES):
        raise DataError(
            f"the query calls {name}(), which changes the server or reads outside the "
            "query: a retrieval is read-only",
            hint="remove the call; compute the value in a SELECT over tables",
        )


class PostgresDialect(SqlDialect):
    """The defaults of :class:`SqlDialect` are PostgreSQL's spelling."""

    name = "postgresql"

    def as_double(self, c: str) -> str:
        return f"{c}::float8"


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


def dump_command(url: str, schema: str, tables: list[str]) -> str:
    """The ``pg_dump`` command line that backs up ``tables`` of ``schema`` at ``url``."""
    import shlex

    args = ["pg_dump", "--format=custom", "--file=warehouse.dump"]
    args += [f"--table={quote_ident(schema)}.{quote_ident(t)}" for t in sorted(tables)]
    return shlex.join([*args, url])


class PostgresWarehouse(BaseWarehouse):
    """A PostgreSQL warehouse: splits are pushed down and run inside the server."""

    dialect = "postgresql"
    sql: SqlDialect = PostgresDialect()
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
        register(self)

    def interrupt(self) -> None:
        # a cancel request on its own connection; the server stops the statement
        self.con.cancel_safe(timeout=5.0)

    def _send(self, cur: Any, sql: str, params: Params = None) -> None:
        """Run ONE statement: the server itself refuses a second one.

        Parameters are bound here, as literals (PostgreSQL takes no parameters in
        ``CREATE TABLE … AS`` or ``EXPLAIN``), then the text goes over the extended
        query protocol (psycopg's pipeline mode always uses it), whose Parse message
        holds one command; the simple protocol would run ``a; b; c`` one by one.
        """
        import psycopg

        text = psycopg.ClientCursor(self.con).mogrify(sql, dict(params)) if params else sql
        with self.con.pipeline():
            cur.execute(text)

    def execute(self, sql: str, params: Params = None) -> None:
        import psycopg

        try:
            with self.con.cursor() as cur:
                self._send(cur, sql, params)
        except psycopg.Error as exc:
            raise sql_error(exc) from exc

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self.con.cursor() as cur:
                self._send(cur, sql, params)
                return list(cur.fetchall())
        except psycopg.Error as exc:
            raise sql_error(exc) from exc

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
            with self.con.transaction(), self.con.cursor() as cur:
                if not outer:  # inside a split's transaction it must stay writable
                    cur.execute("SET TRANSACTION READ ONLY")
                self._send(cur, f"SELECT * FROM (\n{sql}\n) AS dmv_q LIMIT 0", params)
                desc = cur.description or []
                oids = [(d.name, d.type_code, d.internal_size, d) for d in desc]
                types = []
                for _name, oid, _size, d in oids:
                    cur.execute("SELECT format_type(%s, %s)", (oid, _typmod(d)))
                    row = cur.fetchone()
                    types.append(str(row[0]) if row else "unknown")
                return tuple(Column(o[0], t) for o, t in zip(oids, types, strict=True))
        except psycopg.Error as exc:
            raise sql_error(exc) from exc

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        columns = self.query_columns(sql, params)
        hints = [pg_arrow_type(c.type) for c in columns]
        # a server-side cursor is DECLAREd over the extended protocol: one statement
        cur = self.con.cursor(name="dmv_reader")
        self.con.autocommit = False
        try:
            cur.execute(sql, dict(params) if params else None)
        except Exception as exc:
            self.con.rollback()
            self.con.autocommit = True
            raise sql_error(exc) from exc

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
            raise sql_error(exc, "loading rows into the warehouse") from exc

    def analyze(self, name: str) -> None:
        self.execute(f"ANALYZE {name}")  # temporary tables get no statistics unless asked

    def rows_and_distinct(self, base: str, params: Params, q: str) -> tuple[int, int]:
        # the planner's estimates, from its statistics, without running anything
        rows = self._planned_rows(f"SELECT * FROM {base}", params)
        return rows, self._planned_rows(f"SELECT DISTINCT {q} FROM {base}", params)

    def _planned_rows(self, sql: str, params: Params) -> int:
        plan = self.rows(f"EXPLAIN (FORMAT JSON) {sql}", params)[0][0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])

    def check_retrieval(self, query: str) -> None:
        check_postgres_select(query)

    def retrieval_text(self, sql: str) -> str:
        return check_postgres_select(sql)

    def check_key(self) -> str:
        version = int(self.rows("SHOW server_version_num")[0][0])
        return f"postgresql-hash:{version // 10000}"

    def engine_row_hash(self, columns: Sequence[Column], alias: str) -> str:
        cols = ", ".join(f"{alias}.{quote_ident(c.name)}" for c in columns)
        return f"hash_record_extended(ROW({cols}), 0)"

    def engine_hash_sum(self, expr: str) -> str:
        return f"sum(({expr})::numeric)"  # a bigint sum would overflow

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
        unregister(self)
        self.con.close()


def _typmod(desc: Any) -> int | None:
    # psycopg exposes precision/scale; rebuild the typmod PostgreSQL's format_type expects.
    if desc.type_code == 1700 and desc.precision is not None:  # numeric
        return ((int(desc.precision) << 16) | int(desc.scale or 0)) + 4
    return None


def open_postgres(url: str, *, schema: str | None = None, **_: Any) -> PostgresWarehouse:
    """``postgresql://``, ``postgresql+psycopg://`` or ``postgres://`` URLs."""
    return PostgresWarehouse(url, schema=schema)
