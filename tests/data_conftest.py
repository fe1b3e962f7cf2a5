"""Fixtures and sample data for the data engine tests (imported by tests/test_data_*.py)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
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
