"""Metric history: ``run.log_metric(name, value, step=…)``, kept per run and shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.cli import main
from dmv.errors import InvalidInput
from dmv.registry.records import lower_is_better

V = "0.0.1-0123.abcd"


def _train(project: dmv.Project, losses: list[float], accs: list[float] | None = None) -> str:
    with project.run("price-model", version=V) as run:
        for step, loss in enumerate(losses):
            run.log_metric("loss", loss, step=step * 10, split="train")
        for step, acc in enumerate(accs or []):
            run.log_metric("accuracy", acc, step=step, split="valid")
        run.log_metrics({"r2": 0.5}, split="test")
    assert run.id is not None
    return run.id


def test_history_is_kept_per_run_in_order_and_the_last_value_is_the_metric(
    any_project: dmv.Project,
) -> None:
    p = any_project
    _train(p, [0.9, 0.4, 0.5], [0.6, 0.8, 0.7])
    _train(p, [1.0, 0.2])
    tr0, tr1 = p.runs(f"price-model@{V}")
    assert tr0.history == {
        "train": {"loss": [[0, 0.9], [10, 0.4], [20, 0.5]]},
        "valid": {"accuracy": [[0, 0.6], [1, 0.8], [2, 0.7]]},
    }
    assert tr0.metrics == {"train": {"loss": 0.5}, "valid": {"accuracy": 0.7}, "test": {"r2": 0.5}}
    assert tr1.history == {"train": {"loss": [[0, 1.0], [10, 0.2]]}}
    summary = {(h["split"], h["name"]): h for h in tr0.metric_summary()}
    # a loss is best at its lowest, an accuracy at its highest
    assert summary["train", "loss"] | {} == {
        "split": "train",
        "name": "loss",
        "steps": 3,
        "last": 0.5,
        "last_step": 20,
        "best": 0.4,
        "best_step": 10,
    }
    assert summary["valid", "accuracy"]["best"] == 0.8
    assert summary["valid", "accuracy"]["best_step"] == 1
    # get_run reads it too, and a prerelease deleted takes its history with it
    version = dmv.Version.parse(f"price-model {V}")
    assert p.registry.get_run("price-model", "tr0", version).history == tr0.history
    p.delete_version(f"price-model@{V}")
    assert p.versions("price-model") == []


def test_a_failed_run_keeps_the_history_it_logged(project: dmv.Project) -> None:
    with pytest.raises(RuntimeError), project.run("m", version="0.0.1-a.b") as run:
        run.log_metric("loss", 1.5, step=0)
        run.log_metric("loss", 1.2, step=1)
        raise RuntimeError("diverged")
    failed = project.failed_runs("m")[0]
    assert failed.history == {"all": {"loss": [[0, 1.5], [1, 1.2]]}}


@pytest.mark.parametrize("step", [-1, 1.5, "3", True, 1 << 62])
def test_a_bad_step_is_refused(project: dmv.Project, step: Any) -> None:
    with project.experiment("m") as run:
        with pytest.raises(InvalidInput, match="step"):
            run.log_metric("loss", 1.0, step=step)
        with pytest.raises(InvalidInput, match="finite"):
            run.log_metric("loss", float("nan"), step=0)
    assert run.history == []


def test_which_metrics_are_better_lower() -> None:
    for name in ("loss", "val_loss", "train-loss", "rmse", "MAE", "error_rate", "logloss"):
        assert lower_is_better(name), name
    for name in ("accuracy", "auc", "r2", "f1", "precision"):
        assert not lower_is_better(name), name


def test_cli_runs_and_show_give_last_and_best_and_json_the_history(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _train(project, [0.9, 0.4, 0.5])
    root = str(project.root)
    assert main(["-C", root, "runs", f"price-model@{V}", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["history"] == {"train": {"loss": [[0, 0.9], [10, 0.4], [20, 0.5]]}}
    assert main(["-C", root, "runs", f"price-model@{V}"]) == 0
    out = capsys.readouterr().out
    assert "train.loss last 0.5@20 best 0.4@10" in out
    assert main(["-C", root, "show", f"price-model@{V}"]) == 0
    out = capsys.readouterr().out
    assert "metric history (tr0" in out
    below = out.split("metric history (tr0")[1]
    line = next(x for x in below.splitlines() if x.startswith("loss "))
    assert line.split() == ["loss", "train", "3", "0.5", "@20", "0.4", "@10"]
    assert main(["-C", root, "show", f"price-model@{V}", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["history"][0]["best"] == 0.4


def test_the_ui_draws_a_curve_per_run(project: dmv.Project) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from dmv.server.ui import create_router

    _train(project, [0.9, 0.4, 0.5])
    _train(project, [0.8, 0.3])
    app = FastAPI()
    app.include_router(create_router(project))
    html = TestClient(app).get(f"/ui/models/price-model/versions/{V}").text
    assert "Learning curves" in html
    panel = html.split('data-metric="loss" data-split="train"')[1].split("</figure>")[0]
    assert panel.count("<polyline") == 2
    assert 'data-run="tr0"' in panel and 'data-run="tr1"' in panel
    points = [p for p in panel.split("<circle")[1:] if 'data-run="tr0"' in p]
    assert [p.split('data-step="')[1].split('"')[0] for p in points] == ["0", "10", "20"]
    # the lowest loss sits highest on the chart: y grows downward
    ys = {
        p.split('data-value="')[1].split('"')[0]: float(p.split('cy="')[1].split('"')[0])
        for p in points
    }
    assert ys["0.4"] > ys["0.9"]
    assert "tr0: last 0.5, best 0.4" in panel


def test_an_old_registry_gets_the_history_table_by_migration(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from dmv.registry import schema

    project = dmv.init(tmp_path / "p")
    _train(project, [0.5])
    url = project.config.location("registry")
    project.close()
    engine = sa.create_engine(f"sqlite:///{url}" if "://" not in url else url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE metric_history"))
        conn.execute(sa.text("UPDATE dmv_schema SET value = '4' WHERE key = 'version'"))
    engine.dispose()
    assert main(["-C", str(tmp_path / "p"), "migrate"]) == 0
    again = dmv.open(tmp_path / "p")
    assert again.runs(f"price-model@{V}")[0].history == {}  # the old runs have none
    _train(again, [0.7, 0.6])
    assert again.runs(f"price-model@{V}")[1].history == {"train": {"loss": [[0, 0.7], [10, 0.6]]}}
    assert schema.SCHEMA_VERSION >= 6
