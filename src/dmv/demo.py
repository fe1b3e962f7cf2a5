"""``make demo``: the reference scenario of the pattern's diagram, end to end.

In a fresh folder: a git repository with real training code, a DuckDB warehouse
seeded from the diabetes dataset scikit-learn ships (no download), then

    experiment x.x.x-0123.abcd → 0.0.1-0123.abcd → (hyperparameter) 0.0.2-0123.abcd
    → (interface) 0.1.0-0123.abcd → (new split) 0.1.0-0123.efgh → release 1.1.0-0123.efgh
    → retrain (tr1) → serve and predict over HTTP → verify

and the version tree as the diagram draws it. Run with ``python -m dmv.demo [FOLDER]``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dmv
from dmv.reports.tree_arrange import render_text

__all__ = ["main"]

MODEL = "disease-progress"

TRAIN_PY = '''"""Train the disease-progression model on a stored split.

Usage: python train.py [DATA.SPLIT]
"""

import sys

from sklearn.linear_model import Ridge

import dmv

FEATURES = {features!r}
ALPHA = {alpha!r}
DATA = sys.argv[1] if len(sys.argv) > 1 else "0123.abcd"

project = dmv.open()
with project.run("{model}", data=DATA, params={{"alpha": ALPHA}}, code=["train.py"]) as run:
    train, test = run.dataset("train"), run.dataset("test")
    model = Ridge(alpha=ALPHA).fit(train[FEATURES], train["target"])
    run.log_metrics({{"r2": model.score(train[FEATURES], train["target"])}}, split="train")
    run.log_metrics({{"r2": model.score(test[FEATURES], test["target"])}}, split="test")
    run.log_model(model, sample_input=train[FEATURES].head(5))
print(run.version.number, run.id)
'''


def _say(text: str = "") -> None:
    print(text, flush=True)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _write_train(root: Path, features: list[str], alpha: float) -> None:
    text = TRAIN_PY.format(features=features, alpha=alpha, model=MODEL)
    (root / "train.py").write_text(text, encoding="utf-8")


def _train(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "train.py", *args], cwd=root, capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr}")
    number, run_id = done.stdout.split()[-2:]
    return f"{MODEL} {number} {run_id}"


def _seed(project: Any) -> None:
    import duckdb
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    patients = x.assign(target=y, patient_id=range(len(x)))
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.register("frame", patients)
        con.execute("CREATE TABLE patients AS SELECT * FROM frame")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(project: Any) -> tuple[Any, str]:
    import uvicorn

    from dmv.server import create_app  # lazy: fastapi

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(project), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), response.headers["X-Model-Version"]
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), ""


def main(argv: list[str] | None = None) -> int:

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="dmv-demo-"))
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    _say(f"dmv demo: the reference scenario in {root}\n")

    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "demo@dmv.invalid")
    _git(root, "config", "user.name", "dmv demo")
    project = dmv.init(root)
    project.create_model(
        MODEL,
        purpose="forecast disease progression one year ahead",
        function="regression",
        primary_metric="r2",
        metric_goal="max",
        exist_ok=True,
    )
    _seed(project)
    features = ["age", "bmi", "bp"]
    _write_train(root, features, 1.0)
    (root / ".gitignore").write_text(".dmv/\n__pycache__/\n", encoding="utf-8")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "training code")

    query = project.data_query(MODEL, sql="SELECT * FROM patients", id="0123")
    split = project.data_split(MODEL, query.data, by="key:patient_id", id="abcd")
    rows = ", ".join(f"{p['name']} {p['rows']}" for p in split.parts)
    _say(f"DATA  {query.data}: SELECT * FROM patients (DuckDB warehouse)")
    _say(f"SPLIT {split.split}: by patient_id → {rows}; tables {split.parts[0]['table']}, …\n")

    _say("Experiment stage (a notebook, say): logged, never numbered")
    from sklearn.linear_model import Ridge

    with project.experiment(MODEL, data="0123.abcd", params={"alpha": 10.0}) as ex:
        frame = ex.dataset("train")
        ex.log_model(Ridge(alpha=10.0).fit(frame[features], frame["target"]))
    assert ex.info is not None
    _say(f"  {ex.info.label} {ex.id}\n")

    _say("Development stage: versions derived from the code, interface and data")
    _say(f"  first versioned model            → {_train(root)}")
    _write_train(root, features, 0.1)
    _git(root, "commit", "-qam", "lower regularisation")
    _say(f"  hyperparameter change            → {_train(root)}")
    features = [*features, "s1"]
    _write_train(root, features, 0.1)
    _git(root, "commit", "-qam", "add the s1 feature")
    _say(f"  interface change (one more input) → {_train(root)}")
    efgh = project.data_split(MODEL, "0123", by="key:patient_id", salt="2", id="efgh")
    efgh_rows = ", ".join(f"{p['name']} {p['rows']}" for p in efgh.parts)
    _say(f"  SPLIT {efgh.split}: the same rows split again (salt 2) → {efgh_rows}")
    _say(f"  new dataset split {efgh.ref}     → {_train(root, '0123.efgh')}\n")

    _say("Production stage")
    released = project.release(f"{MODEL}@0.1.0-0123.efgh")
    project.set_alias(released.version, "production")
    _say(f"  released {released.version} (serves {released.serving_run}), alias production")
    _say(f"  retrained, nothing changed       → {_train(root, '0123.efgh')}\n")

    server, base = _serve(project)
    try:
        patient = {name: float(frame[name].iloc[0]) for name in features}
        url = f"{base}/models/{MODEL}/versions/production/predict"
        status, body, header = _post(url, {"inputs": [patient]})
        _say(f"POST {url}")
        _say(f"  {status} X-Model-Version: {header}")
        _say(f"  {json.dumps(body)}")
        status, body, _ = _post(url, {"inputs": [{"age": "old"}]})
        problems = body["error"].get("details", {}).get("problems", [])
        _say(f"  a bad request → {status}: " + "; ".join(p["message"] for p in problems[:3]))
    finally:
        server.should_exit = True
    _say("")

    report = project.verify(f"{MODEL}@production")
    _say(f"dmv verify {MODEL}@production: " + ("all checks passed" if report.ok else "FAILED"))
    for check in report.checks:
        _say(f"  {check.status:<4} {check.name}: {check.detail}")
    _say("")
    _say(render_text(project.tree(MODEL)))
    _say(f"done in {time.perf_counter() - started:.1f} s; explore it with")
    _say(f"  dmv -C {root} tree {MODEL}")
    _say(f"  dmv -C {root} server          # REST API and web UI on http://127.0.0.1:8000")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
