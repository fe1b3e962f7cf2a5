"""Training reads only intact data: a part is proven against its fingerprint when read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

import data_conftest
import dmv
from conftest import part_storage, seed_warehouse
from data_conftest import load, sample_table
from dmv.cli import main
from dmv.data.records import SplitSpec
from dmv.data.split import store_split
from dmv.data.verified import check_key, read_verified
from dmv.data.warehouse import Warehouse
from dmv.errors import IntegrityError

duck = data_conftest.duck
pg = data_conftest.pg
pg_url = data_conftest.pg_url


@pytest.fixture
def seeded(project: dmv.Project) -> dmv.Project:
    seed_warehouse(project)
    return project


def _checks(project: dmv.Project, part: str) -> dict[str, str]:
    info = project.split_info("price-model", "0123.abcd")
    entry = next(p for p in info.result["parts"] if p["name"] == part)
    return dict(entry.get("checks") or {})


def test_one_update_in_the_warehouse_refuses_training(seeded: dmv.Project) -> None:
    table = "price_model__0123__abcd__train"
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        rows = part_storage(con, table)
        con.execute(
            f"UPDATE {rows} SET target = target + 1 WHERE patient_id = "
            f"(SELECT min(patient_id) FROM {table})"
        )
    recorded = seeded.split_info("price-model", "0123.abcd").result["parts"][0]["fingerprint"]
    with pytest.raises(IntegrityError) as err, seeded.run("price-model", data="0123.abcd") as run:
        run.dataset("train")
    message = err.value.message
    assert table in message and recorded in message
    actual = err.value.details["actual"]
    assert actual.startswith("md5sum-v2:") and actual != recorded and actual in message
    assert err.value.exit_code == 6
    # the untouched parts still read
    assert len(seeded.dataset("price-model", "0123.abcd", "test")) > 0


def test_tamper_after_the_check_was_recorded_is_still_caught(seeded: dmv.Project) -> None:
    frame = seeded.dataset("price-model", "0123.abcd", "train")  # records the engine check
    assert len(frame) > 300 and _checks(seeded, "train")
    table = "price_model__0123__abcd__train"
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        rows = part_storage(con, table)
        con.execute(
            f"UPDATE {rows} SET age = 0.5 WHERE patient_id = (SELECT min(patient_id) FROM {table})"
        )
    with pytest.raises(IntegrityError, match="price_model__0123__abcd__train"):
        seeded.dataset("price-model", "0123.abcd", "train")


@pytest.mark.parametrize(
    "change",
    [
        # the rows behind the part view: one deleted, one added, one column gone, the
        # segment gone, the view redefined
        "DELETE FROM {s} WHERE patient_id = (SELECT min(patient_id) FROM {t})",
        "INSERT INTO {s} SELECT * FROM {s} LIMIT 1",
        "ALTER TABLE {s} DROP COLUMN age",
        "DROP TABLE {s}",
        "CREATE OR REPLACE VIEW {t} AS SELECT * FROM {t}_copy",
    ],
)
def test_any_write_is_refused(seeded: dmv.Project, change: str) -> None:
    seeded.dataset("price-model", "0123.abcd", "valid")
    table = "price_model__0123__abcd__valid"
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        segment = part_storage(con, table)
        assert segment != table  # the split shares storage: the rows live in a segment
        con.execute(f"CREATE TABLE {table}_copy AS SELECT * FROM {table} LIMIT 5")
        con.execute(change.format(t=table, s=segment))
    with pytest.raises(IntegrityError, match="price_model__0123__abcd__valid"):
        seeded.dataset("price-model", "0123.abcd", "valid", format="arrow")


def test_an_untouched_part_is_proven_once_then_read_cheaply(seeded: dmv.Project) -> None:
    import duckdb as _duckdb

    # the split itself records the engine check of the rows it fingerprinted
    recorded = _checks(seeded, "train")
    assert list(recorded) == [f"duckdb-hash:{_duckdb.__version__}"]
    first = seeded.dataset("price-model", "0123.abcd", "train", format="arrow")
    checks = _checks(seeded, "train")
    assert checks == recorded
    assert checks[next(iter(checks))].startswith(f"{first.num_rows}:")
    # later reads take the cheap path: the recorded check is used, not recomputed
    # (a wrong recorded check would send the read back through md5 and re-record it)
    again = seeded.dataset("price-model", "0123.abcd", "train", format="arrow")
    assert again.equals(first) and _checks(seeded, "train") == checks


def test_cheap_path_does_not_run_the_md5_pass(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__d__s")
    part = result.part("train")
    first = read_verified(duck, part)
    assert first.record is not None and first.record[0] == check_key(duck)
    seen: list[str] = []
    original = duck.rows

    def spy(sql: str, params: object = None) -> list[tuple[object, ...]]:
        seen.append(sql)
        return original(sql, params)  # type: ignore[arg-type]

    duck.rows = spy  # type: ignore[method-assign]
    second = read_verified(duck, part, dict([first.record]))
    assert second.record is None and second.table.equals(first.table)
    assert not any("md5" in sql for sql in seen)  # only the catalog lookup of the columns


def test_cli_training_entry_refuses_with_exit_6(
    seeded: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        rows = part_storage(con, "price_model__0123__abcd__test")
        con.execute(
            f"UPDATE {rows} SET bmi = 0 WHERE patient_id IN "
            "(SELECT patient_id FROM price_model__0123__abcd__test)"
        )
    code = main(
        [
            "-C",
            str(seeded.root),
            "data",
            "export",
            "price-model",
            "0123.abcd",
            "--part",
            "test",
            "--out",
            str(seeded.root / "x.parquet"),
        ]
    )
    err = capsys.readouterr().err
    # An export is proven like a training read: what leaves dmv is what was recorded.
    assert code == 6 and "price_model__0123__abcd__test" in err
    assert not (seeded.root / "x.parquet").exists()
    code = main(["-C", str(seeded.root), "data", "verify", "price-model", "0123.abcd"])
    assert code == 6


def test_a_file_part_local_copy_is_checked(project: dmv.Project, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(12):
        (folder / f"img{i:02}.bin").write_bytes(bytes([i]) * 64)
    data = project.data_files("scans", str(folder)).data
    split = project.data_split(
        "scans", data, ratios={"train": 0.5, "test": 0.5}, allow_empty=True
    ).split
    frame = project.dataset("scans", f"{data}.{split}", "train")
    victim = Path(frame["local_path"][0])
    victim.write_bytes(b"\xff" * 64)  # same size, other bytes
    again = project.dataset("scans", f"{data}.{split}", "train")
    assert Path(again["local_path"][0]).read_bytes() != b"\xff" * 64


@pytest.mark.postgres
def test_postgres_part_is_verified_when_read(pg: Warehouse) -> None:
    load(pg, "src", sample_table(1500))
    result = store_split(pg, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__d__s")
    part = result.part("train")
    first = read_verified(pg, part)
    assert first.record is not None and first.record[0].startswith("postgresql-hash:")
    assert first.table.num_rows == part.rows
    again = read_verified(pg, part, dict([first.record]))
    assert again.record is None and again.table.num_rows == part.rows
    t = f'"{part.table}"'
    pg.execute(f"UPDATE {t} SET label = label + 1 WHERE id = (SELECT min(id) FROM {t})")
    for checks in ({}, dict([first.record])):
        with pytest.raises(IntegrityError) as err:
            read_verified(pg, part, checks)
        assert part.table in err.value.message and part.fingerprint in err.value.message


def test_dates_and_nulls_round_trip_through_the_check(duck: Warehouse) -> None:
    import pyarrow as pa

    rows = pa.table(
        {
            "k": pa.array(range(300), pa.int64()),
            "d": pa.array([dt.date(2024, 1, 1 + i % 28) for i in range(300)]),
            "s": pa.array([None if i % 5 else f"x{i}" for i in range(300)]),
        }
    )
    load(duck, "src", rows)
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "k"), "m__d__s")
    for part in result.parts:
        read = read_verified(duck, part)
        assert read.table.num_rows == part.rows


def test_an_export_is_proven_first(seeded: dmv.Project, tmp_path: Path) -> None:
    good = tmp_path / "valid.parquet"
    assert seeded.data_export("price-model", "0123.abcd", "valid", good).rows > 0
    table = "price_model__0123__abcd__train"
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        rows = part_storage(con, table)
        con.execute(
            f"UPDATE {rows} SET target = target + 1 WHERE patient_id = "
            f"(SELECT min(patient_id) FROM {table})"
        )
    out = tmp_path / "train.parquet"
    with pytest.raises(IntegrityError, match=table):
        seeded.data_export("price-model", "0123.abcd", "train", out)
    assert not out.exists()
    # The CLI says the same with the integrity exit code, and writes nothing either.
    args = ["data", "export", "price-model", "0123.abcd", "--part", "train", "--out", str(out)]
    code = main(["-C", str(seeded.root), *args])
    assert code == 6 and not out.exists()
