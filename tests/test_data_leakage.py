"""Leakage: shared keys, identical rows and time overlap are found, clean splits pass."""

from __future__ import annotations

import json

import pytest

import data_conftest
from data_conftest import load, sample_table
from dmv.data.leakage import check_leakage
from dmv.data.records import LeakageReport, SplitSpec
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError

duck = data_conftest.duck


def test_clean_key_split_passes_every_check(duck: Warehouse) -> None:
    load(duck, "src", sample_table(3000))
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__c")
    report = check_leakage(duck, result, time_column=None)
    assert report.ok
    assert [c.kind for c in report.checks] == ["shared_key", "identical_rows"]


def test_leaky_split_is_reported_with_counts_and_examples(duck: Warehouse) -> None:
    load(duck, "src", sample_table(3000))
    spec = SplitSpec("key", "user_id")
    result = store_split(duck, "SELECT * FROM src", spec, "m__l", storage="tables")
    # leak on purpose: copy two train rows into test, and give one valid row a train user
    duck.execute('INSERT INTO "m__l__test" SELECT * FROM "m__l__train" ORDER BY id LIMIT 2')
    train_user = duck.rows('SELECT min(user_id) FROM "m__l__train"')[0][0]
    first = duck.rows('SELECT min(id) FROM "m__l__valid"')[0][0]
    duck.execute(f'UPDATE "m__l__valid" SET user_id = {train_user} WHERE id = {first}')
    report = check_leakage(duck, result)
    assert not report.ok
    shared = report.checks[0]
    # user 0 (id 0, copied) is now in all three parts, user 319 (id 1) in train and test
    assert train_user == 0
    assert shared.kind == "shared_key" and shared.count == 2
    assert [dict(e) for e in shared.examples] == [
        {"value": 0, "parts": ["train", "valid", "test"]},
        {"value": 319, "parts": ["train", "test"]},
    ]
    rows = report.checks[1]
    assert rows.kind == "identical_rows" and rows.count == 2
    assert rows.examples[0]["parts"] == ["train", "test"] and "price" in rows.examples[0]["row"]
    again = LeakageReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and again.to_dict()["ok"] is False


def test_time_overlap_found_in_a_random_split(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    by_row = store_split(duck, "SELECT * FROM src", SplitSpec("row"), "m__r")
    report = check_leakage(duck, by_row, time_column="ts")
    overlap = report.checks[-1]
    assert overlap.kind == "time_overlap" and overlap.count > 0
    assert overlap.examples[0]["earlier"] == "train"
    by_time = store_split(
        duck, "SELECT * FROM src", SplitSpec("time", "ts"), "m__t", storage="tables"
    )
    assert check_leakage(duck, by_time).ok
    duck.execute('INSERT INTO "m__t__test" SELECT * FROM "m__t__train" WHERE id = 5')
    leaky = check_leakage(duck, by_time, identical_rows=False)
    assert [(c.kind, c.count) for c in leaky.checks] == [("time_overlap", 1)]


def test_split_can_check_and_strict_refuses_a_leaky_split(duck: Warehouse) -> None:
    load(duck, "src", sample_table(1000))
    spec = SplitSpec("key", "user_id")
    checked = store_split(duck, "SELECT * FROM src", spec, "m__k", check=True)
    assert checked.leakage is not None and checked.leakage.ok
    assert checked.to_dict()["leakage"]["ok"] is True
    assert [c.kind for c in checked.leakage.checks] == ["shared_key", "identical_rows"]
    light = store_split(duck, "SELECT * FROM src", spec, "m__l", check=True, check_rows=False)
    assert light.leakage is not None and [c.kind for c in light.leakage.checks] == ["shared_key"]
    # split by transaction id, but users straddle the parts: strict stores nothing
    by_id = SplitSpec("key", "id")
    with pytest.raises(DataError, match="nothing was stored") as info:
        store_split(duck, "SELECT * FROM src", by_id, "m__s", strict=True, check_keys=["user_id"])
    assert info.value.details["leakage"]["checks"][1]["column"] == "user_id"
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'm__s%'"
    assert duck.rows(tables) == [(0,)]
    rows = store_split(
        duck, "SELECT * FROM src", SplitSpec("row"), "m__t", check_time="ts", check=True
    )
    assert rows.leakage is not None and not rows.leakage.ok
