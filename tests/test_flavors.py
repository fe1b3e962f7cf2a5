"""Every model kind logs, passes the servability check, serves what its interface says."""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import dmv
from dmv.flavors import NotServable
from dmv.interface import Interface, validate_rows
from dmv.server import create_app

V = "0.0.1-a.b"


def _frame(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.random(n) * 100,
            "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n)),
        }
    )
    y = np.where((x["plan"] == "basic") & (x["spend"] < 50), "churn", "stay")
    return x, y


def _served(project: dmv.Project, name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    client = TestClient(create_app(project))
    r = client.post(f"/models/{name}/versions/{V}/predict", json={"inputs": rows})
    assert r.status_code == 200, r.text
    outputs: list[dict[str, Any]] = r.json()["outputs"]
    iface = project.interface(f"{name}@{V}")
    assert validate_rows(iface, outputs, side="output") == []  # conforms to its interface
    return outputs


def test_lightgbm_with_a_category_serves_labels_and_probabilities(project: dmv.Project) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=10, min_child_samples=2, verbose=-1).fit(x, y)
    with project.run("churn", version=V) as run:
        art = run.log_model(model, sample_input=x.head(8), outputs=["label", "proba"])
    meta = art.meta or {}
    assert meta["flavor"] == "lightgbm" and meta["format"] == "lightgbm-text"
    assert meta["unsafe"] is False and meta["sample"]["outputs"]
    rows = [
        {"tenure": 3, "spend": 10.0, "plan": "basic"},
        {"tenure": 40, "spend": 90.0, "plan": "team"},
    ]
    out = _served(project, "churn", rows)
    expected = model.predict_proba(
        x.head(0)
        .pipe(lambda f: pd.concat([f, pd.DataFrame(rows)]))
        .astype({"plan": x["plan"].dtype})
    )
    assert [o["prediction"] for o in out] == list(model.classes_[expected.argmax(axis=1)])
    # Keyed by class name, in the order of the classes; the interface says so.
    assert all(list(o["probabilities"]) == ["churn", "stay"] for o in out)
    np.testing.assert_allclose(
        [list(o["probabilities"].values()) for o in out], expected, rtol=1e-6
    )
    field = project.interface(f"churn@{V}").outputs[1]
    assert field.type.value == "map" and field.keys == ("churn", "stay")
    assert project.verify(f"churn@{V}").ok


def test_xgboost_with_a_category(project: dmv.Project) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = _frame()
    labels = (y == "churn").astype(int)
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(x, labels)
    with project.run("churn-x", version=V) as run:
        run.log_model(model, sample_input=x.head(8), outputs="proba")
    out = _served(project, "churn-x", [{"tenure": 3, "spend": 10.0, "plan": "basic"}])
    probabilities = out[0]["probabilities"]
    assert list(out[0]) == ["probabilities"] and list(probabilities) == ["0", "1"]
    assert abs(sum(probabilities.values()) - 1) < 1e-6


def test_sklearn_pipeline_is_stored_with_skops(project: dmv.Project) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _frame()
    pipe = Pipeline(
        [
            (
                "cols",
                ColumnTransformer(
                    [("n", StandardScaler(), ["tenure", "spend"]), ("c", OneHotEncoder(), ["plan"])]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(x, y)
    with project.run("churn-s", version=V) as run:
        art = run.log_model(pipe, sample_input=x.head(5), method="predict_proba")
    assert (art.meta or {})["format"] == "skops"
    row = {"tenure": 3, "spend": 10.0, "plan": "basic"}
    (out,) = _served(project, "churn-s", [row])
    np.testing.assert_allclose(
        [out["probabilities"]["churn"], out["probabilities"]["stay"]],
        pipe.predict_proba(
            x.head(0).pipe(
                lambda f: pd.concat([f, pd.DataFrame([row])]).astype({"plan": x["plan"].dtype})
            )
        )[0],
    )
    field = project.interface(f"churn-s@{V}").outputs[0]
    assert field.type_text == "map<float64>{'churn', 'stay'}"


def test_dmv_interface_describes_keyed_probabilities(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from sklearn.linear_model import LogisticRegression

    from dmv.cli import main

    x, y = _frame()
    model = LogisticRegression().fit(x[["tenure", "spend"]], y)
    with project.run("keyed", version=V) as run:
        run.log_model(model, sample_input=x[["tenure", "spend"]].head(5), outputs="proba")
    capsys.readouterr()
    assert main(["-C", str(project.root), "interface", "show", f"keyed@{V}"]) == 0
    assert "map<float64>{'churn', 'stay'}" in capsys.readouterr().out
    assert main(["-C", str(project.root), "interface", "show", f"keyed@{V}", "--json"]) == 0
    (out,) = json.loads(capsys.readouterr().out)["outputs"]
    assert (out["type"], out["items"], out["keys"]) == ("map", "float64", ["churn", "stay"])


def test_torchscript_model(project: dmv.Project) -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.5, 0.0]})
    with project.run("net", version=V) as run:
        art = run.log_model(net, sample_input=x)
    assert (art.meta or {})["format"] == "torchscript"
    (out,) = _served(project, "net", [{"a": 1.0, "b": 0.5}])
    with torch.no_grad():
        want = float(net(torch.tensor([[1.0, 0.5]]))[0, 0])
    assert out["prediction"] == pytest.approx(want, rel=1e-5)


def test_onnx_serves_every_output(project: dmv.Project) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"a": np.linspace(0, 1, 20), "b": np.linspace(1, 0, 20)}).astype("float32")
    y = (x["a"] > 0.5).astype(int)
    model = LogisticRegression().fit(x.to_numpy(), y)
    onx = skl2onnx.to_onnx(model, x.to_numpy()[:1], options={"zipmap": False})
    with project.run("onx", version=V) as run:
        run.log_model(onx, sample_input=x.head(4))
    (out,) = _served(project, "onx", [{"a": 0.9, "b": 0.1}])
    assert set(out) == {"label", "probabilities"} and out["label"] == 1
    # The classifier's class labels, read from the graph, key its probabilities.
    assert list(out["probabilities"]) == ["0", "1"] and out["probabilities"]["1"] > 0.5


def test_python_model_with_its_code(project: dmv.Project) -> None:
    root = project.root
    (root / "models").mkdir()
    (root / "models" / "wrapper.py").write_text(
        "class Doubler:\n    def predict(self, frame):\n        return frame['v'] * 2\n"
    )
    sys.path.insert(0, str(root))
    try:
        from models.wrapper import Doubler  # type: ignore[import-not-found]

        x = pd.DataFrame({"v": [1.0, 2.0]})
        with (
            pytest.raises(dmv.InvalidInput, match="does not trust pickles"),
            project.run("dbl", version=V) as run,
        ):
            run.log_model(Doubler(), sample_input=x, code=["models/wrapper.py"])
        with project.run("dbl", version=V) as run:
            art = run.log_model(
                Doubler(), sample_input=x, code=["models/wrapper.py"], trust_pickle=True
            )
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("models.wrapper", None)
        sys.modules.pop("models", None)
    meta = art.meta or {}
    assert meta["unsafe"] is True and "models/wrapper.py" in meta["code"]
    info = project.show(f"dbl@{V}")
    assert "models/wrapper.py" in (info.logic or {})["files"]  # the code moves Z
    with pytest.raises(dmv.DmvError, match="unsafe-format"):
        project.load_model(f"dbl@{V}")
    assert project.served_model(f"dbl@{V}", trust_pickle=True).predict_rows([{"v": 4.0}]) == [
        {"prediction": 8.0}
    ]
    report = project.verify(f"dbl@{V}")
    assert not report.ok and "unsafe-format" in str(report.to_dict())
    assert project.verify(f"dbl@{V}", trust_pickle=True).ok


NET_PY = """
import torch


class Net(torch.nn.Module):
    def __init__(self, inputs, hidden=3):
        super().__init__()
        self.inputs = inputs
        self.hidden = hidden
        self.body = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x):
        # Python control flow TorchScript would not need; the state dict does not care.
        return self.body(x) if x.shape[0] else x[:, :1]
"""


def test_torch_state_dict_with_the_module_class_from_stored_code(project: dmv.Project) -> None:
    torch = pytest.importorskip("torch")
    root = project.root
    (root / "models").mkdir()
    (root / "models" / "net.py").write_text(NET_PY)
    sys.path.insert(0, str(root))
    try:
        from models.net import Net  # type: ignore[import-not-found]

        torch.manual_seed(1)
        net = Net(2, hidden=5)
        x = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.5, 0.0]})
        with (
            pytest.raises(dmv.InvalidInput, match="does not trust stored code"),
            project.run("sd", version=V) as run,
        ):
            run.log_model(net, sample_input=x, code=["models/net.py"])
        with project.run("sd", version=V) as run:
            art = run.log_model(net, sample_input=x, code=["models/net.py"], trust_pickle=True)
        with torch.no_grad():
            want = net(torch.tensor([[1.0, 0.5]]))[0, 0].item()
    finally:
        sys.path.remove(str(root))
        for name in ("models.net", "models"):
            sys.modules.pop(name, None)
    meta = art.meta or {}
    assert meta["format"] == "torch-state-dict" and meta["unsafe"] is True
    assert meta["module_class"] == "models.net.Net"
    assert meta["init_args"] == {"inputs": 2, "hidden": 5}
    assert meta["check"]["seconds"] > 0  # the servability check rebuilt it elsewhere
    # The stored file is a plain state dict: it loads with weights_only, no pickle.
    from dmv.artifacts import Blob

    data = project.artifacts.get_bytes(Blob(art.digest, art.size))
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert set(state) == {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"}
    served = project.served_model(f"sd@{V}", trust_pickle=True)
    assert served.predict_rows([{"a": 1.0, "b": 0.5}])[0]["prediction"] == pytest.approx(want)
    assert project.verify(f"sd@{V}", trust_pickle=True).ok


def test_a_torch_module_class_in_main_is_refused(project: dmv.Project) -> None:
    torch = pytest.importorskip("torch")

    class Local(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    Local.__module__ = "__main__"
    (project.root / "net.py").write_text("")
    with (
        pytest.raises(dmv.InvalidInput, match=r"class .*Local is defined in __main__") as caught,
        project.run("sd2", version=V) as run,
    ):
        run.log_model(Local(), code=["net.py"], trust_pickle=True)
    assert "code=[" in (caught.value.hint or "")


def test_a_class_from_an_unstored_module_is_refused_at_log_time(project: dmv.Project) -> None:
    root = project.root
    (root / "wrappers.py").write_text(
        "class Proba:\n    def predict(self, frame):\n        return frame['v']\n"
    )
    sys.path.insert(0, str(root))
    try:
        from wrappers import Proba  # type: ignore[import-not-found]

        with (
            pytest.raises(NotServable, match="wrappers") as caught,
            project.run("p", version=V) as run,
        ):
            run.log_model(Proba(), sample_input=pd.DataFrame({"v": [1.0]}), trust_pickle=True)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("wrappers", None)
    assert "code=" in (caught.value.hint or "")
    with pytest.raises(dmv.NotFound):
        project.show(f"p@{V}")  # never registered


class Main:
    def predict(self, frame: Any) -> Any:
        return frame["v"]


def test_a_class_in_main_is_refused(project: dmv.Project) -> None:
    obj = Main()
    Main.__module__ = "__main__"
    try:
        with (
            pytest.raises(dmv.InvalidInput, match="defined in __main__"),
            project.run("m", version=V) as run,
        ):
            run.log_model(obj, trust_pickle=True)
    finally:
        Main.__module__ = __name__


def test_sample_output_that_contradicts_the_served_answer_is_refused(
    project: dmv.Project,
) -> None:
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"a": np.linspace(0, 1, 20)})
    model = LogisticRegression().fit(x, (x["a"] > 0.5).astype(int))
    with (
        pytest.raises(NotServable, match="does not conform"),
        project.run("c", version=V) as run,
    ):
        run.log_model(model, sample_input=x, sample_output=model.predict_proba(x))


# -- a hostile pickle never runs without trust -------------------------------------------


class Hostile:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path(self.marker).touch, ())

    def predict(self, frame: Any) -> Any:
        return frame


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_hostile_pickle_never_runs_without_the_flag(project: dmv.Project, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(Hostile(str(marker)))
    blob = project.artifacts.put_bytes(data)
    from dmv.registry import NewArtifact

    # As an attacker with write access to the registry would store it.
    meta = {"flavor": "python", "format": "pickle", "unsafe": True}
    with project.run("evil", version=V) as run:
        run.add_artifact(NewArtifact("model", "model", blob.digest, blob.size, meta))
    assert not marker.exists()
    report = project.verify(f"evil@{V}")
    assert not report.ok and not marker.exists()
    with pytest.raises(dmv.DmvError, match="unsafe-format"):
        project.load_model(f"evil@{V}")
    assert not marker.exists()
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(dmv.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmv", "serve", f"evil@{V}", "--port", str(port)],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/models/evil/versions/{V}/predict"
        body = json.dumps({"inputs": [{"x": 1}]}).encode()
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as exc:
                status = exc.code
                answer = json.loads(exc.read())
                break
            except OSError:
                time.sleep(0.2)
        # The server answers for this model only: 503, the cause named.
        assert status == 503, status
        assert answer["error"]["code"] == "model_unavailable"
        assert answer["error"]["details"]["cause"] == "untrusted_format"
        assert "--trust-pickle" in answer["error"]["hint"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert not marker.exists(), "the server unpickled an untrusted model"
    # Trusted on purpose, it does run: the test's payload is real.
    project.served_model(f"evil@{V}", trust_pickle=True)
    assert marker.exists()


def test_interface_records_the_categories(project: dmv.Project) -> None:
    x, _ = _frame()
    iface = Interface.from_dict(
        {
            "inputs": {"plan": {"type": "enum", "values": ["basic", "pro", "team"]}},
            "outputs": {"prediction": "string"},
        }
    )
    from dmv.flavors._frame import build_frame, spec_from_frame, spec_from_interface

    built = build_frame([{"plan": "pro"}], spec_from_interface(iface))
    assert list(built["plan"].cat.categories) == ["basic", "pro", "team"]
    spec = spec_from_frame(x)
    assert spec is not None and spec.columns[2].categories == ("basic", "pro", "team")


def test_a_version_pickled_before_flavors_loads_only_when_trusted(
    project: dmv.Project, small_model: Any
) -> None:
    from dmv.registry import NewArtifact

    # What dmv wrote before: a pickled scikit-learn model, meta without "unsafe".
    data = pickle.dumps(small_model, protocol=5)
    blob = project.artifacts.put_bytes(data)
    meta = {"flavor": "sklearn", "class": "x", "format": "pickle", "protocol": 5}
    with project.run("old", version=V) as run:
        run.add_artifact(NewArtifact("model", "model", blob.digest, blob.size, meta))
    with pytest.raises(dmv.DmvError, match="unsafe-format") as caught:
        project.load_model(f"old@{V}")
    assert "--trust-pickle" in (caught.value.hint or "")
    x = np.asarray([[5.1, 3.5, 1.4, 0.2]])
    loaded = project.load_model(f"old@{V}", trust_pickle=True)
    assert (loaded.predict(x) == small_model.predict(x)).all()
    assert project.model_file(f"old@{V}")["unsafe_format"] is True
