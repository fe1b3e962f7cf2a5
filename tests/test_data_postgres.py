"""PostgreSQL pushdown: the same spec gives the same parts and fingerprints as DuckDB."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data_conftest
from data_conftest import ids_by_part, load, sample_table
from dmv.data._sql import hash60, hash64_from_raw, hash_raw, value_text
from dmv.data.export import export_part, read_part
from dmv.data.fingerprint import measure_table, verify_parts
from dmv.data.leakage import check_leakage
from dmv.data.records import SplitSpec
from dmv.data.sources import Retrieval, Source
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, ImmutableError, StorageError

pytestmark = pytest.mark.postgres

duck = data_conftest.duck
pg = data_conftest.pg
pg_url = data_conftest.pg_url


@pytest.mark.parametrize(
    "spec",
    [
        SplitSpec("key", "user_id"),
        SplitSpec("group", "category", salt="v2"),
        SplitSpec("key", "id", ratios={"train": 0.6, "valid": 0.2, "test": 0.2}),
        SplitSpec("row"),
        SplitSpec("time", "ts"),
    ],
    ids=lambda s: f"{s.by}-{s.column}",
)
def test_same_spec_same_parts_on_duckdb_and_postgres(
    duck: Warehouse, pg: Warehouse, spec: SplitSpec
) -> None:
    data = sample_table(3000)
    load(duck, "src", data)
    load(pg, "src", data)
    a = store_split(duck, "SELECT * FROM src", spec, "m__d__s")
    b = store_split(pg, "SELECT * FROM src", spec, "m__d__s")
    assert ids_by_part(duck, a) == ids_by_part(pg, b)
    assert [p.fingerprint for p in a.parts] == [p.fingerprint for p in b.parts]
    assert a.content_fingerprint == b.content_fingerprint
    assert a.cutoffs == b.cutoffs or spec.by == "time"  # text of timestamps may differ
    assert (b.dialect == "postgresql" and "md5" in b.assignment_sql) or spec.by == "time"


def test_canonical_text_and_hash_agree_across_engines(duck: Warehouse, pg: Warehouse) -> None:
    rng = random.Random(7)
    floats = [0.0, -0.0, 1.0, -1.0, 100.0, 0.1, 1 / 3, 1e15, 1e15 + 0.5, 9.999999999999998e15]
    floats += [1e16, 1e20, 1e-4, 1e-5, 2.5e-310, 1.7976931348623157e308, math.inf, -math.inf]
    floats += [math.nan, 123456789.123, 0.30000000000000004, -4.2e-7]
    floats += [rng.uniform(-1e6, 1e6) for _ in range(200)]
    floats += [float(rng.randint(-(10**15), 10**15)) for _ in range(50)]
    floats += [rng.uniform(1e15, 1e16) for _ in range(50)]
    floats += [math.ldexp(rng.random(), rng.randint(-1070, 1020)) for _ in range(200)]
    n = len(floats)
    data = pa.table(
        {
            "f": pa.array(floats, pa.float64()),
            "r": pa.array([float(i) / 7 for i in range(n)], pa.float32()),
            "t": pa.array([f"tëxt 'q' {i}" if i % 5 else None for i in range(n)], pa.string()),
            "i": pa.array([i * 10**12 - 5 for i in range(n)], pa.int64()),
            "d": pa.array([dt.date(1969, 12, 1) + dt.timedelta(days=i) for i in range(n)]),
            "ts": pa.array(
                [dt.datetime(2024, 1, 1, 0, 0, 0, i * 1013 % 1_000_000) for i in range(n)],
                pa.timestamp("us"),
            ),
            "tz": pa.array(
                [dt.datetime(2024, 3, 1, i % 24, tzinfo=dt.UTC) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "b": pa.array([i % 3 == 0 for i in range(n)]),
            "k": pa.array(list(range(n)), pa.int64()),
        }
    )
    load(duck, "v", data)
    load(pg, "v", data)
    for col in data.column_names:
        dtype = dict((c.name, c.type) for c in duck.table_columns("v"))[col]
        ptype = dict((c.name, c.type) for c in pg.table_columns("v"))[col]
        from dmv.data._sql import type_family

        fam = type_family(dtype)
        assert fam == type_family(ptype), (col, dtype, ptype)
        d = duck.rows(f"SELECT k, {value_text(duck.sql, col, fam)} FROM v ORDER BY 1")
        p = pg.rows(f"SELECT k, {value_text(pg.sql, col, fam)} FROM v ORDER BY 1")
        diffs = [(x, y) for x, y in zip(d, p, strict=True) if x != y]
        assert not diffs, f"{col}: {diffs[:5]}"
    assert measure_table(duck, "v").fingerprint == measure_table(pg, "v").fingerprint
    # md5-v1 is the first 15 hex digits of md5, in both engines and in Python
    words = ["", "a", "ünïcode", "x" * 300, str(uuid.UUID(int=5))]
    for w in words:
        want = int(hashlib.md5(w.encode()).hexdigest()[:15], 16)
        lit = "'" + w.replace("'", "''") + "'"
        assert duck.rows(f"SELECT {hash60(duck.sql, lit)}")[0][0] == want
        assert pg.rows(f"SELECT {hash60(pg.sql, lit)}")[0][0] == want


def test_v2_fingerprint_is_identical_on_duckdb_and_postgres(duck: Warehouse, pg: Warehouse) -> None:
    """md5sum-v2 of every column type family, edge values and NULLs included: the same
    in both engines and equal to the documented encoding computed in Python."""
    data = data_conftest.every_family(binary=False)  # PostgreSQL loads no binary from Arrow
    load(duck, "v", data)
    load(pg, "v", data)
    want = data_conftest.fingerprint_v2(data)
    assert measure_table(duck, "v").fingerprint == want
    assert measure_table(pg, "v").fingerprint == want
    pg.execute("CREATE TABLE w AS SELECT i, decode('00ff', 'hex') AS bin FROM v")  # bytea
    duck.execute("CREATE TABLE w AS SELECT i, '\\x00\\xff'::BLOB AS bin FROM v")
    assert measure_table(duck, "w").fingerprint == measure_table(pg, "w").fingerprint
    # the row hash: md5's first 16 hex digits, in both engines and Python
    for w in ["", "a", "ünïcode", "x" * 300]:
        want_h = int(hashlib.md5(w.encode()).hexdigest()[:16], 16)
        lit = "'" + w.replace("'", "''") + "'"
        d = duck.rows(f"SELECT {hash64_from_raw(duck.sql, hash_raw(duck.sql, lit))}")[0][0]
        p = pg.rows(f"SELECT {hash64_from_raw(pg.sql, hash_raw(pg.sql, lit))}")[0][0]
        assert d % (1 << 64) == p % (1 << 64) == want_h


def test_growth_keeps_parts_on_postgres(pg: Warehouse) -> None:
    load(pg, "src", sample_table(3000))
    pg.execute("ANALYZE src")  # unique ids, known to the planner: the staged strategy
    spec = SplitSpec("key", "id")
    before = ids_by_part(pg, store_split(pg, "SELECT * FROM src WHERE id < 2000", spec, "m__a"))
    after = ids_by_part(pg, store_split(pg, "SELECT * FROM src", spec, "m__b"))
    assert all(ids <= after[name] for name, ids in before.items())


def test_failed_split_leaves_no_tables_in_postgres(pg: Warehouse) -> None:
    load(pg, "src", sample_table(300))
    with pytest.raises(DataError, match="3 NULL"):
        store_split(
            pg,
            "SELECT id, CASE WHEN id < 3 THEN NULL ELSE user_id END AS u FROM src",
            SplitSpec("key", "u"),
            "m__f",
        )

    def prefix(content: str) -> str:
        pg.execute('CREATE TABLE "m__g__valid" (a integer)')
        return "m__g"

    with pytest.raises(ImmutableError):
        store_split(pg, "SELECT * FROM src", SplitSpec("row"), prefix)
    rows = pg.rows("SELECT tablename FROM pg_tables WHERE tablename LIKE 'm\\_\\_%'")
    assert rows == []
    with pytest.raises(DataError, match="division by zero"):
        store_split(pg, "SELECT id / (id - 150) AS x FROM src", SplitSpec("row"), "m__h")
    assert pg.rows("SELECT tablename FROM pg_tables WHERE tablename LIKE 'm\\_\\_%'") == []


def test_verify_leakage_and_export_on_postgres(pg: Warehouse, tmp_path: Path) -> None:
    load(pg, "src", sample_table(2000))
    result = store_split(pg, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__v")
    assert verify_parts(pg, result).ok
    assert check_leakage(pg, result).ok
    first = pg.rows('SELECT min(id) FROM "m__v__valid"')[0][0]
    pg.execute(f'UPDATE "m__v__valid" SET price = price + 0.01 WHERE id = {first}')
    report = verify_parts(pg, result)
    assert [(m.part, m.what) for m in report.mismatches] == [("valid", "fingerprint")]
    out = export_part(pg, "m__v__train", tmp_path / "train.parquet")
    assert out.rows == result.part("train").rows == pq.read_table(out.path).num_rows
    arrow = read_part(pg, "m__v__test", format="arrow")
    assert isinstance(arrow, pa.Table) and arrow.num_rows == result.part("test").rows


def test_postgres_source_refuses_writes(pg: Warehouse, pg_url: str, duck: Warehouse) -> None:
    load(pg, "src", sample_table(50))
    schema = pg.rows("SELECT current_schema()")[0][0]
    source = Source.from_url(pg_url, duck)
    columns = source.describe(f'SELECT id, price FROM "{schema}".src')
    assert [(c.name, c.type) for c in columns] == [("id", "bigint"), ("price", "double precision")]
    with (
        pytest.raises(DataError, match="modifies data"),
        source.reader(f'WITH d AS (DELETE FROM "{schema}".src RETURNING *) SELECT * FROM d') as r,
    ):
        r.read_all()
    pg.execute("CREATE SEQUENCE seq")
    nextval = f"SELECT nextval('\"{schema}\".seq') AS n"
    with pytest.raises(DataError, match="read-only"), source.reader(nextval) as r:
        r.read_all()
    with pytest.raises(DataError):
        source.describe(f'SELECT 1; DROP TABLE "{schema}".src')
    assert pg.rows("SELECT count(*) FROM src")[0][0] == 50
    # the same rows stream into the DuckDB warehouse
    result = store_split(
        duck,
        Retrieval(source, f'SELECT * FROM "{schema}".src WHERE id < %(n)s', {"n": 40}),
        SplitSpec("key", "id"),
        "m__pg",
    )
    assert result.rows == 40


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="cannot reach"):
        Source.from_url("postgresql://postgres:hunter2@127.0.0.1:1/test").describe("SELECT 1")
    from dmv.data.engines import open_warehouse

    with pytest.raises(StorageError) as info:
        open_warehouse("postgresql://postgres:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(info.value)


def test_tricky_text_survives_loading_into_postgres(duck: Warehouse, pg: Warehouse) -> None:
    texts = ["", None, "a,b", 'quote "x"', "line\nbreak", "tab\tand\\backslash", "ünï 😀", " "]
    data = pa.table({"k": pa.array(range(len(texts)), pa.int64()), "t": pa.array(texts)})
    load(duck, "s", data)
    load(pg, "s", data)
    assert pg.rows("SELECT k, t FROM s ORDER BY k") == list(enumerate(texts))
    assert measure_table(duck, "s").fingerprint == measure_table(pg, "s").fingerprint


def _rows_inserted(con: Any) -> int:
    """Rows inserted into the database, those of rolled back transactions too.

    A closed connection reports its counts shortly after it ends: read until steady.
    """
    import time

    seen = -1
    for _ in range(50):
        con.execute("SELECT pg_stat_clear_snapshot()")
        (now,) = con.execute(
            "SELECT tup_inserted FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        if now == seen:
            return int(now)
        seen = int(now)
        time.sleep(0.2)
    return seen


def test_an_identical_split_on_postgres_writes_nothing(tmp_path: Path, pg_database: str) -> None:
    import psycopg

    import dmv
    from dmv.data.engines import open_warehouse

    project = dmv.init(tmp_path / "p", warehouse=pg_database)
    with open_warehouse(pg_database) as wh:
        load(wh, "src", sample_table(20_000))
    project.data_query("m", sql="SELECT * FROM src", id="0123")

    def stored() -> tuple[object, ...]:
        with psycopg.connect(pg_database) as con:
            tables = con.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relkind IN ('r', 'v') AND relnamespace = 'public'::regnamespace "
                "ORDER BY relname"
            ).fetchall()
            inserted = _rows_inserted(con)
        files = [f for f in (project.root / ".dmv").rglob("*") if f.is_file()]
        return tuple(tables), inserted, sum(f.stat().st_size for f in files)

    first = project.data_split("m", "0123", by="time:ts")
    before = stored()
    again = project.data_split("m", "0123", by="time:ts")
    assert stored() == before
    assert (again.split, again.already_stored) == (first.split, True)
    # a part dropped behind dmv's back is rebuilt, the one case that writes
    with open_warehouse(pg_database) as wh:
        wh.execute(f'DROP TABLE "{first.parts[0]["table"]}"')
    rebuilt = project.data_split("m", "0123", by="time:ts")
    assert (rebuilt.split, rebuilt.rebuilt) == (first.split, True)
    assert project.data_verify("m", first.ref)["ok"]
    # and so is a part whose rows were changed
    with open_warehouse(pg_database) as wh:
        wh.execute(f'UPDATE "{first.parts[1]["table"]}" SET price = -1')
    assert not project.data_verify("m", first.ref)["ok"]
    again = project.data_split("m", "0123", by="time:ts")
    assert (again.split, again.rebuilt) == (first.split, True)
    assert project.data_verify("m", first.ref)["ok"]
    project.close()


def test_a_text_key_s_distinct_count_is_worded_honestly(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import dmv
    from dmv.cli import main
    from dmv.data.engines import open_warehouse

    project = dmv.init(tmp_path / "p", warehouse=pg_database)
    with open_warehouse(pg_database) as wh:
        load(wh, "src", sample_table(2_000))
    sql = "SELECT id, 'u' || CAST(user_id AS TEXT) AS who FROM src"
    data = project.data_query("m", sql=sql).data
    project.close()
    args = ["-C", str(tmp_path / "p"), "data", "split", "m", data, "--by", "key:who"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "?" not in out
        and "who: text values; their distinct count is not estimated on postgresql" in out
    )
    assert main([*args, "--json"]) == 0
    span = json.loads(capsys.readouterr().out)["parts"][0]["range"]
    assert span["distinct"] is None and "postgresql" in span["note"]
