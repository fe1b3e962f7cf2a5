"""ONNX models end to end: a real scikit-learn model converted with skl2onnx, logged,
loaded through onnxruntime and served over the in-process ASGI app."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dmv
from dmv.registry import NewArtifact

pytest.importorskip("sklearn", reason="the ONNX tests convert a scikit-learn model")
pytest.importorskip("fastapi", reason="serving needs the server extra: pip install 'dmv[server]'")
pytest.importorskip("onnxruntime", reason="running ONNX models needs pip install 'dmv[onnx]'")
pytest.importorskip("skl2onnx", reason="converting to ONNX needs skl2onnx (in 'dmv[dev]')")

from fastapi.testclient import TestClient
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from dmv.server import create_app

V1 = "0.0.1-0001.0001"
REF = f"diabetes@{V1}"
URL = f"/models/diabetes/versions/{V1}/predict"
# float32 through ONNX against float64 in scikit-learn; targets are in the hundreds.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-3}


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any, Any]:
    """(frame of float32 features, fitted Ridge, its ONNX conversion)."""
    features = load_diabetes(as_frame=True).data.astype("float32")
    target = load_diabetes().target
    model = Ridge(alpha=0.5).fit(features.to_numpy(), target)
    return features, model, to_onnx(model, features.to_numpy()[:1])


@pytest.fixture
def logged(project: dmv.Project, fitted: tuple[Any, Any, Any]) -> dmv.Project:
    """diabetes 0.0.1 serves the ONNX Ridge; its interface inferred by running it."""
    features, _, onx = fitted
    with project.run("diabetes", version=V1) as run:
        run.log_model(onx, sample_input=features.head())
    return project


def _model_file(project: dmv.Project) -> Path:
    run = project.runs(REF)[0]
    digest = next(a.digest for a in run.artifacts if a.kind == "model")
    return Path(project.artifacts.path_of(digest))


def test_onnx_model_is_stored_as_onnx_and_its_interface_inferred(logged: dmv.Project) -> None:
    art = next(a for a in logged.runs(REF)[0].artifacts if a.kind == "model")
    assert art.meta is not None
    assert art.meta["flavor"] == "onnx" and art.meta["format"] == "onnx"
    # The stored file is the model itself, not a pickle of it.
    assert _model_file(logged).read_bytes()[:1] != b"\x80"
    iface = logged.interface(REF)
    assert [f.name for f in iface.inputs][:3] == ["age", "sex", "bmi"]
    assert {f.type.value for f in iface.inputs} == {"float32"}
    assert [f.name for f in iface.outputs] == ["prediction"]


def test_load_model_predicts_like_scikit_learn(
    logged: dmv.Project, fitted: tuple[Any, Any, Any]
) -> None:
    features, model, _ = fitted
    loaded = logged.load_model(REF)
    x = features.to_numpy()
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), **TOLERANCE)
    # A frame and plain rows work too.
    np.testing.assert_allclose(loaded.predict(features), model.predict(x), **TOLERANCE)
    rows = features.head(3).to_dict(orient="records")
    np.testing.assert_allclose(loaded.predict(rows), model.predict(x[:3]), **TOLERANCE)


def test_onnx_bytes_path_and_loaded_model_store_the_same_file(
    project: dmv.Project, fitted: tuple[Any, Any, Any], tmp_path: Path
) -> None:
    _, _, onx = fitted
    path = tmp_path / "ridge.onnx"
    path.write_bytes(onx.SerializeToString())
    iface = {"inputs": {"x": "float32"}, "outputs": {"prediction": "float32"}}
    with project.experiment("diabetes", interface=iface) as run:
        from_path = run.log_model(path, format="onnx")
        from_bytes = run.log_model(path.read_bytes(), name="again", format="onnx")
    assert from_path.digest == from_bytes.digest
    with project.run("diabetes", version=V1) as run:
        run.log_model(onx)
    loaded = project.load_model(REF)
    with project.experiment("diabetes", interface=iface) as run:
        relogged = run.log_model(loaded)
    assert relogged.digest == from_path.digest and relogged.meta["format"] == "onnx"


def test_bad_onnx_input_is_refused_when_logged(project: dmv.Project) -> None:
    with (
        pytest.raises(dmv.InvalidInput, match="not a model onnxruntime can load"),
        project.run("diabetes", version=V1) as run,
    ):
        run.log_model(b"these bytes are not an ONNX model", format="onnx")
    with pytest.raises(dmv.NotFound):  # the failed run registered no version
        project.show(REF)
    with pytest.raises(dmv.InvalidInput, match="no ONNX file"), project.experiment("d") as run:
        run.log_model("missing.onnx", format="onnx")
    with (
        pytest.raises(dmv.InvalidInput, match="has no predict") as caught,
        project.experiment("d") as run,
    ):
        run.log_model(b"onnx bytes without format=")
    assert "format='onnx'" in (caught.value.hint or "")
    with (
        pytest.raises(dmv.InvalidInput, match="unknown model format"),
        project.experiment("d") as run,
    ):
        run.log_model(b"", format="tensorflow")


def test_served_over_http_with_the_same_predictions(
    logged: dmv.Project, fitted: tuple[Any, Any, Any]
) -> None:
    features, model, _ = fitted
    client = TestClient(create_app(logged))
    rows = features.head(5).to_dict(orient="records")
    r = client.post(URL, json={"inputs": rows})
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == V1
    body = r.json()
    assert body["model"] == "diabetes" and body["version"] == V1
    got = [o["prediction"] for o in body["outputs"]]
    np.testing.assert_allclose(got, model.predict(features.head(5).to_numpy()), **TOLERANCE)
    # The interface guards an ONNX model like any other.
    bad = client.post(URL, json={"inputs": [{**rows[0], "bmi": "high"}]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"


def test_corrupted_onnx_file_is_a_clean_error(logged: dmv.Project) -> None:
    path = _model_file(logged)
    os.chmod(path, 0o644)
    path.write_bytes(b"not the model that was stored")
    client = TestClient(create_app(logged), raise_server_exceptions=False)
    row = dict.fromkeys(["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], 0.0)
    r = client.post(URL, json={"inputs": [row]})
    # A model that cannot be loaded answers 503 for itself, naming the cause.
    error = r.json()["error"]
    assert r.status_code == 503 and error["code"] == "model_unavailable"
    assert error["details"]["cause"] == "artifact_error"
    assert "Traceback" not in r.text


def test_stored_blob_onnxruntime_cannot_load_is_a_clean_error(project: dmv.Project) -> None:
    # A file that passed its hash check yet is not ONNX, e.g. logged without onnxruntime.
    blob = project.artifacts.put_bytes(b"\x08\x07garbage that is no protobuf model")
    meta = {"flavor": "onnx", "format": "onnx"}
    with project.run("diabetes", version=V1) as run:
        run.add_artifact(NewArtifact("model", "model", blob.digest, blob.size, meta))
    with pytest.raises(dmv.DmvError, match="not a model onnxruntime can load"):
        project.load_model(REF)
    client = TestClient(create_app(project), raise_server_exceptions=False)
    r = client.post(URL, json={"inputs": [{"x": 1.0}]})
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "model_unavailable" and "onnxruntime" in error["message"]
    assert error["details"]["cause"] == "artifact_error"
    assert "Traceback" not in r.text


def test_without_onnxruntime_the_error_says_what_to_install(
    logged: dmv.Project, fitted: tuple[Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    features, _, onx = fitted
    # As if onnxruntime were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(dmv.DmvError, match="onnxruntime is not installed") as caught:
        logged.load_model(REF)
    assert caught.value.hint == "pip install 'dmv[onnx]'"
    client = TestClient(create_app(logged), raise_server_exceptions=False)
    row = features.head(1).to_dict(orient="records")
    r = client.post(URL, json={"inputs": row})
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    assert r.json()["error"]["hint"] == "pip install 'dmv[onnx]'"
    # Logging still works; inferring the interface needs to run the model, and says so.
    with (
        pytest.raises(dmv.InvalidInput, match="onnxruntime is not installed") as inferring,
        logged.run("diabetes", version="0.0.2-0001.0001") as run,
    ):
        run.log_model(onx, sample_input=features.head())
    assert "interface=" in (inferring.value.hint or "")
    iface = {"inputs": {"age": "float32"}, "outputs": {"prediction": "float32"}}
    with logged.run("diabetes", version="0.0.3-0001.0001", interface=iface) as run:
        run.log_model(onx, sample_input=features.head())
    assert logged.interface("diabetes@0.0.3-0001.0001").inputs[0].name == "age"


def test_import_dmv_does_not_import_onnx() -> None:
    import subprocess

    code = (
        "import sys, dmv, dmv.training.run, dmv.server.predictors; "
        "print([m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
