"""Reading a stored part only when it is the part that was recorded.

Recomputing the md5 fingerprint on every read would cost several times the read itself,
so a part is proven once and cheaply afterwards:

* **first read** (per part, per engine version): one aggregate computes the part's
  md5 fingerprint (of the algorithm it was recorded with: ``md5sum-v2``, or
  ``md5sum-v1`` for parts stored before v2) *and* an engine-native check — the sum, mod 2^64, of the
  engine's own row hash (DuckDB ``hash(c1, …)``, PostgreSQL
  ``hash_record_extended(row, 0)``). The fingerprint must equal the recorded one.
* **every read**, the first included: the engine check of the rows is computed with
  the read, from the same snapshot — on PostgreSQL by the one statement that reads
  the rows, on DuckDB by an aggregate in the read's own transaction — and must equal
  the recorded check, so nothing can change between proving and reading.

The engine check is recorded on the split (keyed by engine and version, because an
engine's hash may change between releases), so later reads pay only for hashing
the rows they read. Any write to the part — one ``UPDATE``, a deleted or added row,
a changed column — changes the row count, the schema or the sum, and the read is
refused with :class:`~dmv.errors.IntegrityError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dmv.data._sql import quote_ident
from dmv.data.fingerprint import algorithm_of, hashed, make_fingerprint
from dmv.data.records import PartInfo
from dmv.data.warehouse import CHECK_COLUMN, Warehouse
from dmv.errors import DataError, IntegrityError, InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "VerifiedRead",
    "check_key",
    "check_unreserved",
    "check_value",
    "expected_check",
    "prove",
    "read_verified",
    "stream_mismatch",
]

_MOD = 1 << 64


@dataclass(frozen=True)
class VerifiedRead:
    """The rows of a part, and the engine check to record when it was new."""

    table: pa.Table
    record: tuple[str, str] | None = None  # (check key, value) to store on the split


def check_key(warehouse: Warehouse) -> str:
    """``duckdb-hash:<version>`` / ``postgresql-hash:<major>``: which engine hash a check is."""
    return warehouse.check_key()


def _fail(part: PartInfo, actual: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"stored part {part.name!r} (table {part.table}) does not match its record: {why}; "
        f"recorded fingerprint {part.fingerprint}, now {actual}",
        hint="the table was changed in the warehouse after the split was stored; "
        "'dmv data verify' shows every part; store a new split to train on changed data",
        table=part.table,
        expected=part.fingerprint,
        actual=actual,
    )


def _measure(warehouse: Warehouse, part: PartInfo) -> tuple[str, str]:
    """(md5 fingerprint, engine check) of the table, in one aggregate."""
    try:
        return _measured(warehouse, part)
    except DataError as exc:  # a part view whose shared storage is gone or changed
        raise _fail(part, "unreadable", f"its storage cannot be read ({exc.message})") from exc


def _measured(warehouse: Warehouse, part: PartInfo) -> tuple[str, str]:
    columns = part.columns
    algo = algorithm_of(part.fingerprint)  # the algorithm it was recorded with
    source, h = hashed(warehouse.sql, columns, f"{quote_ident(part.table)} AS dmv_t", algo)
    # ``hashed`` wraps the table; the engine hash reads the same columns of the wrapper
    engine = warehouse.engine_hash_sum(warehouse.engine_row_hash(columns, "dmv_hr"))
    big = warehouse.sql.big_sum(h)
    row = warehouse.rows(f"SELECT count(*), {big}, {engine} FROM {source}")[0]
    rows = int(row[0])
    return make_fingerprint(rows, int(row[1] or 0), algo), _check_value(rows, int(row[2] or 0))


def _check_value(rows: int, total: int) -> str:
    return f"{rows}:{total % _MOD:016x}"


def _read(warehouse: Warehouse, part: PartInfo) -> tuple[pa.Table, str]:
    """The part's rows and the engine check of exactly those rows (one snapshot)."""
    source = f"{quote_ident(part.table)} AS dmv_t"
    try:
        table, rows, total = warehouse.read_checked(part.columns, source)
    except DataError as exc:
        raise _fail(part, "unreadable", f"its storage cannot be read ({exc.message})") from exc
    return table, _check_value(rows, total)


def _same_columns(warehouse: Warehouse, part: PartInfo) -> None:
    columns = warehouse.table_columns(part.table)
    if not columns:
        raise _fail(part, "missing", f"table {part.table} is not in the warehouse")
    if columns != part.columns:
        now = ", ".join(f"{c.name} {c.type}" for c in columns)
        raise _fail(part, "other columns", f"its columns are now {now}")


def prove(warehouse: Warehouse, part: PartInfo) -> None:
    """Raise :class:`~dmv.errors.IntegrityError` unless ``part`` matches its fingerprint.

    One aggregate in the engine (no rows leave it): for what reads the table itself
    afterwards, e.g. an export.
    """
    _same_columns(warehouse, part)
    fingerprint, _ = _measure(warehouse, part)
    if fingerprint != part.fingerprint:
        raise _fail(part, fingerprint, "its rows changed")


def read_verified(
    warehouse: Warehouse, part: PartInfo, checks: Mapping[str, str] | None = None
) -> VerifiedRead:
    """Read ``part`` as an Arrow table after proving it matches its recorded fingerprint.

    ``checks`` are the engine checks recorded for the part by earlier reads; when one
    matches this engine, the md5 pass is skipped. Raises
    :class:`~dmv.errors.IntegrityError` (naming the table and both fingerprints) when
    the part is missing, its columns changed or its rows differ.
    """
    _same_columns(warehouse, part)
    check_unreserved(part)
    key = check_key(warehouse)
    known = (checks or {}).get(key)
    if known is not None:
        table, got = _read(warehouse, part)
        if got == known:
            return VerifiedRead(table)
        fingerprint, _ = _measure(warehouse, part)
        if fingerprint != part.fingerprint:
            raise _fail(part, fingerprint, "its rows changed")
        # the md5 fingerprint still holds: the recorded check was wrong; prove anew
    fingerprint, check = _measure(warehouse, part)
    if fingerprint != part.fingerprint:
        raise _fail(part, fingerprint, "its rows changed")
    table, got = _read(warehouse, part)
    if got != check:
        raise _fail(part, f"engine check {got}", "its rows changed while it was read")
    return VerifiedRead(table, (key, check))


def check_unreserved(part: PartInfo) -> None:
    """Refuse a part with a column named like the one a checked read adds."""
    if CHECK_COLUMN in {c.name for c in part.columns}:
        raise DataError(
            f"column {CHECK_COLUMN} is reserved by dmv",
            hint=f"rename the column in the retrieval, e.g. SELECT {CHECK_COLUMN} AS "
            f"{CHECK_COLUMN}_1",
        )


def check_value(rows: int, total: int) -> str:
    """The engine check of ``rows`` rows whose engine hashes sum to ``total``."""
    return _check_value(rows, total)


def expected_check(
    warehouse: Warehouse, part: PartInfo, checks: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, str] | None]:
    """The engine check a streamed read of ``part`` must add up to, and one to record.

    A recorded check for this engine is trusted as :func:`read_verified` trusts it;
    otherwise the part is proven by its md5 fingerprint first (one aggregate in the
    engine) and the check measured with it is returned, to record on the split.
    """
    _same_columns(warehouse, part)
    check_unreserved(part)
    key = check_key(warehouse)
    known = (checks or {}).get(key)
    if known is not None:
        return known, None
    fingerprint, check = _measure(warehouse, part)
    if fingerprint != part.fingerprint:
        raise _fail(part, fingerprint, "its rows changed")
    return check, (key, check)


def stream_mismatch(part: PartInfo, got: str) -> IntegrityError:
    """The error for a streamed read whose engine check differs from the expected one."""
    return _fail(part, f"engine check {got}", "its rows changed")


def to_format(table: pa.Table, format: Literal["pandas", "arrow"] | str) -> Any:
    """``format='pandas'`` (default) or ``'arrow'``."""
    if format not in ("pandas", "arrow"):
        raise InvalidInput(f"unknown format {format!r}", hint="use 'pandas' or 'arrow'")
    return table.to_pandas() if format == "pandas" else table
