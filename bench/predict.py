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

    .venv/bin/python bench/predict.py              # 1M rows
    .venv/bin/python bench/predict.py --rows 100000 --json
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    default_env = MAIN_MLFLOW if (MAIN_MLFLOW / "bin" / "mlflow").exists() else ENV
    parser.add_argument("--env", type=Path, default=default_env, help="the MLflow venv")
    parser.add_argument("--mlflow-spec", default="mlflow", help="pip spec if the venv is made")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 below the target")
    args = parser.parse_args(argv)

    import duckdb
    import numpy as np
    import pandas as pd

    import dmv

    python = ensure_mlflow_env(args.env, args.mlflow_spec)
    mlflow_cli = python.parent / "mlflow"
    dmv_cmd = [sys.executable, "-m", "dmv"]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "MLFLOW_DISABLE_TELEMETRY": "1"}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-predict-") as tmp:
        folder = Path(tmp)
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

    mlflow_s = results["mlflow: CSV file → JSON file"]["seconds"]
    report = {
        "rows": args.rows,
        "cpus": os.cpu_count(),
        "results": {
            k: {
                "seconds": round(v["seconds"], 2),
                "rows_per_s": round((v.get("record", {}).get("input", {}).get("rows") or args.rows)
                                    / v["seconds"]),
                "peak_mb": round(v["peak_mb"]),
                "vs_mlflow": round(mlflow_s / v["seconds"], 2),
                # dmv's own record: reading, validating, scoring and writing, without
                # the interpreter's start, the imports and the model's load
                "scoring_s": v.get("record", {}).get("seconds"),
            }
            for k, v in results.items()
        },
        "target": f"dmv ≥ {TARGET}× MLflow on the same CSV file",
        "note": "whole processes, start-up, imports and model load included",
    }  # fmt: skip
    same_file = report["results"]["dmv: CSV file → Parquet file"]["vs_mlflow"]
    report["without_pytorch_vs_mlflow"] = report["results"][NO_TORCH_LABEL]["vs_mlflow"]
    report["pass"] = same_file >= TARGET
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"batch scoring, {args.rows:,} rows, a Ridge on 10 floats, {os.cpu_count()} CPUs")
        print(f"{'':44} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'vs MLflow':>10}"
              f" {'of which scoring':>17}")  # fmt: skip
        for k, v in report["results"].items():
            inner = "" if v["scoring_s"] is None else f"{v['scoring_s']:.2f} s"
            print(f"{k:44} {v['seconds']:8.2f} {v['rows_per_s']:10,} {v['peak_mb']:8} "
                  f"{v['vs_mlflow']:9.2f}× {inner:>17}")  # fmt: skip
        print(f"target: {report['target']}: {'PASS' if report['pass'] else 'MISS'} "
              f"({same_file:.2f}×; {report['without_pytorch_vs_mlflow']:.2f}× without "
              "PyTorch installed, as in MLflow's venv)")  # fmt: skip
    return 1 if args.check and not report["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
