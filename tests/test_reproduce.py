"""Verify and reproduce, with a real training script in a real git repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dmv
from conftest import seed_warehouse

TRAIN = """
import sys
import dmv
from sklearn.linear_model import Ridge

ALPHA = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
FEATURES = ["age", "bmi", "bp"]
project = dmv.open()
with project.run("price-model", data="0123.abcd", params={"alpha": ALPHA},
                 code=["train.py"]) as run:
    rows = run.dataset("train")
    model = Ridge(alpha=ALPHA).fit(rows[FEATURES], rows["target"])
    run.log_metrics({"r2": model.score(rows[FEATURES], rows["target"])}, split="train")
    run.log_model(model, sample_input=rows[FEATURES].head(3))
print(run.version.number, run.id)
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def trained(tmp_path: Path) -> dmv.Project:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ml@example.com")
    git(root, "config", "user.name", "ML")
    (root / "train.py").write_text(TRAIN)
    project = dmv.init(root)
    seed_warehouse(project)
    git(root, "add", "train.py", "dmv.toml")
    git(root, "commit", "-qm", "train")
    done = subprocess.run(
        [sys.executable, "train.py", "0.5"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.0.1-0123.abcd", "tr0"]
    return project


def test_verify_passes_then_catches_corruption(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from dmv.cli import main

    report = trained.verify("price-model@0.0.1")
    statuses = {c.name.split(" ")[0]: c.status for c in report.checks}
    assert report.ok, report.to_dict()
    assert statuses["artifact"] == "ok" and statuses["code"] == "ok"
    assert statuses["interface"] == "ok" and statuses["logic"] == "ok"
    run = trained.runs("price-model@0.0.1")[0]
    model = next(a for a in run.artifacts if a.kind == "model")
    path = Path(trained.artifacts.path_of(model.digest))
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one byte changed, surely
    assert main(["-C", str(trained.root), "verify", "price-model@0.0.1", "--json"]) == 6
    body = json.loads(capsys.readouterr().out)
    assert body["ok"] is False
    failed = [c for c in body["checks"] if c["status"] == "fail"]
    # The damaged file fails its hash, and the behavioural check never loads it.
    assert [c["check"] for c in failed] == ["artifact tr0/model", "behaviour tr0/model"]
    assert all("does not match its digest" in c["detail"] for c in failed)


def test_verify_checks_code_at_the_recorded_commit(trained: dmv.Project) -> None:
    import sqlalchemy as sa

    from dmv.registry import schema

    root = trained.root
    commit = trained.code_commit("price-model@0.0.1")
    (root / "train.py").write_text(TRAIN + "\n# changed\n")
    git(root, "commit", "-qam", "changed")
    report = trained.verify("price-model@0.0.1")  # the recorded commit still matches
    code = next(c for c in report.checks if c.name == "code")
    assert report.ok and code.status == "ok" and commit[:12] in code.detail
    # A run record pointing at a commit whose code differs from what was fingerprinted.
    run = trained.runs("price-model@0.0.1")[0]
    assert run.code is not None
    with trained.registry.engine.begin() as conn:
        conn.execute(
            sa.update(schema.runs)
            .where(schema.runs.c.number == 0)
            .values(code={**run.code, "commit": git(root, "rev-parse", "HEAD")})
        )
    report = trained.verify("price-model@0.0.1")
    code = next(c for c in report.checks if c.name == "code")
    assert not report.ok and code.status == "fail" and "train.py differs" in code.detail


def test_reproduce_records_a_new_run_of_the_same_version(trained: dmv.Project) -> None:
    root = trained.root
    # The code moves on after training; reproduction uses the recorded commit.
    (root / "train.py").write_text(TRAIN.replace("ALPHA = float", "ALPHA = 2 * float"))
    git(root, "commit", "-qam", "double alpha")
    report = trained.reproduce("price-model@0.0.1-0123.abcd")
    assert report.ok, report.to_dict()
    checks = {c.name: c for c in report.checks}
    assert checks["version"].status == "ok" and "0.0.1-0123.abcd" in checks["version"].detail
    assert checks["metrics"].status == "ok"
    assert report.extra["run"] == "tr1"
    runs = trained.runs("price-model@0.0.1-0123.abcd")
    assert [r.id for r in runs] == ["tr0", "tr1"]
    assert runs[1].meta is not None
    assert runs[1].meta["reproduction_of"] == "0.0.1-0123.abcd/tr0"
    assert runs[1].metrics == runs[0].metrics
    assert (root / "train.py").read_text().count("2 * float") == 1  # worktree, not the tree


def test_reproduce_reports_metric_drift(trained: dmv.Project) -> None:
    run = trained.runs("price-model@0.0.1")[0]
    # Make the recorded metric disagree with what retraining gives.
    import sqlalchemy as sa

    from dmv.registry import schema

    with trained.registry.engine.begin() as conn:
        conn.execute(
            sa.update(schema.runs)
            .where(schema.runs.c.number == 0)
            .values(metrics={"train": {"r2": run.metrics["train"]["r2"] + 0.5}})
        )
    report = trained.reproduce("price-model@0.0.1")
    assert not report.ok
    metrics = next(c for c in report.checks if c.name == "metrics")
    assert metrics.status == "fail" and "train.r2" in metrics.detail
