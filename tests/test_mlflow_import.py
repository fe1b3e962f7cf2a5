"""Import a real MLflow registry (SQLite store made by MLflow itself) into dmv."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import dmv
from dmv.artifacts import Blob
from dmv.errors import UntrustedModel
from mlflow_env import run_in_mlflow

_MAKE = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn, mlflow.lightgbm, lightgbm as lgb
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
uri = sys.argv[1]
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
mlflow.set_experiment("exp")
x, y = load_iris(return_X_y=True, as_frame=True)
x.columns = ["sl", "sw", "pl", "pw"]
def log(name, model, params, metrics, signature=True, **kw):
    with mlflow.start_run():
        mlflow.log_params(params); mlflow.log_metrics(metrics)
        for step in range(3):  # a learning curve
            mlflow.log_metric("train_loss", 1.0 / (step + 1), step=step)
        sig = infer_signature(x, model.predict(x)) if signature else None
        mod = mlflow.lightgbm if "lightgbm" in type(model).__module__ else mlflow.sklearn
        mod.log_model(model, name="model", signature=sig, registered_model_name=name, **kw)
for c in (1.0, 0.5, 0.5):   # v1, v2 (new params), v3 (same params as v2)
    log("Iris Classifier", LogisticRegression(C=c, max_iter=300).fit(x, y), {"C": c},
        {"test_accuracy": 0.9 + c / 100, "train_accuracy": 0.95})
log("Iris Classifier", LogisticRegression(C=9, max_iter=300).fit(x, y), {"C": 9},
    {"test_accuracy": 0.5})
booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y), 5)
log("price", booster, {"rounds": 5}, {"rmse": 0.3})
log("nosig", LogisticRegression(max_iter=300).fit(x, y), {"C": 1}, {"accuracy": 0.9},
    signature=False)
log("pickled", LogisticRegression(max_iter=300).fit(x, y), {"C": 1}, {"accuracy": 0.9},
    serialization_format="cloudpickle")
c = MlflowClient(uri, uri)
c.delete_model_version("Iris Classifier", "4")
c.set_registered_model_alias("Iris Classifier", "champion", "2")
c.set_registered_model_alias("Iris Classifier", "challenger", "3")
c.set_registered_model_alias("price", "production", "1")
"""

_MORE = r"""
import sys, warnings
warnings.filterwarnings("ignore")
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from mlflow.models import infer_signature
uri = sys.argv[1]
mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri); mlflow.set_experiment("exp")
x, y = load_iris(return_X_y=True, as_frame=True)
x.columns = ["sl", "sw", "pl", "pw"]
with mlflow.start_run():
    mlflow.log_params({"C": 2.0})
    m = LogisticRegression(C=2.0, max_iter=300).fit(x, y)
    mlflow.sklearn.log_model(m, name="model", signature=infer_signature(x, m.predict(x)),
                             registered_model_name="Iris Classifier")
MlflowClient(uri, uri).set_registered_model_alias("Iris Classifier", "champion", "5")
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_in_mlflow(_MAKE, uri, cwd=folder)
    return uri


@pytest.mark.slow
def test_import_a_real_registry_twice(project: dmv.Project, store: str) -> None:
    report = project.import_mlflow(store)
    got = {v["mlflow"]: v["version"] for v in report["versions"]}
    # Y by signature, Z by logic (params), DATA.SPLIT = mlflow.vN; v4 was deleted.
    assert got == {
        "Iris Classifier v1": "0.0.0-mlflow.v1",
        "Iris Classifier v2": "0.0.1-mlflow.v2",
        "Iris Classifier v3": "0.0.1-mlflow.v3",
        "price v1": "0.0.0-mlflow.v1",
        "nosig v1": "0.0.0-mlflow.v1",
        "pickled v1": "0.0.0-mlflow.v1",
    }
    assert {m["model"] for m in report["models"]} == {
        "iris-classifier",
        "price",
        "nosig",
        "pickled",
    }
    aliases = {a["model"]: {} for a in report["aliases"]}
    for a in report["aliases"]:
        aliases[a["model"]][a["alias"]] = a["version"]
    assert aliases == {
        "iris-classifier": {"champion": "0.0.1-mlflow.v2", "challenger": "0.0.1-mlflow.v3"},
        "price": {"production": "0.0.0-mlflow.v1"},
    }
    info = project.show("iris-classifier@champion")
    origin = info.meta["origin"]
    assert origin["name"] == "Iris Classifier" and origin["version"] == 2 and origin["run_id"]
    assert [f["name"] for f in info.interface["inputs"]] == ["sl", "sw", "pl", "pw"]
    run = project.runs(info.version)[0]
    assert run.params == {"C": "0.5"}
    assert run.metrics["test"]["accuracy"] == pytest.approx(0.905)
    # MLflow's metric history comes in as dmv's, step by step
    assert run.history["train"]["loss"] == [[0, 1.0], [1, 0.5], [2, pytest.approx(1 / 3)]]
    assert run.history["test"]["accuracy"] == [[0, pytest.approx(0.905)]]
    assert run.metrics["train"]["loss"] == pytest.approx(1 / 3)
    assert project.show("nosig@0.0.0-mlflow.v1").interface is None

    # The skops file MLflow wrote is served by dmv; the cloudpickle one needs trust.
    model = project.load_model("iris-classifier@champion")
    assert type(model).__name__ == "LogisticRegression"
    assert project.model_file("pickled@0.0.0-mlflow.v1")["unsafe_format"] is True
    with pytest.raises(UntrustedModel):
        project.load_model("pickled@0.0.0-mlflow.v1")
    booster = project.load_model("price@production")
    assert type(booster).__name__ == "Booster"

    # Every file came in and its hash matches what MLflow stored.
    files = {a.name: a for a in run.artifacts}
    assert "mlflow/MLmodel" in files and files["model"].meta["format"] == "skops"
    for a in run.artifacts:
        data = project.artifacts.get_bytes(Blob(a.digest, a.size))
        assert hashlib.sha256(data).hexdigest() == a.meta["sha256"]

    # Idempotent: nothing new, nothing duplicated.
    again = project.import_mlflow(store)
    assert {v["status"] for v in again["versions"]} == {"already imported"}
    assert len(project.versions("iris-classifier")) == 3
    assert len(project.runs("iris-classifier@champion")) == 1

    # A new MLflow version arrives and the alias moves: only that is added.
    run_in_mlflow(_MORE, store)
    third = project.import_mlflow(store, model="Iris Classifier")
    new = [v for v in third["versions"] if v["status"] == "imported"]
    assert new == [
        {"mlflow": "Iris Classifier v5", "version": "0.0.2-mlflow.v5", "status": "imported"}
    ]
    assert project.resolve("iris-classifier@champion").number == "0.0.2-mlflow.v5"
    assert len(project.versions("iris-classifier")) == 4


def test_unknown_model_and_bad_uri_are_clear_errors(
    project: dmv.Project, store: str, tmp_path: Path
) -> None:
    from dmv.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no registered model named 'nope'"):
        project.import_mlflow(store, model="nope")
    assert project.models() == []
