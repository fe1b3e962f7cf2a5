"""Model cards: YAML metadata and sections from the records, for every kind of model."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import yaml

import dmv
from conftest import seed_warehouse
from dmv.cli import main


def _front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    head = text.split("\n---\n", 1)[0][4:]
    loaded: dict[str, Any] = yaml.safe_load(head)
    return loaded


@pytest.fixture
def trained(project: dmv.Project) -> dmv.Project:
    """price-model trained twice on stored split 0123.abcd (tr0, tr1), released, aliased."""
    from sklearn.linear_model import Ridge

    seed_warehouse(project)
    project.update_model("price-model", purpose="price forecast", function="regression")
    for i, alpha in enumerate((1.0, 1.0)):
        with project.run("price-model", data="0123.abcd", params={"alpha": alpha}) as run:
            train = run.dataset("train")
            x, y = train.drop(columns=["target", "patient_id"]), train["target"]
            run.log_model(Ridge(alpha=alpha).fit(x, y), sample_input=x.head(5))
            run.log_metrics({"r2": 0.4 + i / 10}, split="test")
            run.log_metrics({"r2": 0.6}, split="train")
    ref = "price-model@0.0.1-0123.abcd"
    first = project.runs(ref)
    assert len(first) == 2
    project.release(ref)
    project.set_alias("price-model@1", "production")
    return project


def test_card_has_metadata_and_every_section(trained: dmv.Project) -> None:
    text = trained.card("price-model@production")
    meta = _front_matter(text)
    assert meta["library_name"] == "sklearn"
    tables = meta["datasets"]
    assert "price_model__0123__abcd__train" in tables and len(tables) == 3
    results = meta["model-index"][0]["results"]
    test = next(r for r in results if r["dataset"]["split"] == "test")
    assert test["dataset"]["name"] == "price_model__0123__abcd__test"
    served = trained.show("price-model@production").serving_run
    assert test["metrics"][0] == {
        "type": "r2",
        "name": "r2",
        "value": 0.4 if served == "tr0" else 0.5,
    }
    for section in (
        "Purpose and function",
        "The version, part by part",
        "Interface",
        "Data",
        "Training runs",
        "Metric spread across runs",
        "Environment",
        "Release history",
    ):
        assert f"## {section}" in text or f"### {section}" in text
    assert "price forecast" in text and "SELECT * FROM patients" in text
    assert "key:patient_id" in text or "patient_id" in text
    assert f"| {served} (served) |" in text and text.count("| tr") >= 2
    spread = text.split("### Metric spread across runs")[1]
    assert "| test.r2 | 0.4 | 0.5 | 0.45 | 0.05 |" in spread
    assert "Leakage check: passed" in text
    assert "release" in text.split("## Release history")[1]
    html = trained.card("price-model@production", format="html")
    assert html.startswith("<!doctype html>") and "<h2>Interface</h2>" in html
    assert "<script" not in html


def test_card_hides_credentials(project: dmv.Project) -> None:
    project.registry.create_version(dmv.Version.parse("m 0.0.1-0001.aaaa"))
    from dmv.integrations.about import redacted_definition

    out = redacted_definition({"source": "postgresql://bob:hunter2@db/x", "sql": "SELECT 1"})
    assert "hunter2" not in str(out) and out["sql"] == "SELECT 1"


def _frame() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["a", "b", "c", "d"]
    return x, y


def _models() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    x, y = _frame()
    found: dict[str, Any] = {"sklearn": LogisticRegression(max_iter=200).fit(x, y)}
    try:
        import lightgbm

        found["lightgbm"] = lightgbm.LGBMRegressor(n_estimators=3, verbose=-1).fit(x, y)
    except ImportError:
        pass
    try:
        import xgboost

        found["xgboost"] = xgboost.XGBRegressor(n_estimators=3).fit(x, y)
    except ImportError:
        pass
    try:
        import torch

        lin = torch.nn.Linear(4, 1)
        found["torch"] = torch.jit.trace(lin, torch.zeros(1, 4))
    except ImportError:
        pass
    try:
        from skl2onnx import to_onnx
        from sklearn.linear_model import Ridge

        found["onnx"] = to_onnx(Ridge().fit(x, y), x.to_numpy()[:1])
    except ImportError:
        pass
    return found


def test_card_renders_for_every_flavor(project: dmv.Project, tmp_path: Any) -> None:
    x, _ = _frame()
    models = _models()
    assert {"sklearn", "lightgbm", "xgboost", "torch", "onnx"} <= set(models)
    for i, (flavor, model) in enumerate(models.items(), start=1):
        kw: dict[str, Any] = {}
        if flavor == "torch":
            kw = {"sample_input": x.head(3).astype("float32")}
        elif flavor == "onnx":
            kw = {"format": "onnx", "sample_input": x.head(3)}
        else:
            kw = {"sample_input": x.head(3)}
        with project.run("kinds", version=f"0.0.{i}-0001.aaaa") as run:
            run.log_model(model, **kw)
        text = project.card(f"kinds@0.0.{i}-0001.aaaa")

        meta = _front_matter(text)
        expected = "pytorch" if flavor == "torch" else flavor
        assert meta["library_name"] == expected, flavor
        assert f"Model kind: {flavor}." in text
    # A classifier's keyed probabilities: the interface table names the map and its keys.
    from sklearn.linear_model import LogisticRegression

    labels = (x.iloc[:, 0] > x.iloc[:, 0].median()).map({True: "high", False: "low"})
    with project.run("kinds-c", version="0.0.1-0001.aaaa") as run:
        clf = LogisticRegression().fit(x, labels)
        run.log_model(clf, sample_input=x.head(3), outputs=["label", "proba"])
    text = project.card("kinds-c@0.0.1-0001.aaaa")
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| probabilities")]
    assert "map<float64>{'high', 'low'}" in row, row
    # The CLI writes the same card to a file.
    out = tmp_path / "card.md"
    code = main(["-C", str(project.root), "card", "kinds@0.0.1-0001.aaaa", "-o", str(out)])
    assert code == 0 and out.read_text().startswith("---\n")


def test_the_version_page_links_its_card(trained: dmv.Project) -> None:
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    client = TestClient(create_app(trained))
    number = trained.resolve("price-model@production").number
    page = client.get(f"/ui/models/price-model/versions/{number}")
    link = f"/ui/models/price-model/versions/{number}/card"
    assert page.status_code == 200 and f'href="{link}"' in page.text
    card = client.get(link)
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/html")
    assert "<h2>Interface</h2>" in card.text and f"price-model {number}" in card.text
    # The card's one inline style is allowed by its hash; inline style at large is not.
    import base64
    import hashlib
    import re

    (style,) = re.findall(r"<style>(.*?)</style>", card.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = card.headers["content-security-policy"]
    assert f"style-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy
    md = client.get(link, params={"format": "md"})
    assert md.status_code == 200 and md.text.startswith("---\n")
    assert md.headers["content-disposition"] == 'attachment; filename="price-model-card.md"'
    bad = client.get(link, params={"format": "pdf"})
    assert bad.status_code == 422 and "unknown card format" in bad.text
