"""Shared split storage: later splits of a retrieval store only what changed."""

from __future__ import annotations

from typing import Any

import pytest

import data_conftest
import dmv
from conftest import leftovers, seed_warehouse
from data_conftest import ids_by_part, load, sample_table
from dmv.data import shared
from dmv.data.catalog import warehouse
from dmv.data.fingerprint import verify_parts
from dmv.data.leakage import check_leakage
from dmv.data.records import SplitSpec
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, ImmutableError

duck = data_conftest.duck
SQL = "SELECT * FROM src"
SPEC = SplitSpec("key", "user_id")


def _same_as_copies(wh: Warehouse, result: Any, prefix: str) -> None:
    """The shared split holds exactly the rows a split into plain tables holds."""
    copies = store_split(wh, SQL, result.spec, prefix, storage="tables")
    assert [(p.name, p.rows, p.fingerprint, dict(p.profile)) for p in result.parts] == [
        (p.name, p.rows, p.fingerprint, dict(p.profile)) for p in copies.parts
    ]
    assert ids_by_part(wh, result) == ids_by_part(wh, copies)
    assert result.content_fingerprint == copies.content_fingerprint


def _segments(wh: Warehouse) -> set[str]:
    return {seg.table for lay in shared.layouts(wh) for seg in lay.segments}


def test_a_resplit_of_the_same_rows_writes_no_rows(duck: Warehouse) -> None:
    load(duck, "src", sample_table(3000))
    first = store_split(duck, SQL, SPEC, "m__d__a")
    # the first split's parts are its segments: each view reads one as it is
    assert first.storage == {"kind": "shared", "segments": 3, "shared_rows": 0, "new_rows": 3000}
    again = store_split(duck, SQL, SplitSpec("key", "user_id", salt="other"), "m__d__b")
    assert again.storage == {"kind": "shared", "segments": 3, "shared_rows": 3000, "new_rows": 0}
    assert len(_segments(duck)) == 3
    assert ids_by_part(duck, again) != ids_by_part(duck, first)  # another assignment
    _same_as_copies(duck, again, "m__d__t")
    assert verify_parts(duck, first).ok and verify_parts(duck, again, full=True).ok
    assert leftovers(duck) == []


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO src SELECT id + 10000, ts, user_id, category, price, label FROM src "
        "WHERE id < 30",  # grown
        "UPDATE src SET price = -1 WHERE id % 100 = 3",  # changed in place
        "DELETE FROM src WHERE id % 50 = 1",  # shrunk
        "INSERT INTO src SELECT * FROM src WHERE id < 20",  # rows now there twice
    ],
)
def test_a_changed_source_stores_only_the_difference(duck: Warehouse, change: str) -> None:
    load(duck, "src", sample_table(3000))
    first = store_split(duck, SQL, SPEC, "m__d__a")
    duck.execute(change)
    rows = int(duck.rows("SELECT count(*) FROM src")[0][0])
    later = store_split(duck, SQL, SPEC, "m__e__a")
    storage = later.storage
    assert storage["kind"] == "shared" and storage["shared_rows"] + storage["new_rows"] == rows
    assert storage["new_rows"] <= 60 and storage["shared_rows"] >= 2900
    _same_as_copies(duck, later, "m__e__t")
    # the earlier split is untouched
    assert verify_parts(duck, first, full=True).ok
    assert verify_parts(duck, later, full=True).ok


def test_a_chain_of_changes_keeps_every_version_intact(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    results = [store_split(duck, SQL, SPEC, "m__v0__a")]
    for i in range(1, 4):
        duck.execute(
            f"INSERT INTO src SELECT id + {10000 * i}, ts, user_id, category, price, label "
            f"FROM src WHERE id < 10"
        )
        duck.execute(f"UPDATE src SET label = {i} WHERE id = {i}")
        results.append(store_split(duck, SQL, SPEC, f"m__v{i}__a"))
    assert results[-1].storage["segments"] == 3 + 3  # the first parts and three deltas
    for result in results:
        assert verify_parts(duck, result, full=True).ok
    _same_as_copies(duck, results[-1], "m__v3__t")


def test_most_rows_changed_stores_a_fresh_segment(duck: Warehouse) -> None:
    load(duck, "src", sample_table(1000))
    store_split(duck, SQL, SPEC, "m__d__a")
    duck.execute("UPDATE src SET price = 1.5")
    later = store_split(duck, SQL, SPEC, "m__e__a")
    assert later.storage["shared_rows"] == 0 and later.storage["segments"] == 3


def test_dropping_frees_only_what_no_other_split_uses(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    first = store_split(duck, SQL, SPEC, "m__d__a")
    duck.execute("INSERT INTO src SELECT id + 9000, ts, user_id, category, price, label FROM src")
    grown = store_split(duck, SQL, SPEC, "m__e__a")
    assert grown.storage["segments"] == 4
    before = _segments(duck)
    shared.drop_split_tables(duck, [p.table for p in first.parts])
    assert _segments(duck) == before  # the grown split still reads both
    assert verify_parts(duck, grown, full=True).ok
    assert not [t for t in duck.list_tables() if t.startswith("m__d__a")]
    shared.drop_split_tables(duck, [p.table for p in grown.parts])
    assert _segments(duck) == set()
    assert [t for t in duck.list_tables() if t.startswith("__dmv")] == ["__dmv_layout"]


def test_a_changed_segment_or_membership_is_caught(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    first = store_split(duck, SQL, SPEC, "m__d__a")
    result = store_split(duck, SQL, SplitSpec("key", "user_id", salt="b"), "m__d__b")
    assert all(p.checks for p in result.parts)  # recorded with the split
    layout = shared.layout_of(duck, "m__d__b")
    assert layout is not None
    seg = layout.segments[2]
    duck.execute(
        f'UPDATE "{seg.table}" SET price = -5 WHERE id = (SELECT min(id) FROM "{seg.table}")'
    )
    fast = verify_parts(duck, result)
    assert [m.what for m in fast.mismatches] == ["fingerprint"]
    assert not verify_parts(duck, first).ok  # the first split reads the same rows
    leak = check_leakage(duck, result)  # parts not intact: identical rows compared by value
    assert leak.checks[-1].kind == "identical_rows" and leak.checks[-1].proof == "value"
    duck.execute(f'UPDATE "{seg.table}" SET price = -5 WHERE false')
    seg = layout.segments[0]
    duck.execute(
        f'UPDATE "{seg.membership}" SET __dmv_part = 2 WHERE rowid = (SELECT min(rowid) '
        f'FROM "{seg.membership}" WHERE __dmv_part = 0)'
    )
    moved = verify_parts(duck, result)
    assert {m.part for m in moved.mismatches} >= {"train", "test"}
    leak = check_leakage(duck, result)
    assert not leak.ok and leak.checks[0].kind == "shared_key" and leak.checks[0].count >= 1


def test_identical_rows_follow_from_intact_parts(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000))
    result = store_split(duck, SQL, SPEC, "m__d__a")
    report = check_leakage(duck, result)
    assert report.ok and report.checks[-1].to_dict()["proof"] == "construction"


def test_a_failed_split_leaves_no_shared_storage(duck: Warehouse) -> None:
    load(duck, "src", sample_table(1000))
    store_split(duck, SQL, SPEC, "m__d__a")
    layout = shared.layouts(duck)
    with pytest.raises(DataError):  # refused after planning: a time split that misleads
        store_split(duck, "SELECT * FROM src WHERE id < 3", SplitSpec("time", "ts"), "m__x__a")
    with pytest.raises(ImmutableError):
        store_split(duck, SQL, SPEC, lambda content: "m__d__a")  # the tables exist
    assert shared.layouts(duck) == layout and leftovers(duck) == []


def test_a_misaligned_plan_falls_back_to_a_fresh_segment(
    duck: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(duck, "src", sample_table(1000))
    store_split(duck, SQL, SPEC, "m__d__a")
    monkeypatch.setattr(shared, "part_checks", lambda *a: {})
    later = store_split(duck, SQL, SplitSpec("key", "user_id", salt="x"), "m__d__b")
    assert later.storage["shared_rows"] == 0
    assert verify_parts(duck, later, full=True).ok and leftovers(duck) == []


def test_fsck_understands_sharing(project: dmv.Project) -> None:
    import duckdb

    seed_warehouse(project)
    report = project.fsck()
    assert report.ok, report.problems
    assert not [o for o in report.orphans if "dmv" in str(o.get("table"))]
    assert report.checked["shared splits"] == 2
    # a layout whose split the registry does not know is an orphan, repaired away
    with warehouse(project.stores) as wh:
        load(wh, "stray", sample_table(100))
        store_split(wh, "SELECT * FROM stray", SPEC, "price_model__0999__zzzz")
    report = project.fsck()
    assert [o["table"] for o in report.orphans if o["kind"] == "shared split storage"] == [
        "price_model__0999__zzzz"
    ]
    project.fsck(repair=True, grace_seconds=0)
    with warehouse(project.stores) as wh:
        assert shared.layout_of(wh, "price_model__0999__zzzz") is None
        assert leftovers(wh) == []
    # a segment a registered split reads, gone: a problem, named
    with duckdb.connect(project.config.location("warehouse")) as con:
        (segment,) = con.execute(
            "SELECT segment FROM __dmv_layout WHERE prefix = 'price_model__0123__abcd'"
        ).fetchone()
        con.execute(f'DROP TABLE "{segment}"')
    report = project.fsck()
    assert segment in [p["what"] for p in report.problems]


def _bytes_on_disk(project: dmv.Project) -> tuple[int, int]:
    """The warehouse file's size and every byte under ``.dmv/``."""
    from pathlib import Path

    files = [p for p in (project.root / ".dmv").rglob("*") if p.is_file()]
    return Path(project.config.location("warehouse")).stat().st_size, sum(
        p.stat().st_size for p in files
    )


@pytest.mark.parametrize("by", ["key:user_id", "time:ts"])
def test_an_identical_split_writes_nothing(project: dmv.Project, by: str) -> None:
    with warehouse(project.stores) as wh:
        load(wh, "src", sample_table(40_000))
    project.data_query("m", sql=SQL, id="0123")
    first = project.data_split("m", "0123", by=by)
    assert not first.already_stored
    before = _bytes_on_disk(project)
    again = project.data_split("m", "0123", by=by)
    assert (again.split, again.already_stored) == (first.split, True)
    assert again.to_dict()["already_stored"] is True
    assert _bytes_on_disk(project) == before
    report = project.fsck()
    assert report.ok and not report.space.get("reclaimable_bytes"), report.space
    assert [s.split for s in project.data_splits("m")] == [first.split]


def test_an_identical_split_rebuilds_parts_that_were_dropped(project: dmv.Project) -> None:
    import duckdb

    with warehouse(project.stores) as wh:
        load(wh, "src", sample_table(2_000))
    project.data_query("m", sql=SQL, id="0123")
    first = project.data_split("m", "0123", by="key:user_id")
    with duckdb.connect(project.config.location("warehouse")) as con:
        (segment,) = con.execute("SELECT segment FROM __dmv_layout LIMIT 1").fetchone()
        con.execute(f'DROP TABLE "{segment}" CASCADE')
    again = project.data_split("m", "0123", by="key:user_id")
    assert (again.split, again.already_stored, again.rebuilt) == (first.split, True, True)
    assert project.data_verify("m", first.ref)["ok"]
    assert project.fsck().ok


def test_a_changed_source_is_not_the_identical_split(project: dmv.Project) -> None:
    with warehouse(project.stores) as wh:
        load(wh, "src", sample_table(2_000))
    project.data_query("m", sql=SQL, id="0123")
    first = project.data_split("m", "0123", by="key:user_id")
    with warehouse(project.stores) as wh:
        wh.execute("DELETE FROM src WHERE id < 10")
    later = project.data_split("m", "0123", by="key:user_id")
    assert later.split != first.split and not later.already_stored
    assert sum(p["rows"] for p in later.parts) == 1_990


def test_the_command_says_an_identical_split_wrote_nothing(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from dmv.cli import main

    with warehouse(project.stores) as wh:
        load(wh, "src", sample_table(2_000))
    project.data_query("m", sql=SQL, id="0123")
    args = ["-C", str(project.root), "data", "split", "m", "0123", "--by", "key:user_id"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "already stored" not in first and "2,000 row(s) written" in first
    assert main(args) == 0
    split = first.splitlines()[0]
    assert f"split {split} already stored: 0 rows written" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["split"], body["already_stored"], body["rebuilt"]) == (split, True, False)


def _file_bytes(wh: Warehouse) -> int:
    from pathlib import Path

    wh.execute("CHECKPOINT")
    return Path(wh.url).stat().st_size


def test_a_resplit_grows_the_file_by_its_memberships_only(duck: Warehouse) -> None:
    load(duck, "src", sample_table(200_000))
    start = _file_bytes(duck)
    store_split(duck, SQL, SPEC, "m__d__a")
    first = _file_bytes(duck) - start
    tables = set(duck.list_tables())
    before = _file_bytes(duck)
    again = store_split(duck, SQL, SplitSpec("key", "user_id", salt="other"), "m__d__b")
    # no part table built and dropped: only three memberships are new, and the file
    # grows by them alone: a block each (DuckDB's unit) and one for the layout's rows
    views = set(duck.list_views())
    assert set(duck.list_tables()) - tables - views == {
        s.membership
        for s in shared.layout_of(duck, "m__d__b").segments  # type: ignore[union-attr]
    }
    ((block,),) = duck.rows("SELECT block_size FROM pragma_database_size()")
    assert _file_bytes(duck) - before <= min(5 * int(block), first // 2)
    assert again.storage["new_rows"] == 0 and verify_parts(duck, again, full=True).ok


def test_a_split_found_stored_while_measuring_writes_nothing(duck: Warehouse) -> None:
    from dmv.data.split import AlreadyStored

    load(duck, "src", sample_table(50_000))
    store_split(duck, SQL, SPEC, "m__d__a")
    tables, size = set(duck.list_tables()), _file_bytes(duck)

    def stored(content: str) -> str:
        raise AlreadyStored("a")

    with pytest.raises(AlreadyStored):
        store_split(duck, SQL, SplitSpec("key", "user_id", salt="x"), stored)
    assert set(duck.list_tables()) == tables and _file_bytes(duck) == size
    assert leftovers(duck) == []


def test_a_split_recorded_with_md5sum_v1_is_still_the_identical_split(
    project: dmv.Project,
) -> None:
    """A record an older dmv wrote (md5sum-v1 fingerprints) verifies, is checked against
    its source and is found again by the identical split, all with v1."""
    import json
    import sqlite3

    from dmv.data.fingerprint import combine, measure_table

    with warehouse(project.stores) as wh:
        load(wh, "src", sample_table(3_000))
    project.data_query("m", sql=SQL, id="0123")
    first = project.data_split("m", "0123", by="key:user_id")
    registry = project.root / ".dmv" / "registry.db"
    with sqlite3.connect(registry) as con:
        (body,) = con.execute("SELECT parts FROM splits WHERE split = ?", [first.split]).fetchone()
        body = json.loads(body)
        with warehouse(project.stores) as wh:
            for part in body["parts"]:
                part["fingerprint"] = measure_table(wh, part["table"], algo="md5sum-v1").fingerprint
                part["checks"] = {}  # no engine check: verify must recompute md5sum-v1
        body["content_fingerprint"] = combine([p["fingerprint"] for p in body["parts"]])
        con.execute("UPDATE splits SET parts = ? WHERE split = ?", [json.dumps(body), first.split])
    assert project.split_info("m", first.ref).result["content_fingerprint"].startswith("md5sum-v1:")
    report = project.data_verify("m", first.ref, against_source=True, full=True)
    assert report["ok"] and report["source"]["same"], report
    again = project.data_split("m", "0123", by="key:user_id")
    assert (again.split, again.already_stored) == (first.split, True)
    other = project.data_split("m", "0123", by="key:user_id", salt="new")
    assert other.split != first.split
    assert other.result["content_fingerprint"].startswith("md5sum-v2:")
