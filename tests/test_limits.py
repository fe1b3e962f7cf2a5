"""Limits on what users give: artifact names, text fields, rows, table-name collisions.

Real projects (SQLite, and the real PostgreSQL for the registry check), real
files, the real server app. A refused input must leave nothing stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.errors import ConflictError, InvalidInput

VERSION = "0.0.1-0123.abcd"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dmv.Project]:
    p = dmv.init(tmp_path / "proj")
    yield p
    p.close()


# -- artifact names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("../../x", "separator"),
        ("/etc/passwd", "separator"),
        ("a\\b", "separator"),
        ("..", "not a file name"),
        ("a\x00b", "control character U+0000"),
        ("a\x1b[31mred", "control character U+001B"),
        ("x" * 5000, "5,000 bytes"),
        ("report\u202eLMTH.exe", "bidirectional control U+202E"),
    ],
)
def test_bad_artifact_names_are_refused_and_nothing_is_stored(
    project: dmv.Project, tmp_path: Path, name: str, says: str
) -> None:
    file = tmp_path / "report.html"
    file.write_text("<p>hi</p>", encoding="utf-8")
    with pytest.raises(InvalidInput, match=re.escape(says)), project.experiment("m") as run:
        run.log_artifact(file, name=name)
    assert run.artifacts == []


def test_a_folder_with_a_badly_named_file_stores_none_of_it(
    project: dmv.Project, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "fine.txt").write_text("ok", encoding="utf-8")
    (folder / "evil\u202etxt.exe").write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInput, match="U\\+202E"), project.experiment("m") as run:
        run.log_artifact(folder)
    assert run.artifacts == []


def test_good_artifact_names_are_kept(project: dmv.Project, tmp_path: Path) -> None:
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "roc curve.png").write_bytes(b"png")
    (folder / "données.csv").write_text("a\n1\n", encoding="utf-8")
    with project.experiment("m") as run:
        added = run.log_artifact(folder, name="plots-1")
    assert sorted(a.name for a in added) == ["plots-1/données.csv", "plots-1/sub/roc curve.png"]


# -- model text fields ------------------------------------------------------------------


def test_a_20_mb_description_is_refused(project: dmv.Project) -> None:
    with pytest.raises(InvalidInput, match="10,000 are accepted"):
        project.create_model("m", description="x" * 20_000_000)
    assert project.models() == []
    project.create_model("m", description="line one\nline two\ttabbed")
    with pytest.raises(InvalidInput, match="purpose is 201 characters"):
        project.update_model("m", purpose="p" * 201)
    with pytest.raises(InvalidInput, match="U\\+0000"):
        project.update_model("m", function="a\x00b")
    with pytest.raises(InvalidInput, match="U\\+202E"):
        project.update_model("m", purpose="\u202eesrever")
    assert project.model("m").to_dict()["purpose"] == ""


def test_the_api_refuses_long_fields_with_a_422_naming_them(project: dmv.Project) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    client = TestClient(create_app(project))
    r = client.post("/api/v1/models", json={"name": "m", "description": "x" * 10_001})
    assert r.status_code == 422 and r.json()["error"]["details"]["problems"][0]["field"] == (
        "description"
    )
    r = client.post("/api/v1/models", json={"name": "m", "purpose": "ok\x07"})
    assert r.status_code == 422 and "purpose" in r.json()["error"]["message"]
    assert project.models() == []


def test_a_deprecation_reason_is_bounded(project: dmv.Project, small_model: Any) -> None:
    with project.run("iris", version=VERSION) as run:
        run.log_model(small_model)
    with pytest.raises(InvalidInput, match="reason is 1,001 characters"):
        project.deprecate(f"iris@{VERSION}", reason="r" * 1001)
    assert project.show(f"iris@{VERSION}").to_dict()["state"] == "prerelease"


# -- rows per request ---------------------------------------------------------------------


def test_too_many_rows_in_one_predict_is_413(tmp_path: Path, small_model: Any) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    p = dmv.init(tmp_path / "p", max_rows_per_request=10)
    try:
        with p.run("iris", version=VERSION) as run:
            run.log_model(small_model)
        client = TestClient(create_app(p))
        row = {"x0": 1.0, "x1": 2.0, "x2": 3.0, "x3": 4.0}
        r = client.post(f"/models/iris/versions/{VERSION}/predict", json={"inputs": [row] * 11})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "too_large"
        assert "max_rows_per_request" in r.json()["error"]["hint"]
        r = client.post(f"/models/iris/versions/{VERSION}/predict", json={"inputs": [row] * 10})
        assert r.status_code == 200, r.text
    finally:
        p.close()


# -- table names cannot collide ----------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("a", "a--b"), ("a--b", "a"), ("a-b", "a-b--c")])
def test_models_whose_tables_could_collide_cannot_both_exist(
    project: dmv.Project, first: str, second: str
) -> None:
    """The issue's pair: a--b with DATA x, SPLIT y and a with DATA b, SPLIT x share a__b__x__y."""
    project.create_model(first)
    with pytest.raises(ConflictError, match="warehouse table names") as caught:
        project.create_model(second)
    assert caught.value.details["clashes_with"] == first
    # Implicit creation by a run is checked the same way.
    with pytest.raises(ConflictError, match="warehouse table names"), project.experiment(second):
        pass
    assert [m.name for m in project.models()] == [first]


def test_names_that_merely_look_alike_are_fine(project: dmv.Project) -> None:
    for name in ("a", "ab", "a-b", "b--a", "a-bc"):
        project.create_model(name)
    project.create_model("a", exist_ok=True)
    assert len(project.models()) == 5


def test_the_collision_is_refused_on_postgresql_too(tmp_path: Path, pg_database: str) -> None:
    p = dmv.init(tmp_path / "pg", registry=pg_database)
    try:
        p.create_model("a")
        with pytest.raises(ConflictError, match="warehouse table names"):
            p.create_model("a--b")
        with pytest.raises(ConflictError), p.experiment("a--b"):
            pass
        assert [m.name for m in p.models()] == ["a"]
    finally:
        p.close()
