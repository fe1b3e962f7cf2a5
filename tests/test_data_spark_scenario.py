"""The reference scenario on a project whose warehouse is a real Spark Connect server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import dmv
import spark_conftest

spark_url = spark_conftest.spark_url
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

TRAIN = """
import sys
import dmv
from sklearn.linear_model import Ridge
ALPHA = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
FEATURES = ["age", "bmi", "bp"]
project = dmv.open()
with project.run("price-model", data="0123.abcd", params={"alpha": ALPHA},
                 code=["train.py"]) as run:
    train, test = run.dataset("train"), run.dataset("test")
    model = Ridge(alpha=ALPHA).fit(train[FEATURES], train["target"])
    run.log_metrics({"r2": model.score(train[FEATURES], train["target"])}, split="train")
    run.log_metrics({"r2": model.score(test[FEATURES], test["target"])}, split="test")
    run.log_model(model, sample_input=train[FEATURES].head(3))
print(run.version.number, run.id)
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_reference_scenario_on_spark(tmp_path: Path, spark_url: str) -> None:
    from sklearn.datasets import load_diabetes

    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ml@example.com")
    git(root, "config", "user.name", "ML")
    (root / "train.py").write_text(TRAIN)
    url = spark_conftest.spark_database_url(spark_url)
    project = dmv.init(root, warehouse=url)
    assert "sc://" in (root / "dmv.toml").read_text()
    # the source table, written into the cluster
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    patients = pa.Table.from_pandas(
        x.assign(target=y, patient_id=range(len(x))), preserve_index=False
    )
    from dmv.data.engines import open_warehouse

    with open_warehouse(url) as wh:
        wh.create_from_arrow(
            "patients", pa.RecordBatchReader.from_batches(patients.schema, patients.to_batches())
        )
    # retrieval, two splits
    project.data_query("price-model", sql="SELECT * FROM patients", id="0123")
    abcd = project.data_split("price-model", "0123", by="key:patient_id", id="abcd")
    efgh = project.data_split("price-model", "0123", by="key:patient_id", salt="2", id="efgh")
    with open_warehouse(url) as wh:
        tables = set(wh.list_tables())
    assert {"price_model__0123__abcd__train", "price_model__0123__efgh__test"} <= tables
    assert abcd.parts != efgh.parts
    # the same split again is found before anything is written: no table added
    same = project.data_split("price-model", "0123", by="key:patient_id", id="abcd")
    assert (same.split, same.already_stored, same.rebuilt) == ("abcd", True, False)
    with open_warehouse(url) as wh:
        assert set(wh.list_tables()) == tables
    # training on the stored split, in a real script from a committed tree
    git(root, "add", "train.py", "dmv.toml")
    git(root, "commit", "-qm", "train")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "train.py", "0.5"], cwd=root, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.0.1-0123.abcd", "tr0"]
    # verify the data, release, verify the version, reproduce it
    assert project.data_verify("price-model", "0123.abcd", against_source=True)["ok"]
    released = project.release("price-model@0.0.1-0123.abcd")
    number = released.version.number
    assert number.startswith("1.") and number.endswith("-0123.abcd")  # a release, same data
    report = project.verify(released.version)
    assert report.ok, report.to_dict()
    again = project.reproduce(released.version)
    assert again.ok, again.to_dict()
    out = project.data_export("price-model", "0123.abcd", "test", tmp_path / "test.parquet")
    assert out.rows == next(p["rows"] for p in abcd.parts if p["name"] == "test")
    # the split nothing trained on can be dropped: its tables leave the cluster
    project.data_drop("price-model", "0123.efgh")
    with open_warehouse(url) as wh:
        left = set(wh.list_tables())
    assert not any("__efgh__" in t for t in left) and "price_model__0123__abcd__train" in left
