"""MLflow's half of ``bench/registry.py``; runs in the benchmark venv ``bench/.envs/mlflow``.

Not meant to be run by hand: ``bench/registry.py`` starts it with that venv's
interpreter, passes the plan as JSON (argv[1]) and reads one JSON object from
its stdout. Everything MLflow prints goes to stderr, so stdout stays clean.

Each operation mirrors the dmv call it is compared with (see registry.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODEL = "bench-model"
RUN_MODEL = "bench-run"


def _measure(fn: Callable[[int], Any], reps: int, warmup: int) -> list[float]:
    """Call ``fn(i)`` for warm-up then measured repetitions; the measured times in ms."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(warmup, warmup + reps):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def _summary(times: list[float]) -> dict[str, Any]:
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "reps": len(times),
    }


def main(plan: dict[str, Any], tmp: Path) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    n, n_list, n_run = plan["n"], plan["n_list"], plan["n_run"]
    warmup, total = plan["warmup"], plan["versions"]
    keys: list[int] = plan["keys"]  # version numbers (1-based) read by the get ops

    os.chdir(tmp)  # whatever MLflow writes next to the cwd stays in the temp dir
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    artifacts = tmp / "artifacts"
    artifacts.mkdir()
    results: dict[str, Any] = {}

    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()  # creates the store (schema migrations): not measured
    results["store_init_ms"] = (time.perf_counter() - t0) * 1000.0

    client.create_registered_model(MODEL)
    source = (artifacts / "model").as_uri()

    # 1. create a version
    results["create_version"] = _summary(
        _measure(lambda i: client.create_model_version(MODEL, source, run_id=None), n, warmup)
    )
    made = warmup + n
    for _ in range(made, total):  # fill the model up to `total` versions, unmeasured
        client.create_model_version(MODEL, source, run_id=None)
    client.set_registered_model_alias(MODEL, "production", "1")

    # 2. get by exact version
    results["get_version"] = _summary(
        _measure(lambda i: client.get_model_version(MODEL, str(keys[i % len(keys)])), n, warmup)
    )

    # 3. get by alias
    results["get_alias"] = _summary(
        _measure(lambda i: client.get_model_version_by_alias(MODEL, "production"), n, warmup)
    )

    # 4. list 1,000 versions of a model
    def list_all(i: int) -> None:
        found = client.search_model_versions(f"name='{MODEL}'", max_results=total)
        if len(found) != total:
            raise RuntimeError(f"search_model_versions returned {len(found)}, not {total}")

    results["list_versions"] = _summary(_measure(list_all, n_list, warmup))

    # 5. move an alias (alternating between two versions)
    results["move_alias"] = _summary(
        _measure(
            lambda i: client.set_registered_model_alias(MODEL, "production", str(1 + i % 2)),
            n,
            warmup,
        )
    )

    # 6. log a run (10 params, 5 metrics, a small scikit-learn model) and register it
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    params = {f"param_{j}": j for j in range(10)}
    metrics = {f"metric_{j}": 0.5 + j / 10 for j in range(5)}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = client.create_experiment("bench", artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment_id=exp)
    # MLflow 3.x names the logged model with name=, older versions with artifact_path=.
    major = int(mlflow.__version__.split(".")[0])
    where = {"name": "model"} if major >= 3 else {"artifact_path": "model"}

    def log_run(i: int) -> None:
        with mlflow.start_run():
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
            mlflow.sklearn.log_model(model, registered_model_name=RUN_MODEL, **where)

    results["log_run"] = _summary(_measure(log_run, n_run, warmup))

    results["meta"] = {
        "mlflow": mlflow.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "tracking_uri": "sqlite:///<tmp>/mlflow.db",
    }
    return results


if __name__ == "__main__":
    out = sys.stdout
    plan = json.loads(sys.argv[1])
    home = os.getcwd()
    with (
        tempfile.TemporaryDirectory(prefix="mlflow-bench-", ignore_cleanup_errors=True) as tmp,
        contextlib.redirect_stdout(sys.stderr),
    ):
        try:
            result = main(plan, Path(tmp))
        finally:
            os.chdir(home)
    out.write(json.dumps(result) + "\n")
    out.flush()
