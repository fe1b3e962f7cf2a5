"""Fixtures and sample data for the data engine tests (imported by tests/test_data_*.py)."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import math
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dmv.data.engines import open_warehouse
from dmv.data.warehouse import Warehouse

PG_URL = os.environ.get("DMV_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def sample_table(n: int = 5000, *, start: int = 0, users: int = 400) -> pa.Table:
    """Deterministic rows: id, ts, user_id, category, price, label (+ a few NULL prices)."""
    ids = list(range(start, start + n))
    base = dt.datetime(2024, 1, 1)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "ts": pa.array([base + dt.timedelta(minutes=7 * i) for i in ids], pa.timestamp("us")),
            "user_id": pa.array([(i * 7919) % users for i in ids], pa.int64()),
            "category": pa.array([f"cat{i % 13}" for i in ids], pa.string()),
            "price": pa.array(
                [None if i % 97 == 0 else round((i % 1000) * 0.37, 2) for i in ids], pa.float64()
            ),
            "label": pa.array([i % 2 for i in ids], pa.int32()),
        }
    )


def _v2_piece(value: Any, kind: pa.DataType) -> str:
    """One value's piece of the md5sum-v2 encoding, as docs/data.md specifies it."""
    if value is None:
        return "\x1e"
    if pa.types.is_boolean(kind):
        return "true" if value else "false"
    if pa.types.is_integer(kind):
        return str(value)
    if pa.types.is_floating(kind):
        if value == 0:
            return "0"
        if math.isnan(value):
            return "9221120237041090560"
        return str(struct.unpack("<q", struct.pack("<d", value))[0])
    if pa.types.is_decimal(kind):
        return format(value, "f")
    if pa.types.is_string(kind):
        return f"{len(value.encode())}:{value}"
    if pa.types.is_binary(kind):
        return str(value.hex())
    if pa.types.is_date(kind):
        return str((value - dt.date(1970, 1, 1)).days)
    if pa.types.is_timestamp(kind):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        since = value - dt.datetime(1970, 1, 1)
        return str((since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds)
    raise TypeError(kind)


def fingerprint_v2(table: pa.Table) -> str:
    """md5sum-v2 of an Arrow table, computed in Python from the documented encoding."""
    total = 0
    columns = [
        (table.column(i).to_pylist(), table.schema.field(i).type) for i in range(table.num_columns)
    ]
    for r in range(table.num_rows):
        row = "\x1f".join(_v2_piece(values[r], kind) for values, kind in columns)
        total += int(hashlib.md5(row.encode()).hexdigest()[:16], 16)
    return f"md5sum-v2:{table.num_rows}:{total % (1 << 64):016x}"


def every_family(binary: bool = True) -> pa.Table:
    """Every column type family v2 encodes, with its edge values and NULLs."""
    floats = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324, 2.5e-310, 1e300]
    floats += [-1e300, 1.7976931348623157e308, 0.1, 1 / 3, -4.2e-7, 1e15 + 0.5, 1.0, None]
    n = len(floats)

    def pick(values: list[Any]) -> list[Any]:
        return [values[i % len(values)] for i in range(n)]

    dec = decimal.Decimal
    utc = dt.UTC
    columns: dict[str, pa.Array] = {
        "i": pa.array(pick([0, -1, 2**63 - 1, -(2**63), 42, None]), pa.int64()),
        "s": pa.array(pick([0, -150, 32767, None, 7]), pa.int32()),
        "f": pa.array(floats, pa.float64()),
        "r": pa.array(pick([0.5, -0.0, None, 3.25, 1e-3]), pa.float32()),
        "d": pa.array(
            pick([dec("1.50"), dec("-0.05"), None, dec("0.00"), dec("12345678.99")]),
            pa.decimal128(10, 2),
        ),
        "dw": pa.array(
            pick([dec("0.0000001000"), dec("-123456789012345678.1234567890"), None, dec("0E-10")]),
            pa.decimal128(38, 10),
        ),
        "t": pa.array(pick(["", None, "Zoë 日本 🙂", "a\x1fb", "\x1e", "it's", "plain"])),
        "day": pa.array(
            pick([dt.date(1969, 12, 1), dt.date(1970, 1, 1), None, dt.date(2100, 2, 28)])
        ),
        "ts": pa.array(
            pick(
                [
                    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
                    dt.datetime(2024, 1, 1, 0, 0, 0, 1),
                    None,
                ]
            ),
            pa.timestamp("us"),
        ),
        "tz": pa.array(
            pick(
                [dt.datetime(2024, 3, 1, 5, tzinfo=utc), None, dt.datetime(1960, 1, 1, tzinfo=utc)]
            ),
            pa.timestamp("us", tz="UTC"),
        ),
        "b": pa.array(pick([True, False, None]), pa.bool_()),
    }
    if binary:
        columns["bin"] = pa.array(pick([b"", b"\x00\xff", None, b"abc"]), pa.binary())
    return pa.table(columns)


def load(wh: Warehouse, table: str, data: pa.Table) -> None:
    wh.create_from_arrow(table, pa.RecordBatchReader.from_batches(data.schema, data.to_batches()))


def ids_by_part(wh: Warehouse, result: Any, column: str = "id") -> dict[str, set[Any]]:
    return {
        p.name: {r[0] for r in wh.rows(f'SELECT "{column}" FROM "{p.table}"')} for p in result.parts
    }


def pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL at {PG_URL} is unreachable: {str(exc).strip()[:120]}"


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(tmp_path / "warehouse.duckdb")
    yield wh
    wh.close()


@pytest.fixture
def pg_url() -> str:
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg(pg_url: str) -> Iterator[Warehouse]:
    """A PostgreSQL warehouse in a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"dmv_test_{secrets.token_hex(4)}"
    wh = open_warehouse(pg_url, schema=schema)
    yield wh
    wh.close()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
