"""Splits that cannot mislead: empty and short parts, degenerate time splits, --strict."""

from __future__ import annotations

import json

import duckdb
import pytest

import data_conftest
import dmv
from data_conftest import load, sample_table
from dmv.cli import main
from dmv.data.records import SplitSpec
from dmv.data.split import shortfalls, store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError, InvalidInput

duck = data_conftest.duck


@pytest.fixture
def dated(project: dmv.Project) -> tuple[dmv.Project, str]:
    """The issue's example: 1,000 rows over a date column with 3 distinct values."""
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE ev AS SELECT range AS id, DATE '2024-01-01' + CAST(range % 3 AS INT) "
            "AS d, range % 2 AS y FROM range(1000)"
        )
    return project, project.data_query("m", sql="SELECT * FROM ev").data


def _cli(capsys: pytest.CaptureFixture[str], p: dmv.Project, *args: str) -> tuple[int, str]:
    code = main(["-C", str(p.root), *args])
    out, err = capsys.readouterr()
    return code, out + err


def test_time_split_on_three_dates_is_refused_and_says_why(
    dated: tuple[dmv.Project, str], capsys: pytest.CaptureFixture[str]
) -> None:
    project, data = dated
    code, out = _cli(capsys, project, "data", "split", "m", data, "--by", "time:d")
    assert code == 7
    assert "part test is empty" in out
    assert "time cutoffs coincide (2024-01-03, 2024-01-03)" in out
    assert "--allow-empty" in out
    assert project.data_splits("m") == []  # nothing stored
    with duckdb.connect(project.config.location("warehouse")) as con:
        tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    assert [t for (t,) in tables if t.startswith("m__")] == []


def test_fewer_distinct_times_than_parts_is_said(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE ev AS SELECT range AS id, DATE '2024-01-01' + CAST(range % 2 AS INT) "
            "AS d FROM range(100)"
        )
    data = project.data_query("m", sql="SELECT * FROM ev").data
    with pytest.raises(DataError) as err:
        project.data_split("m", data, by="time:d")
    assert "time column 'd' has 2 distinct value(s) for 3 parts" in err.value.message
    info = project.data_split("m", data, by="time:d", allow_empty=True)
    assert any("2 distinct value(s)" in w for w in info.warnings)
    code, out = _cli(capsys, project, "data", "split", "m", data, "--by", "time:d",
                     "--allow-empty")  # fmt: skip
    assert code == 0 and "warning: time column 'd' has 2 distinct" in out


def test_allow_empty_stores_and_records_the_warning(dated: tuple[dmv.Project, str]) -> None:
    project, data = dated
    info = project.data_split("m", data, by="time:d", allow_empty=True)
    rows = {p["name"]: p["rows"] for p in info.parts}
    assert sum(rows.values()) == 1000 and 0 in rows.values()
    assert info.to_dict()["warnings"] == info.warnings and info.warnings


def test_split_report_shows_rows_share_and_range(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute(
            "CREATE TABLE ev AS SELECT range AS id, TIMESTAMP '2024-01-01' + "
            "to_minutes(CAST(range AS BIGINT)) AS ts, 'u' || (range % 50) AS who FROM range(2000)"
        )
    data = project.data_query("m", sql="SELECT * FROM ev").data
    code, out = _cli(capsys, project, "data", "split", "m", data, "--by", "time:ts", "--json")
    assert code == 0, out
    parts = json.loads(out)["parts"]
    assert [round(p["share"], 2) for p in parts] == [0.8, 0.1, 0.1]
    train, valid, test = (p["range"] for p in parts)
    assert train["column"] == "ts" and train["max"] < valid["min"] <= valid["max"] < test["min"]
    code, out = _cli(capsys, project, "data", "split", "m", data, "--by", "key:who")
    assert code == 0 and "SHARE" in out and "RANGE" in out and "who:" in out and "distinct" in out
    assert "u1" not in out  # a text key's values stay in the warehouse


def test_a_part_far_below_its_ratio_is_refused(duck: Warehouse) -> None:
    load(duck, "src", sample_table(2000, users=12))  # 12 users: the parts come out lumpy
    spec = SplitSpec("key", "user_id", {"train": 0.5, "valid": 0.25, "test": 0.25})
    counts = {"train": 1500, "valid": 450, "test": 50}
    assert shortfalls(spec, counts, 0.5) == [
        "part test is far below its ratio: 50 of 2,000 rows (2.5%, ratio 25.0%)"
    ]
    assert shortfalls(spec, counts, 0.0) == []
    spec = SplitSpec("key", "user_id", {"train": 0.6, "valid": 0.2, "test": 0.2})
    for share in (0.0, 1.0):  # 12 users cannot fall 60/20/20 exactly
        try:
            store_split(duck, "SELECT * FROM src", spec, f"m__d__s{int(share)}", min_share=share)
        except DataError as exc:
            assert share == 1.0 and "below its ratio" in exc.message
        else:
            assert share == 0.0  # no tolerance: only empty parts are refused


def test_strict_refuses_warnings_and_cannot_be_combined(dated: tuple[dmv.Project, str]) -> None:
    project, data = dated
    with pytest.raises(InvalidInput, match="--allow-empty"):
        project.data_split("m", data, by="time:d", strict=True, allow_empty=True)
    with pytest.raises(DataError, match="would mislead"):
        project.data_split("m", data, by="time:d", strict=True)


def test_strict_refuses_leakage(duck: Warehouse) -> None:
    load(duck, "src", sample_table(1000, users=50))
    with pytest.raises(DataError, match="leakage"):
        # a row split puts one user's rows in several parts; strict checks the user too
        store_split(
            duck, "SELECT * FROM src", SplitSpec("row"), "m__d__s", strict=True,
            check_keys=["user_id"],
        )  # fmt: skip
    assert not duck.table_exists("m__d__s__train")


def test_file_split_with_an_empty_part_is_refused(project: dmv.Project, tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / "few"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.bin").write_bytes(bytes([i]))
    data = project.data_files("few", str(folder)).data
    with pytest.raises(DataError, match="empty"):
        project.data_split("few", data)
    assert project.data_split("few", data, allow_empty=True).warnings
