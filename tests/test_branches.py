"""A branch per version, as the pattern's diagram draws them: ``dmv branch``, the tree
and the UI showing it, and a warning when training on another version's branch.

Every test runs on a real git repository in a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import pytest

import dmv
from dmv.cli import main
from dmv.errors import ConflictError, NotFound
from dmv.logic.git import BranchWarning, branch_mismatch, version_branch
from dmv.version import Version

V1 = "price-model@0.1.0-0123.abcd"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def train(p: dmv.Project, version: str, alpha: float = 1.0) -> None:
    with p.run("price-model", version=version, params={"alpha": alpha}, code=["train.py"]) as run:
        run.log_metrics({"rmse": 1.0}, split="test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ml@example.com")
    git(root, "config", "user.name", "ML")
    (root / "train.py").write_text("ALPHA = 1.0\n")
    dmv.init(root).close()
    git(root, "add", "train.py", "dmv.toml")
    git(root, "commit", "-qm", "train")
    return root


def test_branch_at_the_commit_the_version_was_trained_from(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    trained_at = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("ALPHA = 2.0\n")
    git(repo, "commit", "-qam", "later work")
    assert main(["-C", str(repo), "branch", V1, "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made == {
        "version": "price-model 0.1.0-0123.abcd",
        "branch": "price-model/0.1.0-0123",
        "commit": trained_at,
    }
    assert git(repo, "rev-parse", "price-model/0.1.0-0123") == trained_at
    # Nothing was checked out: the work goes on where it was.
    assert git(repo, "branch", "--show-current") == "main"
    assert (repo / "train.py").read_text() == "ALPHA = 2.0\n"
    # Again: the same branch, nothing moved.
    assert p.branch(V1)["commit"] == trained_at
    # A release is branched at the same commit, under its own number.
    released = p.release(V1)
    assert p.branch(released.version)["branch"] == "price-model/1.1.0-0123"
    assert git(repo, "rev-parse", "price-model/1.1.0-0123") == trained_at
    p.close()


def test_a_branch_pointing_elsewhere_is_never_moved(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    (repo / "train.py").write_text("ALPHA = 2.0\n")
    git(repo, "commit", "-qam", "later work")
    git(repo, "branch", "price-model/0.1.0-0123")  # someone's branch, at the later commit
    later = git(repo, "rev-parse", "HEAD")
    with pytest.raises(ConflictError, match="already points at") as refused:
        p.branch(V1)
    assert refused.value.hint and "git log -1 price-model/0.1.0-0123" in refused.value.hint
    assert git(repo, "rev-parse", "price-model/0.1.0-0123") == later
    assert main(["-C", str(repo), "branch", V1]) == ConflictError.exit_code
    assert "never moves a branch" in capsys.readouterr().err
    p.close()


def test_a_commit_missing_from_the_repository_is_a_clear_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    gone = git(repo, "rev-parse", "HEAD")
    # History rewritten: the commit the version was trained from is no longer there.
    git(repo, "checkout", "-q", "--orphan", "fresh")
    git(repo, "commit", "-qm", "rewritten")
    git(repo, "branch", "-D", "main")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    with pytest.raises(NotFound, match=f"commit '{gone}' is not in the repository") as missing:
        p.branch(V1)
    assert missing.value.hint and "git fetch" in missing.value.hint
    assert main(["-C", str(repo), "branch", V1]) == NotFound.exit_code
    err = capsys.readouterr().err
    assert "error: commit" in err and "hint:" in err and "Traceback" not in err
    p.close()


def test_the_pattern_is_configurable(repo: Path) -> None:
    with (repo / "dmv.toml").open("a") as f:
        f.write('\n[git]\nbranch_pattern = "versions/{model}-{x}.{y}.{z}-{data}.{split}"\n')
    git(repo, "commit", "-qam", "pattern")
    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    assert p.branch(V1)["branch"] == "versions/price-model-0.1.0-0123.abcd"
    assert p.version_branch(V1) == "versions/price-model-0.1.0-0123.abcd"
    p.close()


def test_tree_and_ui_show_a_versions_branch(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jinja2")
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    train(p, "0.1.1-0123.abcd", alpha=2.0)
    assert p.version_branch(V1) is None
    p.branch(V1)
    assert main(["-C", str(repo), "tree", "price-model"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if "0.1.0-0123.abcd" in x and "tr0" in x)
    assert "branch price-model/0.1.0-0123" in line
    assert main(["-C", str(repo), "tree", "price-model", "--json"]) == 0
    nodes = {n["id"]: n["branch"] for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes == {"0.1.0-0123.abcd": "price-model/0.1.0-0123", "0.1.1-0123.abcd": None}
    client = TestClient(create_app(p))
    page = client.get("/ui/models/price-model/versions/0.1.0-0123.abcd").text
    assert "Version branch: <code>price-model/0.1.0-0123</code>" in page
    other = client.get("/ui/models/price-model/versions/0.1.1-0123.abcd").text
    assert "No version branch" in other and "dmv branch price-model@0.1.1-0123.abcd" in other
    p.close()


def test_training_on_another_versions_branch_warns(repo: Path) -> None:
    p = dmv.open(repo)
    train(p, "0.1.0-0123.abcd")
    p.branch(V1)
    git(repo, "checkout", "-q", "price-model/0.1.0-0123")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BranchWarning)
        train(p, "0.1.0-0123.abcd")  # its own branch: retraining it is quiet
    (repo / "train.py").write_text("ALPHA = 3.0\n")
    git(repo, "commit", "-qam", "tuned on the version's branch")
    with pytest.warns(BranchWarning, match="named for another version") as caught:
        train(p, "0.1.1-0123.abcd", alpha=3.0)
    assert "price-model 0.1.1-0123.abcd on branch 'price-model/0.1.0-0123'" in str(
        caught[0].message
    )
    # The run is registered all the same: a warning, not a refusal.
    assert [r.id for r in p.runs("price-model@0.1.1-0123.abcd")] == ["tr0"]
    p.close()


def test_which_branches_name_another_version() -> None:
    pattern = "{model}/{x}.{y}.{z}-{data}"
    v = Version.parse("price-model 0.1.0-0123.efgh")
    assert version_branch(v, pattern) == "price-model/0.1.0-0123"
    assert branch_mismatch("price-model/0.1.0-0123", v, pattern) is None
    # The release's branch holds the same code as its prerelease: X is not compared.
    assert branch_mismatch("price-model/1.1.0-0123", v, pattern) is None
    assert branch_mismatch("price-model/0.0.3-0123", v, pattern) == "price-model/0.0.3-0123"
    assert branch_mismatch("price-model/0.1.0-9999", v, pattern) == "price-model/0.1.0-9999"
    assert branch_mismatch("other-model/0.1.0-0123", v, pattern) == "other-model/0.1.0-0123"
    for plain in ("main", "feature/alpha", "price-model/0.1.0", None):
        assert branch_mismatch(plain, v, pattern) is None
