"""Data versioning through the project and the dmv command: DATA, SPLIT, runs on them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import dmv
from conftest import part_storage, seed_warehouse
from dmv.cli import main


@pytest.fixture
def seeded(project: dmv.Project) -> dmv.Project:
    seed_warehouse(project)
    return project


def cli(capsys: pytest.CaptureFixture[str], p: dmv.Project, *args: str) -> tuple[int, str]:
    code = main(["-C", str(p.root), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_query_ids_are_derived_and_stable(project: dmv.Project) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id, range % 7 AS g FROM range(100)")
    a = project.data_query("m", sql="SELECT * FROM t")
    b = project.data_query("m", sql="SELECT *\n   FROM t ")  # same definition, normalised
    c = project.data_query("m", sql="SELECT * FROM t WHERE g > 1")
    assert a.data == b.data != c.data and len(a.data) >= 6
    assert [q["name"] for q in a.columns] == ["id", "g"]
    assert [q.data for q in project.data_queries("m")] == [a.data, c.data]


def test_split_tables_are_named_after_the_version(
    seeded: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    info = seeded.split_info("price-model", "0123.abcd")
    tables = [p["table"] for p in info.parts]
    assert tables == [f"price_model__0123__abcd__{p}" for p in ("train", "valid", "test")]
    assert sum(p["rows"] for p in info.parts) == 442
    assert info.leakage is not None and info.leakage["ok"] is True
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        n = con.execute("SELECT count(*) FROM price_model__0123__abcd__test").fetchone()
    assert n is not None and n[0] == next(p["rows"] for p in info.parts if p["name"] == "test")
    code, out = cli(capsys, seeded, "data", "list", "price-model", "--json")
    body = json.loads(out)
    assert code == 0 and [s["split"] for s in body["splits"]] == ["abcd", "efgh"]


def test_cli_query_split_check_verify_export(
    project: dmv.Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE events AS SELECT range AS id, range % 50 AS user_id, "
            "TIMESTAMP '2026-01-01' + range * INTERVAL 1 HOUR AS ts FROM range(2000)"
        )
    code, out = cli(
        capsys, project, "data", "query", "m", "--sql", "SELECT * FROM events", "--json"
    )
    assert code == 0
    data = json.loads(out)["data"]
    code, out = cli(
        capsys,
        project,
        "data",
        "split",
        "m",
        data,
        "--by",
        "group:user_id",
        "--ratios",
        "train=0.6,valid=0.2,test=0.2",
        "--json",
    )
    assert code == 0
    split = json.loads(out)["split"]
    ref = f"{data}.{split}"
    code, out = cli(capsys, project, "data", "check", "m", ref, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out = cli(capsys, project, "data", "verify", "m", ref, "--against-source", "--json")
    assert code == 0 and json.loads(out)["source"]["same"] is True
    target = tmp_path / "train.parquet"
    code, out = cli(
        capsys, project, "data", "export", "m", ref, "--part", "train", "--out", str(target)
    )
    exported = pd.read_parquet(target)
    assert code == 0 and len(exported) > 0
    # group split: no user in two parts
    test = project.dataset("m", ref, "test")
    assert not set(exported["user_id"]) & set(test["user_id"])
    # the source grows: verify against the source says so, the stored split is untouched
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute("INSERT INTO events VALUES (99999, 3, TIMESTAMP '2027-01-01')")
    code, out = cli(capsys, project, "data", "verify", "m", ref, "--against-source", "--json")
    body = json.loads(out)
    assert code == 0 and body["ok"] is True and body["source"]["same"] is False


def test_tampered_split_fails_verification(
    seeded: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        rows = part_storage(con, "price_model__0123__abcd__train")
        con.execute(
            f"UPDATE {rows} SET bmi = bmi + 1 WHERE patient_id = "
            "(SELECT min(patient_id) FROM price_model__0123__abcd__train)"
        )
    code, out = cli(capsys, seeded, "data", "verify", "price-model", "0123.abcd", "--json")
    body = json.loads(out[: out.rindex("}") + 1])
    assert code == 6 and body["ok"] is False
    assert [m["what"] for m in body["mismatches"]] == ["fingerprint"]


def test_bad_input_is_refused_and_nothing_half_stored(
    seeded: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["data", "query", "price-model", "--sql", "SELECT nope FROM patients"], 7),
        (["data", "query", "price-model", "--sql", "DROP TABLE patients"], 7),
        (
            [
                "data",
                "query",
                "price-model",
                "--sql",
                "SELECT 1",
                "--source",
                "postgresql://postgres@127.0.0.1:1/x",
            ],
            7,
        ),
        (["data", "split", "price-model", "0123", "--by", "key:nope"], 2),
        (["data", "split", "price-model", "0123", "--ratios", "train=0.5,test=0.4"], 2),
        (["data", "split", "price-model", "0123", "--id", "Bad_Id"], 2),
        (["data", "split", "price-model", "9999"], 3),
    ]
    for args, expected in cases:
        code, out = cli(capsys, seeded, *args)
        assert code == expected, (args, out)
        assert "error:" in out and "Traceback" not in out
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        found = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    tables = {r[0] for r in found if not r[0].startswith("__dmv_")}
    assert tables == {"patients"} | {
        f"price_model__0123__{s}__{p}" for s in ("abcd", "efgh") for p in ("train", "valid", "test")
    }
    assert [s.split for s in seeded.data_splits("price-model")] == ["abcd", "efgh"]


def test_empty_result_and_null_keys(project: dmv.Project) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE t AS SELECT range AS id, CASE WHEN range % 10 = 0 THEN NULL "
            "ELSE range END AS k FROM range(100)"
        )
    empty = project.data_query("m", sql="SELECT * FROM t WHERE id < 0")
    with pytest.raises(dmv.DataError, match="no rows"):
        project.data_split("m", empty.data)
    nulls = project.data_query("m", sql="SELECT * FROM t")
    with pytest.raises(dmv.DataError, match="NULL"):
        project.data_split("m", nulls.data, by="key:k")
    assert project.data_splits("m") == []


def test_runs_train_on_stored_splits_only(seeded: dmv.Project) -> None:
    with (
        pytest.raises(dmv.DataError, match=r"no stored split 0123\.zzzz"),
        seeded.run("price-model", data="0123.zzzz"),
    ):
        pass
    decl = {"inputs": {"bmi": "float64"}, "outputs": {"prediction": "float64"}}
    with seeded.run("price-model", data="0123.abcd", interface=decl) as run:
        train = run.dataset("train")
        arrow = run.dataset("test", format="arrow")
    assert run.version is not None and run.version.number == "0.0.1-0123.abcd"
    assert "bmi" in train.columns and arrow.num_rows > 0


def test_splits_behind_versions_are_immutable(seeded: dmv.Project) -> None:
    decl = {"inputs": {"bmi": "float64"}, "outputs": {"prediction": "float64"}}
    with seeded.run("price-model", data="0123.efgh", interface=decl):
        pass
    with pytest.raises(dmv.ConflictError, match=r"used by 0\.0\.1-0123\.efgh"):
        seeded.data_drop("price-model", "0123.efgh")
    seeded.release("price-model@0.0.1-0123.efgh")
    with pytest.raises(dmv.ImmutableError):
        seeded.data_drop("price-model", "0123.efgh")
    seeded.data_drop("price-model", "0123.abcd")  # nothing uses it
    assert [s.split for s in seeded.data_splits("price-model")] == ["efgh"]
    report = seeded.verify("price-model@1.0.1-0123.efgh")
    split = next(c for c in report.checks if c.name == "split")
    assert split.status == "ok"


def test_fsck_finds_unregistered_split_tables(seeded: dmv.Project) -> None:
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        con.execute("CREATE TABLE price_model__0123__dead__train AS SELECT 1 AS x")
        con.execute("DROP VIEW price_model__0123__efgh__valid")
    report = seeded.fsck()
    assert [p["what"] for p in report.problems] == ["price_model__0123__efgh__valid"]
    assert [o["table"] for o in report.orphans if o["kind"] == "split table"] == [
        "price_model__0123__dead__train"
    ]
    seeded.fsck(repair=True, grace_seconds=0)
    assert not [o for o in seeded.fsck().orphans if o["kind"] == "split table"]


def test_diff_shows_the_data_side(seeded: dmv.Project) -> None:
    decl = {"inputs": {"bmi": "float64"}, "outputs": {"prediction": "float64"}}
    for ref in ("0123.abcd", "0123.efgh"):
        with seeded.run("price-model", data=ref, interface=decl):
            pass
    report = seeded.diff("price-model@0.0.1-0123.abcd", "price-model@0.0.1-0123.efgh")
    assert report["changed"] == ["split"]
    assert report["data"]["split_spec"]["old"]["salt"] == ""
    assert report["data"]["split_spec"]["new"]["salt"] == "2"
    assert set(report["data"]["rows"]["old"]) == {"train", "valid", "test"}


def test_file_datasets_split_by_label_and_stored_by_content(
    project: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    lines = ["path,patient"]
    for i in range(40):
        (images / f"scan{i:02d}.png").write_bytes(bytes([i]) * (100 + i))
        lines.append(f"scan{i:02d}.png,p{i // 4}")  # four scans per patient
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    code, out = cli(
        capsys,
        project,
        "data",
        "query",
        "scans",
        "--files",
        str(images),
        "--labels",
        str(tmp_path / "labels.csv"),
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)["data"]
    code, out = cli(
        capsys, project, "data", "split", "scans", data, "--by", "group:patient", "--json"
    )
    assert code == 7 and "part valid is empty" in out  # few patients: refused by default
    code, out = cli(
        capsys, project, "data", "split", "scans", data, "--by", "group:patient",
        "--allow-empty", "--json",
    )  # fmt: skip
    assert code == 0, out
    assert any("valid" in w for w in json.loads(out)["warnings"])
    split = json.loads(out)["split"]
    parts = {p["name"]: p for p in json.loads(out)["parts"]}
    assert sum(p["rows"] for p in parts.values()) == 40
    patients = {}
    for name, part in parts.items():
        for f in part["files"]:
            patients.setdefault(int(f["path"][4:6]) // 4, set()).add(name)
    assert all(len(where) == 1 for where in patients.values())  # no patient in two parts
    frame = project.dataset("scans", f"{data}.{split}", "train")
    first = frame.iloc[0]
    assert Path(first["local_path"]).read_bytes() == (images / first["path"]).read_bytes()
    assert project.fsck().ok and project.fsck().orphans == []
    # the same files and spec give the same split again
    again = project.data_split("scans", data, by="group:patient", allow_empty=True)
    assert again.split == split
