"""The Spark warehouse over a real Spark Connect server, and identity across engines."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data_conftest
import spark_conftest
from data_conftest import ids_by_part, load, sample_table
from dmv.data.engines import open_warehouse
from dmv.data.export import export_part
from dmv.data.fingerprint import measure_table, verify_parts
from dmv.data.leakage import check_leakage
from dmv.data.records import SplitSpec
from dmv.data.shared import drop_split_tables
from dmv.data.split import store_split
from dmv.data.verified import read_verified
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, ImmutableError, IntegrityError

duck = data_conftest.duck
pg_url = data_conftest.pg_url
pg = data_conftest.pg
spark_url = spark_conftest.spark_url
spark = spark_conftest.spark

pytestmark = pytest.mark.timeout(300)

UTC = dt.UTC


def every_type(n: int = 240) -> pa.Table:
    """One table of every supported key and column type, NULLs in each column."""

    def maybe(i: int, value: object) -> object:
        return None if i % 11 == 5 else value

    ids = list(range(n))
    base = dt.datetime(2023, 3, 1, 12, 30, 15, 250000)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "small": pa.array([maybe(i, i % 300 - 150) for i in ids], pa.int32()),
            "name": pa.array([maybe(i, f"user {i % 37}") for i in ids], pa.string()),
            "uni": pa.array([maybe(i, f"Zoë-{i % 9}-日本-🙂") for i in ids], pa.string()),
            "amount": pa.array(
                [maybe(i, decimal.Decimal(i * 37 % 1000 - 500) / 100) for i in ids],
                pa.decimal128(10, 2),
            ),
            "day": pa.array([maybe(i, dt.date(1969, 12, 1) + dt.timedelta(i)) for i in ids]),
            "at": pa.array(
                [maybe(i, base + dt.timedelta(hours=i, microseconds=i)) for i in ids],
                pa.timestamp("us"),
            ),
            "at_tz": pa.array(
                [maybe(i, (base + dt.timedelta(minutes=13 * i)).replace(tzinfo=UTC)) for i in ids],
                pa.timestamp("us", tz="UTC"),
            ),
            "flag": pa.array([maybe(i, i % 3 == 0) for i in ids], pa.bool_()),
            "score": pa.array(
                [
                    maybe(i, [0.1, 1.5, -2.0, 123.456, 1e20, 3e-5, 12345678.5, 0.0][i % 8])
                    for i in ids
                ],
                pa.float64(),
            ),
        }
    )


KEYS = ["id", "small", "name", "uni", "amount", "day", "at", "flag"]


def test_same_assignment_and_fingerprints_on_duckdb_postgres_and_spark(
    duck: Warehouse, pg: Warehouse, spark: Warehouse
) -> None:
    data = every_type()
    engines = {"duckdb": duck, "postgresql": pg, "spark": spark}
    for wh in engines.values():
        load(wh, "src", data)
    whole = {name: measure_table(wh, "src").fingerprint for name, wh in engines.items()}
    assert len(set(whole.values())) == 1, whole
    for by, column in [("row", None), ("group", "uni"), ("key", "at")]:
        spec = SplitSpec(by, column, {"train": 0.6, "valid": 0.2, "test": 0.2}, salt="x")
        prefix = f"m__d{by[0]}__{(column or 'r').replace('_', '')}"
        sql = f'SELECT * FROM src WHERE "{column}" IS NOT NULL' if column else "SELECT * FROM src"
        results = {
            name: store_split(wh, sql, spec, prefix, allow_empty=True)
            for name, wh in engines.items()
        }
        assignment = {n: ids_by_part(engines[n], r) for n, r in results.items()}
        assert assignment["duckdb"] == assignment["postgresql"] == assignment["spark"], by
        assert len({r.content_fingerprint for r in results.values()}) == 1
        for part in spec.parts:
            fps = {n: r.part(part).fingerprint for n, r in results.items()}
            assert len(set(fps.values())) == 1, (by, part, fps)
        if column is None:
            assert results["spark"].content_fingerprint == whole["spark"]


def test_v2_fingerprint_is_identical_on_duckdb_postgres_and_spark(
    duck: Warehouse, pg: Warehouse, spark: Warehouse
) -> None:
    """md5sum-v2 of every column type family (ints, doubles with -0.0, NaN, ±inf,
    subnormals and 1e300, decimals, dates, timestamps with and without zone, booleans,
    text with unicode, separators, empty and NULL): one fingerprint on the three
    engines, the one the documented encoding gives in Python."""
    data = data_conftest.every_family(binary=False)
    want = data_conftest.fingerprint_v2(data)
    for wh in (duck, pg, spark):
        load(wh, "v", data)
        assert measure_table(wh, "v").fingerprint == want, wh.dialect
    binary = data_conftest.every_family().select(["i", "bin"])  # PostgreSQL: see its test
    for wh in (duck, spark):
        load(wh, "b", binary)
        assert measure_table(wh, "b").fingerprint == data_conftest.fingerprint_v2(binary)
    # a split's parts and content: the same v2 fingerprints on the three engines
    spec = SplitSpec("row", None, {"a": 0.5, "b": 0.5}, salt="v2")
    results = [
        store_split(wh, "SELECT * FROM v", spec, "m__v2__s", allow_empty=True)
        for wh in (duck, pg, spark)
    ]
    assert len({r.content_fingerprint for r in results}) == 1
    assert results[0].content_fingerprint == want


@pytest.mark.slow
def test_every_type_can_be_a_key_on_spark(duck: Warehouse, spark: Warehouse) -> None:
    data = every_type(120)
    data = data.filter(pa.compute.is_valid(data.column("small")))
    for wh in (duck, spark):
        load(wh, "src", data)
    for column in KEYS:
        spec = SplitSpec("key", column, {"a": 0.5, "b": 0.5}, salt="k")
        got = [
            ids_by_part(
                wh, store_split(wh, "SELECT * FROM src", spec, f"k__{i}__x", allow_empty=True)
            )
            for i, wh in enumerate((duck, spark))
        ]
        assert got[0] == got[1], column
        assert duck.table_exists("k__0__x__a") and spark.table_exists("k__1__x__a")
        for wh in (duck, spark):
            drop_split_tables(wh, [f"k__{0 if wh is duck else 1}__x__{p}" for p in spec.parts])


def test_a_type_spark_cannot_fingerprint_identically_is_refused(spark: Warehouse) -> None:
    spark.execute("CREATE TABLE src AS SELECT id, array(id, id) AS pair FROM range(10)")
    spec = SplitSpec("row", None, {"a": 0.5, "b": 0.5})
    with pytest.raises(DataError, match=r"pair.*cannot fingerprint identically"):
        store_split(spark, "SELECT * FROM src", spec, "m__d1__s1")
    assert spark.list_tables() == ["src"]  # nothing left behind


def test_spark_split_verify_leakage_export_and_read(spark: Warehouse, tmp_path: Path) -> None:
    load(spark, "events", sample_table(3000))
    spec = SplitSpec("group", "user_id", {"train": 0.8, "test": 0.2}, salt="g")
    from dmv.data.sources import Retrieval, Source

    # the retrieval's parameters use Spark's :name style
    sql = "SELECT * FROM events WHERE label >= :lo"
    retrieval = Retrieval(Source.from_url(None, spark), sql, {"lo": 0})
    result = store_split(spark, retrieval, spec, "m__d1__s1")
    assert result.rows == 3000 and result.dialect == "spark"
    assert sorted(spark.list_tables()) == ["events", "m__d1__s1__test", "m__d1__s1__train"]
    assert verify_parts(spark, result).ok
    report = check_leakage(spark, result, key_columns=["user_id"])
    assert report.ok, report.to_dict()
    out = export_part(spark, "m__d1__s1__train", tmp_path / "train.parquet")
    table = pq.read_table(out.path)
    assert table.num_rows == result.part("train").rows == out.rows
    read = read_verified(spark, result.part("train"))
    assert read.table.num_rows == table.num_rows and read.record is not None
    assert read_verified(spark, result.part("train"), dict([read.record])).record is None
    with pytest.raises(ImmutableError):
        store_split(spark, "SELECT * FROM events", spec, "m__d1__s1")
    spark.execute('INSERT INTO "m__d1__s1__test" SELECT * FROM events LIMIT 1')
    assert [m.what for m in verify_parts(spark, result).mismatches] == ["rows", "fingerprint"]
    with pytest.raises(IntegrityError):
        read_verified(spark, result.part("test"))


def test_spark_reader_streams_batches(spark: Warehouse) -> None:
    spark.execute("CREATE TABLE big AS SELECT id, repeat('x', 100) AS pad FROM range(300000)")
    reader = spark.reader('SELECT * FROM "big"')
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 300000
    assert len(sizes) > 1 and max(sizes) < 300000  # more than one batch: streamed


def test_spark_retrieval_is_read_only(spark: Warehouse) -> None:
    from dmv.data.sources import Source

    spark.execute("CREATE TABLE src AS SELECT id FROM range(5)")
    source = Source.from_url(None, spark)
    for sql in [
        "WITH x AS (SELECT 1 AS id) INSERT INTO src SELECT id FROM x",
        "FROM src INSERT INTO src SELECT id",
        "DROP TABLE src",
    ]:
        with pytest.raises(DataError):
            source.query_text(sql)
    assert spark.rows('SELECT count(*) FROM "src"')[0][0] == 5


def test_failed_spark_split_leaves_no_tables(spark: Warehouse) -> None:
    load(spark, "events", sample_table(400))
    spec = SplitSpec("key", "id", {"train": 0.999, "test": 0.001})
    with pytest.raises(DataError, match="mislead"):
        store_split(spark, "SELECT * FROM events", spec, "m__d1__s1")
    assert spark.list_tables() == ["events"]


def test_spark_url_credentials_are_not_kept(spark_url: str) -> None:
    url = f"{spark_url}/;database=t_cred;token=sekret"
    from dmv.data.credentials import strip_credentials
    from dmv.data.engines.spark import split_url, strip_token

    assert "sekret" not in strip_token(url) and strip_credentials(url) == strip_token(url)
    assert strip_token(url) == f"{spark_url}/;database=t_cred"
    remote, own = split_url(url)
    assert own == {"database": "t_cred"} and "database" not in remote and "token=sekret" in remote


def test_unreachable_spark_is_a_clear_error() -> None:
    from dmv.errors import StorageError

    with pytest.raises((StorageError, DataError)) as err:
        wh = open_warehouse("sc://127.0.0.1:9/;database=x")
        wh.close()
    assert "127.0.0.1:9" in str(err.value)
