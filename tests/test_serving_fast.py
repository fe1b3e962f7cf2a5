"""The serving fast path answers exactly what the frame path answers, for every flavor.

The server validates a request into typed columns (``dmv.interface.Decoder``) and
hands the model the input it predicts fastest on (a float matrix, category codes)
instead of a pandas frame per request. These tests compare, row by row and value
for value, that path (``ModelServer.predict_version``) with the frame path every
other caller takes (``Model.predict_rows``), on each kind of model, with
categories and nulls; and the decoder never accepts what the validator refuses.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dmv
from dmv.interface import Decoder, Interface, validate_rows
from dmv.server.predictors import ModelServer

V = "0.0.1-a.b"


def _frame(n: int = 80, seed: int = 3, nulls: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.random(n) * 100,
            "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n)),
        }
    )
    y = np.where((x["plan"] == "basic") & (x["spend"] < 50), "churn", "stay")
    if nulls:
        x.loc[::7, "spend"] = np.nan
        x.loc[3::11, "plan"] = np.nan
    return x, y


def _rows(x: pd.DataFrame, n: int = 40) -> list[dict[str, Any]]:
    """JSON rows from the frame: NaN and missing categories become null."""
    out = []
    for record in x.head(n).to_dict(orient="records"):
        row = {}
        for k, v in record.items():
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            row[str(k)] = v
        out.append(row)
    return out


def _both(
    project: dmv.Project,
    name: str,
    rows: list[dict[str, Any]],
    *,
    fast: bool | None = True,
    per_row: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(frame path, server path) answers for ``rows``; ``fast`` says if columns are taken.

    ``per_row``: the model answers each row on its own (trees), so a row alone gets
    exactly its answer among others, as a served batch would send it.
    """
    server = ModelServer(project)
    server.trust_pickle = True
    info = server.resolve(name, V)
    model = server.served(info).model
    assert model is not None
    if fast is not None:
        assert model.takes_columns is fast
    reference = model.predict_rows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        _, served = server.predict_version(info, rows)
        for row, answer in zip(rows[:12] if per_row else [], served, strict=False):
            assert server.predict_version(info, [row])[1] == [answer]
            assert model.predict_rows([row]) == [answer]
    return reference, served


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x == y, f"row {i}: frame path {x} != fast path {y}"


def test_sklearn_pipeline_fit_on_a_dataframe(project: dmv.Project) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _frame()
    x = x[["tenure", "spend"]].astype("float64")
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    with project.run("lr", version=V) as run:
        run.log_model(pipe, sample_input=x.head(10), outputs=["label", "proba"])
    reference, served = _both(project, "lr", _rows(x))
    _same(reference, served)
    # and what scikit-learn itself answers on the frame
    assert [r["prediction"] for r in served] == list(pipe.predict(x.head(40)))


def test_sklearn_fit_on_a_dataframe_with_nulls(project: dmv.Project) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _frame(nulls=True)
    x = x[["tenure", "spend"]].astype("float64")
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=10))
    model.fit(x, y)
    with project.run("hgb", version=V) as run:
        run.log_model(model, sample_input=x.head(20), outputs="proba")
    rows = _rows(x)
    assert any(r["spend"] is None for r in rows)
    reference, served = _both(project, "hgb", rows, per_row=True)
    _same(reference, served)


def test_sklearn_fit_on_an_array(project: dmv.Project) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _frame()
    x = x[["tenure", "spend"]]
    model = LogisticRegression().fit(x.to_numpy(dtype=float), y)
    with project.run("arr", version=V) as run:
        run.log_model(model, sample_input=x.head(10), outputs="proba")
    reference, served = _both(project, "arr", _rows(x))
    _same(reference, served)


def test_sklearn_column_transformer_keeps_the_frame(project: dmv.Project) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x, y = _frame()
    x = x.astype({"plan": str})
    cols = ColumnTransformer(
        [("n", StandardScaler(), ["tenure", "spend"]), ("c", OneHotEncoder(), ["plan"])]
    )
    pipe = Pipeline([("cols", cols), ("clf", LogisticRegression())]).fit(x, y)
    with project.run("ct", version=V) as run:
        run.log_model(pipe, sample_input=x.head(10), outputs="proba")
    reference, served = _both(project, "ct", _rows(x), fast=False)
    _same(reference, served)


def test_lightgbm_with_a_category_and_nulls(project: dmv.Project) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = _frame(nulls=True)
    model = lgb.LGBMClassifier(n_estimators=10, min_child_samples=2, verbose=-1).fit(x, y)
    with project.run("gbm", version=V) as run:
        run.log_model(model, sample_input=x.head(20), outputs=["label", "proba"])
    rows = _rows(x)
    assert any(r["plan"] is None for r in rows) and any(r["spend"] is None for r in rows)
    reference, served = _both(project, "gbm", rows, per_row=True)
    _same(reference, served)
    # The frame LightGBM itself is given, categories restored, answers the same.
    want = model.predict_proba(x.head(40))
    got = [list(r["probabilities"].values()) for r in served]
    np.testing.assert_array_equal(np.asarray(got), want)


def test_lightgbm_with_integer_categories(project: dmv.Project) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = _frame()
    x["plan"] = pd.Categorical(x["plan"].cat.codes.astype("int64") * 10)
    model = lgb.LGBMRegressor(n_estimators=10, min_child_samples=2, verbose=-1)
    model.fit(x, (y == "churn").astype(float))
    with project.run("gbm-int", version=V) as run:
        run.log_model(model, sample_input=x.head(20))
    reference, served = _both(project, "gbm-int", _rows(x), per_row=True)
    _same(reference, served)


def test_xgboost_with_a_category(project: dmv.Project) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = _frame(nulls=True)
    model = xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(x, (y == "churn").astype(int))
    with project.run("xgb", version=V) as run:
        run.log_model(model, sample_input=x.head(20), outputs="proba")
    reference, served = _both(project, "xgb", _rows(x), fast=None, per_row=True)
    _same(reference, served)


def test_onnx(project: dmv.Project) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"a": np.linspace(0, 1, 30), "b": np.linspace(1, 0, 30)}).astype("float32")
    model = LogisticRegression().fit(x.to_numpy(), (x["a"] > 0.5).astype(int))
    onx = skl2onnx.to_onnx(model, x.to_numpy()[:1], options={"zipmap": False})
    with project.run("onx", version=V) as run:
        run.log_model(onx, sample_input=x.head(4))
    reference, served = _both(project, "onx", _rows(x), fast=None)
    _same(reference, served)


def test_torch(project: dmv.Project) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    x = pd.DataFrame({"a": np.linspace(0, 1, 30), "b": np.linspace(1, 0, 30)}).astype("float32")
    with project.run("net", version=V) as run:
        run.log_model(net, sample_input=x.head(4))
    reference, served = _both(project, "net", _rows(x), fast=None)
    _same(reference, served)


def test_python_flavor(project: dmv.Project) -> None:
    root = project.root
    (root / "wrapped").mkdir()
    (root / "wrapped" / "scale.py").write_text(
        "class Scale:\n"
        "    def predict(self, frame):\n"
        "        return frame['spend'].fillna(-1.0) * 2 + frame['tenure']\n"
    )
    sys.path.insert(0, str(root))
    try:
        from wrapped.scale import Scale  # type: ignore[import-not-found]

        x, _ = _frame(nulls=True)
        x = x[["tenure", "spend"]]
        with project.run("py", version=V) as run:
            run.log_model(
                Scale(), sample_input=x.head(20), code=["wrapped/scale.py"], trust_pickle=True
            )
        reference, served = _both(project, "py", _rows(x), fast=None)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("wrapped.scale", None)
        sys.modules.pop("wrapped", None)
    _same(reference, served)


# -- the decoder accepts nothing the validator refuses -------------------------------------

_IFACE = Interface.from_dict(
    {
        "inputs": {
            "f": "float64",
            "g": {"type": "float32", "required": False},
            "i": "int32",
            "b": "bool",
            "s": {"type": "string", "nullable": True},
            "e": {"type": "enum", "values": ["x", "y"]},
            "t": {"type": "datetime", "required": False},
        },
        "outputs": {"p": "float64"},
    }
)
_GOOD = {"f": 1.5, "i": 2, "b": True, "s": "a", "e": "x"}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"f": 3},
        {"f": True},
        {"f": "1.5"},
        {"f": 10**400},
        {"f": None},
        {"g": 1e39},
        {"g": None},
        {"g": 2.5},
        {"i": 2**31},
        {"i": 1.0},
        {"i": False},
        {"b": 1},
        {"s": None},
        {"s": 5},
        {"e": "z"},
        {"e": True},
        {"e": ["x"]},
        {"t": "2024-01-02T03:04:05"},
        {"t": "yesterday"},
        {"zz": 1},
    ],
)
def test_the_decoder_agrees_with_the_validator(change: dict[str, Any]) -> None:
    row = {**_GOOD, **change}
    decoder = Decoder(_IFACE.inputs)
    problems = validate_rows(_IFACE, [row])
    columns = decoder.columns([row])
    if problems:
        assert columns is None, f"the decoder accepted {change}: {problems}"
    elif columns is not None:
        assert columns["f"] == [row["f"]] and columns["g"] == [row.get("g")]
    # a missing required field, or a row that is not an object
    assert decoder.columns([{k: v for k, v in _GOOD.items() if k != "i"}]) is None
    assert decoder.columns([[1, 2]]) is None


def test_fast_path_needs_no_pandas_frame(project: dmv.Project, tmp_path: Path) -> None:
    """The float matrix is built without constructing a DataFrame per request."""
    from sklearn.linear_model import LogisticRegression

    x, y = _frame()
    x = x[["tenure", "spend"]].astype("float64")
    model = LogisticRegression().fit(x, y)
    with project.run("nf", version=V) as run:
        run.log_model(model, sample_input=x.head(10))
    server = ModelServer(project)
    info = server.resolve("nf", V)
    server.predict_version(info, _rows(x, 2))
    built: list[int] = []
    original = pd.DataFrame.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    pd.DataFrame.__init__ = counting  # type: ignore[method-assign]
    try:
        server.predict_version(info, _rows(x, 5))
    finally:
        pd.DataFrame.__init__ = original  # type: ignore[method-assign]
    assert built == []
