"""Prediction serving: ``dmv serve`` against ``mlflow models serve``, measured side by side.

    .venv/bin/python bench/serve.py                 # table: req/s, p50, p99, ratio, PASS/MISS
    .venv/bin/python bench/serve.py --json          # the same figures as JSON
    .venv/bin/python bench/serve.py --requests 500  # quicker

Two models, each served by both systems on 127.0.0.1:

- ``iris``: the same small scikit-learn model (LogisticRegression on iris, four
  float inputs, one integer output), trained on the same data in each system's
  own environment;
- ``lightgbm``: one LightGBM classifier with a pandas ``category`` feature,
  trained once here and handed to MLflow as the same model text, served as
  class probabilities. MLflow's ``mlflow.lightgbm`` pyfunc gets the category
  column as strings from JSON, which LightGBM refuses (``categorical_feature do
  not match``), so the MLflow side is the pyfunc a user has to write: a
  ``PythonModel`` that restores the categories before predicting. dmv serves the
  logged model as is: its request frame is the training frame.

- **dmv**: ``dmv serve MODEL@production`` from a fresh project; the version has
  an interface, so every request is validated against it (validation on).
- **MLflow**: ``mlflow models serve --env-manager local`` of the model saved
  with ``mlflow.sklearn.save_model`` and an inferred signature (so MLflow
  enforces its schema too), from the benchmark venv ``bench/.envs/mlflow``
  (created by ``bench/registry.py`` or here, never in the project venv).

Both servers run one worker (MLflow's default) and are measured in the same
run with the same load generator: ``--clients`` processes, each with one
keep-alive connection, send ``--requests`` predictions in total (one row each
by default), after ``--warmup`` requests that are not timed. Throughput is
requests / wall time; p50 and p99 are per-request latencies seen by the
client. The target is dmv ≥ 3x MLflow's throughput.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from registry import ENV, ensure_mlflow_env  # noqa: E402

TARGET = 3.0
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 4.2, 1.5],
    [4.6, 3.1, 1.5, 0.2],
]
VERSION = "0.0.1-0123.abcd"
LGB_FEATURES = ["tenure", "spend", "plan"]
LGB_ROWS = [
    [3, 12.5, "basic"],
    [40, 80.0, "team"],
    [12, 45.0, "pro"],
    [7, 20.0, "basic"],
]

_MLFLOW_SAVE_LGB = textwrap.dedent(
    """
    import sys, lightgbm as lgb, mlflow.pyfunc, pandas as pd

    class Categorical(mlflow.pyfunc.PythonModel):
        # MLflow hands JSON strings to the model: restore the training categories.
        def load_context(self, context):
            self.booster = lgb.Booster(model_file=context.artifacts["model"])
            self.cats = dict(zip(["plan"], self.booster.pandas_categorical))

        def predict(self, context, frame, params=None):
            frame = frame.astype({c: pd.CategoricalDtype(v) for c, v in self.cats.items()})
            p = self.booster.predict(frame[["tenure", "spend", "plan"]])
            return [[1.0 - v, v] for v in p]

    mlflow.pyfunc.save_model(sys.argv[1], python_model=Categorical(),
                             artifacts={"model": sys.argv[2]})
    """
)


def lgb_training() -> tuple[Any, Any, Any]:
    """The LightGBM benchmark model, its training frame and labels (seeded)."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 2000
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.random(n) * 100,
            "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n)),
        }
    )
    y = ((frame["plan"] == "basic") & (frame["spend"] < 50)).astype(int)
    model = lgb.LGBMClassifier(n_estimators=50, verbose=-1, random_state=0).fit(frame, y)
    return model, frame, y


_MLFLOW_SAVE = textwrap.dedent(
    """
    import sys, pandas as pd, mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    cols = sys.argv[2].split(",")
    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=cols)
    model = LogisticRegression(max_iter=300).fit(frame, y)
    signature = infer_signature(frame, model.predict(frame))
    mlflow.sklearn.save_model(model, sys.argv[1], signature=signature)
    """
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the two servers ----------------------------------------------------------------


def start_dmv(folder: Path, port: int, scenario: str) -> tuple[subprocess.Popen[bytes], str]:
    """A dmv project with the model released to @production, served by ``dmv serve``."""
    if scenario == "lightgbm":
        return start_dmv_lgb(folder, port)
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import dmv
    from dmv.interface import Interface

    project = dmv.init(folder / "dmv")
    iface = Interface.from_dict(
        {"inputs": dict.fromkeys(FEATURES, "float64"), "outputs": {"species": "int64"}}
    )
    project.registry.create_version(
        dmv.Version.parse_number("iris", VERSION),
        interface=iface.to_dict(),
        interface_fp=iface.fingerprint,
    )
    x, y = load_iris(return_X_y=True)
    with project.run("iris", version=VERSION) as run:
        run.log_model(LogisticRegression(max_iter=300).fit(x, y))
    project.set_alias(f"iris@{VERSION}", "production")
    project.close()
    cmd = [sys.executable, "-m", "dmv", "-C", str(project.root), "serve", "iris@production"]
    err = (folder / "dmv.log").open("wb")  # a file, not a pipe nobody drains
    proc = subprocess.Popen([*cmd, "--port", str(port)], stderr=err)
    return proc, "/models/iris/versions/production/predict"


def start_dmv_lgb(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    import dmv

    model, frame, _ = lgb_training()
    project = dmv.init(folder / "dmv-lgb")
    with project.run("churn", version=VERSION) as run:
        run.log_model(model, sample_input=frame.head(20), outputs="proba")
    project.set_alias(f"churn@{VERSION}", "production")
    project.close()
    (folder / "model.txt").write_text(model.booster_.model_to_string())
    cmd = [sys.executable, "-m", "dmv", "-C", str(project.root), "serve", "churn@production"]
    err = (folder / "dmv.log").open("wb")
    proc = subprocess.Popen([*cmd, "--port", str(port)], stderr=err)
    return proc, "/models/churn/versions/production/predict"


def start_mlflow(
    python: Path, folder: Path, port: int, scenario: str
) -> tuple[subprocess.Popen[bytes], str]:
    model_dir = folder / f"mlflow-model-{scenario}"
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("PYTHONPATH", None)
    if scenario == "lightgbm":  # the same model text dmv serves (start_dmv_lgb wrote it)
        argv = [str(python), "-c", _MLFLOW_SAVE_LGB, str(model_dir), str(folder / "model.txt")]
    else:
        argv = [str(python), "-c", _MLFLOW_SAVE, str(model_dir), ",".join(FEATURES)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: saving the MLflow model failed:\n{done.stderr[-3000:]}")
    # MLflow starts `uvicorn` by name: its venv's bin folder must come first on PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    mlflow = python.parent / "mlflow"
    cmd = [str(mlflow), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    # Its access log (on by default) goes nowhere rather than onto the report.
    err = (folder / "mlflow.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return proc, "/invocations"


def body_for(system: str, rows: list[list[Any]], scenario: str = "iris") -> bytes:
    names = LGB_FEATURES if scenario == "lightgbm" else FEATURES
    records = [dict(zip(names, r, strict=True)) for r in rows]
    key = "inputs" if system == "dmv" else "dataframe_records"
    return json.dumps({key: records}).encode()


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def wait_ready(
    proc: subprocess.Popen[bytes], port: int, path: str, body: bytes, logfile: Path
) -> bytes:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = logfile.read_text(errors="replace")
            sys.exit(f"error: the server exited ({proc.returncode}):\n{err[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, answer = post(conn, path, body)
            conn.close()
            if status == 200:
                return answer
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"error: no answer on port {port} within 120 s")


# -- the load generator ----------------------------------------------------------------


def _client(args: tuple[int, str, bytes, int, int, Any]) -> list[float]:
    port, path, body, count, warmup, barrier = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(warmup):
        status, _ = post(conn, path, body)
        if status != 200:
            raise RuntimeError(f"warm-up request failed with {status}")
    barrier.wait()
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        status, _ = post(conn, path, body)
        times.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"request failed with {status}")
    conn.close()
    return times


def load(
    port: int, path: str, body: bytes, requests: int, clients: int, warmup: int
) -> dict[str, Any]:
    """Throughput and latency of ``requests`` POSTs from ``clients`` processes."""
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(clients + 1)
        with multiprocessing.Pool(clients) as pool:
            pending = pool.map_async(
                _client, [(port, path, body, n, warmup // clients, barrier) for n in per]
            )
            barrier.wait()
            t0 = time.perf_counter()
            results = pending.get(timeout=900)
            wall = time.perf_counter() - t0
    latencies = sorted(t for r in results for t in r)
    return {
        "requests": len(latencies),
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="timed requests per system")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--env", type=Path, default=ENV, help="the MLflow benchmark venv")
    parser.add_argument("--mlflow-spec", default="mlflow", help="pip spec if the venv is made")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 below the target")
    parser.add_argument(
        "--model",
        action="append",
        choices=["iris", "lightgbm"],
        help="which model (repeatable; default: both)",
    )
    args = parser.parse_args(argv)
    args.model = args.model or ["iris", "lightgbm"]

    python = ensure_mlflow_env(args.env, args.mlflow_spec)
    check = subprocess.run([str(python), "-c", "import lightgbm"], capture_output=True)
    if check.returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "lightgbm"], check=True, capture_output=True)
    reports = [run_scenario(s, python, args) for s in args.model]
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
    else:
        print(f"predict, {args.rows} row(s)/request, {args.clients} clients, "
              f"{args.requests} requests, {os.cpu_count()} CPUs")  # fmt: skip
        print(f"{'model':<9} {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for report in reports:
            for system in ("dmv", "mlflow"):
                r = report[system]
                print(
                    f"{report['model']:<9} {system:<8} {r['rps']:>9.0f} "
                    f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                )
            verdict = "PASS" if report["pass"] else "MISS"
            print(
                f"{report['model']:<9} ratio dmv/MLflow: {report['ratio']:.2f}x "
                f"(target >= {TARGET:.0f}x) {verdict}"
            )
    ok = all(r["pass"] for r in reports)
    return 1 if args.check and not ok else 0


def _outputs(system: str, scenario: str, answer: dict[str, Any]) -> list[Any]:
    if system == "mlflow":
        return list(answer["predictions"])
    if scenario == "lightgbm":  # keyed by class name, in the model's class order
        return [list(r["probabilities"].values()) for r in answer["outputs"]]
    return [r["species"] for r in answer["outputs"]]


def _same(a: list[Any], b: list[Any]) -> bool:
    import numpy as np

    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-6))


def run_scenario(scenario: str, python: Path, args: argparse.Namespace) -> dict[str, Any]:
    source = LGB_ROWS if scenario == "lightgbm" else ROWS
    rows = [source[i % len(source)] for i in range(args.rows)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-serve-") as tmp:
        folder = Path(tmp)
        procs = []
        try:
            servers = {}
            for system in ("dmv", "mlflow"):
                port = free_port()
                if system == "dmv":
                    proc, path = start_dmv(folder, port, scenario)
                else:
                    proc, path = start_mlflow(python, folder, port, scenario)
                procs.append(proc)
                servers[system] = (proc, port, path)
            answers = {}
            for system, (proc, port, path) in servers.items():
                body = body_for(system, rows, scenario)
                logfile = folder / f"{system}.log"
                answers[system] = json.loads(wait_ready(proc, port, path, body, logfile))
                log(f"{scenario}: {system} is ready on port {port}")
            dmv_out = _outputs("dmv", scenario, answers["dmv"])
            mlflow_out = _outputs("mlflow", scenario, answers["mlflow"])
            if not _same(dmv_out, mlflow_out):
                sys.exit(f"error: the two models disagree: dmv {dmv_out}, MLflow {mlflow_out}")
            for system, (_, port, path) in servers.items():
                log(f"measuring {scenario} on {system}: {args.requests} requests")
                body = body_for(system, rows, scenario)
                results[system] = load(port, path, body, args.requests, args.clients, args.warmup)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    ratio = results["dmv"]["rps"] / results["mlflow"]["rps"]
    return {
        "model": scenario,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load": {"requests": args.requests, "clients": args.clients, "rows": args.rows},
        "dmv": results["dmv"],
        "mlflow": results["mlflow"],
        "ratio": ratio,
        "target": TARGET,
        "pass": ratio >= TARGET,
    }


if __name__ == "__main__":
    sys.exit(main())
