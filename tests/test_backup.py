"""dmv backup / dmv restore: a consistent copy, checked before it replaces anything."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

import dmv
from conftest import seed_warehouse
from dmv.cli import main

REF = "price-model@0.0.1-0123.abcd"


@pytest.fixture
def trained(project: dmv.Project) -> dmv.Project:
    from sklearn.linear_model import Ridge

    seed_warehouse(project)
    with project.run("price-model", data="0123.abcd") as run:
        rows = run.dataset("train")
        features = rows[["age", "bmi"]]
        run.log_model(Ridge().fit(features, rows["target"]), sample_input=features.head(3))
    project.release(REF)
    return project


def test_round_trip_back_up_destroy_restore_verifies(
    trained: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, dest = trained.root, tmp_path / "backup"
    before = [v.version for v in trained.versions("price-model")]
    assert main(["-C", str(root), "backup", str(dest), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["artifacts"] == 1 and made["artifacts_copied"] is True
    # patients, the six part views and the storage they share: the layout, the first
    # split's three parts as segments and six memberships (three per split)
    assert made["warehouse_tables"] == 17
    manifest = json.loads((dest / "dmv-backup.json").read_text())
    assert manifest["registry"]["digest"].startswith("blake3:")

    trained.close()
    shutil.rmtree(root / ".dmv")  # everything is gone

    assert main(["-C", str(root), "restore", str(dest)]) == 0
    assert "run 'dmv fsck --deep'" in capsys.readouterr().out
    assert (root / ".dmv" / ".gitignore").read_text() == "*\n"
    p = dmv.open(root)
    assert [v.version for v in p.versions("price-model")] == before
    assert p.fsck(deep=True).ok
    for ref in (REF, "price-model@1.0.1-0123.abcd"):
        report = p.verify(ref)
        assert report.ok, report.to_dict()
    assert p.load_model("price-model@latest") is not None
    p.close()


def test_restore_refuses_a_project_with_data_unless_forced(
    trained: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup"
    trained.backup(dest)
    trained.data_split("price-model", "0123", by="key:patient_id", salt="9", id="later")
    code = main(["-C", str(trained.root), "restore", str(dest)])
    err = capsys.readouterr().err
    assert code == 4 and "is not empty" in err and "--force" in err
    assert "later" in [s.split for s in trained.data_splits("price-model")]  # untouched
    assert main(["-C", str(trained.root), "restore", str(dest), "--force"]) == 0
    p = dmv.open(trained.root)
    assert [s.split for s in p.data_splits("price-model")] == ["abcd", "efgh"]
    assert p.fsck(deep=True).ok
    p.close()


def test_a_damaged_backup_is_refused_before_anything_changes(
    trained: dmv.Project, tmp_path: Path
) -> None:
    dest = tmp_path / "backup"
    trained.backup(dest)
    copy = dest / "warehouse.duckdb"
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    registry = trained.root / ".dmv" / "registry.db"
    stamp = registry.stat().st_mtime_ns
    with pytest.raises(dmv.IntegrityError, match="damaged backup"):
        trained.restore(dest, force=True)
    assert registry.stat().st_mtime_ns == stamp
    assert trained.fsck().ok


def test_backup_needs_a_new_or_empty_folder(trained: dmv.Project, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(dmv.ConflictError, match="not an empty folder"):
        trained.backup(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    assert trained.backup(tmp_path / "empty")["artifacts"] == 1


def test_a_backup_taken_while_runs_are_logged_is_consistent(
    trained: dmv.Project, tmp_path: Path
) -> None:
    stop = threading.Event()
    logged: list[str] = []

    def writer() -> None:
        p = dmv.open(trained.root)
        while not stop.is_set():
            with p.run("price-model", version="0.0.1-0123.abcd") as run:
                run.log_metrics({"rmse": 1.0}, split="test")
            logged.append(str(run.id))
        p.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        trained.backup(tmp_path / "b1")
        trained.backup(tmp_path / "b2")
    finally:
        stop.set()
        thread.join()
    assert logged
    for name in ("b1", "b2"):
        root = tmp_path / f"r-{name}"
        root.mkdir()
        shutil.copy(trained.root / "dmv.toml", root / "dmv.toml")
        p = dmv.open(root)
        p.restore(tmp_path / name)
        assert p.fsck(deep=True).ok
        runs = [r.id for r in p.runs(REF)]
        assert runs == [f"tr{i}" for i in range(len(runs))]  # a prefix, no gap
        p.close()


@pytest.mark.postgres
def test_a_postgresql_registry_is_backed_up_with_pg_dump(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = dmv.init(tmp_path / "proj", registry=pg_database)
    code = main(["-C", str(p.root), "backup", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "PostgreSQL" in err and "pg_dump" in err
    assert not (tmp_path / "b").exists()
    p.close()


def test_a_spark_warehouse_is_recorded_as_external_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No server is contacted: an external warehouse is named, not read.
    p = dmv.init(tmp_path / "proj", warehouse="sc://spark.example:15002/;token=s3cret")
    code = main(["-C", str(p.root), "backup", str(tmp_path / "b"), "--warehouse-external"])
    out = capsys.readouterr().out
    assert code == 0 and "not the sc warehouse" in out and "snapshots" in out
    manifest = (tmp_path / "b" / "dmv-backup.json").read_text()
    assert json.loads(manifest)["warehouse"]["kind"] == "external" and "s3cret" not in manifest
    p.close()


def _second_database() -> str:
    import uuid

    import psycopg

    from conftest import PG_ADMIN_URL

    name = f"dmv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _drop_database(url: str) -> None:
    import psycopg

    from conftest import PG_ADMIN_URL

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.mark.postgres
def test_a_postgresql_warehouse_is_backed_up_and_restored_into_a_fresh_project(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    from data_conftest import load, sample_table
    from dmv.data.engines import open_warehouse

    p = dmv.init(tmp_path / "proj", warehouse=pg_database)
    with open_warehouse(pg_database) as wh:
        load(wh, "src", sample_table(3000))
    p.data_query("m", sql="SELECT * FROM src", id="0123")
    split = p.data_split("m", "0123", by="key:user_id")
    with p.run("m", data=f"0123.{split.split}") as run:
        rows = run.dataset("train")
        x = rows[["user_id"]]
        run.log_model(LogisticRegression().fit(x, rows["label"]), sample_input=x.head(3))
    versions = [v.version for v in p.versions("m")]
    dest = tmp_path / "b"
    assert main(["-C", str(p.root), "backup", str(dest), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["warehouse"] == "parquet" and made["warehouse_tables"] == 3
    assert "as Parquet, fingerprint-checked" in made["contains"][1]
    assert made["artifacts"] == 1 and made["artifacts_copied"] is True
    files = sorted(f.name for f in (dest / "warehouse").iterdir())
    assert files == sorted(f"{part['table']}.parquet" for part in split.parts)  # not src

    # a damaged Parquet file is refused before the fresh project is touched
    other = _second_database()
    try:
        fresh = dmv.init(tmp_path / "fresh", warehouse=other)
        bad = tmp_path / "bad"
        shutil.copytree(dest, bad)
        victim = next((bad / "warehouse").iterdir())
        victim.write_bytes(victim.read_bytes()[:-9] + b"\0" * 9)
        assert main(["-C", str(fresh.root), "restore", str(bad)]) == 6
        assert "damaged" in capsys.readouterr().err
        with open_warehouse(other) as wh:
            assert wh.list_tables() == []
        assert fresh.models() == []

        assert main(["-C", str(fresh.root), "restore", str(dest), "--json"]) == 0
        done = json.loads(capsys.readouterr().out)
        assert sorted(done["restored_tables"]) == sorted(p["table"] for p in split.parts)
        fresh.close()
        fresh = dmv.open(tmp_path / "fresh")
        assert [v.version for v in fresh.versions("m")] == versions
        assert fresh.data_verify("m", f"0123.{split.split}", full=True)["ok"]
        assert fresh.fsck(deep=True).ok
        with open_warehouse(other) as wh:
            assert not wh.table_exists("src")  # the source is the user's, not dmv's
        fresh.close()
    finally:
        _drop_database(other)
    p.close()


@pytest.mark.postgres
def test_a_postgresql_warehouse_can_be_left_to_pg_dump(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from data_conftest import load, sample_table
    from dmv.data.engines import open_warehouse

    p = dmv.init(tmp_path / "proj", warehouse=pg_database)
    with open_warehouse(pg_database) as wh:
        load(wh, "src", sample_table(500))
    p.data_query("m", sql="SELECT * FROM src", id="0123")
    split = p.data_split("m", "0123", by="key:user_id")
    dest = tmp_path / "b"
    assert main(["-C", str(p.root), "backup", str(dest), "--warehouse-external", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    command = made["warehouse_command"]
    assert made["warehouse"] == "external" and command.startswith("pg_dump --format=custom")
    for part in split.parts:
        assert f"--table=public.{part['table']}" in command or part["table"] in command
    assert not (dest / "warehouse").exists()
    fresh = dmv.init(tmp_path / "fresh")  # a DuckDB warehouse: the tables are not there
    assert main(["-C", str(fresh.root), "restore", str(dest), "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert sorted(done["missing_tables"]) == sorted(p["table"] for p in split.parts)
    fresh.close()
    p.close()
