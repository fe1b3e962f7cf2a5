"""``dmv train``: the declared training entry, run in a subprocess, its run found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dmv
from conftest import seed_warehouse
from dmv.cli import main
from dmv.errors import InvalidInput
from dmv.training.entry import command_line, parse_params

TRAIN = """
import os, sys, time
import dmv
from sklearn.linear_model import Ridge

params = dmv.params()
FEATURES = ["age", "bmi", "bp"]
project = dmv.open()
print("data", sys.argv[1], os.environ["DMV_DATA"], "args", sys.argv[2:], flush=True)
with project.run("price-model", data=sys.argv[1], params=params, code=["train.py"]) as run:
    if params.get("fail"):
        raise SystemExit(int(params["fail"]))
    if params.get("boom"):
        raise RuntimeError("boom")
    if params.get("sleep"):
        print("sleeping", flush=True)
        time.sleep(float(params["sleep"]))
    rows = run.dataset("train")
    model = Ridge(alpha=float(params.get("alpha", 1.0))).fit(rows[FEATURES], rows["target"])
    for step in range(3):
        run.log_metric("loss", 1.0 / (step + 1), step=step, split="train")
    run.log_metrics({"r2": model.score(rows[FEATURES], rows["target"])}, split="train")
    run.log_model(model, sample_input=rows[FEATURES].head(3))
print("trained", run.version.number, run.id)
"""

ENTRY = "python train.py {data} --alpha {alpha} --name {name}"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dmv.Project:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ml@example.com")
    git(root, "config", "user.name", "ML")
    (root / "train.py").write_text(TRAIN)
    project = dmv.init(root)
    with (root / "dmv.toml").open("a") as f:
        f.write(f"\n[models.price-model]\ntrain = {json.dumps(ENTRY)}\n")
    seed_warehouse(project)
    git(root, "add", "train.py", "dmv.toml")
    git(root, "commit", "-qm", "train")
    return dmv.open(root)


def _train(root: Path, *args: str) -> int:
    return main(["-C", str(root), "train", "price-model", *args])


def test_dmv_train_runs_the_entry_and_prints_the_version_and_run(
    repo: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", "0123.abcd", "--param", "alpha=0.5", "--param", "name=a b;$(x)"]
    assert _train(repo.root, *args, "--json") == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["version"] == "0.0.1-0123.abcd" and result["run"] == "tr0"
    assert result["command"] == "python train.py 0123.abcd --alpha 0.5 --name 'a b;$(x)'"
    # the entry's own output went to stderr under --json, as it came
    assert "data 0123.abcd 0123.abcd args ['--alpha', '0.5', '--name', 'a b;$(x)']" in out.err
    run = repo.runs("price-model@0.0.1-0123.abcd")[0]
    assert run.params == {"alpha": 0.5, "name": "a b;$(x)"}  # typed from DMV_PARAMS
    trained_by = (run.meta or {})["trained_by"]
    assert trained_by["entry"] == ENTRY and trained_by["data"] == "0123.abcd"


def test_refusals_have_their_exit_codes_and_register_nothing(
    repo: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo.root
    assert main(["-C", str(root), "train", "other-model", "--data", "0123.abcd"]) == 3
    assert "declares no training entry" in capsys.readouterr().err
    assert _train(root, "--data", "0123.zzzz", "--param", "alpha=1", "--param", "name=n") == 7
    assert "no stored split 0123.zzzz" in capsys.readouterr().err
    assert _train(root, "--data", "0123.abcd", "--param", "alpha=1") == 2  # {name} missing
    assert "{name}" in capsys.readouterr().err
    code = _train(
        root, "--data", "0123.abcd", "--param", "alpha=1", "--param", "name=n",
        "--param", "fail=3", "--json",
    )  # fmt: skip
    assert code == 16
    body = json.loads(capsys.readouterr().out)["error"]
    assert body["code"] == "training_failed" and "exited with code 3" in body["message"]
    assert body["details"]["exit_code"] == 3
    assert "no version was registered" in body["message"]
    assert repo.versions("price-model") == []
    # an exception in the training block: its run is recorded as failed
    code = _train(
        root, "--data", "0123.abcd", "--param", "alpha=1", "--param", "name=n",
        "--param", "boom=1",
    )  # fmt: skip
    assert code == 16
    assert "its run was recorded as failed" in capsys.readouterr().err
    assert repo.versions("price-model") == []
    assert [r.status for r in repo.failed_runs("price-model")] == ["failed"]


def test_params_and_placeholders_are_parsed_strictly() -> None:
    assert parse_params(["a=1", "b=x", "c=true", "d=1e3", "e="]) == {
        "a": 1,
        "b": "x",
        "c": True,
        "d": 1000.0,
        "e": "",
    }
    for bad in (["noequals"], ["1a=2"], ["data=x"], ["a=1", "a=2"], ["a=\x00"]):
        with pytest.raises(InvalidInput):
            parse_params(bad)
    assert command_line("run {{x}} {data}", "d.s", {}) == "run {x} d.s"
    with pytest.raises(InvalidInput, match=r"data\.__class__"):
        command_line("run {data.__class__}", "d.s", {})


def test_dmv_params_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMV_PARAMS", raising=False)
    assert dmv.params() == {}
    monkeypatch.setenv("DMV_PARAMS", '{"lr": 0.1}')
    assert dmv.params() == {"lr": 0.1}
    monkeypatch.setenv("DMV_PARAMS", "[1]")
    with pytest.raises(InvalidInput):
        dmv.params()


def test_ctrl_c_stops_the_entry_and_exits_130(repo: dmv.Project) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmv", "-C", str(repo.root), "train", "price-model",
         "--data", "0123.abcd", "--param", "alpha=1", "--param", "name=n",
         "--param", "sleep=60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    started = time.time()
    for line in proc.stdout:
        if "sleeping" in line:
            break
    proc.send_signal(signal.SIGINT)
    code = proc.wait(90)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 130 and time.time() - started < 90, err
    assert "interrupted" in err
    assert repo.versions("price-model") == []
    failed = repo.failed_runs("price-model")
    assert len(failed) == 1 and "KeyboardInterrupt" in (failed[0].error or ""), (failed, err)


def test_reproduce_runs_the_same_declared_entry(
    repo: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data", "0123.abcd", "--param", "alpha=0.25", "--param", "name=n"]
    assert _train(repo.root, *args) == 0
    # the human form: the entry's output as it came, then the version and the run
    human = capsys.readouterr().out
    assert human.index("data 0123.abcd") < human.index("trained price-model 0.0.1-0123.abcd tr0")
    report = repo.reproduce("price-model@0.0.1-0123.abcd")
    assert report.ok, report.to_dict()
    assert report.extra["trained_by"] == ENTRY
    runs = repo.runs("price-model@0.0.1-0123.abcd")
    assert [r.id for r in runs] == ["tr0", "tr1"]
    # the same params reached the entry again through DMV_PARAMS: the same version
    assert runs[1].params == runs[0].params == {"alpha": 0.25, "name": "n"}
    assert (runs[1].meta or {})["reproduction_of"] == "0.0.1-0123.abcd/tr0"
