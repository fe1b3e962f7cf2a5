"""Prediction serving: ``dmv serve`` beside MLServer, MLflow and a bare ASGI endpoint.

    .venv/bin/python bench/serve.py                 # tables: req/s, p50, p99, ratios, PASS/MISS
    .venv/bin/python bench/serve.py --json          # the same figures as JSON
    .venv/bin/python bench/serve.py --requests 500  # quicker

Two models, as users log them, each served by every system on 127.0.0.1:

- ``iris``: a scikit-learn pipeline (StandardScaler, LogisticRegression) fit on
  a pandas DataFrame of the four iris measurements (the frame ``run.dataset()``
  hands a trainer), answering the class label;
- ``lightgbm``: a LightGBM classifier with a pandas ``category`` feature,
  trained once here, served as class probabilities.

The systems, one server worker each, measured in one run with one load generator:

- **dmv**: ``dmv serve MODEL@production`` from a fresh project; the version has
  an interface (inferred from the training frame), so every request is validated.
- **MLServer** (KServe's default scikit-learn runtime): ``mlserver start`` with
  ``mlserver-sklearn`` given the joblib file of the same pipeline, asked over
  the Open Inference Protocol v2 with the pandas codec (``content_type: pd``),
  as its docs show. ``mlserver-lightgbm`` hands LightGBM the request frame with
  the category column as strings, which LightGBM refuses, so the LightGBM side is
  the custom runtime a user writes: it restores the training categories.
- **MLflow**: ``mlflow models serve --env-manager local`` (its pyfunc for the
  LightGBM model restores the categories the same way).
- **bare**: one Starlette route under uvicorn (``bench/_bare_server.py``) that
  parses the JSON, stacks a NumPy matrix and calls the model: the floor.

MLServer and MLflow run from their own venvs under ``bench/.envs/`` (created here
when missing, never in the project venv). Before any figure, every system answers
the same rows and the answers must agree.

Load: ``--clients`` processes, each with one keep-alive connection, send
``--requests`` predictions in total (one row each), after ``--warmup`` untimed
requests. Throughput is requests / wall time; p50 and p99 are the client's
per-request latencies. Targets (issue 28): dmv >= 3x MLServer, dmv >= 0.3x the
bare endpoint, dmv's p99 <= 3x its p50, and 1,000-row requests at least as fast
per row as MLServer's. Then dmv alone: adaptive micro-batching on and off at 4,
16 and 64 clients, and ``--workers 1`` against ``--workers 2``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import pickle
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from registry import ENV, ensure_mlflow_env, env_python  # noqa: E402

MLSERVER_ENV = HERE / ".envs" / "mlserver"
# MLServer 1.7's inference workers call asyncio.get_event_loop() outside a loop, which
# uvloop 0.22 turned into an error: the worker processes die at start without the pin.
MLSERVER_SPEC = ["mlserver", "mlserver-sklearn", "mlserver-lightgbm", "uvloop<0.22"]
BARE = HERE / "_bare_server.py"
TARGET_MLSERVER = 3.0
TARGET_BARE = 0.3
TARGET_TAIL = 3.0
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
VERSION = "0.0.1-0123.abcd"
LGB_FEATURES = ["tenure", "spend", "plan"]
SYSTEMS = ("dmv", "mlserver", "mlflow", "bare")

# -- the two models ---------------------------------------------------------------------

_IRIS_TRAIN = """
def iris_model(cols):
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=cols)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(frame, y)
    return model, frame
"""
exec(_IRIS_TRAIN)  # the same training code in every environment


def iris_training() -> tuple[Any, Any]:
    """The iris pipeline fit on a DataFrame, and that frame."""
    return iris_model(FEATURES)  # type: ignore[name-defined]  # noqa: F821


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


def sample_rows(scenario: str, n: int) -> list[list[Any]]:
    """``n`` distinct rows of the training data, as JSON values (the check and the load)."""
    if scenario == "lightgbm":
        _, frame, _ = lgb_training()
        cols = LGB_FEATURES
    else:
        _, frame = iris_training()
        cols = FEATURES
    out = []
    for i in range(n):
        row = frame.iloc[(i * 37) % len(frame)]
        out.append([row[c].item() if hasattr(row[c], "item") else row[c] for c in cols])
    return out


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

_MLFLOW_SAVE = _IRIS_TRAIN + textwrap.dedent(
    """
    import sys, mlflow.sklearn
    from mlflow.models import infer_signature
    model, frame = iris_model(sys.argv[2].split(","))
    signature = infer_signature(frame, model.predict(frame))
    mlflow.sklearn.save_model(model, sys.argv[1], signature=signature)
    """
)

_MLSERVER_SAVE = _IRIS_TRAIN + textwrap.dedent(
    """
    import sys, joblib
    model, _ = iris_model(sys.argv[2].split(","))
    joblib.dump(model, sys.argv[1])
    """
)

# What a user writes for a LightGBM model with a category column: mlserver-lightgbm's
# runtime hands the booster the pandas codec's frame with the category as strings.
_MLSERVER_LGB_RUNTIME = textwrap.dedent(
    """
    import lightgbm as lgb
    import pandas as pd
    from mlserver import MLModel, types
    from mlserver.codecs import NumpyCodec, PandasCodec


    class CategoricalLightGBM(MLModel):
        async def load(self) -> bool:
            self.booster = lgb.Booster(model_file=self.settings.parameters.uri)
            self.cats = dict(zip(["plan"], self.booster.pandas_categorical))
            return True

        async def predict(self, payload: types.InferenceRequest) -> types.InferenceResponse:
            frame = self.decode_request(payload, default_codec=PandasCodec)
            frame = frame.astype({c: pd.CategoricalDtype(v) for c, v in self.cats.items()})
            p = self.booster.predict(frame[["tenure", "spend", "plan"]], num_threads=1)
            return types.InferenceResponse(
                model_name=self.name,
                outputs=[NumpyCodec.encode_output(name="predict", payload=p)],
            )
    """
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_mlserver_env(env: Path) -> Path:
    """The interpreter of the MLServer benchmark venv, created when missing."""
    python = env_python(env)
    if python.exists():
        probe = (
            "import mlserver_sklearn, mlserver_lightgbm, uvloop; assert uvloop.__version__ < '0.22'"
        )
        done = subprocess.run([str(python), "-c", probe], capture_output=True)
        if done.returncode == 0:
            return python
    log(
        f"creating the MLServer benchmark environment {env} (pip install {' '.join(MLSERVER_SPEC)})"
    )
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *MLSERVER_SPEC], capture_output=True, text=True)
    if done.returncode != 0:
        log(done.stdout[-3000:] + done.stderr[-3000:])
        sys.exit(f"error: pip install {' '.join(MLSERVER_SPEC)} failed in {env}")
    return python


# -- the servers ---------------------------------------------------------------------


class Server:
    """One started server: its process, port, predict path and request body maker."""

    def __init__(self, system: str, proc: subprocess.Popen[bytes], port: int, path: str) -> None:
        self.system, self.proc, self.port, self.path = system, proc, port, path
        self.log = Path()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None) -> Any:
    err = logfile.open("wb")  # a file, not a pipe nobody drains
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)


def dmv_project(folder: Path, scenario: str) -> tuple[Path, str]:
    """A dmv project with the model released to @production (and the model's name)."""
    import dmv

    name = "churn" if scenario == "lightgbm" else "iris"
    project = dmv.init(folder / f"dmv-{scenario}")
    with project.run(name, version=VERSION) as run:
        if scenario == "lightgbm":
            model, frame, _ = lgb_training()
            run.log_model(model, sample_input=frame.head(20), outputs="proba")
            (folder / "model.txt").write_text(model.booster_.model_to_string())
        else:
            model, frame = iris_training()
            run.log_model(model, sample_input=frame.head(20))
            (folder / "iris.pkl").write_bytes(pickle.dumps(model))
    project.set_alias(f"{name}@{VERSION}", "production")
    root = project.root
    project.close()
    return root, name


def start_dmv(
    root: Path, name: str, folder: Path, label: str, *, workers: int = 1, batching: bool = True
) -> Server:
    config = root / "dmv.toml"
    text = config.read_text() if config.exists() else ""
    marker = f"[models.{name}.serving]"
    if marker in text:
        text = text[: text.index(marker)]
    text += f"\n{marker}\nbatching = {'true' if batching else 'false'}\n"
    config.write_text(text)
    port = free_port()
    cmd = [sys.executable, "-m", "dmv", "-C", str(root), "serve", f"{name}@production"]
    cmd += ["--port", str(port), "--workers", str(workers)]
    server = Server(label, _spawn(cmd, folder / f"{label}.log"), port, "")
    server.path = f"/models/{name}/versions/production/predict"
    server.log = folder / f"{label}.log"
    return server


def start_mlflow(python: Path, folder: Path, scenario: str) -> Server:
    model_dir = folder / f"mlflow-model-{scenario}"
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    env.pop("PYTHONPATH", None)
    if scenario == "lightgbm":  # the same model text dmv serves (dmv_project wrote it)
        argv = [str(python), "-c", _MLFLOW_SAVE_LGB, str(model_dir), str(folder / "model.txt")]
    else:
        argv = [str(python), "-c", _MLFLOW_SAVE, str(model_dir), ",".join(FEATURES)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: saving the MLflow model failed:\n{done.stderr[-3000:]}")
    # MLflow starts `uvicorn` by name: its venv's bin folder must come first on PATH.
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    port = free_port()
    cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir)]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    server = Server("mlflow", _spawn(cmd, folder / "mlflow.log", env), port, "/invocations")
    server.log = folder / "mlflow.log"
    return server


def start_mlserver(python: Path, folder: Path, scenario: str) -> Server:
    home = folder / f"mlserver-{scenario}"
    model_dir = home / "model"
    model_dir.mkdir(parents=True)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if scenario == "lightgbm":
        (model_dir / "runtime.py").write_text(_MLSERVER_LGB_RUNTIME)
        (model_dir / "model.txt").write_text((folder / "model.txt").read_text())
        settings = {
            "name": "churn",
            "implementation": "runtime.CategoricalLightGBM",
            "parameters": {"uri": str(model_dir / "model.txt"), "content_type": "pd"},
        }
    else:
        argv = [str(python), "-c", _MLSERVER_SAVE, str(model_dir / "model.joblib")]
        done = subprocess.run([*argv, ",".join(FEATURES)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"error: saving the MLServer model failed:\n{done.stderr[-3000:]}")
        settings = {
            "name": "iris",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "content_type": "pd"},
        }
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    port = free_port()
    server_settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,
    }
    (home / "settings.json").write_text(json.dumps(server_settings))
    cmd = [str(python.parent / "mlserver"), "start", str(home)]
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(model_dir)
    proc = _spawn(cmd, folder / f"mlserver-{scenario}.log", env)
    server = Server("mlserver", proc, port, f"/v2/models/{settings['name']}/infer")
    server.log = folder / f"mlserver-{scenario}.log"
    return server


def start_bare(folder: Path, scenario: str) -> Server:
    port = free_port()
    model = folder / ("model.txt" if scenario == "lightgbm" else "iris.pkl")
    cmd = [sys.executable, str(BARE), scenario, str(model), str(port)]
    server = Server("bare", _spawn(cmd, folder / "bare.log"), port, "/predict")
    server.log = folder / "bare.log"
    return server


# -- requests and answers -----------------------------------------------------------------


def body_for(system: str, rows: list[list[Any]], scenario: str) -> bytes:
    names = LGB_FEATURES if scenario == "lightgbm" else FEATURES
    if system == "mlserver":  # V2, one tensor per column, decoded by the pandas codec
        kinds = {"tenure": "INT64", "plan": "BYTES"}
        inputs = []
        for i, name in enumerate(names):
            tensor: dict[str, Any] = {
                "name": name,
                "shape": [len(rows), 1],
                "datatype": kinds.get(name, "FP64"),
                "data": [r[i] for r in rows],
            }
            if tensor["datatype"] == "BYTES":
                tensor["parameters"] = {"content_type": "str"}
            inputs.append(tensor)
        return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()
    records = [dict(zip(names, r, strict=True)) for r in rows]
    key = "dataframe_records" if system == "mlflow" else "inputs"
    return json.dumps({key: records}).encode()


def outputs(system: str, scenario: str, answer: dict[str, Any]) -> list[float]:
    """Each system's answer as one number per row: the label, or P(class 1)."""
    system = system.split("-")[0]
    if system == "mlflow":
        found = list(answer["predictions"])
    elif system == "mlserver":
        found = list(answer["outputs"][0]["data"])
        if scenario == "lightgbm":
            return [float(p) for p in found]
    elif system == "bare":
        found = list(answer["outputs"])
    elif scenario == "lightgbm":  # dmv: keyed by class name, in the model's class order
        found = [list(r["probabilities"].values()) for r in answer["outputs"]]
    else:
        found = [r["prediction"] for r in answer["outputs"]]
    if scenario == "lightgbm":
        return [float(r[1]) for r in found]
    return [float(v) for v in found]


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def ask(server: Server, body: bytes) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    status, answer = post(conn, server.path, body)
    conn.close()
    if status != 200:
        sys.exit(f"error: {server.system} answered {status}: {answer[:500]!r}")
    found: dict[str, Any] = json.loads(answer)
    return found


def wait_ready(server: Server, body: bytes) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            err = server.log.read_text(errors="replace")
            sys.exit(f"error: {server.system} exited ({server.proc.returncode}):\n{err[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            status, _ = post(conn, server.path, body)
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"error: {server.system} gave no answer on port {server.port} within 180 s")


# -- the load generator ----------------------------------------------------------------


def _client(args: tuple[int, str, bytes, int, int, Any]) -> list[float]:
    port, path, body, count, warmup, barrier = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
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


def load(server: Server, body: bytes, requests: int, clients: int, warmup: int) -> dict[str, Any]:
    """Throughput and latency of ``requests`` POSTs from ``clients`` processes."""
    requests = max(requests, clients)
    per = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(clients + 1)
        with multiprocessing.Pool(clients) as pool:
            jobs = [
                (server.port, server.path, body, n, max(1, warmup // clients), barrier) for n in per
            ]
            pending = pool.map_async(_client, jobs)
            barrier.wait()
            t0 = time.perf_counter()
            results = pending.get(timeout=1800)
            wall = time.perf_counter() - t0
    latencies = sorted(t for r in results for t in r)
    return {
        "requests": len(latencies),
        "clients": clients,
        "seconds": wall,
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


# -- one model, every system ---------------------------------------------------------------


def check_same(scenario: str, servers: list[Server]) -> list[float]:
    """Every system's answers for the same rows; exits when any two disagree."""
    import numpy as np

    rows = sample_rows(scenario, 50)
    answers = {}
    for server in servers:
        answers[server.system] = outputs(
            server.system, scenario, ask(server, body_for(server.system, rows, scenario))
        )
    first = servers[0].system
    for system, found in answers.items():
        same = len(found) == len(rows) and np.allclose(
            np.asarray(found), np.asarray(answers[first]), rtol=1e-6, atol=1e-9
        )
        if not same:
            sys.exit(
                f"error: {scenario}: {system} and {first} answer the same rows differently:\n"
                f"{system}: {found[:10]}\n{first}: {answers[first][:10]}"
            )
    log(f"{scenario}: {len(servers)} servers agree on {len(rows)} rows")
    return answers[first]


def run_scenario(scenario: str, envs: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    one = sample_rows(scenario, 1)
    big = sample_rows(scenario, args.big_rows)
    report: dict[str, Any] = {"model": scenario, "systems": {}}
    with tempfile.TemporaryDirectory(prefix="dmv-bench-serve-") as tmp:
        folder = Path(tmp)
        root, name = dmv_project(folder, scenario)
        servers: list[Server] = []
        try:
            servers.append(start_dmv(root, name, folder, "dmv"))
            if "mlserver" in args.systems:
                servers.append(start_mlserver(envs["mlserver"], folder, scenario))
            if "mlflow" in args.systems:
                servers.append(start_mlflow(envs["mlflow"], folder, scenario))
            if "bare" in args.systems:
                servers.append(start_bare(folder, scenario))
            for server in servers:
                wait_ready(server, body_for(server.system, one, scenario))
                log(f"{scenario}: {server.system} is ready on port {server.port}")
            check_same(scenario, servers)
            for server in servers:
                log(f"{scenario}: {server.system}, {args.requests} requests of 1 row")
                body = body_for(server.system, one, scenario)
                report["systems"][server.system] = load(
                    server, body, args.requests, args.clients, args.warmup
                )
            report["big"] = {}
            for server in servers:
                if server.system not in ("dmv", "mlserver"):
                    continue
                n = max(args.clients, args.requests // 20)
                log(f"{scenario}: {server.system}, {n} requests of {len(big)} rows")
                body = body_for(server.system, big, scenario)
                found = load(server, body, n, args.clients, args.clients)
                found["rows_per_s"] = found["rps"] * len(big)
                report["big"][server.system] = found
            if args.batching:
                report["batching"] = measure_batching(scenario, root, name, folder, args, one)
            if args.workers:
                report["workers"] = measure_workers(scenario, root, name, folder, args, one)
        finally:
            for server in servers:
                server.stop()
    return judge(report)


def measure_batching(
    scenario: str, root: Path, name: str, folder: Path, args: argparse.Namespace, one: Any
) -> dict[str, Any]:
    """dmv with adaptive micro-batching on and off, at each concurrency."""
    out: dict[str, Any] = {}
    for on in (True, False):
        server = start_dmv(root, name, folder, "dmv-" + ("on" if on else "off"), batching=on)
        try:
            body = body_for("dmv", one, scenario)
            wait_ready(server, body)
            for clients in args.concurrency:
                log(f"{scenario}: dmv batching {'on' if on else 'off'}, {clients} clients")
                found = load(server, body, args.requests, clients, args.warmup)
                out.setdefault(str(clients), {})["on" if on else "off"] = found
        finally:
            server.stop()
    return out


def measure_workers(
    scenario: str, root: Path, name: str, folder: Path, args: argparse.Namespace, one: Any
) -> dict[str, Any]:
    """dmv with 1 and 2 worker processes sharing the port."""
    out: dict[str, Any] = {}
    for workers in (1, 2):
        server = start_dmv(root, name, folder, f"dmv-w{workers}", workers=workers)
        try:
            body = body_for("dmv", one, scenario)
            wait_ready(server, body)
            log(f"{scenario}: dmv --workers {workers}, {args.clients} clients")
            out[str(workers)] = load(server, body, args.requests, args.clients, args.warmup)
        finally:
            server.stop()
    return out


def judge(report: dict[str, Any]) -> dict[str, Any]:
    systems = report["systems"]
    dmv = systems["dmv"]
    checks: dict[str, Any] = {}
    if "mlserver" in systems:
        ratio = dmv["rps"] / systems["mlserver"]["rps"]
        checks["dmv/MLServer"] = (ratio, TARGET_MLSERVER, ratio >= TARGET_MLSERVER)
    if "bare" in systems:
        ratio = dmv["rps"] / systems["bare"]["rps"]
        checks["dmv/bare"] = (ratio, TARGET_BARE, ratio >= TARGET_BARE)
    if "mlflow" in systems:
        ratio = dmv["rps"] / systems["mlflow"]["rps"]
        checks["dmv/MLflow"] = (ratio, None, True)
    tail = dmv["p99_ms"] / dmv["p50_ms"]
    checks["dmv p99/p50"] = (tail, TARGET_TAIL, tail <= TARGET_TAIL)
    big = report.get("big", {})
    if "dmv" in big and "mlserver" in big:
        ratio = big["dmv"]["rows_per_s"] / big["mlserver"]["rows_per_s"]
        checks["dmv/MLServer rows/s, big requests"] = (ratio, 1.0, ratio >= 1.0)
    report["checks"] = {
        k: {"value": v, "target": t, "pass": ok} for k, (v, t, ok) in checks.items()
    }
    report["pass"] = all(ok for _, _, ok in checks.values())
    return report


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="timed requests per system")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests first")
    parser.add_argument("--big-rows", type=int, default=1000, help="rows of a big request")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[4, 16, 64],
        help="client counts for the batching comparison (comma-separated)",
    )
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        help="skip the micro-batching comparison")  # fmt: skip
    parser.add_argument("--no-workers", dest="workers", action="store_false",
                        help="skip the --workers 1/2 comparison")  # fmt: skip
    parser.add_argument(
        "--system",
        dest="systems",
        action="append",
        choices=[s for s in SYSTEMS if s != "dmv"],
        help="peers to measure beside dmv (repeatable; default: all)",
    )
    parser.add_argument("--env", type=Path, default=ENV, help="the MLflow benchmark venv")
    parser.add_argument("--mlflow-spec", default="mlflow", help="pip spec if the venv is made")
    parser.add_argument("--mlserver-env", type=Path, default=MLSERVER_ENV)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 below a target")
    parser.add_argument(
        "--model",
        action="append",
        choices=["iris", "lightgbm"],
        help="which model (repeatable; default: both)",
    )
    args = parser.parse_args(argv)
    args.model = args.model or ["iris", "lightgbm"]
    args.systems = args.systems or [s for s in SYSTEMS if s != "dmv"]

    envs: dict[str, Path] = {}
    if "mlflow" in args.systems:
        envs["mlflow"] = ensure_mlflow_env(args.env, args.mlflow_spec)
        check = subprocess.run([str(envs["mlflow"]), "-c", "import lightgbm"], capture_output=True)
        if check.returncode != 0:
            pip = [str(envs["mlflow"]), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, "lightgbm"], check=True, capture_output=True)
    if "mlserver" in args.systems:
        envs["mlserver"] = ensure_mlserver_env(args.mlserver_env)
    reports = [run_scenario(s, envs, args) for s in args.model]
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "requests": args.requests,
        "clients": args.clients,
    }
    if args.json:
        print(json.dumps({"machine": meta, "models": reports}, indent=2))
    else:
        print_tables(reports, args)
    ok = all(r["pass"] for r in reports)
    return 1 if args.check and not ok else 0


def print_tables(reports: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"predict, {args.clients} clients, {args.requests} requests per system, "
          f"one worker each, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'model':<9} {'server':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for report in reports:
        for system, r in report["systems"].items():
            print(
                f"{report['model']:<9} {system:<9} {r['rps']:>9.0f} "
                f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
            )
        for system, r in report.get("big", {}).items():
            print(
                f"{report['model']:<9} {system:<9} {r['rows_per_s']:>9.0f} rows/s in "
                f"{args.big_rows}-row requests (p50 {r['p50_ms']:.1f} ms)"
            )
        for name, c in report["checks"].items():
            target = "" if c["target"] is None else f" (target {c['target']:g})"
            verdict = "" if c["target"] is None else (" PASS" if c["pass"] else " MISS")
            print(f"{report['model']:<9} {name}: {c['value']:.2f}{target}{verdict}")
        for clients, pair in report.get("batching", {}).items():
            on, off = pair["on"], pair["off"]
            print(
                f"{report['model']:<9} batching, {clients:>2} clients: on {on['rps']:.0f} req/s "
                f"(p50 {on['p50_ms']:.2f} p99 {on['p99_ms']:.2f} ms), off {off['rps']:.0f} req/s "
                f"(p50 {off['p50_ms']:.2f} p99 {off['p99_ms']:.2f} ms): "
                f"{on['rps'] / off['rps']:.2f}x"
            )
        workers = report.get("workers")
        if workers:
            one, two = workers["1"], workers["2"]
            print(
                f"{report['model']:<9} --workers 1: {one['rps']:.0f} req/s, --workers 2: "
                f"{two['rps']:.0f} req/s ({two['rps'] / one['rps']:.2f}x)"
            )


if __name__ == "__main__":
    sys.exit(main())
