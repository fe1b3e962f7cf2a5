"""Stored splits on the DuckDB warehouse: determinism, stability, entities, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import data_conftest
from conftest import leftovers
from data_conftest import ids_by_part, load, sample_table
from dmv.data.files import bucket
from dmv.data.leakage import check_leakage
from dmv.data.records import SplitResult, SplitSpec
from dmv.data.sources import Retrieval, Source
from dmv.data.split import parse_by, parse_ratios, store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, ImmutableError, InvalidInput

duck = data_conftest.duck


def _tables(wh: Warehouse, prefix: str) -> list[str]:
    rows = wh.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE $p",
        {"p": prefix + "%"},
    )
    return sorted(r[0] for r in rows)


def test_key_split_stores_named_tables_with_every_row(duck: Warehouse) -> None:
    load(duck, "src", sample_table(5000))
    progress: list[tuple[str, int, int | None]] = []
    result = store_split(
        duck,
        "SELECT * FROM src",
        SplitSpec(by="key", column="user_id"),
        "price_model__0123__efgh",
        progress=lambda step, done, total: progress.append((step, done, total)),
    )
    assert _tables(duck, "price_model__0123__efgh") == [
        "price_model__0123__efgh__test",
        "price_model__0123__efgh__train",
        "price_model__0123__efgh__valid",
    ]
    parts = ids_by_part(duck, result)
    assert sum(len(v) for v in parts.values()) == 5000 == result.rows
    assert set().union(*parts.values()) == set(range(5000))
    assert 0.7 < len(parts["train"]) / 5000 < 0.9
    assert ("store", 3, 3) in progress
    # no temporary staging table stays behind
    assert leftovers(duck) == []


def test_assignment_is_the_published_md5_formula(duck: Warehouse) -> None:
    load(duck, "src", sample_table(3000))
    spec = SplitSpec(by="key", column="user_id", salt="s1")
    result = store_split(duck, "SELECT * FROM src", spec, "m__d__s")
    for name, part in ((p.name, p) for p in result.parts):
        for (user,) in duck.rows(f'SELECT DISTINCT user_id FROM "{part.table}"'):
            assert bucket(str(user), spec) == name
    assert result.spec.to_dict()["hash"] == "md5-v1"


def test_key_and_group_never_straddle_parts(duck: Warehouse) -> None:
    load(duck, "src", sample_table(4000, users=150))
    for by in ("key", "group"):
        result = store_split(
            duck, "SELECT * FROM src", SplitSpec(by=by, column="user_id"), f"m_{by}"
        )
        users = ids_by_part(duck, result, "user_id")
        assert not (users["train"] & users["valid"]) and not (users["train"] & users["test"])
        assert not (users["valid"] & users["test"])
        assert check_leakage(duck, result).ok


def test_growth_keeps_existing_rows_in_their_part(duck: Warehouse) -> None:
    load(duck, "src", sample_table(6000))
    spec = SplitSpec(by="key", column="id")
    before = ids_by_part(duck, store_split(duck, "SELECT * FROM src WHERE id < 4000", spec, "m__a"))
    after = ids_by_part(duck, store_split(duck, "SELECT * FROM src", spec, "m__b"))
    for name, ids in before.items():
        assert ids <= after[name], f"rows moved out of {name}"
    # a different salt gives a different assignment (so the salt is really used)
    salted = ids_by_part(
        duck, store_split(duck, "SELECT * FROM src", SplitSpec("key", "id", salt="x"), "m__c")
    )
    assert salted != after


def test_time_split_orders_parts_and_records_cutoffs(duck: Warehouse) -> None:
    load(duck, "src", sample_table(5000))
    result = store_split(duck, "SELECT * FROM src", SplitSpec(by="time", column="ts"), "m__t")
    bounds = {
        p.name: duck.rows(f'SELECT min(ts), max(ts), count(*) FROM "{p.table}"')[0]
        for p in result.parts
    }
    assert bounds["train"][1] < bounds["valid"][0] <= bounds["valid"][1] < bounds["test"][0]
    assert bounds["train"][2] == 4000 and bounds["valid"][2] == 500
    assert len(result.cutoffs) == 2 and result.cutoffs[0].startswith("2024-")
    assert check_leakage(duck, result).ok
    # fixed cutoffs are honoured as given
    fixed = store_split(
        duck,
        "SELECT * FROM src",
        SplitSpec(by="time", column="ts", cutoffs=result.cutoffs),
        "m__t2",
    )
    assert [p.rows for p in fixed.parts] == [p.rows for p in result.parts]


def test_row_split_hashes_the_whole_row_and_says_so(duck: Warehouse) -> None:
    data = sample_table(2000)
    load(duck, "src", data)
    result = store_split(
        duck, "SELECT * FROM src UNION ALL SELECT * FROM src", SplitSpec(by="row"), "m__r"
    )
    assert result.rows == 4000
    # duplicates of a row always land in the same part
    assert check_leakage(duck, result).ok
    assert "whole row" in result.spec.to_dict()["hashes"]


def test_result_json_round_trip(duck: Warehouse) -> None:
    load(duck, "src", sample_table(500))
    result = store_split(duck, "SELECT * FROM src", SplitSpec(by="key", column="user_id"), "m__j")
    again = SplitResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.part("train").profile["price"].nulls == result.part("train").profile["price"].nulls


def test_split_from_a_sqlite_source(duck: Warehouse, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER, user_id INTEGER, name TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i % 50, f"n{i}") for i in range(1000)])
    con.commit()
    con.close()
    source = Source.from_url(f"sqlite:///{db}", duck)
    result = store_split(
        duck,
        Retrieval(source, "SELECT * FROM t WHERE id < 800"),
        SplitSpec(by="group", column="user_id"),
        lambda content: "m__sq",
    )
    assert result.rows == 800
    assert leftovers(duck) == []


@pytest.mark.parametrize(
    ("sql", "spec", "error", "words"),
    [
        ("SELECT * FROM src WHERE id < 0", SplitSpec("key", "id"), DataError, "no rows"),
        (
            "SELECT id, CASE WHEN id % 10 = 0 THEN NULL ELSE user_id END AS user_id FROM src",
            SplitSpec("key", "user_id"),
            DataError,
            "'user_id' has 50 NULL",
        ),
        ("SELECT * FROM src", SplitSpec("key", "nope"), InvalidInput, "'nope' is not in"),
        ("SELECT * FROM src", SplitSpec("key", "price"), InvalidInput, "cannot be a split key"),
        ("SELECT * FROM src", SplitSpec("time", "category"), InvalidInput, "time split"),
        ("SELECT * FROM nowhere", SplitSpec("row"), DataError, "nowhere"),
        ("DELETE FROM src", SplitSpec("row"), DataError, "only SELECT"),
        (
            "SELECT CAST(CASE WHEN id = 400 THEN 'x' ELSE '1' END AS INTEGER) AS v FROM src",
            SplitSpec("row"),
            DataError,
            "Conversion",
        ),
    ],
)
def test_bad_input_fails_clearly_and_leaves_no_table(
    duck: Warehouse, sql: str, spec: SplitSpec, error: type[Exception], words: str
) -> None:
    load(duck, "src", sample_table(500))
    with pytest.raises(error, match=words):
        store_split(duck, sql, spec, "m__bad")
    assert _tables(duck, "m__bad") == []
    assert duck.rows("SELECT count(*) FROM src")[0][0] == 500


def test_failure_after_tables_exist_rolls_everything_back(duck: Warehouse) -> None:
    load(duck, "src", sample_table(500))

    def prefix(content: str) -> str:
        # simulate a concurrent writer: the test part appears after the data is staged
        duck.execute('CREATE TABLE "m__x__test" (a INTEGER)')
        return "m__x"

    with pytest.raises(ImmutableError, match="never overwritten"):
        store_split(duck, "SELECT * FROM src", SplitSpec("row"), prefix)
    assert _tables(duck, "m__x") == []


def test_existing_split_is_never_overwritten(duck: Warehouse) -> None:
    load(duck, "src", sample_table(300))
    store_split(duck, "SELECT * FROM src", SplitSpec("row"), "m__once")
    with pytest.raises(ImmutableError):
        store_split(duck, "SELECT * FROM src", SplitSpec("row"), "m__once")


@pytest.mark.parametrize("prefix", ["Bad", "m; DROP TABLE src", "m--x", "_m", "a" * 60])
def test_table_prefix_is_validated(duck: Warehouse, prefix: str) -> None:
    load(duck, "src", sample_table(10))
    with pytest.raises(InvalidInput):
        store_split(duck, "SELECT * FROM src", SplitSpec("row"), prefix)
    assert duck.rows("SELECT count(*) FROM src")[0][0] == 10


def test_spec_validation() -> None:
    with pytest.raises(InvalidInput, match="add up"):
        SplitSpec("row", ratios={"train": 0.8, "test": 0.1})
    with pytest.raises(InvalidInput, match="part name"):
        SplitSpec("row", ratios={"Train": 0.5, "test": 0.5})
    with pytest.raises(InvalidInput, match="needs a column"):
        SplitSpec("key")
    with pytest.raises(InvalidInput, match="no column"):
        SplitSpec("row", column="x")
    with pytest.raises(InvalidInput, match="hash"):
        SplitSpec("row", hash="python-hash")
    with pytest.raises(InvalidInput):
        SplitSpec("time", "ts", cutoffs=("2024-01-01",))
    assert SplitSpec("row", ratios={"a": 0.7, "b": 0.2, "c": 0.1}).parts == ("a", "b", "c")
    assert parse_by("key:user_id") == ("key", "user_id") and parse_by("row") == ("row", None)
    assert parse_ratios("train=0.7,test=0.3") == {"train": 0.7, "test": 0.3}
    with pytest.raises(InvalidInput):
        parse_ratios("train:0.7")
    spec = SplitSpec("key", "u", salt="x")
    assert SplitSpec.from_dict(spec.to_dict()) == spec and hash(spec) == hash(
        SplitSpec.from_dict(spec.to_dict())
    )


def test_keyed_and_staged_strategies_store_the_same(
    duck: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dmv.data import _build

    load(duck, "src", sample_table(4000, users=100))
    spec = SplitSpec("group", "user_id", salt="z")
    keyed = store_split(duck, "SELECT * FROM src", spec, "m__k", storage="tables")
    monkeypatch.setattr(_build, "prefer_keyed", lambda *a: False)
    staged = store_split(duck, "SELECT * FROM src", spec, "m__s", storage="tables")
    shared = store_split(duck, "SELECT * FROM src", spec, "m__h")
    assert shared.storage["kind"] == "shared"
    assert [(p.rows, p.fingerprint, dict(p.profile)) for p in shared.parts] == [
        (p.rows, p.fingerprint, dict(p.profile)) for p in staged.parts
    ]
    assert ids_by_part(duck, shared) == ids_by_part(duck, staged)
    assert [(p.rows, p.fingerprint, dict(p.profile)) for p in keyed.parts] == [
        (p.rows, p.fingerprint, dict(p.profile)) for p in staged.parts
    ]
    assert ids_by_part(duck, keyed) == ids_by_part(duck, staged)
    monkeypatch.setattr(_build, "prefer_keyed", lambda *a: True)
    with pytest.raises(DataError, match="'user_id' has 400 NULL"):
        store_split(
            duck,
            "SELECT id, CASE WHEN id % 10 = 0 THEN NULL ELSE user_id END AS user_id FROM src",
            spec,
            "m__n",
            storage="tables",
        )
    assert _tables(duck, "m__n") == [] and leftovers(duck) == []


def test_a_time_split_on_text_names_the_cast_that_fixes_it(duck: Warehouse) -> None:
    load(duck, "src", sample_table(500))
    sql = "SELECT id, CAST(ts AS VARCHAR) AS day FROM src"
    with pytest.raises(InvalidInput, match="has type VARCHAR") as caught:
        store_split(duck, sql, SplitSpec("time", "day"), "m__t")
    hint = caught.value.hint or ""
    assert 'CAST("day" AS TIMESTAMP)' in hint and "time:day_ts" in hint
    # following the hint works
    fixed = f'SELECT *, CAST("day" AS TIMESTAMP) AS "day_ts" FROM ({sql}) AS q'
    result = store_split(duck, fixed, SplitSpec("time", "day_ts"), "m__t")
    assert sum(p.rows for p in result.parts) == 500
