"""The warehouse interface: where stored splits live, whatever the engine.

:class:`Warehouse` names everything the data layer asks of an engine: SQL fragments
in the engine's spelling (``wh.sql``), create-table-as, list/drop/rename tables,
Arrow streams in and out, a transaction (or the engine's substitute) and the read
checks. Engines are adapters in :mod:`dmv.data.engines`, chosen by the URL's scheme
from one table that third-party engines join through the ``dmv.warehouses`` entry
point; nothing outside the adapters branches on the engine.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dmv.data._sql import SqlDialect, quote_ident
from dmv.errors import DataError, StorageError
from dmv.integrity import corrupt_warehouse, is_duckdb_corruption

if TYPE_CHECKING:
    import pyarrow as pa


__all__ = [
    "BATCH_ROWS",
    "CHECK_COLUMN",
    "Column",
    "Progress",
    "Warehouse",
    "columns_sql",
    "sql_error",
]

Progress = Callable[[str, int, "int | None"], None]
Params = Mapping[str, Any] | None
BATCH_ROWS = 100_000
#: the column a read check adds beside a part's rows (no part may have one)
CHECK_COLUMN = "__dmv_check"


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


def sql_error(
    exc: Exception, what: str = "the query", *, where: str = "the DuckDB warehouse"
) -> DataError | StorageError:
    """The error to raise for an engine's failed statement ``exc``."""
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


class Warehouse(Protocol):
    """A warehouse connection. Use :func:`dmv.data.engines.open_warehouse`; close it when
    done."""

    #: the engine's name (``duckdb``, ``postgresql``, ``spark``, …), recorded on splits
    dialect: str
    #: the engine's spelling of the portable SQL fragments (key text, row text, md5-v1)
    sql: SqlDialect
    url: str
    #: whether ``dmv fsck`` can measure and give back the engine's file space
    reclaims_file_space: bool
    #: whether the engine can join two tables row by row, so splits share their storage
    aligns_rows: bool
    #: whether a failed statement block leaves nothing behind by itself
    transactional_ddl: bool

    def identity(self) -> str:
        """The URL without credentials (what may be shown or stored)."""
        ...

    def execute(self, sql: str, params: Params = None) -> None: ...

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """All or nothing where the engine can; elsewhere its substitute (tables made
        inside are dropped again when the block fails)."""
        ...

    def table_columns(self, table: str) -> tuple[Column, ...]:
        """The columns of ``table`` (empty when it does not exist)."""
        ...

    def query_columns(self, sql: str, params: Params = None) -> tuple[Column, ...]:
        """Columns and types of a query's result, without fetching its rows."""
        ...

    def reader(self, sql: str, params: Params = None) -> pa.RecordBatchReader:
        """Stream a query's result as Arrow record batches (bounded memory)."""
        ...

    def create_from_arrow(
        self, table: str, reader: pa.RecordBatchReader, *, temp: bool = False
    ) -> None:
        """Create ``table`` from an Arrow stream (batch by batch)."""
        ...

    def create_table_as(
        self, name: str, select_sql: str, params: Params = None, *, temp: bool = False
    ) -> None:
        """``CREATE [TEMP] TABLE name AS select`` inside the engine (``name`` quoted)."""
        ...

    def rename_table(self, old: str, new: str) -> None: ...

    def analyze(self, name: str) -> None:
        """Statistics for the planner of a freshly written table, where it needs them."""
        ...

    def list_tables(self) -> list[str]:
        """The tables in the warehouse's schema (catalog/database)."""
        ...

    def list_views(self) -> list[str]:
        """The views in the warehouse's schema (part views of shared splits)."""
        ...

    def table_exists(self, table: str) -> bool: ...

    def drop_table(self, table: str, *, temp: bool = False) -> None:
        """Drop ``table`` if it exists (``temp``: a temporary table, its name quoted)."""
        ...

    def rows_and_distinct(self, base: str, params: Params, q: str) -> tuple[int, int]:
        """Row and distinct-value counts of column ``q`` of ``base`` (estimates allowed)."""
        ...

    def quantiles(
        self, base: str, q: str, fractions: Sequence[float], params: Params
    ) -> list[Any] | None:
        """Discrete quantiles of column ``q`` at ``fractions`` (None when empty)."""
        ...

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
        ...

    def retrieval_sandbox(self, timeout: float | None = None) -> None:
        """Limit the connection before retrieval SQL runs over the warehouse itself
        (``timeout``: seconds one statement may run, where the engine can bound it)."""
        ...

    def check_retrieval(self, query: str) -> None:
        """Engine-level refusal of a statement that writes (after ``check_select``)."""
        ...

    def export_parquet(self, name: str, path: Path, progress: Progress | None) -> int:
        """Write table ``name`` (quoted) to a Parquet file; return its row count."""
        ...

    def check_key(self) -> str:
        """Which engine row hash a recorded read check is (``<engine>-hash:<version>``)."""
        ...

    def engine_row_hash(self, columns: Sequence[Column], alias: str) -> str:
        """The engine's own fast hash of a row, for read checks (not portable)."""
        ...

    def engine_hash_sum(self, expr: str) -> str:
        """A sum of :meth:`engine_row_hash` values that cannot overflow."""
        ...

    def read_checked(self, columns: Sequence[Column], source: str) -> tuple[pa.Table, int, int]:
        """A table's rows with the engine check (rows, hash sum mod 2^64) of exactly them."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Warehouse: ...

    def __exit__(self, *exc: object) -> None: ...


def columns_sql(columns: Sequence[Column]) -> str:
    """The quoted, comma-separated column list."""
    return ", ".join(quote_ident(c.name) for c in columns)
