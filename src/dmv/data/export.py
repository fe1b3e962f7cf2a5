"""Reading and exporting stored parts: Parquet files, Arrow tables, pandas frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dmv.data._sql import check_identifier, quote_ident
from dmv.data.warehouse import Progress, Warehouse
from dmv.errors import InvalidInput, NotFound, StorageError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ExportResult", "export_part", "read_part"]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Where a part was written, how many rows and bytes."""

    path: str
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes}


def _existing(warehouse: Warehouse, table: str) -> str:
    check_identifier(table)
    if not warehouse.table_exists(table):
        raise NotFound(
            f"table {table} is not in the warehouse {warehouse.identity()}",
            hint="list stored splits with 'dmv data list MODEL'",
        )
    return quote_ident(table)


def export_part(
    warehouse: Warehouse, table: str, out_path: str | Path, *, progress: Progress | None = None
) -> ExportResult:
    """Write a stored part to a Parquet file (DuckDB ``COPY``; Arrow batches elsewhere)."""
    name = _existing(warehouse, table)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        rows = warehouse.export_parquet(name, tmp, progress)
        tmp.replace(out)  # a reader never sees a half-written file
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(
            f"cannot write {out}: {exc.strerror}",
            hint="check that the folder exists, is writable and has free space",
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress:
        progress("export", rows, rows)
    return ExportResult(str(out), rows, out.stat().st_size)


def read_part(
    warehouse: Warehouse, table: str, format: Literal["pandas", "arrow"] = "pandas"
) -> pd.DataFrame | pa.Table:
    """A stored part as a pandas DataFrame (default) or an Arrow table."""
    if format not in ("pandas", "arrow"):
        raise InvalidInput(f"unknown format {format!r}", hint="use 'pandas' or 'arrow'")
    name = _existing(warehouse, table)
    table_ = warehouse.reader(f"SELECT * FROM {name}").read_all()
    return table_.to_pandas() if format == "pandas" else table_
