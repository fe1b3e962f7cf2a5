"""``dmv predict`` on a Spark warehouse: the executors score, against a real Spark Connect server.

The model loads on the executors from the artifact store (its digest checked there),
every row is validated there, and the output table is written by the cluster; the
answers match DuckDB's for the same rows and model.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import dmv
import spark_conftest
from dmv.data.engines import open_warehouse
from dmv.errors import ArtifactError, BadRows, StorageError

spark_url = spark_conftest.spark_url
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

MODEL = "price-model"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


def _patients() -> pa.Table:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return pa.Table.from_pandas(x.assign(target=y, patient_id=range(len(x))), preserve_index=False)


def _load(url: str, name: str, table: pa.Table) -> None:
    with open_warehouse(url) as wh:
        wh.create_from_arrow(
            name, pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
        )


def _tables(url: str) -> list[str]:
    with open_warehouse(url) as wh:
        return sorted(wh.list_tables())


def _read(url: str, table: str) -> Any:
    with open_warehouse(url) as wh:
        return wh.reader(f'SELECT * FROM "{table}"').read_all().to_pandas()


def _project(root: Path, url: str) -> tuple[dmv.Project, Any, str]:
    from sklearn.linear_model import Ridge

    project = dmv.init(root, warehouse=url)
    _load(url, "patients", _patients())
    project.data_query(MODEL, sql="SELECT * FROM patients", id="0123")
    project.data_split(MODEL, "0123", by="key:patient_id", id="abcd")
    with project.run(MODEL, data="0123.abcd") as run:
        train = run.dataset("train")
        model = Ridge(alpha=0.5).fit(train[FEATURES], train["target"])
        run.log_model(model, sample_input=train[FEATURES].head(5))
    return project, model, project.versions(MODEL)[-1].version.ref


@pytest.fixture(scope="module")
def on_spark(
    spark_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dmv.Project, Any, str, str]]:
    url = spark_conftest.spark_database_url(spark_url)
    project, model, ref = _project(tmp_path_factory.mktemp("spark") / "p", url)
    try:
        yield project, model, ref, url
    finally:
        project.close()
        with open_warehouse(spark_url) as wh:
            wh.execute(f'DROP NAMESPACE IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')


def test_part_and_sql_input_scored_on_the_executors(
    on_spark: tuple[dmv.Project, Any, str, str], tmp_path: Path
) -> None:
    project, model, ref, url = on_spark
    test = project.dataset(MODEL, "0123.abcd", "test").sort_values("patient_id")
    record = project.predict(ref, input="0123.abcd:test")
    assert record.output.startswith("price_model__0_0_1__0123__abcd__pred__")
    assert record.details["engine"] == "spark"
    out = _read(url, record.output).sort_values("patient_id")
    assert list(out.columns) == ["patient_id", "prediction", "dmv_version"]
    assert (record.rows_in, record.rows_out, record.rows_rejected) == (len(test), len(test), 0)
    assert list(out["patient_id"]) == list(test["patient_id"])
    assert out["prediction"].to_numpy() == pytest.approx(model.predict(test[FEATURES]), rel=1e-12)
    assert set(out["dmv_version"]) == {f"{MODEL} {ref.split('@')[1]}"}
    split = project.split_info(MODEL, "0123.abcd")
    part = next(p for p in split.parts if p["name"] == "test")
    assert record.input_fingerprint == part["fingerprint"]
    assert project.verify_prediction(record.id).ok
    assert not [t for t in _tables(url) if t.startswith("dmv_tmp_pred_")]

    # a retrieval, scored where it runs; its fingerprint is the engine's
    sql = project.predict(
        ref, sql="SELECT * FROM patients WHERE patient_id < 40", keys=["patient_id"]
    )
    assert sql.rows_out == 40 and sql.input_fingerprint.startswith("spark-hash:")
    assert sql.input_fingerprint.endswith(f":40:{sql.input_fingerprint.rsplit(':', 1)[1]}")
    scored = _read(url, sql.output).sort_values("patient_id")
    assert list(scored["patient_id"]) == list(range(40))
    assert project.verify_prediction(sql.id).ok

    # the same rows and the same model on DuckDB answer the same, value for value
    duck = dmv.init(tmp_path / "duck")
    try:
        import duckdb

        with duckdb.connect(duck.config.location("warehouse")) as con:
            con.register("frame", test)
            con.execute("CREATE TABLE rows AS SELECT * FROM frame")
        with duck.run(MODEL, version="0.0.1-0123.abcd") as run:
            run.log_model(model, sample_input=test[FEATURES].head(5))
        theirs = duck.predict(
            f"{MODEL}@0.0.1-0123.abcd", sql="SELECT * FROM rows", keys=["patient_id"]
        )
        with open_warehouse(duck.config.location("warehouse")) as wh:
            got = wh.reader(f'SELECT * FROM "{theirs.output}"').read_all().to_pandas()
        got = got.sort_values("patient_id")
        assert list(got["patient_id"]) == list(out["patient_id"])
        assert got["prediction"].tolist() == out["prediction"].tolist()
    finally:
        duck.close()


def test_a_bad_row_is_refused_or_rejected_on_the_executors(
    on_spark: tuple[dmv.Project, Any, str, str],
) -> None:
    project, _, ref, url = on_spark
    rows = _patients().slice(0, 30).to_pandas()
    rows["bmi"] = rows["bmi"].astype(object)
    bad_id = int(rows["patient_id"].iloc[7])
    rows.loc[7, "bmi"] = None  # the interface does not allow a null bmi
    rows["bmi"] = rows["bmi"].astype(float)
    _load(url, "some_bad", pa.Table.from_pandas(rows, preserve_index=False))
    before = _tables(url)
    count = len(project.predictions(MODEL))
    with pytest.raises(BadRows) as caught:
        project.predict(ref, sql="SELECT * FROM some_bad", keys=["patient_id"])
    problem = caught.value.details["problems"][0]
    assert (problem["field"], problem["problem"]) == ("bmi", "null")
    assert _tables(url) == before and len(project.predictions(MODEL)) == count
    record = project.predict(
        ref, sql="SELECT * FROM some_bad", keys=["patient_id"], on_bad_rows="reject"
    )
    assert (record.rows_in, record.rows_out, record.rows_rejected) == (30, 29, 1)
    assert record.rejects == f"{record.output}__rejects"
    rejects = _read(url, record.rejects)
    assert list(rejects.columns) == [*rows.columns, "dmv_problem"]
    assert rejects["patient_id"].tolist() == [bad_id]
    assert "'bmi' may not be null" in rejects["dmv_problem"].iloc[0]
    scored = _read(url, record.output)["patient_id"].tolist()
    assert bad_id not in scored and len(scored) == 29
    assert record.details["problems"][0]["field"] == "bmi"
    assert project.verify_prediction(record.id).ok


def test_a_tampered_model_file_is_refused_on_the_executor(spark_url: str, tmp_path: Path) -> None:
    from dmv.flavors.stored import load_stored
    from dmv.release import predict as batch
    from dmv.release.serving_run import model_artifact

    url = spark_conftest.spark_database_url(spark_url)
    project, _, ref = _project(tmp_path / "p", url)
    try:
        info = project.show(ref)
        run, art = model_artifact(project.registry, info, None)
        # the client loaded the model while its file was intact; the executors load it
        # themselves, and find it changed
        model = load_stored(project.artifacts, info, run.id, art, trust_pickle=False)
        blob = Path(project.artifacts.path_of(art.digest))
        before = _tables(url)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.chmod(0o644)
        blob.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match="does not match"):
            batch.predict_batches(
                project.stores, info, run.id, model, batch.parse_input("0123.abcd:test", None, None)
            )
        assert _tables(url) == before and project.predictions(MODEL) == []
        # an artifact store the executors cannot reach: said so, nothing left behind
        moved = tmp_path / "elsewhere"
        shutil.move(project.config.location("artifacts"), moved)
        with pytest.raises(StorageError, match="executor cannot read the artifact store"):
            batch.predict_batches(
                project.stores, info, run.id, model, batch.parse_input("0123.abcd:test", None, None)
            )
        assert _tables(url) == before and project.predictions(MODEL) == []
    finally:
        project.close()


def test_a_killed_predict_on_spark_registers_nothing_and_leaves_no_final_table(
    spark_url: str, tmp_path: Path
) -> None:
    url = spark_conftest.spark_database_url(spark_url)
    project, _, _ = _project(tmp_path / "p", url)
    try:
        sys.path.insert(0, str(TESTS))
        try:
            from _workers.predict_models import Sleepy
        finally:
            sys.path.remove(str(TESTS))
        (project.root / "_workers").mkdir(exist_ok=True)
        files = ["_workers/__init__.py", "_workers/predict_models.py"]
        for rel in files:
            shutil.copyfile(TESTS / rel, project.root / rel)
        go, marker = tmp_path / "go", tmp_path / "scoring"
        project.data_query("slow", sql="SELECT * FROM patients", id="0123")
        project.data_split("slow", "0123", by="key:patient_id", id="abcd")
        with project.run("slow", data="0123.abcd") as run:
            x = run.dataset("train")[FEATURES]
            model = Sleepy(str(go), str(marker), seconds=20)
            run.log_model(model, sample_input=x.head(5), code=files, trust_pickle=True)
        ref = project.versions("slow")[-1].version.ref
        go.touch()
        before = _tables(url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
        cmd = [sys.executable, "-m", "dmv", "-C", str(project.root), "predict", ref,
               "--input", "0123.abcd:test", "--trust-pickle"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while not marker.exists():  # an executor is scoring: the job is under way
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the executors never started scoring"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        go.unlink()
        assert project.predictions("slow") == []
        # whatever the abandoned job left is under a temporary name fsck collects
        left = [t for t in _tables(url) if t not in before]
        assert all(t.startswith("dmv_tmp_pred_") for t in left), left
        assert not [t for t in _tables(url) if "__pred__" in t]
    finally:
        project.close()
