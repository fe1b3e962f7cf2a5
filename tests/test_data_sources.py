"""Sources: URLs, identities without credentials, describe, write refusal, streaming."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data_conftest
from data_conftest import load, sample_table
from dmv.data._sql import check_select
from dmv.data.credentials import strip_credentials
from dmv.data.sources import Retrieval, Source, retrieve
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, InvalidInput

duck = data_conftest.duck


def _sqlite(path: Path, rows: int = 1000) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER, name TEXT, price REAL, note TEXT)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        [(i, f"n{i}", i * 0.5, None if i < 600 else "late") for i in range(rows)],
    )
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://alice:s3cr3t@db.example:5432/wh", "s3cr3t"),
        ("postgresql+psycopg://bob:pw@h/db?sslpassword=xyz&application_name=dmv", "xyz"),
        ("snowflake://u:p4ss@acct/db?token=tok123&warehouse=w", "tok123"),
        ("s3://bucket/data/*.parquet?access_key=AKIA&secret=SSS", "SSS"),
    ],
)
def test_identity_never_holds_credentials(url: str, secret: str) -> None:
    identity = Source.from_url(url).identity()
    assert secret not in identity and "p4ss" not in identity and ":pw@" not in identity
    assert strip_credentials(url).split("://")[0] == url.split("://")[0]
    if url.startswith("postgresql://"):
        assert identity == "postgresql://alice@db.example:5432/wh"


def test_source_kinds_from_urls(tmp_path: Path, duck: Warehouse) -> None:
    assert Source.from_url(None, duck).kind == "warehouse"
    assert Source.from_url("sqlite:///x.db").kind == "sqlite"
    assert Source.from_url(tmp_path / "a.parquet").kind == "parquet"
    assert Source.from_url("csv:" + str(tmp_path)).kind == "csv"
    assert Source.from_url(tmp_path / "other.duckdb").kind == "duckdb"
    assert Source.from_url("mysql+pymysql://u:p@h/db").kind == "sqlalchemy"
    with pytest.raises(InvalidInput):
        Source.from_url("just-a-word")


def test_describe_checks_the_query_without_fetching(duck: Warehouse) -> None:
    load(duck, "src", sample_table(100))
    source = Source.from_url(None, duck)
    cols = source.describe(
        "SELECT id, price * 2 AS p2, category FROM src WHERE label = $l", {"l": 1}
    )
    assert [(c.name, c.type) for c in cols] == [
        ("id", "BIGINT"),
        ("p2", "DOUBLE"),
        ("category", "VARCHAR"),
    ]
    with pytest.raises(DataError, match="nope"):
        source.describe("SELECT nope FROM src")
    with pytest.raises(DataError, match="missing_table"):
        source.describe("SELECT * FROM missing_table")
    with pytest.raises(DataError):
        source.describe("SELEC id FROM src")


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM src",
        "insert into src select * from src",
        "SELECT 1; DROP TABLE src",
        "select 1 ; -- fine\n; update src set id = 0",
        "WITH x AS (SELECT 1) DELETE FROM src",
        "DROP TABLE src",
        "COPY src TO '/tmp/x.csv'",
        "ATTACH 'x.db' AS x",
        "PRAGMA version",
        "   ",
    ],
)
def test_writes_are_refused_on_duckdb(duck: Warehouse, sql: str) -> None:
    load(duck, "src", sample_table(20))
    with pytest.raises((DataError, InvalidInput)):
        Source.from_url(None, duck).describe(sql)
    assert duck.rows("SELECT count(*) FROM src")[0][0] == 20


def test_check_select_keeps_literals_and_drops_trailing_noise() -> None:
    assert check_select("SELECT ';' AS x; -- done\n") == "SELECT ';' AS x"
    assert (
        check_select("WITH a AS (SELECT 1) SELECT * FROM a")
        == "WITH a AS (SELECT 1) SELECT * FROM a"
    )
    assert check_select("select $$;$$ as v /* ; */") == "select $$;$$ as v"


def test_sqlite_source_reads_typed_batches_and_refuses_writes(
    tmp_path: Path, duck: Warehouse
) -> None:
    db = _sqlite(tmp_path / "s.db")
    source = Source.from_url(f"sqlite:///{db}", duck)
    cols = source.describe("SELECT id, name, price FROM t")
    assert [c.name for c in cols] == ["id", "name", "price"]
    assert "int" in cols[0].type and "string" in cols[1].type and "double" in cols[2].type
    for sql in ("DELETE FROM t", "SELECT 1; DELETE FROM t", "UPDATE t SET id = 0"):
        with pytest.raises(DataError), source.reader(sql) as r:
            r.read_all()
    n = retrieve(Retrieval(source, "SELECT * FROM t"), duck, "copy")
    assert n == 1000
    assert duck.rows("SELECT count(note), sum(id), max(name) FROM copy")[0] == (400, 499500, "n999")
    # named parameters use the sqlite3 driver (DB-API fetchmany path)
    n = retrieve(Retrieval(source, "SELECT * FROM t WHERE id < :n", {"n": 10}), duck, "few")
    assert n == 10 and duck.rows("SELECT count(*) FROM few")[0][0] == 10
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (1000,)


def test_missing_sources_are_clear_errors(tmp_path: Path, duck: Warehouse) -> None:
    with pytest.raises(DataError, match="does not exist"):
        Source.from_url(f"sqlite:///{tmp_path}/nope.db", duck).describe("SELECT 1")
    with pytest.raises(DataError, match="parquet"):
        Source.from_url(tmp_path / "nope.parquet", duck).describe()
    with pytest.raises(DataError, match="does not exist"):
        Source.from_url(tmp_path / "nope.duckdb").describe("SELECT 1")


def test_parquet_and_csv_folders_are_sources(tmp_path: Path, duck: Warehouse) -> None:
    folder = tmp_path / "pq"
    (folder / "sub").mkdir(parents=True)
    data = sample_table(300)
    pq.write_table(data.slice(0, 100), folder / "a.parquet")
    pq.write_table(data.slice(100), folder / "sub" / "b.parquet")
    source = Source.from_url(folder, duck)
    assert source.kind == "parquet"
    assert [c.name for c in source.describe()] == data.column_names
    assert retrieve(Retrieval(source, "SELECT * FROM source WHERE label = 1"), duck, "pq") == 150
    csv = tmp_path / "x.csv"
    csv.write_text("id,name\n1,a\n2,b\n")
    assert retrieve(Retrieval(Source.from_url(csv, duck)), duck, "csv") == 2
    assert duck.rows("SELECT name FROM csv ORDER BY id") == [("a",), ("b",)]


def test_duckdb_file_source_is_read_only(tmp_path: Path, duck: Warehouse) -> None:
    from dmv.data.engines import open_warehouse

    other = tmp_path / "other.duckdb"
    with open_warehouse(other) as wh:
        load(wh, "t", pa.table({"a": [1, 2, 3]}))
    source = Source.from_url(other, duck)
    assert retrieve(Retrieval(source, "SELECT * FROM t"), duck, "t_copy") == 3
    with pytest.raises(DataError):
        source.describe("CREATE TABLE x AS SELECT 1")
