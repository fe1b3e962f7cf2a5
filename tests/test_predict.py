"""Batch prediction by version (``dmv predict``) against the real DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dmv
from conftest import part_storage, seed_warehouse
from dmv.cli import main
from dmv.data.engines import open_warehouse
from dmv.errors import BadRows, DataError, IntegrityError, InvalidInput, UntrustedModel

MODEL = "price-model"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


def _train(project: dmv.Project, data: str = "0123.abcd") -> tuple[Any, str]:
    from sklearn.linear_model import Ridge

    with project.run(MODEL, data=data) as run:
        train = run.dataset("train")
        x, y = train[FEATURES], train["target"]
        model = Ridge(alpha=0.5).fit(x, y)
        run.log_model(model, sample_input=x.head(5))
    return model, project.versions(MODEL)[-1].version.ref


@pytest.fixture
def trained(project: dmv.Project) -> Iterator[tuple[dmv.Project, Any, str]]:
    seed_warehouse(project)
    model, ref = _train(project)
    yield project, model, ref


def _tables(project: dmv.Project) -> list[str]:
    with open_warehouse(project.config.location("warehouse")) as wh:
        return wh.list_tables()


def _read(project: dmv.Project, table: str) -> pa.Table:
    with open_warehouse(project.config.location("warehouse")) as wh:
        return wh.reader(f'SELECT * FROM "{table}"').read_all()


def test_a_part_scored_into_a_table_named_after_the_version(
    trained: tuple[dmv.Project, Any, str],
) -> None:
    project, model, ref = trained
    test = project.dataset(MODEL, "0123.abcd", "test")
    record = project.predict(ref, input="0123.abcd:test")
    assert re.fullmatch(r"price_model__0_0_1__0123__abcd__pred__[0-9a-f]{8}", record.output)
    assert record.output.endswith(record.id)
    out = _read(project, record.output).to_pandas().sort_values("patient_id")
    # the split's key column, the interface's output and the version; nothing else
    assert list(out.columns) == ["patient_id", "prediction", "dmv_version"]
    assert (record.rows_in, record.rows_out, record.rows_rejected) == (len(test), len(test), 0)
    expected = test.sort_values("patient_id")
    want = model.predict(expected[FEATURES])
    assert out["prediction"].to_numpy() == pytest.approx(want)
    assert set(out["dmv_version"]) == {f"{MODEL} {ref.split('@')[1]}"}
    # recorded: the version, its serving run, the part's fingerprint, the output's
    split = project.split_info(MODEL, "0123.abcd")
    part = next(p for p in split.parts if p["name"] == "test")
    assert record.input_fingerprint == part["fingerprint"]
    assert record.run_id == "tr0" and record.input_kind == "part"
    assert [r.id for r in project.predictions(MODEL)] == [record.id]
    assert [r.id for r in project.predictions(ref)] == [record.id]
    assert project.prediction(record.id).output_fingerprint == record.output_fingerprint
    assert project.verify_prediction(record.id).ok
    # fsck knows it: an output named after its version is no orphan split table
    fsck = project.fsck(repair=True, grace_seconds=0)
    assert record.output not in {o.get("table") for o in fsck.orphans}
    assert record.output in _tables(project)
    # what a killed predict can leave under its temporary name is collected
    with open_warehouse(project.config.location("warehouse")) as wh:
        wh.execute('CREATE TABLE "dmv_tmp_pred_0badcafe" AS SELECT 1 AS x')
    fsck = project.fsck(repair=True, grace_seconds=0)
    assert "dmv_tmp_pred_0badcafe" in {o.get("table") for o in fsck.orphans}
    assert "dmv_tmp_pred_0badcafe" not in _tables(project)
    # the output changed behind dmv's back: verify says so
    with open_warehouse(project.config.location("warehouse")) as wh:
        wh.execute(
            f'UPDATE "{record.output}" SET prediction = prediction + 1 WHERE patient_id = '
            f"{int(expected['patient_id'].iloc[0])}"
        )
    report = project.verify_prediction(record.id)
    assert not report.ok and "output table" in [c.name for c in report.checks if c.status == "fail"]


def test_sql_input_into_parquet_and_file_input(
    trained: tuple[dmv.Project, Any, str], tmp_path: Path
) -> None:
    project, model, ref = trained
    out = tmp_path / "scores.parquet"
    sql = "SELECT * FROM patients WHERE patient_id < 50"
    record = project.predict(ref, sql=sql, output=str(out), keys=["patient_id"])
    got = pq.read_table(out).to_pandas()
    assert list(got.columns) == ["patient_id", "prediction", "dmv_version"]
    assert sorted(got["patient_id"]) == list(range(50))
    assert record.input_kind == "sql" and record.input.startswith("warehouse: SELECT")
    assert record.input_fingerprint.startswith("arrow-ipc-sha256:")
    assert record.output == str(out) and project.verify_prediction(record.id).ok
    # the retrieval sandbox: SQL that writes, or reads a file, is refused; nothing recorded
    with pytest.raises(DataError, match="only SELECT"):
        project.predict(ref, sql="DROP TABLE patients", output=str(tmp_path / "x.parquet"))
    assert "patients" in _tables(project)
    # no leftover spool files beside the output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # a Parquet file as input, scored into a table; no key: the row's ordinal
    rows = tmp_path / "rows.parquet"
    frame = project.dataset(MODEL, "0123.abcd", "train").head(30)
    frame[FEATURES].to_parquet(rows)
    again = project.predict(ref, input=str(rows))
    table = _read(project, again.output).to_pandas().sort_values("dmv_row")
    assert list(table["dmv_row"]) == list(range(30))
    assert table["prediction"].to_numpy() == pytest.approx(model.predict(frame[FEATURES]))
    assert again.input_kind == "file" and again.input_fingerprint.startswith("sha256:")
    # the output file exists already: refused, untouched
    before = out.read_bytes()
    with pytest.raises(InvalidInput, match="exists"):
        project.predict(ref, sql=sql, output=str(out))
    assert out.read_bytes() == before


def _csv_with_a_bad_row(project: dmv.Project, path: Path) -> int:
    frame = project.dataset(MODEL, "0123.abcd", "train").head(20)[["patient_id", *FEATURES]]
    frame.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    cells = lines[6].split(",")
    cells[3] = ""  # row 5's bmi: null, which the interface does not allow
    lines[6] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return int(cells[0])


def test_a_bad_row_is_refused_or_rejected_as_configured(
    trained: tuple[dmv.Project, Any, str], tmp_path: Path
) -> None:
    project, _, ref = trained
    rows = tmp_path / "rows.csv"
    bad_id = _csv_with_a_bad_row(project, rows)
    before = _tables(project)
    with pytest.raises(BadRows) as caught:
        project.predict(ref, input=str(rows), keys=["patient_id"])
    assert caught.value.details["problems"][0]["field"] == "bmi"
    assert caught.value.details["problems"][0]["problem"] == "null"
    assert _tables(project) == before and project.predictions(MODEL) == []
    record = project.predict(ref, input=str(rows), keys=["patient_id"], on_bad_rows="reject")
    assert (record.rows_in, record.rows_out, record.rows_rejected) == (20, 19, 1)
    assert record.rejects == f"{record.output}__rejects"
    rejects = _read(project, record.rejects).to_pylist()
    assert [r["patient_id"] for r in rejects] == [bad_id]
    assert "'bmi' may not be null" in rejects[0]["dmv_problem"]
    scored = _read(project, record.output).column("patient_id").to_pylist()
    assert bad_id not in scored and len(scored) == 19  # never silently dropped: it is there
    assert project.verify_prediction(record.id).ok
    # a column the interface types otherwise is the input's fault: refused whole
    lines = rows.read_text().splitlines()
    cells = lines[2].split(",")
    cells[3] = "heavy"  # bmi becomes a text column
    lines[2] = ",".join(cells)
    rows.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match="column 'bmi' is string; the interface declares"):
        project.predict(ref, input=str(rows), on_bad_rows="reject")


def test_a_tampered_input_part_is_refused(trained: tuple[dmv.Project, Any, str]) -> None:
    project, _, ref = trained
    split = project.split_info(MODEL, "0123.abcd")
    table = next(p["table"] for p in split.parts if p["name"] == "test")
    before = _tables(project)
    import duckdb

    with duckdb.connect(project.config.location("warehouse")) as con:
        storage = part_storage(con, table)
        con.execute(
            f'UPDATE "{storage}" SET bmi = bmi + 0.001 WHERE patient_id = '
            f'(SELECT min(patient_id) FROM "{table}")'
        )
    with pytest.raises(IntegrityError, match="does not match its record"):
        project.predict(ref, input="0123.abcd:test")
    assert _tables(project) == before and project.predictions(MODEL) == []


def _slow_version(project: dmv.Project) -> str:
    sys.path.insert(0, str(TESTS))
    try:
        from _workers.predict_models import Slow
    finally:
        sys.path.remove(str(TESTS))
    (project.root / "_workers").mkdir(exist_ok=True)
    files = ["_workers/__init__.py", "_workers/predict_models.py"]
    for rel in files:
        shutil.copyfile(TESTS / rel, project.root / rel)
    with project.run("slow", data="0123.abcd") as run:
        x = run.dataset("train")[FEATURES]
        run.log_model(Slow(), sample_input=x.head(5), code=files, trust_pickle=True)
    return project.versions("slow")[-1].version.ref


def test_a_model_that_is_not_servable_scores_nothing(project: dmv.Project) -> None:
    seed_warehouse(project)
    project.data_query("slow", sql="SELECT * FROM patients", id="0123")
    project.data_split("slow", "0123", by="key:patient_id", id="abcd")
    ref = _slow_version(project)
    before = _tables(project)
    # pickled: not loaded without trust, as the server would not load it
    with pytest.raises(UntrustedModel):
        project.predict(ref, input="0123.abcd:test", trust_pickle=False)
    # a version without a model file
    project.registry.create_version(dmv.Version.parse(f"{MODEL} 0.0.9-0123.abcd"))
    with pytest.raises(dmv.NotFound):
        project.predict(f"{MODEL}@0.0.9-0123.abcd", input="0123.abcd:test")
    assert _tables(project) == before
    assert project.predictions("slow") == []


def test_a_killed_predict_registers_nothing_and_leaves_no_table(
    project: dmv.Project, tmp_path: Path
) -> None:
    seed_warehouse(project)
    project.data_query("slow", sql="SELECT * FROM patients", id="0123")
    project.data_split("slow", "0123", by="key:patient_id", id="abcd")
    ref = _slow_version(project)
    before = _tables(project)
    marker = tmp_path / "scoring"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)]),
        "DMV_TEST_SLOW": str(marker),
    }
    cmd = [
        sys.executable,
        "-m",
        "dmv",
        "-C",
        str(project.root),
        "predict",
        ref,
        "--input",
        "0123.abcd:test",
        "--trust-pickle",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the model never started scoring"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert project.predictions("slow") == []
    assert _tables(project) == before
    assert not [t for t in _tables(project) if "pred" in t]


def test_cli_predict_predictions_and_verify(
    trained: tuple[dmv.Project, Any, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, _, ref = trained

    def run(*args: str) -> tuple[int, str]:
        code = main(["-C", str(project.root), *args])
        out, err = capsys.readouterr()
        return code, out + err

    out = tmp_path / "s.parquet"
    code, text = run("predict", ref, "--input", "0123.abcd:test", "--output", str(out), "--json")
    assert code == 0, text
    body = json.loads(text)
    assert body["output"]["kind"] == "parquet" and body["output"]["name"] == str(out)
    assert body["output"]["rows"] == body["input"]["rows"] > 0
    code, text = run("predictions", MODEL, "--json")
    assert [p["id"] for p in json.loads(text)] == [body["id"]]
    code, text = run("predictions", MODEL)
    assert body["id"] in text and "part 0123.abcd:test" in text
    code, text = run("verify", "--prediction", body["id"])
    assert code == 0 and "all checks passed" in text
    out.write_bytes(out.read_bytes()[:-8] + b"\0" * 8)
    code, text = run("verify", "--prediction", body["id"])
    assert code == IntegrityError.exit_code and "FAIL" in text
    code, text = run("predict", ref)
    assert code == InvalidInput.exit_code and "--input" in text
    code, text = run("verify", "--prediction", "nope")
    assert code == 3 and "no prediction run" in text
    code, text = run("predict", ref, "--input", "0123.abcd:nope")
    assert code == 3 and "no part 'nope'" in text


@pytest.mark.postgres
def test_predict_on_postgres(tmp_path: Path, pg_database: str) -> None:
    """A PostgreSQL warehouse: the part streams through a server-side cursor, the scores
    go back with COPY; a tampered part is refused there too."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    patients = x.assign(target=y, patient_id=range(len(x)))
    project = dmv.init(tmp_path / "p", warehouse=pg_database)
    try:
        with open_warehouse(pg_database) as wh:
            table = pa.Table.from_pandas(patients, preserve_index=False)
            wh.create_from_arrow(
                "patients", pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
            )
        project.data_query(MODEL, sql="SELECT * FROM patients", id="0123")
        project.data_split(MODEL, "0123", by="key:patient_id", id="abcd")
        model, ref = _train(project)
        record = project.predict(ref, input="0123.abcd:test")
        out = _read(project, record.output).to_pandas().sort_values("patient_id")
        test = project.dataset(MODEL, "0123.abcd", "test").sort_values("patient_id")
        assert out["prediction"].to_numpy() == pytest.approx(model.predict(test[FEATURES]))
        assert project.verify_prediction(record.id).ok
        sql = project.predict(
            ref, sql="SELECT * FROM patients WHERE patient_id < 10", keys=["patient_id"]
        )
        assert sql.rows_out == 10 and project.verify_prediction(sql.id).ok
        part = next(
            p["table"] for p in project.split_info(MODEL, "0123.abcd").parts if p["name"] == "test"
        )
        with open_warehouse(pg_database) as wh:
            wh.execute(
                f'UPDATE "{part}" SET bmi = bmi + 1 WHERE patient_id = '
                f'(SELECT min(patient_id) FROM "{part}")'
            )
            before = wh.list_tables()
        with pytest.raises(IntegrityError):
            project.predict(ref, input="0123.abcd:test")
        assert _tables(project) == before and len(project.predictions(MODEL)) == 2
        # a deleted prerelease takes its prediction runs along (PostgreSQL checks the keys)
        project.delete_version(ref)
        assert project.predictions(MODEL) == []
    finally:
        project.close()
