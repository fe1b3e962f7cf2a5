"""Model serving over HTTP: predict by reference, validation, OIP v2, OpenAPI, a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from fastapi.testclient import TestClient
from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from dmv.server import create_app

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS = {"inputs": dict.fromkeys(FEATURES, "float64"), "outputs": {"species": "int64"}}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
ROW2 = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
V1, V2 = "0.0.1-0123.abcd", "0.0.2-0123.abcd"


def register(
    project: dmv.Project, name: str, number: str, model: Any, interface: dict[str, Any] | None
) -> None:
    """A real training run of ``name number`` that logs ``model``, with ``interface``."""
    from dmv.interface import Interface

    if interface is not None:
        iface = Interface.from_dict(interface)
        project.registry.create_version(
            dmv.Version.parse_number(name, number),
            interface=iface.to_dict(),
            interface_fp=iface.fingerprint,
        )
    with project.run(name, version=number) as run:
        run.log_model(model, **python_model(project, model))


def python_model(project: dmv.Project, model: Any) -> dict[str, Any]:
    """For a test model class from tests/_workers: its code stored with it, trusted.

    Such a model is pickled, so serving it needs ``trust_pickle`` / ``--trust-pickle``.
    """
    import shutil

    if not type(model).__module__.startswith("_workers."):
        return {}
    dest = project.root / "_workers"
    dest.mkdir(exist_ok=True)
    files = ["_workers/__init__.py", "_workers/serving_models.py"]
    for rel in files:
        shutil.copyfile(Path(__file__).parent / rel, project.root / rel)
    return {"code": files, "trust_pickle": True}


def _iris() -> tuple[Any, Any]:
    return load_iris(return_X_y=True)


@pytest.fixture
def served(project: dmv.Project, small_model: Any) -> dmv.Project:
    """iris 0.0.1 (LogisticRegression, @production) and 0.0.2 (always class 2)."""
    x, y = _iris()
    register(project, "iris", V1, small_model, IRIS)
    register(project, "iris", V2, DummyClassifier(strategy="constant", constant=2).fit(x, y), IRIS)
    project.set_alias(f"iris@{V1}", "production")
    return project


@pytest.fixture
def client(served: dmv.Project) -> TestClient:
    return TestClient(create_app(served))


def _problems(response: Any) -> list[tuple[int | None, str | None, str]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    return [(p["row"], p["field"], p["problem"]) for p in error["details"]["problems"]]


# -- predict ---------------------------------------------------------------------------


def test_predict_happy_path(client: TestClient, small_model: Any) -> None:
    r = client.post("/models/iris/versions/production/predict", json={"inputs": [ROW, ROW2]})
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == V1
    expected = small_model.predict(np.array([list(ROW.values()), list(ROW2.values())]))
    assert r.json() == {
        "model": "iris",
        "version": V1,
        "outputs": [{"species": int(expected[0])}, {"species": int(expected[1])}],
    }
    assert expected.tolist() == [0, 2]  # a real model, really predicting


@pytest.mark.parametrize(
    ("ref", "version"),
    [(V1, V1), ("0.0.1", V1), ("0.0", V2), ("0", V2), ("production", V1)],
)
def test_every_reference_form(client: TestClient, ref: str, version: str) -> None:
    r = client.post(f"/models/iris/versions/{ref}/predict", json={"inputs": [ROW]})
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == version == r.json()["version"]
    assert r.json()["outputs"] == [{"species": 0 if version == V1 else 2}]


def test_reference_is_resolved_at_request_time(served: dmv.Project) -> None:
    app = create_app(served)
    client = TestClient(app)
    url = "/models/iris/versions/production/predict"
    assert client.post(url, json={"inputs": [ROW]}).json()["outputs"] == [{"species": 0}]
    served.set_alias(f"iris@{V2}", "production")  # no restart
    r = client.post(url, json={"inputs": [ROW]})
    assert r.headers["X-Model-Version"] == V2
    assert r.json()["outputs"] == [{"species": 2}]
    # A new version that latest/0 points at is served at once, too.
    x, y = _iris()
    register(served, "iris", "0.0.3-0123.abcd", DummyClassifier(constant=1, strategy="constant")
             .fit(x, y), IRIS)  # fmt: skip
    r = client.post("/models/iris/versions/0/predict", json={"inputs": [ROW]})
    assert r.headers["X-Model-Version"] == "0.0.3-0123.abcd"
    assert r.json()["outputs"] == [{"species": 1}]
    # Models are cached by exact version and file digest, never by reference.
    cache = app.state.model_server._served
    assert {v for v, _ in cache} == {f"iris@{n}" for n in (V1, V2, "0.0.3-0123.abcd")}
    assert client.post(url, json={"inputs": [ROW]}).status_code == 200
    assert len(cache) == 3


def test_a_new_run_of_a_prerelease_is_served(served: dmv.Project) -> None:
    client = TestClient(create_app(served))
    url = f"/models/iris/versions/{V2}/predict"
    assert client.post(url, json={"inputs": [ROW]}).json()["outputs"] == [{"species": 2}]
    x, y = _iris()
    with served.run("iris", version=V2) as run:  # tr1 of the same version
        run.log_model(DummyClassifier(strategy="constant", constant=1).fit(x, y))
    assert client.post(url, json={"inputs": [ROW]}).json()["outputs"] == [{"species": 1}]


def test_missing_field_and_wrong_type(client: TestClient) -> None:
    url = "/models/iris/versions/production/predict"
    bad = {k: v for k, v in ROW.items() if k != "petal_width"}
    assert _problems(client.post(url, json={"inputs": [bad]})) == [(0, "petal_width", "missing")]
    wrong = ROW | {"sepal_length": "long"}
    assert _problems(client.post(url, json={"inputs": [ROW, wrong]})) == [
        (1, "sepal_length", "wrong_type")
    ]
    extra = ROW | {"colour": "red"}
    assert _problems(client.post(url, json={"inputs": [extra]})) == [(0, "colour", "unknown_field")]
    null = ROW | {"sepal_width": None}
    assert _problems(client.post(url, json={"inputs": [null]})) == [(0, "sepal_width", "null")]


def test_bad_bodies_are_422_not_500(client: TestClient) -> None:
    url = "/models/iris/versions/production/predict"
    for raw in (
        b"",
        b"not json",
        b"null",
        b"[]",
        b'{"rows": []}',
        b'{"inputs": null}',
        b'{"inputs": "x"}',
        b'{"inputs": []}',
        b'{"inputs": [1, 2]}',
        b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}',
        b'{"inputs": [{"sepal_length": NaN}]}',
        b'{"inputs": [{"sepal_length": 1e400}]}',
        b'{"inputs": [{"sepal_length": 1' + b"0" * 400 + b"}]}",
    ):
        r = client.post(url, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (raw, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_input" and "Traceback" not in r.text


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_rows = st.lists(
    st.dictionaries(st.sampled_from([*FEATURES, "x"]), _json, max_size=5) | _json, max_size=3
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_rows)
def test_no_input_makes_a_500(client: TestClient, rows: Any) -> None:
    r = client.post("/models/iris/versions/production/predict", json={"inputs": rows})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert len(r.json()["outputs"]) == len(rows)


def test_enum_and_dataframe_model(project: dmv.Project) -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame(
        {"color": ["red", "green", "blue", "red", "green", "blue"], "size": [1, 2, 3, 4, 5, 6.0]}
    )
    labels = [1, 0, 0, 1, 0, 0]
    model = make_pipeline(
        ColumnTransformer([("c", OneHotEncoder(), ["color"])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, labels)
    interface = {
        "inputs": {
            "color": {"type": "enum", "values": ["blue", "green", "red"]},
            "size": "float64",
        },
        "outputs": {"is_red": "int64"},
    }
    register(project, "colors", V1, model, interface)
    client = TestClient(create_app(project))
    url = f"/models/colors/versions/{V1}/predict"
    rows = [{"color": "red", "size": 1.0}, {"size": 3.0, "color": "blue"}]
    r = client.post(url, json={"inputs": rows})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"is_red": 1}, {"is_red": 0}]
    bad = [{"color": "purple", "size": 1.0}]
    assert _problems(client.post(url, json={"inputs": bad})) == [(0, "color", "not_in_enum")]


def test_array_field_and_bad_shape(project: dmv.Project) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = _iris()
    grid = x.reshape(-1, 2, 2)
    model = make_pipeline(
        FunctionTransformer(np.reshape, kw_args={"shape": (-1, 4)}),
        LogisticRegression(max_iter=300),
    ).fit(grid, y)
    interface = {
        "inputs": {"grid": {"type": "array", "items": "float64", "shape": [2, 2]}},
        "outputs": {"species": "int64"},
    }
    register(project, "iris-grid", V1, model, interface)
    client = TestClient(create_app(project))
    url = f"/models/iris-grid/versions/{V1}/predict"
    r = client.post(url, json={"inputs": [{"grid": [[5.1, 3.5], [1.4, 0.2]]}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"] == [{"species": 0}]
    for grid_value in ([5.1, 3.5, 1.4, 0.2], [[5.1, 3.5], [1.4, 0.2, 9.9]], [[5.1, 3.5]]):
        problems = _problems(client.post(url, json={"inputs": [{"grid": grid_value}]}))
        assert problems == [(0, "grid", "bad_shape")], grid_value


def test_version_without_interface_accepts_rows_as_is(project: dmv.Project) -> None:
    x, y = _iris()
    register(project, "plain", V1, LogisticRegression(max_iter=300).fit(x, y), None)
    client = TestClient(create_app(project))
    url = f"/models/plain/versions/{V1}/predict"
    r = client.post(url, json={"inputs": [ROW2]})
    assert r.status_code == 200 and r.json()["outputs"] == [{"prediction": 2}]
    # Nothing to validate against: the model's own failure is a 4xx prediction_error.
    r = client.post(url, json={"inputs": [{"a": "x"}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "prediction_error"
    assert "failed to predict" in r.json()["error"]["message"]
    assert "bug in dmv" not in r.text


def test_corrupted_model_file_is_a_clean_error(served: dmv.Project) -> None:
    run = served.runs(f"iris@{V1}")[0]
    digest = next(a.digest for a in run.artifacts if a.kind == "model")
    path = Path(served.artifacts.path_of(digest))
    os.chmod(path, 0o644)
    path.write_bytes(b"not the model that was stored")
    client = TestClient(create_app(served), raise_server_exceptions=False)
    r = client.post("/models/iris/versions/production/predict", json={"inputs": [ROW]})
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "model_unavailable"
    assert error["details"]["cause"] == "artifact_error"
    assert "does not match its digest" in error["message"]
    assert "Traceback" not in r.text and "pickle" not in r.text.lower()
    # The other version still serves.
    ok = client.post(f"/models/iris/versions/{V2}/predict", json={"inputs": [ROW]})
    assert ok.status_code == 200


def test_unknown_model_version_and_alias(client: TestClient) -> None:
    for url in (
        "/models/nope/versions/1/predict",
        "/models/iris/versions/9.9.9/predict",
        "/models/iris/versions/staging/predict",
        "/models/iris/versions/latest/predict",  # nothing released yet
    ):
        r = client.post(url, json={"inputs": [ROW]})
        assert r.status_code == 404, (url, r.text)
        assert r.json()["error"]["code"] == "not_found"
    r = client.post("/models/iris/versions/1.x/predict", json={"inputs": [ROW]})
    assert r.status_code == 422


def test_metadata_endpoints(client: TestClient) -> None:
    models = client.get("/models").json()["models"]
    assert [(m["name"], m["aliases"]) for m in models] == [("iris", {"production": V1})]
    meta = client.get("/models/iris/versions/production").json()
    assert meta["version"] == V1 and meta["aliases"] == ["production"]
    assert [f["name"] for f in meta["interface"]["inputs"]] == FEATURES
    assert meta["endpoints"]["predict"] == f"/models/iris/versions/{V1}/predict"


def test_serve_refs_limits_the_models(served: dmv.Project, small_model: Any) -> None:
    register(served, "other", V1, small_model, IRIS)
    client = TestClient(create_app(served, serve_refs=["iris@production"]))
    assert [m["name"] for m in client.get("/models").json()["models"]] == ["iris"]
    ok = client.post("/models/iris/versions/production/predict", json={"inputs": [ROW]})
    assert ok.status_code == 200
    r = client.post(f"/models/other/versions/{V1}/predict", json={"inputs": [ROW]})
    assert r.status_code == 404 and "does not serve" in r.json()["error"]["message"]
    # Only serving: no registry API, no UI.
    assert client.get("/api/v1/models").status_code == 404


# -- Open Inference Protocol v2 ---------------------------------------------------------


def test_v2_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2").json()["name"] == "dmv"
    meta = client.get("/v2/models/iris/versions/production").json()
    # Every version this (full) server answers for, newest first; parameters name the one asked.
    assert meta["name"] == "iris" and meta["versions"] == [V2, V1]
    assert meta["parameters"] == {"version": V1}
    assert meta["inputs"][0] == {"name": "sepal_length", "datatype": "FP64", "shape": [-1]}
    assert meta["outputs"] == [{"name": "species", "datatype": "INT64", "shape": [-1]}]
    ready = client.get(f"/v2/models/iris/versions/{V1}/ready").json()
    assert ready == {"name": "iris", "version": V1, "ready": True}


def test_v2_infer_named_tensors(client: TestClient) -> None:
    body = {
        "id": "req-1",
        "inputs": [
            {"name": f, "shape": [2], "datatype": "FP64", "data": [ROW[f], ROW2[f]]}
            for f in FEATURES
        ],
    }
    r = client.post("/v2/models/iris/versions/production/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == V1
    assert r.json() == {
        "model_name": "iris",
        "model_version": V1,
        "id": "req-1",
        "outputs": [{"name": "species", "datatype": "INT64", "shape": [2], "data": [0, 2]}],
    }


def test_v2_infer_one_matrix_tensor(client: TestClient) -> None:
    data = [list(ROW.values()), list(ROW2.values())]
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": data}]}
    r = client.post(f"/v2/models/iris/versions/{V2}/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [2, 2]


def _v2_error(response: Any, status: int = 422) -> str:
    """The protocol's error body: exactly {"error": "<message>"}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    message: str = body["error"]
    return message


def test_v2_infer_errors(client: TestClient) -> None:
    url = "/v2/models/iris/versions/production/infer"
    tensor = {"name": "sepal_length", "shape": [2], "datatype": "FP64", "data": [1.0]}
    assert "shape [2] holds 2 values, 'data' has 1" in _v2_error(
        client.post(url, json={"inputs": [tensor]})
    )
    assert "non-empty list of tensors" in _v2_error(client.post(url, json={"inputs": []}))
    one = [{"name": f, "shape": [1], "datatype": "FP64", "data": [ROW[f]]} for f in FEATURES[:3]]
    assert "petal_width" in _v2_error(client.post(url, json={"inputs": one}))
    wrong = {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}
    assert "shape must be [N, 4]" in _v2_error(client.post(url, json={"inputs": [wrong]}))
    # Every v2 error has the protocol's shape: unknown model, unknown route, bad JSON.
    _v2_error(client.get("/v2/models/nope"), 404)
    _v2_error(client.get("/v2/models/iris/versions/production/nothing"), 404)
    _v2_error(client.post(url, content=b"{", headers={"content-type": "application/json"}))
    _v2_error(client.get("/v2/models/NOT_A_NAME"), 422)


def _binary_body(header: dict[str, Any], tail: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + tail, {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream",
    }


def test_v2_binary_tensors_by_hand(client: TestClient) -> None:
    """The binary extension's framing, and each way a body can get it wrong."""
    url = "/v2/models/iris/versions/production/infer"
    values = np.array([[ROW[f] for f in FEATURES], [ROW2[f] for f in FEATURES]])
    raw = values.astype("<f4").tobytes()
    tensor = {"name": "m", "shape": [2, 4], "datatype": "FP32"}
    good = {"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]}
    body, headers = _binary_body(
        {**good, "outputs": [{"name": "species", "parameters": {"binary_data": True}}]}, raw
    )
    r = client.post(url, content=body, headers=headers)
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    head = json.loads(r.content[:n])
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert np.frombuffer(r.content[n:], dtype="<i8").tolist() == [0, 2]
    for tail, header_length, message in (
        (raw[:-4], None, "binary data is too short"),
        (raw + b"xx", None, "2 bytes of binary data follow"),
        (raw, "9999", "must be the byte length of the JSON header"),
        (raw, "-1", "must be the byte length of the JSON header"),
    ):
        body, headers = _binary_body(good, tail)
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = header_length
        r = client.post(url, content=body, headers=headers)
        assert r.status_code == 422 and message in r.json()["error"], (message, r.text)
    # Binary data announced without the header, and a wrong byte count.
    r = client.post(url, json=good)
    assert r.status_code == 422 and "no Inference-Header-Content-Length" in r.json()["error"]
    bad = {"inputs": [{**tensor, "parameters": {"binary_data_size": 12}}]}
    body, headers = _binary_body(bad, raw[:12])
    assert "take 32 bytes" in client.post(url, content=body, headers=headers).json()["error"]


# -- OpenAPI ---------------------------------------------------------------------------


def test_openapi_documents_each_served_model(served: dmv.Project) -> None:
    from openapi_spec_validator import validate

    client = TestClient(create_app(served, serve_refs=["iris@production", f"iris@{V2}"]))
    doc = client.get("/openapi.json").json()
    validate(doc)
    schemas = doc["components"]["schemas"]
    op = doc["paths"]["/models/iris/versions/production/predict"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    # Named after the model and interface version X.Y, titled the same (generators use titles).
    assert ref == "#/components/schemas/IrisV0_0PredictRequest"
    row = schemas["IrisV0_0Input"]
    assert row["title"] == "IrisV0_0Input" and sorted(row["properties"]) == sorted(FEATURES)
    assert schemas["IrisV0_0PredictRequest"]["properties"]["inputs"]["minItems"] == 1
    assert "IrisV0_0Output" in schemas
    titles = [s["title"] for s in schemas.values() if "title" in s]
    assert len(titles) == len(set(titles)), titles
    # Every error status is documented with the body dmv really sends; none is FastAPI's.
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for status in ("401", "403", "404", "410", "422", "500", "503"):
        assert op["responses"][status]["content"]["application/json"]["schema"] == error
    for path, ops in doc["paths"].items():
        for method, operation in ops.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    wanted = "V2Error" if path.startswith("/v2") else "ErrorBody"
                    assert schema == {"$ref": f"#/components/schemas/{wanted}"}, (path, method)
    generic = doc["paths"]["/models/{name}/versions/{ref}/predict"]["post"]
    name = next(p for p in generic["parameters"] if p["name"] == "name")
    assert name["schema"]["pattern"] == "^[a-z][a-z0-9-]{0,63}$"
    assert "/v2/models/{name}/versions/{version}/infer" in doc["paths"]
    assert "/v2/models/{name}/ready" in doc["paths"]


def test_openapi_of_the_full_server_validates(client: TestClient) -> None:
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    assert (
        "/api/v1/models" in doc["paths"] and "/models/{name}/versions/{ref}/predict" in doc["paths"]
    )
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# -- one real server process -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any, Any]:
    """(status, headers (case-insensitive), JSON body) of one real HTTP request."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


@pytest.mark.slow
def test_real_dmv_serve_process(served: dmv.Project) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dmv",
            "-C",
            str(served.root),
            "serve",
            "iris@production",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _http("GET", f"{base}/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "no output")
            time.sleep(0.1)
        url = f"{base}/models/iris/versions/production/predict"
        status, headers, body = _http("POST", url, {"inputs": [ROW, ROW2]})
        assert status == 200 and headers["X-Model-Version"] == V1
        assert body["outputs"] == [{"species": 0}, {"species": 2}]
        status, _, body = _http("POST", url, {"inputs": [{"sepal_length": "x"}]})
        assert status == 422 and body["error"]["code"] == "invalid_input"
        # Another process moves the alias; the running server follows it within
        # serve_refresh seconds of the commit (docs/server.md).
        served.set_alias(f"iris@{V2}", "production")
        time.sleep(served.config["serve_refresh"])
        status, headers, body = _http("POST", url, {"inputs": [ROW]})
        assert headers["X-Model-Version"] == V2 and body["outputs"] == [{"species": 2}]
        status, _, doc = _http("GET", f"{base}/openapi.json")
        assert "/models/iris/versions/production/predict" in doc["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_v2_map_fields_are_n_by_k_tensors_in_key_order() -> None:
    from dmv.interface import Interface
    from dmv.server.oip import rows_from_tensors, tensor_specs, tensors_from_rows

    scores = {"type": "map", "items": "float64", "keys": ["stay", "churn"]}
    iface = Interface.from_dict({"inputs": {"prior": scores}, "outputs": {"p": scores}})
    assert tensor_specs(iface, "output") == [
        {
            "name": "p",
            "datatype": "FP64",
            "shape": [-1, 2],
            "parameters": {"keys": ["stay", "churn"]},
        }
    ]
    body = {"inputs": [{"name": "prior", "shape": [2, 2], "datatype": "FP64",
                        "data": [0.1, 0.9, 0.7, 0.3]}]}  # fmt: skip
    rows = rows_from_tensors(body, iface)
    assert rows == [{"prior": {"stay": 0.1, "churn": 0.9}}, {"prior": {"stay": 0.7, "churn": 0.3}}]
    # Served answers keyed in any order become columns in the interface's key order.
    (tensor,) = tensors_from_rows([{"p": {"churn": 0.8, "stay": 0.2}}], iface)
    assert tensor == {
        "name": "p",
        "parameters": {"keys": ["stay", "churn"]},
        "datatype": "FP64",
        "shape": [1, 2],
        "data": [0.2, 0.8],
    }


def test_a_non_finite_prediction_is_an_error_never_null(project: dmv.Project) -> None:
    """x1=1e308 overflows a linear model to inf: a 500 that names it, on every front end."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"x1": [0.0, 1.0, 2.0, 3.0], "x2": [1.0, 0.0, 1.0, 0.0]})
    model = LinearRegression().fit(frame, frame["x1"] * 10.0 + frame["x2"])
    with project.run("lin", version=V1) as run:
        run.log_model(model, sample_input=frame)
    row = {"x1": 1e308, "x2": 1.0}
    client = TestClient(create_app(project))
    ok = client.post(f"/models/lin/versions/{V1}/predict", json={"inputs": [{"x1": 1, "x2": 0}]})
    assert ok.status_code == 200 and ok.json()["outputs"][0]["prediction"] == pytest.approx(10.0)
    r = client.post(
        f"/models/lin/versions/{V1}/predict", json={"inputs": [{"x1": 1, "x2": 0}, row]}
    )
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert error["code"] == "non_finite_output" and error["hint"]
    assert error["details"] == {"output": "prediction", "row": 1}
    body = {
        "inputs": [
            {"name": f, "shape": [1], "datatype": "FP64", "data": [v]} for f, v in row.items()
        ]
    }
    v2 = client.post(f"/v2/models/lin/versions/{V1}/infer", json=body)
    assert v2.status_code == 500 and "not a finite number" in v2.json()["error"]
    with pytest.raises(dmv.errors.NonFiniteOutput):
        project.served_model(f"lin@{V1}").predict_rows([row])
