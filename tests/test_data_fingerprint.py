"""Fingerprints over all rows: order-independent, sensitive to every value, verifiable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

import data_conftest
from data_conftest import load, sample_table
from dmv.data.fingerprint import (
    combine,
    fingerprint_query,
    fingerprint_retrieval,
    measure_table,
    verify_parts,
)
from dmv.data.records import SplitSpec
from dmv.data.sources import Retrieval, Source
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse

duck = data_conftest.duck


def test_fingerprint_ignores_row_order(duck: Warehouse) -> None:
    load(duck, "a", sample_table(3000))
    duck.execute("CREATE TABLE b AS SELECT * FROM a ORDER BY md5(CAST(id AS VARCHAR))")
    duck.execute("CREATE TABLE c AS SELECT * FROM a ORDER BY id DESC")
    fps = {measure_table(duck, t).fingerprint for t in "abc"}
    assert len(fps) == 1
    assert fingerprint_query(duck, "SELECT * FROM a") in fps


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE t SET price = price + 0.000001 WHERE id = 1234",
        "UPDATE t SET category = 'cat1 ' WHERE id = 1234",
        "UPDATE t SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 1234",
        "UPDATE t SET label = NULL WHERE id = 1234",
        "UPDATE t SET price = 0.0 WHERE price IS NULL AND id = 97",
        "UPDATE t SET user_id = user_id + 1 WHERE id = 0",
        "DELETE FROM t WHERE id = 4999",
        "INSERT INTO t SELECT * FROM t WHERE id = 7",
    ],
)
def test_any_single_change_changes_the_fingerprint(duck: Warehouse, change: str) -> None:
    load(duck, "t", sample_table(5000))
    before = measure_table(duck, "t").fingerprint
    duck.execute(change)
    assert measure_table(duck, "t").fingerprint != before


def test_swapping_values_between_columns_is_seen(duck: Warehouse) -> None:
    load(duck, "t", pa.table({"a": ["x", "y"], "b": ["y", "x"]}))
    load(duck, "u", pa.table({"a": ["y", "x"], "b": ["x", "y"]}))
    load(duck, "v", pa.table({"a": ["x", "y"], "b": ["x", "y"]}))
    load(duck, "w", pa.table({"a": ["", None], "b": [None, ""]}))
    load(duck, "z", pa.table({"a": [None, None], "b": ["", ""]}))
    assert measure_table(duck, "t").fingerprint == measure_table(duck, "u").fingerprint  # same rows
    assert measure_table(duck, "t").fingerprint != measure_table(duck, "v").fingerprint
    assert measure_table(duck, "w").fingerprint != measure_table(duck, "z").fingerprint


def test_profile_counts_nulls_and_bounds(duck: Warehouse) -> None:
    load(duck, "t", sample_table(1000))
    info = measure_table(duck, "t")
    assert info.rows == 1000 and [c.name for c in info.columns][:2] == ["id", "ts"]
    assert info.profile["price"].nulls == 11  # ids 0, 97, …, 970
    assert (info.profile["id"].min, info.profile["id"].max) == (0, 999)
    import hashlib

    category = info.profile["category"]  # text: a digest of the value, never the value
    assert category.min == "md5:" + hashlib.md5(b"cat0").hexdigest()
    assert (category.min_length, category.max_length, category.distinct) == (4, 5, 13)
    assert info.profile["ts"].min == "2024-01-01T00:00:00"


def test_source_fingerprint_tells_whether_the_source_changed(
    duck: Warehouse, tmp_path: Path
) -> None:
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(500)])
    con.commit()
    retrieval = Retrieval(
        Source.from_url(f"sqlite:///{tmp_path / 's.db'}", duck), "SELECT * FROM t"
    )
    result = store_split(duck, retrieval, SplitSpec("key", "id"), "m__src")
    assert fingerprint_retrieval(duck, retrieval) == result.content_fingerprint
    con.execute("UPDATE t SET name = 'changed' WHERE id = 3")
    con.commit()
    assert fingerprint_retrieval(duck, retrieval) != result.content_fingerprint
    load(duck, "w", sample_table(300))
    in_wh = Retrieval(Source.from_url(None, duck), "SELECT * FROM w")
    split = store_split(duck, in_wh, SplitSpec("row"), "m__w")
    assert fingerprint_retrieval(duck, in_wh) == split.content_fingerprint


def test_parts_add_up_and_verify_finds_tampering(duck: Warehouse) -> None:
    load(duck, "src", sample_table(4000))
    spec = SplitSpec("key", "user_id")
    result = store_split(duck, "SELECT * FROM src", spec, "m__f", storage="tables")
    assert combine([p.fingerprint for p in result.parts]) == result.content_fingerprint
    assert result.content_fingerprint == measure_table(duck, "src").fingerprint
    report = verify_parts(duck, result)
    assert report.ok and report.to_dict()["mismatches"] == []
    for part in result.parts:  # what the split recorded is what a fresh measurement finds
        assert measure_table(duck, part.table).profile == dict(part.profile)
    last = duck.rows('SELECT max(id) FROM "m__f__test"')[0][0]
    duck.execute(f"UPDATE \"m__f__test\" SET category = 'tampered' WHERE id = {last}")
    duck.execute('DROP TABLE "m__f__valid"')
    report = verify_parts(duck, result)
    assert not report.ok
    assert {(m.part, m.what) for m in report.mismatches} == {
        ("test", "fingerprint"),
        ("valid", "missing"),
    }


def test_v2_is_the_documented_encoding_for_every_family(duck: Warehouse) -> None:
    data = data_conftest.every_family()
    load(duck, "v", data)
    assert measure_table(duck, "v").fingerprint == data_conftest.fingerprint_v2(data)
    assert measure_table(duck, "v", algo="md5sum-v1").fingerprint.startswith("md5sum-v1:")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"x": ["", "a"]}, {"x": [None, "a"]}),  # empty text is not NULL
        ({"x": ["a\x1f", "b"], "y": ["c", "d"]}, {"x": ["a", "b"], "y": ["\x1fc", "d"]}),
        ({"x": ["\x1e", "b"]}, {"x": [None, "b"]}),  # NULL's marker as text
        ({"f": [1.0, 2.0]}, {"f": [1.0000000000000002, 2.0]}),  # one bit of a double
    ],
)
def test_v2_tells_apart_what_v1_text_could_not(
    duck: Warehouse, a: dict[str, list[object]], b: dict[str, list[object]]
) -> None:
    load(duck, "a", pa.table(a))
    load(duck, "b", pa.table(b))
    assert measure_table(duck, "a").fingerprint != measure_table(duck, "b").fingerprint


def test_v2_equal_values_hash_alike(duck: Warehouse) -> None:
    # -0.0 = 0.0 and NaN = NaN in SQL: the fingerprint follows equality, not payloads
    duck.execute("CREATE TABLE a AS SELECT * FROM (VALUES (0.0::DOUBLE), ('nan'::DOUBLE)) t(f)")
    duck.execute(
        "CREATE TABLE b AS SELECT * FROM (VALUES (-(0.0::DOUBLE)), (-('nan'::DOUBLE))) t(f)"
    )
    assert measure_table(duck, "a").fingerprint == measure_table(duck, "b").fingerprint


def test_a_v1_split_keeps_verifying_and_kinds_never_mix(duck: Warehouse) -> None:
    """A split recorded before v2 is verified, read and streamed with md5sum-v1."""
    from dataclasses import replace

    from dmv.data.verified import read_verified
    from dmv.errors import DataError, IntegrityError

    load(duck, "src", sample_table(2000))
    spec = SplitSpec("key", "user_id")
    new = store_split(duck, "SELECT * FROM src", spec, "m__v", storage="tables")
    assert new.content_fingerprint.startswith("md5sum-v2:")
    assert all(p.fingerprint.startswith("md5sum-v2:") for p in new.parts)
    # the record a dmv before v2 wrote: md5sum-v1 fingerprints, no engine checks
    parts = tuple(
        replace(
            p, fingerprint=measure_table(duck, p.table, algo="md5sum-v1").fingerprint, checks={}
        )
        for p in new.parts
    )
    old = replace(new, parts=parts, content_fingerprint=combine([p.fingerprint for p in parts]))
    assert old.content_fingerprint == fingerprint_query(duck, "SELECT * FROM src", algo="md5sum-v1")
    assert verify_parts(duck, old, full=True).ok
    assert read_verified(duck, old.parts[0]).table.num_rows == old.parts[0].rows
    with pytest.raises(DataError, match="cannot combine fingerprints of different kinds"):
        combine([old.parts[0].fingerprint, new.parts[1].fingerprint])
    with pytest.raises(DataError, match="unknown kind"):
        combine(["md5sum-v9:1:0000000000000000"])
    # tampering is still found, by the v1 recomputation
    table = old.parts[0].table
    duck.execute(
        f'UPDATE "{table}" SET category = \'x\' WHERE id = (SELECT min(id) FROM "{table}")'
    )
    report = verify_parts(duck, old, full=True)
    assert [(m.what, m.actual.split(":")[0]) for m in report.mismatches] == [
        ("fingerprint", "md5sum-v1")
    ]
    with pytest.raises(IntegrityError):
        read_verified(duck, old.parts[0])
