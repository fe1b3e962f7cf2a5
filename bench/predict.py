"""Batch scoring: ``dmv predict`` against ``mlflow models predict``, side by side in one run.

The same model (one scikit-learn ``Ridge`` fitted here, saved by dmv as skops and by
MLflow with ``mlflow.sklearn.save_model`` from the same object) scores the same rows
(``--rows``, default 1,000,000; 10 float features and an id). Each system runs as a
command-line process of its own, timed from start to exit (start-up and model load
included), and its peak memory is that process's ``ru_maxrss`` (from ``wait4``):

- **MLflow**: ``mlflow models predict -m DIR -i rows.csv -t csv -o out.json
  --env-manager local`` (it takes CSV or JSON input and writes JSON), from the
  MLflow venv (``/work/main/.venv-mlflow`` when present, else ``bench/.envs/mlflow``).
- **dmv**, the same rows from a file: ``dmv predict REF --input rows.csv --output
  out.parquet`` (the same CSV) and ``--input rows.parquet``.
- **dmv** in the warehouse (DuckDB): ``--sql 'SELECT * FROM rows'`` into a table
  named after the version, and a stored part of ~``--rows`` rows (``--input
  DATA.SPLIT:test``, streamed with its fingerprint check) into a table.

Every dmv run validates each row against the version's interface and records a
prediction run; MLflow's enforces the model's signature. The answers are compared
on a sample of ids before any figure is printed. Target: dmv ≥ 3× faster than
MLflow on the same file.

**On Spark** (``--spark-rows``, default 1,000,000; the issue's figure is 10,000,000):
one local Spark Connect server (``local[2]``, ``--spark-memory`` of driver heap, the
server the tests start) holds a table of ``--spark-rows`` rows generated in the
engine. Its executors' Python is the MLflow venv, with dmv installed in it (so both
systems run on the same cluster and the same workers' interpreter):

- **dmv**: ``dmv predict REF --sql 'SELECT * FROM rows' --key id``, scored on the
  executors into a table named after the version (validated, fingerprinted, recorded);
- **MLflow**: a script in the MLflow venv, ``mlflow.pyfunc.spark_udf(spark, DIR,
  env_manager="local")`` over Spark Connect, writing ``id`` and the prediction to a
  table with ``saveAsTable``.

Each is timed as a whole client process, and the client's peak memory is that
process tree's (the server's is not the client's). The two output tables are
compared in the engine (every id, the largest difference) before the figures print.
Target: dmv ≥ 1× MLflow's speed.

    .venv/bin/python bench/predict.py              # 1M rows on DuckDB, 1M on Spark
    .venv/bin/python bench/predict.py --rows 100000 --json
    .venv/bin/python bench/predict.py --only spark --spark-rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from registry import ENV, ensure_mlflow_env  # noqa: E402

MODEL = "bench-model"
FEATURES = [f"x{i}" for i in range(10)]
MAIN_MLFLOW = Path("/work/main/.venv-mlflow")
TARGET = 3.0
SPARK_TARGET = 1.0

_MLFLOW_SAVE = textwrap.dedent(
    """
    import pickle, sys, pandas as pd, mlflow.sklearn
    from mlflow.models import infer_signature
    model = pickle.load(open(sys.argv[2], "rb"))
    frame = pd.read_parquet(sys.argv[3])
    signature = infer_signature(frame, model.predict(frame))
    mlflow.sklearn.save_model(model, sys.argv[1], signature=signature)
    """
)


NO_TORCH_LABEL = "dmv, no PyTorch: CSV file → Parquet file"
_NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from dmv.cli import main
sys.exit(main(sys.argv[1:]))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _hwm_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, kB; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` to its end: seconds, and the peak memory of it and its children (MB).

    The peak is each process's own ``VmHWM`` (polled every 20 ms; it only grows), summed
    over the process tree. ``ru_maxrss`` from ``wait4`` would not do: on Linux a child
    inherits the parent's high-water mark across ``fork`` and ``exec``.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        peaks: dict[int, int] = {}
        while proc.poll() is None:
            for pid in _tree(proc.pid):
                peaks[pid] = max(peaks.get(pid, 0), _hwm_kb(pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} … failed:\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_mb": sum(peaks.values()) / 1024, "stdout": stdout}


def make_rows(n: int, folder: Path) -> tuple[Any, Path, Path, Path]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, len(FEATURES)))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame.insert(0, "id", np.arange(n, dtype=np.int64))
    coef = rng.normal(size=len(FEATURES))
    y = x @ coef + rng.normal(scale=0.1, size=n)
    model = Ridge(alpha=1.0).fit(frame[FEATURES].head(100_000), y[:100_000])
    parquet, csv, sample = folder / "rows.parquet", folder / "rows.csv", folder / "sample.parquet"
    frame.to_parquet(parquet, index=False)
    frame[FEATURES].to_csv(csv, index=False)  # MLflow scores every column it is given
    frame[FEATURES].head(1000).to_parquet(sample, index=False)
    return model, parquet, csv, sample


_MLFLOW_SPARK = textwrap.dedent(
    """
    import sys, mlflow.pyfunc
    from pyspark.sql import SparkSession
    url, database, model_dir, features = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    spark = SparkSession.builder.remote(url).create()
    spark.sql(f"USE {database}")
    udf = mlflow.pyfunc.spark_udf(spark, model_dir, env_manager="local", result_type="double")
    scored = spark.table("rows").select("id", udf(*features).alias("prediction"))
    scored.write.saveAsTable("mlflow_out")
    spark.stop()
    """
)


def ensure_spark_env(python: Path) -> None:
    """The MLflow venv as the executors' Python: pyspark (the client's version) and dmv too."""
    import pyspark

    check = subprocess.run(
        [str(python), "-c", "import mlflow, skops, pyspark, dmv; print(pyspark.__version__)"],
        capture_output=True, text=True,
    )  # fmt: skip
    if check.returncode == 0 and check.stdout.strip() == pyspark.__version__:
        return
    log(f"adding pyspark {pyspark.__version__} and dmv to {python.parent.parent} (once)")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"pyspark[connect]=={pyspark.__version__}", "skops", "-e", str(HERE.parent)],
        check=True,
    )  # fmt: skip


def bench_spark(
    n: int, folder: Path, python: Path, env: dict[str, str], memory: str
) -> dict[str, dict[str, Any]]:
    """dmv predict on the executors against MLflow's spark_udf, on one local server."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge

    import dmv
    from dmv.data.engines import open_warehouse

    sys.path.insert(0, str(HERE.parent / "tests"))
    import spark_conftest

    python = Path(os.path.abspath(python))  # the server starts workers from its own folder
    ensure_spark_env(python)
    log(f"starting a local Spark Connect server ({memory} of driver heap)")
    base = spark_conftest.start_server(driver_memory=memory, python=str(python))
    try:
        url = spark_conftest.spark_database_url(base)
        database = url.rsplit("=", 1)[1]
        rng = np.random.default_rng(1)
        x = rng.normal(size=(100_000, len(FEATURES)))
        model = Ridge(alpha=1.0).fit(x, x @ rng.normal(size=len(FEATURES)))
        frame = pd.DataFrame(x[:1000], columns=FEATURES)
        log(f"making {n:,} rows in the engine")
        with open_warehouse(url) as wh:
            cols = ", ".join(f"randn({i + 1}) AS {f}" for i, f in enumerate(FEATURES))
            wh.execute(f"CREATE TABLE rows AS SELECT id, {cols} FROM range({n})")
        project = dmv.init(folder / "spark-proj", warehouse=url)
        with project.run(MODEL, version="0.0.1-0123.abcd") as run:
            run.log_model(model, sample_input=frame)
        project.close()
        mlflow_dir = folder / "mlflow-spark-model"
        pickled = folder / "model-spark.pkl"
        pickled.write_bytes(pickle.dumps(model))
        sample = folder / "sample-spark.parquet"
        frame.to_parquet(sample, index=False)
        subprocess.run(
            [str(python), "-c", _MLFLOW_SAVE, str(mlflow_dir), str(pickled), str(sample)],
            check=True, capture_output=True, env=env,
        )  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        label_m = f"mlflow spark_udf on Spark ({n:,} rows) → table"
        log(label_m)
        results[label_m] = timed(
            [str(python), "-c", _MLFLOW_SPARK, base, database, str(mlflow_dir), *FEATURES], env
        )
        results[label_m].pop("stdout")
        label_d = f"dmv predict on Spark ({n:,} rows) → table"
        log(label_d)
        cmd = [sys.executable, "-m", "dmv", "-C", str(folder / "spark-proj"), "predict",
               f"{MODEL}@0.0.1-0123.abcd", "--sql", "SELECT * FROM rows", "--key", "id",
               "--json"]  # fmt: skip
        results[label_d] = timed(cmd, env)
        record = json.loads(results[label_d].pop("stdout"))
        results[label_d]["record"] = record
        with open_warehouse(url) as wh:
            table = record["output"]["name"]
            same, worst = wh.rows(
                f'SELECT count(*), max(abs(a.prediction - b.prediction)) FROM "{table}" a '
                "JOIN mlflow_out b ON a.id = b.id"
            )[0]
            wh.execute(f"DROP NAMESPACE IF EXISTS {database} CASCADE")
        if int(same) != n or float(worst or 0) > 1e-9:
            sys.exit(f"error: dmv and MLflow answer differently on Spark ({same} ids, {worst})")
        for v in results.values():
            v["rows"] = n
        return results
    finally:
        spark_conftest.stop_server()


def bench_duckdb(
    args: argparse.Namespace, folder: Path, python: Path, env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """dmv predict in-process (files, DuckDB) against ``mlflow models predict``."""
    import duckdb
    import numpy as np
    import pandas as pd

    import dmv

    mlflow_cli = python.parent / "mlflow"
    dmv_cmd = [sys.executable, "-m", "dmv"]
    log(f"making {args.rows:,} rows and the model")
    model, parquet, csv, sample = make_rows(args.rows, folder)
    project = dmv.init(folder / "proj")
    wh = project.config.location("warehouse")
    with duckdb.connect(str(wh)) as con:
        con.execute(f"CREATE TABLE rows AS SELECT * FROM read_parquet('{parquet}')")
        # a table twice as big, split in halves: its test part has ~--rows rows
        con.execute(
            "CREATE TABLE big AS SELECT * FROM rows UNION ALL "
            f"SELECT id + {args.rows}, {', '.join(FEATURES)} FROM rows"
        )
    project.data_query(MODEL, sql="SELECT * FROM big", id="0123")
    split = project.data_split(
        MODEL, "0123", by="key:id", ratios={"train": 0.5, "test": 0.5}, id="abcd"
    )
    part_rows = next(p["rows"] for p in split.parts if p["name"] == "test")
    with project.run(MODEL, version="0.0.1-0123.abcd") as run:
        run.log_model(model, sample_input=pd.read_parquet(sample))
    ref = f"{MODEL}@0.0.1-0123.abcd"
    project.close()

    log("saving the same model for MLflow")
    pickled = folder / "model.pkl"
    pickled.write_bytes(pickle.dumps(model))
    mlflow_dir = folder / "mlflow-model"
    subprocess.run(
        [str(python), "-c", _MLFLOW_SAVE, str(mlflow_dir), str(pickled), str(sample)],
        check=True,
        capture_output=True,
        env=env,
    )

    results: dict[str, dict[str, Any]] = {}
    log("mlflow models predict (CSV in, JSON out)")
    out_json = folder / "mlflow.json"
    results["mlflow: CSV file → JSON file"] = timed(
        [str(mlflow_cli), "models", "predict", "-m", str(mlflow_dir), "-i", str(csv),
         "-t", "csv", "-o", str(out_json), "--env-manager", "local"],
        env,
    )  # fmt: skip
    base = [*dmv_cmd, "-C", str(folder / "proj"), "predict", ref, "--json"]
    runs = {
        "dmv: CSV file → Parquet file": ["--input", str(csv), "--output",
                                         str(folder / "a.parquet")],
        "dmv: Parquet file → Parquet file": ["--input", str(parquet), "--key", "id",
                                             "--output", str(folder / "b.parquet")],
        "dmv: SQL on DuckDB → table": ["--sql", "SELECT * FROM rows", "--key", "id"],
        f"dmv: stored part ({part_rows:,} rows) → table": ["--input", "0123.abcd:test"],
    }  # fmt: skip
    # the same, in a process where PyTorch cannot be imported, as in MLflow's venv: the
    # test venv has it, and loading a skops file walks every scikit-learn module,
    # which imports PyTorch when it is there (seconds and hundreds of MB)
    no_torch = [
        sys.executable,
        "-c",
        _NO_TORCH,
        "-C",
        str(folder / "proj"),
        "predict",
        ref,
        "--json",
        "--input",
        str(csv),
        "--output",
        str(folder / "c.parquet"),
    ]
    for label, cmd in [
        *((k, [*base, *v]) for k, v in runs.items()),
        (NO_TORCH_LABEL, no_torch),
    ]:
        log(label)
        results[label] = timed(cmd, env)
        results[label]["record"] = json.loads(results[label].pop("stdout"))
    results["mlflow: CSV file → JSON file"].pop("stdout")

    # the same answers: MLflow's JSON against dmv's Parquet, row for row
    answers = json.loads(out_json.read_text())
    theirs = np.asarray(answers["predictions"] if isinstance(answers, dict) else answers)
    ours = pd.read_parquet(folder / "a.parquet").sort_values("dmv_row")["prediction"]
    if len(theirs) != len(ours) or not np.allclose(theirs, ours.to_numpy(), rtol=1e-9):
        sys.exit("error: dmv and MLflow answer differently on the same rows")

    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--spark-rows", type=int, default=1_000_000, help="rows on Spark")
    parser.add_argument("--spark-memory", default="4g", help="the Spark server's driver heap")
    parser.add_argument("--only", choices=["all", "duckdb", "spark"], default="all")
    default_env = MAIN_MLFLOW if (MAIN_MLFLOW / "bin" / "mlflow").exists() else ENV
    parser.add_argument("--env", type=Path, default=default_env, help="the MLflow venv")
    parser.add_argument("--mlflow-spec", default="mlflow", help="pip spec if the venv is made")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 below the target")
    args = parser.parse_args(argv)

    python = ensure_mlflow_env(args.env, args.mlflow_spec)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "MLFLOW_DISABLE_TELEMETRY": "1"}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-predict-") as tmp:
        if args.only in ("all", "duckdb"):
            results.update(bench_duckdb(args, Path(tmp), python, env))
        if args.only in ("all", "spark"):
            spark = bench_spark(args.spark_rows, Path(tmp), python, env, args.spark_memory)
            results.update(spark)
    return report(args, results)


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> int:
    mlflow_file = results.get("mlflow: CSV file → JSON file", {}).get("seconds")
    mlflow_spark = next((v["seconds"] for k, v in results.items() if "spark_udf" in k), None)
    rows: dict[str, Any] = {}
    for k, v in results.items():
        baseline = mlflow_spark if "Spark" in k else mlflow_file
        record = v.get("record", {})
        n = record.get("input", {}).get("rows") or v.get("rows") or args.rows
        rows[k] = {
            "seconds": round(v["seconds"], 2),
            "rows_per_s": round(n / v["seconds"]),
            "peak_mb": round(v["peak_mb"]),
            "vs_mlflow": round(baseline / v["seconds"], 2) if baseline else None,
            # dmv's own record: reading, validating, scoring and writing, without
            # the interpreter's start, the imports and the model's load
            "scoring_s": record.get("seconds"),
        }
        if record.get("details", {}).get("timings"):
            rows[k]["stages_s"] = record["details"]["timings"]
    out: dict[str, Any] = {
        "rows": args.rows,
        "spark_rows": args.spark_rows,
        "cpus": os.cpu_count(),
        "results": rows,
        "note": "whole client processes: start-up, imports and model load included; on "
        "Spark the peak memory is the client's, the server's is not counted",
    }
    passed = True
    lines = []
    if mlflow_file:
        same_file = rows["dmv: CSV file → Parquet file"]["vs_mlflow"]
        out["without_pytorch_vs_mlflow"] = rows[NO_TORCH_LABEL]["vs_mlflow"]
        out["target_file"] = f"dmv ≥ {TARGET}× MLflow on the same CSV file"
        passed &= same_file >= TARGET
        lines.append(
            f"target: {out['target_file']}: {'PASS' if same_file >= TARGET else 'MISS'} "
            f"({same_file:.2f}×; {out['without_pytorch_vs_mlflow']:.2f}× without "
            "PyTorch installed, as in MLflow's venv)"
        )
    if mlflow_spark:
        on_spark = next(v["vs_mlflow"] for k, v in rows.items() if k.startswith("dmv predict on"))
        out["target_spark"] = f"dmv ≥ {SPARK_TARGET}× MLflow's spark_udf on the same cluster"
        passed &= on_spark >= SPARK_TARGET
        lines.append(
            f"target: {out['target_spark']}: {'PASS' if on_spark >= SPARK_TARGET else 'MISS'} "
            f"({on_spark:.2f}×)"
        )
    out["pass"] = passed
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"batch scoring, a Ridge on 10 floats, {os.cpu_count()} CPUs")
        print(f"{'':52} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'vs MLflow':>10}"
              f" {'of which scoring':>17}")  # fmt: skip
        for k, v in rows.items():
            inner = "" if v["scoring_s"] is None else f"{v['scoring_s']:.2f} s"
            ratio = "" if v["vs_mlflow"] is None else f"{v['vs_mlflow']:9.2f}×"
            print(f"{k:52} {v['seconds']:8.2f} {v['rows_per_s']:10,} {v['peak_mb']:8} "
                  f"{ratio:>10} {inner:>17}")  # fmt: skip
        print("\n".join(lines))
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
