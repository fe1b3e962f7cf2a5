"""What every warehouse engine shares: the operations common to all connections.

An engine adapter subclasses :class:`~dmv.data._sql.SqlDialect` for the SQL fragments
whose spelling differs between engines (text casts, the md5-v1 hash, a value's
canonical text) and :class:`BaseWarehouse` for the connection. The defaults are standard SQL as
PostgreSQL speaks it; an adapter overrides only what its engine spells otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmv.data._sql import SqlDialect, check_identifier, check_select, quote_ident
from dmv.data.credentials import strip_credentials
from dmv.data.warehouse import CHECK_COLUMN, Column, Params, Progress, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BaseWarehouse", "params_dict", "retrieval_text"]


class BaseWarehouse(Warehouse):
    """Operations every engine shares, written once over :meth:`execute` and :meth:`rows`."""

    dialect: str
    sql: SqlDialect
    url: str
    #: whether ``dmv fsck`` can measure and give back the engine's file space
    reclaims_file_space = False
    #: whether a failed split leaves nothing behind by itself (transactional DDL)
    transactional_ddl = True
    #: whether two tables can be read aligned row by row, so splits share storage
    aligns_rows = False

    def identity(self) -> str:
        return strip_credentials(self.url)

    def table_exists(self, table: str) -> bool:
        return bool(self.table_columns(table))

    def drop_table(self, table: str, *, temp: bool = False) -> None:
        name = table if temp else quote_ident(check_identifier(table))
        self.execute(f"DROP TABLE IF EXISTS {name}")

    def create_table_as(
        self, name: str, select_sql: str, params: Params = None, *, temp: bool = False
    ) -> None:
        """``CREATE [TEMP] TABLE name AS select`` (``name`` already quoted)."""
        kind = "TEMP TABLE" if temp else "TABLE"
        self.execute(f"CREATE {kind} {name} AS {select_sql}", params)

    def rename_table(self, old: str, new: str) -> None:
        self.execute(f"ALTER TABLE {quote_ident(old)} RENAME TO {quote_ident(new)}")

    def analyze(self, name: str) -> None:
        """Give the planner statistics of a freshly written table (where it needs them)."""

    def list_tables(self) -> list[str]:
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return [str(r[0]) for r in rows]

    def list_views(self) -> list[str]:
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_type = 'VIEW'"
        )
        return [str(r[0]) for r in rows]

    def rows_and_distinct(self, base: str, params: Params, q: str) -> tuple[int, int]:
        """Row count and distinct count of column ``q`` (estimates are fine)."""
        rows, distinct = self.rows(
            f"SELECT count(*), {self.sql.approx_distinct(q)} FROM {base}", params
        )[0]
        return int(rows or 0), int(distinct or 0)

    def quantiles(
        self, base: str, q: str, fractions: Sequence[float], params: Params
    ) -> list[Any] | None:
        listed = ", ".join(repr(f) for f in fractions)
        sql = (
            f"SELECT percentile_disc(ARRAY[{listed}]::float8[]) "
            f"WITHIN GROUP (ORDER BY {q}) FROM {base}"
        )
        values = self.rows(sql, params)[0][0]
        return None if values is None else list(values)

    def sandbox(
        self,
        *,
        paths: Sequence[str] = (),
        directories: Sequence[str] = (),
        timeout: float | None = None,
    ) -> None:
        """Limit the connection to reading (engines that cannot: nothing to do)."""
        return None

    def retrieval_sandbox(self, timeout: float | None = None) -> None:
        """Limit this connection before it runs retrieval SQL over the warehouse itself
        (``timeout``: seconds a statement may run, where the engine can bound it)."""

    def check_retrieval(self, query: str) -> None:
        """Engine-level refusal of a statement that writes (after :func:`check_select`)."""

    def retrieval_text(self, sql: str) -> str:
        """Refuse anything but one read-only query; return the text to run and to hash.

        The default is the portable scan, then :meth:`check_retrieval`; an engine with
        a parser of its own (DuckDB, PostgreSQL) decides with that parser alone.
        """
        query = check_select(sql)
        self.check_retrieval(query)
        return query

    def export_parquet(self, name: str, path: Path, progress: Progress | None) -> int:
        """Write table ``name`` (quoted) to a Parquet file at ``path``; return its rows."""
        import pyarrow.parquet as pq

        reader = self.reader(f"SELECT * FROM {name}")
        rows = 0
        with pq.ParquetWriter(str(path), reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
                if progress:
                    progress("export", rows, None)
        return rows

    def check_key(self) -> str:
        """Which engine row hash a recorded read check is (``<engine>-hash:<version>``)."""
        raise NotImplementedError

    def engine_row_hash(self, columns: Sequence[Column], alias: str) -> str:
        """The engine's own fast hash of a row's values, summed mod 2^64 by read checks."""
        raise NotImplementedError

    def engine_hash_sum(self, expr: str) -> str:
        return f"sum({expr})"

    def read_checked(self, columns: Sequence[Column], source: str) -> tuple[pa.Table, int, int]:
        """``(rows, check rows, check sum mod 2^64)`` of one read of ``source``.

        The default reads the engine hash beside the rows (one statement, one snapshot)
        and sums it here, wrapping mod 2^64 as the recorded check does.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = ", ".join(f"dmv_t.{quote_ident(c.name)}" for c in columns)
        engine = self.engine_row_hash(columns, "dmv_t")
        table = self.reader(f"SELECT {cols}, {engine} AS {CHECK_COLUMN} FROM {source}").read_all()
        hashes = table.column(CHECK_COLUMN)
        if not pa.types.is_uint64(hashes.type):  # a signed bigint: same bits mod 2^64
            hashes = pc.cast(hashes, pa.uint64(), safe=False)
        total = pc.sum(hashes).as_py() or 0
        return table.drop_columns([CHECK_COLUMN]), table.num_rows, int(total)

    def interrupt(self) -> None:
        """Cancel the statement running on this connection, from any thread (a signal's).

        Engines register their connection with :func:`dmv.interrupts.register` when it
        opens; the statement then fails and the caller's transaction rolls back.
        """

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover

    def __enter__(self) -> BaseWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def params_dict(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(params) if params else None


def retrieval_text(warehouse: Warehouse, sql: str) -> str:
    """The checked text of retrieval SQL run over ``warehouse`` itself.

    A plug-in warehouse that is not a :class:`BaseWarehouse` gets the portable scan and
    its own ``check_retrieval``.
    """
    decide = getattr(warehouse, "retrieval_text", None)
    if callable(decide):
        return str(decide(sql))
    query = check_select(sql)
    warehouse.check_retrieval(query)
    return query
