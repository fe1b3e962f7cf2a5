"""Data never moves X.Y.Z: a re-split of the same DATA keeps the version's numbers.

The newcomer's case: a time re-split of the same retrieval moves a rare category
(``LEX``) from the held-out parts into the train part. The category sets the model
learned differ, but they are a *domain*, shown by ``dmv diff`` and never part of Y.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import dmv
from dmv.cli import main
from test_scenario import make_repo

ROWS = 300
RARE = "LEX"


def flights() -> pa.Table:
    """Flights ordered by time; the rare destination sits at 65-75 % of the time range,
    so a 60 % time cut holds it out of train and an 80 % cut trains on it."""
    rng = np.random.default_rng(7)
    start = dt.datetime(2024, 1, 1)
    dest = rng.choice(["ATL", "BOS", "ORD"], ROWS).astype(object)
    dest[int(ROWS * 0.65) : int(ROWS * 0.75)] = RARE
    distance = rng.uniform(100, 2500, ROWS).round(1)
    delayed = ((distance > 1200) ^ (dest == "BOS")).astype(int)
    return pa.table(
        {
            "flight_id": list(range(ROWS)),
            "ts": [start + dt.timedelta(hours=i) for i in range(ROWS)],
            "dest": [str(d) for d in dest],
            "distance": distance,
            "delayed": delayed,
        }
    )


def train_lightgbm(rows: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    import lightgbm as lgb

    x = rows[["dest", "distance"]].astype({"dest": "category"})
    model = lgb.LGBMClassifier(n_estimators=10, min_child_samples=5, verbose=-1)
    return model.fit(x, rows["delayed"]), x


def train_sklearn(rows: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x = rows[["dest", "distance"]]
    prep = ColumnTransformer(
        [
            ("dest", OneHotEncoder(handle_unknown="ignore"), ["dest"]),
            ("distance", SimpleImputer(), ["distance"]),
        ]
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=500))
    return model.fit(x, rows["delayed"]), x


TRAINERS: dict[str, Callable[[pd.DataFrame], tuple[Any, pd.DataFrame]]] = {
    "lightgbm": train_lightgbm,
    "sklearn": train_sklearn,
}


def train(project: dmv.Project, model: str, data: str) -> tuple[dmv.Version, set[str]]:
    """Train with the same code on ``data``; the version and the destinations it saw."""
    with project.run(model, data=data, code=["train.py"]) as run:
        rows = run.dataset("train")
        fitted, x = TRAINERS[model](rows)
        run.log_model(fitted, sample_input=x.head(20))
    assert run.version is not None
    return run.version, set(rows["dest"])


def resplits(project: dmv.Project, model: str) -> dict[str, str]:
    """Three splits of one DATA: two time cuts and a key split with another salt."""
    info = project.data_query(model, sql="SELECT * FROM flights", id="0123")
    early = {"train": 0.6, "valid": 0.2, "test": 0.2}
    late = {"train": 0.8, "valid": 0.1, "test": 0.1}
    a = project.data_split(model, info.data, by="time:ts", ratios=early, id="aaaa")
    b = project.data_split(model, info.data, by="time:ts", ratios=late, id="bbbb")
    c = project.data_split(model, info.data, by="key:flight_id", salt="other", id="cccc")
    return {"early": a.ref, "late": b.ref, "key": c.ref}


def cli(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> str:
    code = main(["-C", str(root), *args])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    return out


def check_stable(project: dmv.Project, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for model in TRAINERS:
        refs = resplits(project, model)
        versions, seen = {}, {}
        for name, ref in refs.items():
            versions[name], seen[name] = train(project, model, ref)
        # the rare category moved between parts: only the late cut trained on it
        assert RARE not in seen["early"] and RARE in seen["late"]
        numbers = {(v.x, v.y, v.z, v.data) for v in versions.values()}
        assert len(numbers) == 1, f"{model}: X.Y.Z or DATA moved: {versions}"
        assert len({v.split for v in versions.values()}) == 3
        early, late = (f"{model}@{versions[k].number}" for k in ("early", "late"))
        report = project.diff(early, late)
        assert list(report["version"]) == ["SPLIT"]
        assert report["interface"]["changes"] == []
        assert report["headline"] == ["split"]
        # the category set learned from the rows is shown as a domain change, never breaking
        domain = report["domain"]["changes"]
        if model == "lightgbm":
            assert any(c["field"] == "dest" and RARE in c["detail"] for c in domain), domain
        assert all(c["compat"] == "domain" for c in domain)
        text = cli(capsys, root, "diff", early, late)
        assert "changed: split" in text and "breaking" not in text
        if model == "lightgbm":
            section = text.split("\ndomain", 1)[1]
            assert "dest" in section and RARE in section
        shown = cli(capsys, root, "show", late)
        assert "never moves Y" in shown
        assert json.loads(cli(capsys, root, "show", late, "--json"))["domain"]["distance"]
        assert json.loads(cli(capsys, root, "diff", early, late, "--json"))["domain"] == {
            "changes": domain
        }


def test_duckdb_resplits_keep_the_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    root = make_repo(tmp_path)
    project = dmv.init(root)
    with duckdb.connect(project.config.location("warehouse")) as con:
        table = flights()
        con.register("frame", table)
        con.execute("CREATE TABLE flights AS SELECT * FROM frame")
    check_stable(project, root, capsys)
    project.close()


@pytest.mark.postgres
def test_postgres_resplits_keep_the_version(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from data_conftest import load
    from dmv.data.engines import open_warehouse

    root = make_repo(tmp_path)
    project = dmv.init(root, warehouse=pg_database)
    with open_warehouse(pg_database) as wh:
        load(wh, "flights", flights())
    check_stable(project, root, capsys)
    project.close()


def test_any_resplit_keeps_the_version_and_the_interface(tmp_path: Path) -> None:
    """For any time cut or key salt of the same DATA, LightGBM's version keeps X.Y.Z."""
    import duckdb
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    root = make_repo(tmp_path)
    project = dmv.init(root)
    with duckdb.connect(project.config.location("warehouse")) as con:
        table = flights()
        con.register("frame", table)
        con.execute("CREATE TABLE flights AS SELECT * FROM frame")
    data = project.data_query("lightgbm", sql="SELECT * FROM flights", id="0123").data
    seen: list[tuple[dmv.Version, set[str]]] = []

    @settings(
        max_examples=4,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.sampled_from(["time:ts", "key:flight_id"]),
        st.integers(5, 8),
        st.text("ab", max_size=3),
    )
    def resplit(by: str, train_tenths: int, salt: str) -> None:
        rest = (10 - train_tenths) / 20
        ratios = {"train": train_tenths / 10, "valid": rest, "test": rest}
        split = project.data_split("lightgbm", data, by=by, ratios=ratios, salt=salt)
        seen.append(train(project, "lightgbm", split.ref))

    resplit()
    versions = [v for v, _ in seen]
    assert len({(v.x, v.y, v.z) for v in versions}) == 1, versions
    interfaces = {project.interface(f"lightgbm@{v.number}").fingerprint for v in versions}
    assert len(interfaces) == 1
    # the draws did move the rare category between parts
    assert {RARE in dests for _, dests in seen} == {True, False}
    project.close()
