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
from dmv.errors import NotServable
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


def test_checks_from_many_threads_each_get_their_own_answer() -> None:
    """One pipe to the fork server: concurrent checks must never read each other's lines."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.linear_model import LinearRegression

    from dmv.flavors import flavor_named
    from dmv.flavors.check import run_check

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    models = [LinearRegression().fit(frame, frame["x"] * k) for k in range(8)]

    def check(k: int) -> Any:
        flavor = flavor_named("sklearn")
        data, meta = flavor.save(models[k], trust_pickle=False)
        meta = {**meta, "flavor": flavor.name, "format": flavor.format, "unsafe": False}
        return run_check(data, meta, {}, [{"x": 1.0}], interface=None, trust_pickle=False)

    import dmv.flavors.check as checking

    assert check(0)["ok"]
    server = checking._FORKER
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(check, [k % 8 for k in range(24)]))
    for k, answer in enumerate(answers):
        assert answer["ok"], answer
        assert answer["outputs"][0]["prediction"] == pytest.approx(float(k % 8))
    # the same fork server answered every one, in step (never restarted, never bypassed)
    assert checking._FORKER is server and server is not None and server.alive()


def test_two_lines_of_the_fork_server_arriving_together_are_both_read(tmp_path: Path) -> None:
    """A quick check's 'started' and 'exit' often reach the pipe in one read.

    The second line must be answered from what was read already, not by waiting
    on the pipe for bytes that came with the first (that wait lasted the whole
    check timeout).
    """
    import dmv.flavors.check as checking

    server = object.__new__(checking._Forker)
    server.home = str(tmp_path)
    server.pending = b""
    server.proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, time; os.write(1, b'started 7 4242\\nexit 7 3\\n'); time.sleep(60)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    try:
        assert server._expect("started", 7, time.monotonic() + 30) == 4242
        t0 = time.monotonic()
        assert server._expect("exit", 7, time.monotonic() + 5) == 3
        assert time.monotonic() - t0 < 1
    finally:
        server.proc.kill()
        server.proc.wait()


LYING_ROWS = [
    {"flavor": "python", "format": "pickle", "unsafe": False},
    {"flavor": "python", "format": "skops", "unsafe": False},
    {"flavor": "sklearn", "format": "pickle", "unsafe": False},
    {"flavor": "torch", "format": "torch-state-dict", "unsafe": False},
    {"flavor": "python", "unsafe": False},
    {"flavor": "sklearn", "format": "skops", "unsafe": False},  # a pickle behind a safe format
]


@pytest.mark.parametrize("meta", LYING_ROWS, ids=lambda m: f"{m['flavor']}-{m.get('format')}")
def test_a_registry_row_cannot_declare_a_pickle_safe(
    project: dmv.Project, tmp_path: Path, meta: dict[str, Any]
) -> None:
    """Trust comes from the operator: whatever a row, a backup or an import says."""
    from dmv.registry import NewArtifact

    marker = tmp_path / "pwned"
    data = pickle.dumps(Hostile(str(marker)))
    blob = project.artifacts.put_bytes(data)
    with project.run("evil", version=V) as run:
        run.add_artifact(NewArtifact("model", "model", blob.digest, blob.size, meta))
    # A backup restored elsewhere vouches for nothing either.
    project.backup(tmp_path / "backup")
    other = dmv.init(tmp_path / "other")
    try:
        other.restore(tmp_path / "backup", force=True)
        for p in (project, other):
            assert not p.verify(f"evil@{V}").ok
            with pytest.raises(dmv.DmvError, match=r"unsafe-format|is a pickle"):
                p.load_model(f"evil@{V}")
            assert not marker.exists(), "a pickle ran without --trust-pickle"
        safe_claim = meta.get("format") == "skops" and meta["flavor"] == "sklearn"
        assert project.model_file(f"evil@{V}")["unsafe_format"] is not safe_claim
        if not safe_claim:
            card = project.card(f"evil@{V}")
            assert "unsafe-format" in card
            with TestClient(create_app(project)) as client:
                page = client.get(f"/ui/models/evil/versions/{V}").text
            assert "unsafe-format" in page
    finally:
        other.close()


# -- the interface is the model's contract, not the rows' ------------------------------


def _pipeline(x: pd.DataFrame, y: np.ndarray, impute: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(), StandardScaler()) if impute else StandardScaler()
    cols = ColumnTransformer(
        [
            ("n", numeric, ["tenure", "spend"]),
            ("c", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return Pipeline([("cols", cols), ("clf", LogisticRegression())]).fit(x, y)


def _fit(flavor: str, x: pd.DataFrame, y: np.ndarray) -> Any:
    if flavor == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        return lgb.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1).fit(x, y)
    if flavor == "xgboost":
        xgb = pytest.importorskip("xgboost")
        model = xgb.XGBClassifier(n_estimators=3, enable_categorical=True, tree_method="hist")
        return model.fit(x, (y == "churn").astype(int))
    # scikit-learn encodes text, not a pandas category
    return _pipeline(x.astype({"plan": str}), y, impute=False)


@pytest.mark.parametrize("flavor", ["sklearn", "lightgbm", "xgboost"])
def test_a_resplit_that_moves_a_category_keeps_the_interface(
    project: dmv.Project, flavor: str
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    x, y = _frame(80)
    x["plan"] = x["plan"].cat.add_categories(["rare"])
    x.loc[0, "plan"] = "rare"  # a rare category: whichever part holds row 0 learns it
    seen: list[str] = []

    @settings(
        max_examples=3,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.integers(0, 10**6))
    def resplit(seed: int) -> None:
        rng = np.random.default_rng(seed)
        train = rng.random(len(x)) < 0.7
        train[0] = bool(seed % 2)  # the rare category moves between parts
        part = x[train].copy()
        part["plan"] = part["plan"].cat.remove_unused_categories()
        model = _fit(flavor, part, y[train])
        sample = part if flavor != "sklearn" else part.astype({"plan": str})
        with project.run(f"m-{flavor}", version=f"0.0.1-a.s{len(seen)}") as run:
            run.log_model(model, sample_input=sample.head(20), outputs="proba")
        seen.append(str(run.version))

    resplit()
    ifaces = [project.interface(f"m-{flavor}@{v.split(' ')[1]}") for v in seen]
    assert len(ifaces) == 3
    assert all(i == ifaces[0] and i.fingerprint == ifaces[0].fingerprint for i in ifaces)
    plan = {f.name: f for f in ifaces[0].inputs}["plan"]
    assert plan.type.value == "string" and plan.values == ()


def test_an_imputer_pipeline_accepts_nulls_without_a_declared_interface(
    project: dmv.Project,
) -> None:
    x, y = _frame(80)
    x = x.astype({"plan": str, "tenure": float})
    x.loc[x.index[5:15], "spend"] = np.nan  # trained on rows with missing values
    with project.run("penguins", version=V) as run:
        run.log_model(_pipeline(x, y, impute=True), sample_input=x.head(5), outputs="label")
    with project.run("strict", version=V) as run:
        run.log_model(_pipeline(x.fillna(0), y, impute=False), sample_input=x.head(5))
    # The first five rows held no null: required-ness came from the model, not the sample.
    assert x.head(5)["spend"].notna().all()
    nullable = {f.name: f.nullable for f in project.interface(f"penguins@{V}").inputs}
    # OneHotEncoder(handle_unknown="ignore") answers for a missing plan too.
    assert nullable == {"tenure": True, "spend": True, "plan": True}
    strict = {f.name: f.nullable for f in project.interface(f"strict@{V}").inputs}
    assert strict == {"tenure": False, "spend": False, "plan": True}
    out = _served(project, "penguins", [{"tenure": 3.0, "spend": None, "plan": "basic"}])
    assert out[0]["prediction"] in ("churn", "stay")
    client = TestClient(create_app(project))
    r = client.post(
        f"/models/strict/versions/{V}/predict",
        json={"inputs": [{"tenure": 3.0, "spend": None, "plan": "basic"}]},
    )
    assert r.status_code == 422 and "spend" in r.text


def test_a_declared_interface_overrides_the_probe(project: dmv.Project) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=5, min_child_samples=2, verbose=-1).fit(x, y)
    with project.run("lgb", version=V) as run:
        run.log_model(model, sample_input=x.head(8))
    inferred = project.interface(f"lgb@{V}")
    # A NaN-aware tree answers for a missing float and a missing category; the int64
    # column the model was trained on cannot hold a null in its request frame.
    nullable = {f.name: f.nullable for f in inferred.inputs}
    assert nullable == {"tenure": False, "spend": True, "plan": True}
    assert inferred.domain["plan"]["values"] == ["basic", "pro", "team"]
    declared = {
        "inputs": {
            "tenure": "int64",
            "spend": "float64",
            "plan": {"type": "enum", "values": ["basic", "pro", "team"]},
        },
        "outputs": {"prediction": "string"},
    }
    with project.run("lgb", version="0.1.0-a.b", interface=declared) as run:
        run.log_model(model, sample_input=x.head(8))
    iface = project.interface("lgb@0.1.0-a.b")
    assert not any(f.nullable for f in iface.inputs)
    assert iface.fingerprint == Interface.from_dict(declared).fingerprint
    assert iface.domain["spend"]["min"] >= 0  # what the rows held is still recorded


LOAD_SKOPS_WITHOUT_TORCH = """
import sys
from sklearn.linear_model import LogisticRegression
import numpy as np
from dmv.flavors._sklearn import SklearnFlavor
flavor = SklearnFlavor()
model = LogisticRegression().fit(np.arange(20.0).reshape(10, 2), [0, 1] * 5)
data, meta = flavor.save(model, trust_pickle=False)
loaded = flavor.load(data, meta)
assert list(loaded.predict(np.arange(4.0).reshape(2, 2))) == list(
    model.predict(np.arange(4.0).reshape(2, 2))
)
print("torch" in sys.modules)
import torch  # still importable afterwards
print(torch.__name__)
"""


def test_loading_a_skops_model_does_not_import_torch() -> None:
    """skops lists scikit-learn's modules, one of which imports PyTorch: a second of
    start-up for every sklearn model served or scored; dmv keeps it out."""
    pytest.importorskip("torch")
    pytest.importorskip("skops")
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SKOPS_WITHOUT_TORCH],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["False", "torch"]
