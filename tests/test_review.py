"""Review on the pull request: ``dmv check``, ``dmv evaluate``, the release policy, approvals.

Every test runs on a real git repository in a temporary folder with a ``main`` and
a feature branch, a real DuckDB warehouse seeded from scikit-learn's diabetes rows,
real training (a Ridge regression), and the model loaded in fresh processes.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.cli import main
from dmv.config import ReleasePolicy
from dmv.errors import Forbidden, PolicyRefused
from dmv.release.policy import MetricComparison, decide

pytest.importorskip("sklearn")

MODEL = "disease-progress"
FEATURES = ["age", "bmi", "bp", "s1", "s5"]
POLICY = """
[release]
metric = "rmse"
must_not_regress_by = 1.0
breaking_interface = "refuse"
approvals = 2
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def train(root: Path, alpha: float, features: list[str], data: str = "0123.abcd") -> str:
    """Commit train.py with these settings and train from that commit (in process)."""
    from sklearn.linear_model import Ridge

    (root / "train.py").write_text(f"FEATURES = {features!r}\nALPHA = {alpha!r}\n")
    git(root, "add", "train.py")
    git(root, "commit", "-qm", f"alpha {alpha}, {len(features)} features")
    p = dmv.open(root)
    with p.run(MODEL, data=data, params={"alpha": alpha}, code=["train.py"]) as run:
        tr, te = run.dataset("train"), run.dataset("test")
        model = Ridge(alpha=alpha).fit(tr[features], tr["target"])
        pred = model.predict(te[features])
        rmse = float(((pred - te["target"]) ** 2).mean() ** 0.5)
        run.log_metrics({"rmse": rmse}, split="test")
        run.log_model(model, sample_input=tr[features].head(5))
    p.close()
    assert run.version is not None
    return run.version.ref


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main: a released, approved baseline 1.0.1-0123.abcd aliased production."""
    import duckdb
    from sklearn.datasets import load_diabetes

    root = tmp_path_factory.mktemp("review") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "trainer@example.com")
    git(root, "config", "user.name", "Trainer")
    p = dmv.init(root)
    with (root / "dmv.toml").open("a") as f:
        f.write(POLICY)
    (root / ".gitignore").write_text(".dmv/\n__pycache__/\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "project")
    p = dmv.open(root)
    p.create_model(MODEL, function="regression", primary_metric="rmse", metric_goal="min")
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    with duckdb.connect(p.config.location("warehouse")) as con:
        con.register("frame", x.assign(target=y, patient_id=range(len(x))))
        con.execute("CREATE TABLE patients AS SELECT * FROM frame")
    p.data_query(MODEL, sql="SELECT * FROM patients", id="0123")
    p.data_split(MODEL, "0123", by="key:patient_id", id="abcd")
    p.data_split(MODEL, "0123", by="key:patient_id", salt="2", id="efgh")
    p.close()
    ref = train(root, 10.0, FEATURES)
    p = dmv.open(root)
    for who in ("alice@example.com", "bob@example.com"):
        p.approve(ref, approver=who)
    released = p.release(ref)
    p.set_alias(released.version, "production")
    p.close()
    return root


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Path:
    """A copy of the baseline project on a fresh feature branch (the copy keeps tests apart)."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(base, root)
    git(root, "checkout", "-q", "-b", "feature")
    return root


def check(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["-C", str(root), "check", MODEL, *args])
    return code, capsys.readouterr().out


def test_a_better_hyperparameter_passes_with_both_metrics_on_the_same_split(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The branch changes alpha and trains on another stored split: the baseline was
    # measured on abcd only, so check evaluates it on efgh itself.
    ref = train(repo, 0.1, FEATURES, data="0123.efgh")
    assert ref == f"{MODEL}@0.0.2-0123.efgh"
    code, out = check(repo, "--format", "markdown", capsys=capsys)
    assert code == 0, out
    assert "✅ passes (awaiting approvals)" in out
    assert "| hyperparameter | `alpha` | 10 | 0.1 |" in out
    assert "Metrics on the same rows: `0123.efgh/test`" in out
    assert "| rmse **(gate)** |" in out
    assert "Baseline: `disease-progress@1.0.1-0123.abcd`" in out
    p = dmv.open(repo)
    # The cross-evaluation is recorded on the baseline, on that split, never as a run.
    [ev] = p.evaluations(f"{MODEL}@production")
    assert (ev.data, ev.split, ev.part, ev.target) == ("0123", "efgh", "test", "target")
    assert p.show(f"{MODEL}@production").run_count == 1
    result = p.check(MODEL)
    assert result["metrics"]["on"] == "0123.efgh/test"
    comparison = result["comparison"]
    assert comparison["candidate"] < comparison["baseline"]
    assert comparison["candidate"] == result["metrics"]["candidate"]["rmse"]
    assert comparison["baseline"] == pytest.approx(ev.metrics["rmse"])
    # Approvals come with the review: check reports them pending, the release refuses.
    assert result["policy"]["pending"] == ["approvals"] and not result["policy"]["ok"]
    assert "| approvals | ⏳ pending | 0 of 2 approval(s)" in out
    events = [e.action for e in p.registry.audit_log(model=MODEL, action="version.check")]
    assert events and all(a == "version.check" for a in events)
    p.close()


def test_dropping_an_input_field_fails_naming_the_interface(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(repo, 10.0, FEATURES[:-1])
    code, out = check(repo, capsys=capsys)
    assert code == 1, out
    assert "FAIL interface: breaks the baseline's clients" in out
    assert "s5" in out


def test_a_regression_beyond_the_policy_fails_naming_the_metric(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = train(repo, 5000.0, FEATURES)
    # Named explicitly: the same candidate and baseline as found from HEAD and @production.
    baseline = f"{MODEL}@1.0.1-0123.abcd"
    code, out = check(
        repo, "--format", "json", "--candidate", ref, "--against", baseline, capsys=capsys
    )
    assert code == 1
    result = json.loads(out)
    assert (result["candidate"], result["baseline"]) == (ref, baseline)
    [metric] = [g for g in result["policy"]["gates"] if g["gate"] == "metric"]
    assert not metric["ok"] and "more than must_not_regress_by = 1" in metric["detail"]
    assert result["policy"]["failed"] == ["metric"] + (
        ["approvals"] if "approvals" in result["policy"]["failed"] else []
    )


def test_a_release_needs_the_approvals_and_the_trainer_cannot_approve(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = train(repo, 0.1, FEATURES)
    p = dmv.open(repo)
    with pytest.raises(PolicyRefused, match="approvals: 0 of 2") as refused:
        p.release(ref)
    assert refused.value.hint and f"dmv approve {ref}" in refused.value.hint
    # The trainer (this repository's user.email) cannot approve: CLI and library.
    assert main(["-C", str(repo), "approve", ref]) == Forbidden.exit_code
    assert "trained" in capsys.readouterr().err
    git(repo, "config", "user.email", "carol@example.com")
    assert main(["-C", str(repo), "approve", ref, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["approver"] == "carol@example.com"
    # The same person twice counts once (refused), and the gate still wants one more.
    assert main(["-C", str(repo), "approve", ref]) == 4
    with pytest.raises(PolicyRefused, match="approvals: 1 of 2"):
        p.release(ref)
    assert p.gates(ref)["failed"] == ["approvals"]
    git(repo, "config", "user.email", "dave@example.com")
    assert main(["-C", str(repo), "approve", ref]) == 0
    released = p.release(ref)
    assert released.version.number == "1.0.2-0123.abcd"
    approvals = [e.details for e in p.registry.audit_log(model=MODEL, action="version.approve")]
    assert {d["approver"] for d in approvals} >= {"carol@example.com", "dave@example.com"}
    p.close()


def test_policy_show_lists_every_key(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(repo), "policy", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metric"] == "rmse" and shown["approvals"] == 2
    assert shown["breaking_interface"] == "refuse" and shown["must_not_regress_by"] == 1.0
    assert shown["allow_dirty"] is False


def test_evaluate_records_an_evaluation_never_a_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = f"{MODEL}@production"
    code = main(
        [
            "-C",
            str(repo),
            "evaluate",
            ref,
            "--on",
            "0123.efgh",
            "--metric",
            "sklearn.metrics:median_absolute_error",
            "--json",
        ]
    )
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    p = dmv.open(repo)
    efgh = next(s for s in p.data_splits(MODEL, "0123") if s.split == "efgh")
    [test_part] = [x for x in efgh.parts if x["name"] == "test"]
    p.close()
    assert body["on"] == "0123.efgh" and body["part"] == "test"
    assert body["rows"] == test_part["rows"] > 0
    assert set(body["metrics"]) >= {"rmse", "mae", "r2", "sklearn.metrics:median_absolute_error"}
    p = dmv.open(repo)
    assert p.show(ref).run_count == 1
    p.close()
    # dmv show says where each metric was measured, and lists the evaluation apart.
    assert main(["-C", str(repo), "show", ref]) == 0
    shown = capsys.readouterr().out
    assert "metrics on 0123.abcd (median over runs" in shown
    assert "evaluations on other splits (dmv evaluate; not training runs)" in shown
    assert "0123.efgh" in shown.split("evaluations on other splits")[1]
    # A bad split or metric is a clear error, not a traceback.
    assert main(["-C", str(repo), "evaluate", ref, "--on", "0123.nope"]) == 3
    assert main(["-C", str(repo), "evaluate", ref, "--on", "0123.efgh", "--metric", "os"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_diff_compares_metrics_only_on_the_same_split(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = train(repo, 0.1, FEATURES, data="0123.efgh")
    assert main(["-C", str(repo), "diff", f"{MODEL}@production", ref]) == 0
    out = capsys.readouterr().out
    assert "not measured on the same rows" in out
    assert f"dmv evaluate {MODEL}@1.0.1-0123.abcd --on 0123.efgh --part test" in out
    p = dmv.open(repo)
    p.evaluate(f"{MODEL}@production", "0123.efgh")
    report = p.diff(f"{MODEL}@production", ref)
    assert report["metrics_on"] == "0123.efgh"
    assert "test.rmse" in report["metrics"]
    p.close()


def _decide(**facts: Any) -> list[str]:
    policy = ReleasePolicy(must_not_regress_by=0.5, breaking_interface="major-only", approvals=1)
    return [
        g.name for g in decide(policy, version="m 0.1.0-a.b", ref="m@0.1.0-a.b", **facts).failed
    ]


def test_the_policy_function_lists_every_failed_gate() -> None:
    worse = MetricComparison("rmse", True, "a.b/test", candidate=11.0, baseline=10.0)
    assert _decide(comparison=worse, interface_compat="breaking") == [
        "metric",
        "interface",
        "approvals",
    ]
    # A major release lets a breaking interface through under major-only.
    better = MetricComparison("rmse", True, "a.b/test", candidate=9.0, baseline=10.0)
    assert (
        _decide(comparison=better, interface_compat="breaking", major=True, approvers=["x@y"]) == []
    )
    # The trainer's approval is not counted.
    assert _decide(approvers=["t@y"], trainers=["t@y"]) == ["approvals"]
    # Not measured on the same rows: refused when the metric is gated.
    apart = MetricComparison("rmse", True, None, suggest=("dmv evaluate …",))
    assert _decide(comparison=apart, approvers=["x@y"]) == ["metric"]
    # Higher is better for r2: a drop is a regression.
    r2 = MetricComparison("r2", False, "a.b/test", candidate=0.3, baseline=0.9)
    assert _decide(comparison=r2, approvers=["x@y"]) == ["metric"]


def test_the_rest_api_approves_as_the_tokens_holder_and_shows_the_gates(repo: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from dmv import tokens
    from dmv.server import create_app

    ref = train(repo, 0.1, FEATURES)
    number = ref.partition("@")[2]
    p = dmv.open(repo)
    secret = {
        name: tokens.create_token(p.registry, name, scope)[0]
        for name, scope in (("erin", "write"), ("trainer", "write"), ("reader", "read"))
    }
    client = TestClient(create_app(p))
    url = f"/api/v1/models/{MODEL}/versions/{number}"

    def auth(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret[name]}"}

    # The trainer (trainer@example.com) holds the token "trainer": refused.
    r = client.post(f"{url}/approve", headers=auth("trainer"), json={})
    assert r.status_code == 403 and "cannot approve" in r.json()["error"]["message"]
    # A read token cannot approve; no token at all is 401.
    assert client.post(f"{url}/approve", headers=auth("reader"), json={}).status_code == 403
    assert client.post(f"{url}/approve", json={}).status_code == 401
    r = client.post(f"{url}/approve", headers=auth("erin"), json={"comment": "looks good"})
    assert r.status_code == 201 and r.json()["approver"] == "token:erin"
    gates = client.get(f"{url}/gates", headers=auth("reader")).json()
    [approvals] = [g for g in gates["gates"] if g["gate"] == "approvals"]
    assert approvals["detail"] == "1 of 2 approval(s) (token:erin)" and not approvals["ok"]
    # The same gates the library's release applies.
    assert gates["failed"] == p.gates(ref)["failed"] == ["approvals"]
    [entry] = p.registry.audit_log(model=MODEL, action="version.approve", limit=1)
    assert entry.actor == "token:erin" and entry.details["via"] == "api"
    p.close()


def test_the_version_page_shows_the_same_gates(repo: Path) -> None:
    pytest.importorskip("jinja2")
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    ref = train(repo, 10.0, FEATURES[:-1])  # drops s5: breaks the baseline's clients
    p = dmv.open(repo)
    number = ref.partition("@")[2]
    html = TestClient(create_app(p)).get(f"/ui/models/{MODEL}/versions/{number}").text
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r'<tr data-gate="(\w+)" class="(\w+)">', html)
    }
    expected = {g["gate"]: "good" if g["ok"] else "bad" for g in p.gates(ref)["gates"]}
    assert rows == expected and rows["interface"] == "bad" and rows["approvals"] == "bad"
    assert "breaks the baseline&#39;s clients" in html or "breaks the baseline's clients" in html
    p.close()


def test_check_and_approve_are_webhook_events_in_the_outbox(repo: Path) -> None:
    with (repo / "dmv.toml").open("a") as f:
        f.write(
            '\n[[webhooks]]\nurl = "http://127.0.0.1:9/"\nevents = ["check", "approve"]\n'
            'secret_env = "DMV_REVIEW_TEST_SECRET"\n'
        )
    ref = train(repo, 0.1, FEATURES)
    p = dmv.open(repo)
    result = p.check(MODEL)
    p.approve(ref, approver="frank@example.com")
    bodies = [json.loads(d.body) for d in p.registry.list_deliveries(status="pending")]
    by_event = {b["event"]: b for b in bodies}
    assert set(by_event) == {"check", "approve"}
    assert by_event["check"]["target"] == ref.partition("@")[2]
    assert by_event["check"]["details"]["ok"] is result["ok"] is True
    assert by_event["approve"]["details"]["approver"] == "frank@example.com"
    p.close()
