"""Export to MLflow's model format, read back and served by the real MLflow."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris

import dmv
from dmv.errors import InvalidInput
from mlflow_env import mlflow_env, mlflow_python, run_in_mlflow

V = "0.0.1-0123.abcd"


def _iris() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return x, y


def _log(project: dmv.Project, name: str, model: Any, x: pd.DataFrame, **kw: Any) -> str:
    with project.run(name, version=V, params={"kind": type(model).__name__}) as run:
        run.log_model(model, sample_input=x.head(5), **kw)
        run.log_metrics({"accuracy": 0.9}, split="test")
        for step in range(3):
            run.log_metric("loss", 1.0 / (step + 1), step=step, split="train")
    return f"{name}@{V}"


def _rows(x: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(x.iloc[::17].to_json(orient="records"))


def _dmv_answers(project: dmv.Project, ref: str, rows: list[dict[str, Any]]) -> Any:
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    name, version = ref.split("@")
    r = TestClient(create_app(project)).post(
        f"/models/{name}/versions/{version}/predict", json={"inputs": rows}
    )
    assert r.status_code == 200, r.text
    return r.json()["outputs"]


def test_mlmodel_has_flavors_signature_example_requirements(
    project: dmv.Project, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _iris()
    ref = _log(
        project, "iris", LogisticRegression(max_iter=300).fit(x, y), x, outputs=["label", "proba"]
    )
    out = tmp_path / "exported"
    result = project.export_model(ref, out)
    assert result["flavors"] == ["python_function", "sklearn"]
    mlmodel = yaml.safe_load((out / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert (out / "model.skops").read_bytes() == (out / "dmv" / "model.bin").read_bytes()
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [c["name"] for c in inputs] == list(x.columns)
    assert {c["type"] for c in inputs} == {"double"}
    outputs = json.loads(mlmodel["signature"]["outputs"])
    assert [c["type"] for c in outputs] == ["long", "map"]  # probabilities keyed by class
    assert outputs[1]["values"] == {"type": "double"}
    example = json.loads((out / "input_example.json").read_text())
    assert example["columns"] == list(x.columns) and len(example["data"]) == 5
    meta = mlmodel["metadata"]["dmv"]
    assert meta["full_version"] == f"iris {V}" and meta["interface_fp"].startswith("blake3:")
    assert meta["lineage"]["data"] == "0123" and meta["lineage"]["run"] == "tr0"
    assert meta["metric_history"] == {"train": {"loss": [[0, 1.0], [1, 0.5], [2, 1 / 3]]}}
    reqs = (out / "requirements.txt").read_text().split()
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in reqs and any(
        r.startswith("skops==") for r in reqs
    )
    # A second export never overwrites a folder that has something in it.
    with pytest.raises(InvalidInput, match="not an empty folder"):
        project.export_model(ref, out)


def test_pickled_model_needs_trust_to_export(project: dmv.Project, tmp_path: Path) -> None:
    from dmv.errors import UntrustedModel

    (project.root / "mymodel.py").write_text(
        "class Const:\n    def predict(self, x):\n        return [1.0] * len(x)\n"
    )
    sys.path.insert(0, str(project.root))
    try:
        from mymodel import Const  # type: ignore[import-not-found]

        x, _ = _iris()
        ref = _log(project, "const", Const(), x, trust_pickle=True, code=["mymodel.py"])
    finally:
        sys.path.remove(str(project.root))
        sys.modules.pop("mymodel", None)
    with pytest.raises(UntrustedModel):
        project.export_model(ref, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    result = project.export_model(ref, tmp_path / "b", trust_pickle=True)
    assert result["flavors"] == ["python_function"]  # MLflow has no native flavor for it
    assert (tmp_path / "b" / "dmv" / "model_code" / "mymodel.py").exists()


_PYFUNC = """
import json, sys, pandas as pd, mlflow.pyfunc
out = {}
for path in sys.argv[2:]:
    rows = json.loads(sys.argv[1])
    answer = mlflow.pyfunc.load_model(path).predict(pd.DataFrame.from_records(rows))
    out[path] = json.loads(answer.to_json(orient="records"))
    metadata = mlflow.models.Model.load(path).metadata["dmv"]
    out[path + "#history"] = metadata["metric_history"]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_mlflow_pyfunc_answers_as_dmv_for_each_flavor(project: dmv.Project, tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    from sklearn.ensemble import RandomForestRegressor

    mlflow_python()
    x, y = _iris()
    refs = [
        _log(project, "lgb", lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y), x),
        _log(project, "xgb", xgboost.XGBRegressor(n_estimators=5).fit(x, y), x),
        _log(project, "forest", RandomForestRegressor(n_estimators=3, random_state=0).fit(x, y), x),
    ]
    rows = _rows(x)
    paths = {}
    for ref in refs:
        paths[ref] = str(tmp_path / ref.split("@")[0])
        project.export_model(ref, paths[ref])
    got = json.loads(run_in_mlflow(_PYFUNC, json.dumps(rows), *paths.values()))
    for ref, path in paths.items():
        # MLflow reads the learning curve the run logged from the model's metadata
        assert got[path + "#history"] == {"train": {"loss": [[0, 1.0], [1, 0.5], [2, 1 / 3]]}}
        expected = _dmv_answers(project, ref, rows)
        assert len(got[path]) == len(expected) == len(rows)
        for a, b in zip(got[path], expected, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                assert a[k] == pytest.approx(b[k], rel=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _post(url: str, body: Any) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _wait(proc: subprocess.Popen[bytes], url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, urllib.error.URLError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            raise AssertionError(f"server did not start: {err}")
        time.sleep(0.3)


@pytest.mark.slow
def test_mlflow_models_serve_answers_as_dmv_serve(project: dmv.Project, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    python = mlflow_python()
    x, y = _iris()
    ref = _log(
        project, "iris", LogisticRegression(max_iter=300).fit(x, y), x, outputs=["label", "proba"]
    )
    project.export_model(ref, tmp_path / "exported")
    rows = _rows(x)
    dmv_port, mlflow_port = _free_port(), _free_port()
    dmv_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dmv",
            "-C",
            str(project.root),
            "serve",
            ref,
            "--port",
            str(dmv_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    mlflow_cmd = [str(python), "-m", "mlflow", "models", "serve", "-m", str(tmp_path / "exported")]
    mlflow_proc = subprocess.Popen(
        [*mlflow_cmd, "--env-manager", "local", "--port", str(mlflow_port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=mlflow_env(),
    )
    try:
        _wait(dmv_proc, f"http://127.0.0.1:{dmv_port}/v2/health/ready")
        _wait(mlflow_proc, f"http://127.0.0.1:{mlflow_port}/ping")
        ours = _post(
            f"http://127.0.0.1:{dmv_port}/models/iris/versions/{V}/predict", {"inputs": rows}
        )["outputs"]
        theirs = _post(f"http://127.0.0.1:{mlflow_port}/invocations", {"dataframe_records": rows})[
            "predictions"
        ]
        assert [r["prediction"] for r in theirs] == [r["prediction"] for r in ours]
        assert len({r["prediction"] for r in ours}) == 3  # the rows span every class
        for a, b in zip(theirs, ours, strict=True):
            assert a["probabilities"] == pytest.approx(b["probabilities"], rel=1e-9)
    finally:
        for proc in (dmv_proc, mlflow_proc):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_cli_export_and_clear_errors(
    project: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    from dmv.cli import main

    x, y = _iris()
    ref = _log(project, "iris", LogisticRegression(max_iter=300).fit(x, y), x)
    out = tmp_path / "cli-export"
    assert main(["-C", str(project.root), "export", ref, str(out), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["flavors"] == ["python_function", "sklearn"] and (out / "MLmodel").is_file()
    code = main(["-C", str(project.root), "export", "iris@nope", str(tmp_path / "y"), "--json"])
    assert code != 0 and "error" in json.loads(capsys.readouterr().out)
    env_python = str(tmp_path / "no-such-python")
    code = main(
        [
            "-C",
            str(project.root),
            "import",
            "mlflow",
            "--tracking-uri",
            "sqlite:///x.db",
            "--mlflow-python",
            env_python,
        ]
    )
    err = capsys.readouterr().err
    assert code == 15 and "not a file" in err and "Traceback" not in err
