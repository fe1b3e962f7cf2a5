"""Training and experiment runs through the Python API, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dmv
from dmv import InvalidInput, Version


def test_runs_number_tr0_tr1_on_the_same_version(
    any_project: dmv.Project, small_model: Any
) -> None:
    p = any_project
    with p.run("price-model", version="0.0.1-0123.abcd", params={"C": 1.0}) as run:
        run.log_metrics({"accuracy": 0.95}, split="test")
        run.log_metrics({"accuracy": 0.97}, split="train")
        run.log_model(small_model)
    assert run.id == "tr0"
    assert run.version == Version.parse("price-model 0.0.1-0123.abcd")
    with p.run("price-model", version="0.0.1-0123.abcd", params={"C": 1.0}) as again:
        again.log_metric("accuracy", np.float64(0.94), split="test")
    assert again.id == "tr1"
    runs = p.runs("price-model@0.0.1")
    assert [r.id for r in runs] == ["tr0", "tr1"]
    assert runs[0].metrics == {"test": {"accuracy": 0.95}, "train": {"accuracy": 0.97}}
    assert runs[1].metrics == {"test": {"accuracy": 0.94}}
    assert runs[0].params == {"C": 1.0}
    assert p.show("price-model@0.0.1").run_count == 2
    assert len(p.versions("price-model")) == 1


def test_model_files_round_trip_verified(any_project: dmv.Project, small_model: Any) -> None:
    from sklearn.datasets import load_iris

    with any_project.run("iris", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
    loaded = any_project.load_model("iris@0.0.1-a.b")
    x, _ = load_iris(return_X_y=True)
    assert (loaded.predict(x) == small_model.predict(x)).all()  # type: ignore[attr-defined]
    assert run.info is not None and run.info.artifacts[0].digest == art.digest
    assert art.meta is not None and art.meta["flavor"] == "sklearn"


def test_exception_marks_run_failed_and_registers_nothing(any_project: dmv.Project) -> None:
    p = any_project
    with pytest.raises(ZeroDivisionError), p.run("m", version="0.0.1-a.b") as run:
        run.log_params(lr=0.1)
        _ = 1 / 0
    assert run.status == "failed" and run.id is None
    assert p.versions("m") == []  # no version was registered
    failed = p.failed_runs("m")
    assert len(failed) == 1
    assert failed[0].intended == "0.0.1-a.b" and "ZeroDivisionError" in (failed[0].error or "")
    # the next successful run still starts at tr0: numbers are gap-free
    with p.run("m", version="0.0.1-a.b") as ok:
        pass
    assert ok.id == "tr0"


def test_artifacts_and_folders(project: dmv.Project, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with project.run("m", version="0.0.1-a.b") as run:
        run.log_artifact(folder)
        run.log_artifact(folder / "a.txt", name="notes.txt")
    names = sorted(a.name for a in project.get_run("m@0.0.1-a.b", "tr0").artifacts)
    assert names == ["notes.txt", "report/a.txt", "report/sub/b.txt"]


def test_experiments_carry_no_number(project: dmv.Project) -> None:
    with project.experiment("m", data="0123.abcd", params={"depth": 3}) as e1:
        e1.log_metrics({"auc": 0.8})
    with project.experiment("m") as e2:
        pass
    assert (e1.id, e2.id) == ("ex1", "ex2")
    assert e1.info is not None and e1.info.label == "m x.x.x-0123.abcd"
    assert e2.info is not None and e2.info.label == "m x.x.x-x.x"
    assert project.versions("m") == []
    assert [r.id for r in project.experiments("m")] == ["ex1", "ex2"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"version": "0.0.1-01_23.abcd"}, "DATA '01_23' may contain only a-z and 0-9"),
        ({"version": "1.0.0-a.b"}, "is a release"),
        ({"version": "0.0.1-a.b", "data": "c.d"}, "disagrees"),
        ({}, "needs data='DATA.SPLIT'"),
    ],
)
def test_bad_run_arguments(project: dmv.Project, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment), project.run("m", **kwargs):
        pass
    assert project.audit(limit=None) == []


def test_bad_logged_values(project: dmv.Project) -> None:
    with pytest.raises(InvalidInput, match="only finite"), project.run("m", "0.0.1-a.b") as r:
        r.log_metrics({"loss": float("nan")})
    with pytest.raises(InvalidInput, match="cannot be stored"), project.run("m", "0.0.1-a.b") as r:
        r.log_params(fn=object())
    with pytest.raises(InvalidInput, match="no predict"), project.run("m", "0.0.1-a.b") as r:
        r.log_model(object())
    assert project.versions("m") == []


def test_project_is_found_upwards(project: dmv.Project) -> None:
    deep = project.root / "a" / "b"
    deep.mkdir(parents=True)
    assert dmv.open(deep).root == project.root
    with pytest.raises(dmv.NotFound, match="no dmv project"):
        dmv.open("/")
