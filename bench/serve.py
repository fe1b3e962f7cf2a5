"""Prediction serving: ``dmv serve`` against ``mlflow models serve``, measured side by side.

    .venv/bin/python bench/serve.py                 # table: req/s, p50, p99, ratio, PASS/MISS
    .venv/bin/python bench/serve.py --json          # the same figures as JSON
    .venv/bin/python bench/serve.py --requests 500  # quicker

The same small scikit-learn model (LogisticRegression on iris, four float
inputs, one integer output) is trained on the same data in each system's own
environment and served on 127.0.0.1:

- **dmv**: ``dmv serve iris@production`` from a fresh project; the version has
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


def start_dmv(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """A dmv project with the model released to @production, served by ``dmv serve``."""
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


def start_mlflow(python: Path, folder: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    model_dir = folder / "mlflow-model"
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    subprocess.run(
        [str(python), "-c", _MLFLOW_SAVE, str(model_dir), ",".join(FEATURES)],
        check=True,
        env=env,
        capture_output=True,
    )
    # MLflow starts `uvicorn` by name: its venv's bin folder must come first on PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    mlflow = python.parent / "mlflow"
    cmd = [str(mlflow), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    # Its access log (on by default) goes nowhere rather than onto the report.
    err = (folder / "mlflow.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return proc, "/invocations"


def body_for(system: str, rows: list[list[float]]) -> bytes:
    records = [dict(zip(FEATURES, r, strict=True)) for r in rows]
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
    args = parser.parse_args(argv)

    python = ensure_mlflow_env(args.env, args.mlflow_spec)
    rows = [ROWS[i % len(ROWS)] for i in range(args.rows)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-serve-") as tmp:
        folder = Path(tmp)
        procs = []
        try:
            servers = {}
            for system in ("dmv", "mlflow"):
                port = free_port()
                if system == "dmv":
                    proc, path = start_dmv(folder, port)
                else:
                    proc, path = start_mlflow(python, folder, port)
                procs.append(proc)
                servers[system] = (proc, port, path)
            answers = {}
            for system, (proc, port, path) in servers.items():
                body = body_for(system, rows)
                logfile = folder / f"{system}.log"
                answers[system] = json.loads(wait_ready(proc, port, path, body, logfile))
                log(f"{system} is ready on port {port}")
            dmv_out = [r["species"] for r in answers["dmv"]["outputs"]]
            mlflow_out = answers["mlflow"]["predictions"]
            if dmv_out != mlflow_out:
                sys.exit(f"error: the two models disagree: dmv {dmv_out}, MLflow {mlflow_out}")
            for system, (_, port, path) in servers.items():
                log(f"measuring {system}: {args.requests} requests from {args.clients} clients")
                body = body_for(system, rows)
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
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load": {"requests": args.requests, "clients": args.clients, "rows": args.rows},
        "dmv": results["dmv"],
        "mlflow": results["mlflow"],
        "ratio": ratio,
        "target": TARGET,
        "pass": ratio >= TARGET,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"predict, {args.rows} row(s)/request, {args.clients} clients, "
              f"{args.requests} requests, {os.cpu_count()} CPUs")  # fmt: skip
        print(f"{'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for system in ("dmv", "mlflow"):
            r = results[system]
            print(f"{system:<8} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
        verdict = "PASS" if report["pass"] else "MISS"
        print(f"throughput ratio dmv/MLflow: {ratio:.2f}x (target >= {TARGET:.0f}x) {verdict}")
    return 1 if args.check and not report["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
