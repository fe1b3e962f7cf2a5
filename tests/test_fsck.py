"""dmv fsck: registered things present and intact, orphans listed and repaired."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import dmv
from conftest import part_storage
from dmv.cli import main


def test_clean_project_is_ok(project: dmv.Project, small_model: object) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        run.log_model(small_model)
    report = project.fsck()
    assert report.ok and report.checked["artifacts"] == 1 and report.orphans == []


def test_orphans_from_a_crash_are_listed_then_removed(
    project: dmv.Project, small_model: object
) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        run.log_model(small_model)
    # What a process killed before its registry transaction leaves behind:
    orphan = project.artifacts.put_bytes(b"uploaded, never registered")
    tmp = Path(project.artifacts.path_of(orphan.digest)).parents[2] / "tmp" / "deadbeef"
    tmp.write_bytes(b"half an upload")
    report = project.fsck()
    assert report.ok  # nothing registered is broken
    kinds = sorted(o["kind"] for o in report.orphans)
    assert kinds == ["blob", "partial upload"]
    assert project.fsck(repair=True).repaired == []  # younger than the grace period
    repaired = project.fsck(repair=True, grace_seconds=0).repaired
    assert sorted(o["kind"] for o in repaired) == ["blob", "partial upload"]
    assert not project.artifacts.exists(orphan) and not tmp.exists()
    assert project.fsck().orphans == []
    assert project.load_model("m@0.0.1-a.b") is not None  # registered blobs untouched


def test_missing_or_corrupt_registered_artifact_is_a_problem(
    project: dmv.Project, small_model: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
    os.remove(project.artifacts.path_of(art.digest))
    code = main(["-C", str(project.root), "fsck", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 6 and body["ok"] is False
    assert body["problems"][0]["what"] == "m 0.0.1-a.b tr0 model"
    assert "missing" in body["problems"][0]["error"]


# -- every store, one report ---------------------------------------------------


@pytest.fixture
def trained(project: dmv.Project) -> dmv.Project:
    from sklearn.linear_model import Ridge

    from conftest import seed_warehouse

    seed_warehouse(project)
    with project.run("price-model", data="0123.abcd") as run:
        rows = run.dataset("train")
        features = rows[["age", "bmi"]]
        run.log_model(Ridge().fit(features, rows["target"]), sample_input=features.head(3))
    return project


def test_one_row_per_store(trained: dmv.Project, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-C", str(trained.root), "fsck", "--deep", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0 and body["ok"] is True and body["deep"] is True
    rows = {s["store"]: s for s in body["stores"]}
    assert list(rows) == ["registry", "warehouse", "artifacts", "splits"]
    assert {s["status"] for s in rows.values()} == {"ok"}
    assert "integrity_check ok" in rows["registry"]["summary"]
    assert rows["splits"]["summary"].startswith("2 stored split(s)")
    assert body["checked"]["split tables"] == 6 and body["checked"]["splits"] == 2
    assert main(["-C", str(trained.root), "fsck"]) == 0
    human = capsys.readouterr().out
    assert human.splitlines()[0].split() == ["STORE", "STATUS", "SUMMARY", "LOCATION"]
    assert "splits     skipped  --deep re-fingerprints" in human


def test_a_tampered_split_is_found_by_deep_fsck(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    with duckdb.connect(trained.config.location("warehouse")) as con:
        rows = part_storage(con, "price_model__0123__efgh__test")
        con.execute(
            f"UPDATE {rows} SET bmi = bmi + 1 WHERE patient_id IN "
            "(SELECT patient_id FROM price_model__0123__efgh__test WHERE patient_id < 50)"
        )
    assert trained.fsck().ok  # the quick check reads no rows
    report = trained.fsck(deep=True)
    assert not report.ok and report.exit_code == 6
    assert report.store("splits").status == "problems"
    found = {p["what"]: p["error"] for p in report.problems if p["store"] == "splits"}
    assert found["price-model 0123.efgh"].startswith("test fingerprint")
    # the split that shares these rows reads the changed rows too
    assert set(found) <= {"price-model 0123.abcd", "price-model 0123.efgh"}
    assert len(found) == len(report.problems)
    assert main(["-C", str(trained.root), "fsck", "--deep"]) == 6
    assert "PROBLEM splits split: price-model 0123.efgh" in capsys.readouterr().out


def test_a_quietly_altered_model_file_needs_deep(trained: dmv.Project) -> None:
    model = trained.runs("price-model@0.0.1-0123.abcd")[0].artifacts[0]
    path = trained.artifacts.path_of(model.digest)
    os.chmod(path, 0o644)
    data = bytearray(Path(path).read_bytes())
    data[5] ^= 0xFF  # same size, other bytes
    Path(path).write_bytes(bytes(data))
    assert trained.fsck().ok
    deep = trained.fsck(deep=True)
    assert deep.store("artifacts").status == "problems" and deep.problems[0]["path"] == path


def test_dangling_registry_rows_are_reported(trained: dmv.Project) -> None:
    import sqlite3

    trained.close()
    con = sqlite3.connect(trained.root / ".dmv" / "registry.db")
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("UPDATE artifacts SET run_id = 9999")
    con.commit()
    con.close()
    report = trained.fsck()
    assert report.store("registry").status == "problems" and report.exit_code == 6
    assert "point at rows that do not exist (artifacts)" in report.problems[0]["error"]


def test_a_schema_stamp_from_elsewhere_is_reported(trained: dmv.Project) -> None:
    import sqlite3

    trained.close()
    trained.__dict__.pop("registry", None)
    con = sqlite3.connect(trained.root / ".dmv" / "registry.db")
    con.execute("UPDATE dmv_schema SET value = '99' WHERE key = 'version'")
    con.commit()
    con.close()
    report = trained.fsck()
    assert report.store("registry").status == "damaged" and report.exit_code == 8
    assert "schema version 99" in report.problems[0]["error"]
    assert report.store("artifacts").status == "skipped"  # nothing removed blind


KILLED_SPLIT = """
import os, signal, sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN")
con.execute("CREATE TABLE __dmv_tmp_split AS SELECT range AS k, range::VARCHAR || 'x' AS v "
            "FROM range(4000000)")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_space_a_killed_split_left_is_reported_then_reclaimed(
    trained: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    warehouse = trained.config.location("warehouse")
    before = os.path.getsize(warehouse)
    for _ in range(2):  # two writers killed with SIGKILL part-way through a split
        done = subprocess.run([sys.executable, "-c", KILLED_SPLIT, warehouse], check=False)
        assert done.returncode == -9
    grown = os.path.getsize(warehouse)
    assert grown > before + 10_000_000
    report = trained.fsck()
    assert report.ok  # nothing registered is missing: space is not a problem
    assert report.space["reclaimable_bytes"] >= grown - before - 300_000
    assert "reclaimable with --repair" in report.store("warehouse").summary
    assert main(["-C", str(trained.root), "fsck", "--repair", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    reclaimed = body["space"]["reclaimed_bytes"]
    assert reclaimed == grown - os.path.getsize(warehouse) and reclaimed > 5_000_000
    space = next(r for r in body["repaired"] if r["kind"] == "warehouse space")
    assert space["bytes"] == reclaimed
    assert trained.fsck(deep=True).ok  # every split still matches its fingerprint
    assert trained.fsck().space["reclaimable_bytes"] == 0


def test_repair_gives_back_free_blocks_inside_the_warehouse(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    warehouse = trained.config.location("warehouse")
    with duckdb.connect(warehouse) as con:  # a big table freed below a later one
        con.execute(
            "CREATE TABLE scratch AS SELECT range AS k, range::VARCHAR AS v FROM range(2000000)"
        )
        con.execute("CHECKPOINT")
        con.execute("CREATE TABLE kept AS SELECT range AS k FROM range(1000)")
        con.execute("CHECKPOINT")
        con.execute("DROP TABLE scratch")
        con.execute("CHECKPOINT")
    grown = os.path.getsize(warehouse)
    report = trained.fsck()
    assert report.ok and report.space["reusable_bytes"] > 5_000_000
    assert "given back by --repair" in report.store("warehouse").summary
    assert main(["-C", str(trained.root), "fsck", "--repair", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    reclaimed = body["space"]["reclaimed_bytes"]
    assert reclaimed == grown - os.path.getsize(warehouse) and reclaimed > 5_000_000
    assert body["space"]["compacted"] is True and body["ok"] is True
    assert not [p for p in Path(warehouse).parent.iterdir() if ".compact-" in p.name]
    # every split, shared segments and memberships included, still reads as recorded
    assert trained.fsck(deep=True).ok
    with duckdb.connect(warehouse) as con:
        assert con.execute("SELECT count(*), sum(k) FROM kept").fetchone() == (1000, 499500)
    again = trained.data_split("price-model", "0123", by="key:patient_id", salt="3")
    assert trained.data_verify("price-model", f"0123.{again.split}", full=True)["ok"]
