"""Shared fixtures: real project folders, real SQLite files, the real local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv

PG_ADMIN_URL = os.environ.get("DMV_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'dmv[postgres]')"
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {str(exc).strip()[:120]}"


_PG_REASON = _pg_reason()
requires_pg = pytest.mark.skipif(_PG_REASON is not None, reason=_PG_REASON or "")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; its URL. Dropped afterwards."""
    if _PG_REASON is not None:
        pytest.skip(_PG_REASON)
    import psycopg

    name = f"dmv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dmv.Project]:
    """A fresh project on the embedded default (SQLite registry, local artifacts)."""
    p = dmv.init(tmp_path / "proj")
    yield p
    p.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dmv.Project]:
    """The same project on SQLite and on the local PostgreSQL registry."""
    if request.param == "sqlite":
        p = dmv.init(tmp_path / "proj")
    else:
        url = request.getfixturevalue("pg_database")
        p = dmv.init(tmp_path / "proj", registry=url)
    yield p
    p.close()


@pytest.fixture
def small_model() -> object:
    """A real fitted scikit-learn model on a bundled dataset."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(x, y)


def seed_warehouse(project: dmv.Project, model: str = "price-model") -> None:
    """Load scikit-learn's bundled diabetes data into the project's DuckDB warehouse and
    register retrieval 0123 with stored splits abcd and efgh (as in seed/diagram1.png)."""
    import duckdb
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    patients = x.assign(target=y, patient_id=range(len(x)))
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.register("frame", patients)
        con.execute("CREATE TABLE patients AS SELECT * FROM frame")
    project.data_query(model, sql="SELECT * FROM patients", id="0123")
    project.data_split(model, "0123", by="key:patient_id", id="abcd")
    project.data_split(model, "0123", by="key:patient_id", salt="2", id="efgh")


@pytest.fixture(autouse=True)
def _loopback_test_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process clients call the server as a browser on this machine would: at 127.0.0.1.

    The server answers loopback names only (its Host allow-list), so the test
    client's own default host, ``testserver``, would be refused like any other.
    """
    try:
        from starlette.testclient import TestClient
    except ImportError:
        return
    original = TestClient.__init__

    def init(
        self: TestClient, app: object, base_url: str = "http://127.0.0.1", **kw: object
    ) -> None:
        original(self, app, base_url, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(TestClient, "__init__", init)


def part_storage(con: Any, part: str) -> str:
    """The table that holds a part's rows: the part itself, or the segment behind its
    view that holds them when the split shares storage (what someone tampering changes)."""
    import duckdb

    con = getattr(con, "con", con)  # a DuckDB warehouse or a bare connection
    try:
        rows = con.execute(
            "SELECT segment FROM __dmv_layout WHERE prefix = ? ORDER BY position",
            [part.rsplit("__", 1)[0]],
        ).fetchall()
    except duckdb.CatalogException:
        rows = []
    for (segment,) in rows:
        shared = f'SELECT * FROM "{segment}" INTERSECT SELECT * FROM "{part}"'
        if con.execute(f"SELECT count(*) FROM ({shared})").fetchone()[0]:
            return str(segment)
    return part


def leftovers(con: Any) -> list[str]:
    """dmv's working tables left in a warehouse: ``__dmv_…`` tables no split's layout names."""
    from dmv.data.shared import owned_objects

    tables = [r[0] for r in con.rows("SELECT table_name FROM information_schema.tables")]
    owned = owned_objects(con)
    return sorted(t for t in tables if t.startswith("__dmv") and t not in owned)
