"""The reference scenario of seed/diagram1.png, with real git, real code and real models."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import dmv
from dmv.errors import DirtyTreeError

TRAIN_PY = "def features(frame):\n    return frame\n"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def make_repo(tmp_path: Path) -> Path:
    """A git repository holding the training code, committed."""
    root = tmp_path / "price-repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ml@example.com")
    git(root, "config", "user.name", "ML")
    (root / "train.py").write_text(TRAIN_PY)
    (root / ".gitignore").write_text(".dmv/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "training code")
    return root


def frame(columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return x[columns], y


def make_project(root: Path) -> dmv.Project:
    """A project whose warehouse holds the diabetes data, retrieval 0123, splits abcd/efgh."""
    from conftest import seed_warehouse

    project = dmv.init(root)
    seed_warehouse(project)
    return project


def train(project: dmv.Project, data: str, columns: list[str], alpha: float, **kw: Any) -> dmv.Run:
    with project.run(
        "price-model", data=data, params={"alpha": alpha}, code=["train.py"], **kw
    ) as run:
        train_rows, test_rows = run.dataset("train"), run.dataset("test")
        model = Ridge(alpha=alpha).fit(train_rows[columns], train_rows["target"])
        run.log_metrics({"r2": model.score(train_rows[columns], train_rows["target"])}, "train")
        run.log_metrics({"r2": model.score(test_rows[columns], test_rows["target"])}, "test")
        run.log_model(model, sample_input=train_rows[columns].head(5))
    return run


def develop(p: dmv.Project, base: list[str]) -> dmv.Run:
    """The diagram's development stage: 0.0.1, a logic change, an interface change, a new
    split; returns the run of the new split (``0.1.0-0123.efgh``)."""
    first = train(p, "0123.abcd", base, 1.0)
    assert first.version is not None and first.version.number == "0.0.1-0123.abcd"
    hyper = train(p, "0123.abcd", base, 0.5)  # hyperparameter change
    assert hyper.version is not None and hyper.version.number == "0.0.2-0123.abcd"
    iface = train(p, "0123.abcd", [*base, "s1"], 0.5)  # one more input column
    assert iface.version is not None and iface.version.number == "0.1.0-0123.abcd"
    data = train(p, "0123.efgh", [*base, "s1"], 0.5)  # new dataset split
    assert data.version is not None and data.version.number == "0.1.0-0123.efgh"
    return data


def test_diagram_development_and_production_stages(repo: Path) -> None:
    p = make_project(repo)
    base = ["age", "bmi", "bp"]
    # Experiment stage: logged, never numbered.
    x, y = frame(base)
    with p.experiment("price-model", data="0123.abcd", params={"alpha": 3.0}) as ex:
        ex.log_model(Ridge(alpha=3.0).fit(x, y), sample_input=x.head(5))
    assert ex.info is not None and ex.info.label == "price-model x.x.x-0123.abcd"
    # Development stage.
    data = develop(p, base)
    again = train(p, "0123.efgh", [*base, "s1"], 0.5)  # nothing changed
    assert (again.version, again.id) == (data.version, "tr1")

    info = p.show("price-model@0.1.0-0123.abcd")
    assert info.interface_compat == "breaking"  # a new required input
    assert p.show("price-model@0.1.0-0123.efgh").interface_compat == "breaking"  # same Y
    assert info.meta is not None
    assert info.meta["derivation"]["changed"] == ["interface"]
    # Production stage.
    released = p.release("price-model@0.1.0-0123.efgh")
    assert str(released.version) == "price-model 1.1.0-0123.efgh"
    numbers = [v.version.number for v in p.versions("price-model")]
    assert numbers == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
    ]
    # Deriving the released fingerprints again lands on its prerelease, never the release.
    third = train(p, "0123.efgh", [*base, "s1"], 0.5)
    assert third.version is not None and third.version.number == "0.1.0-0123.efgh"
    assert third.id == "tr2"
    # The experiment can be numbered later: its fingerprints give it a version.
    promoted = p.promote("price-model", "ex1")
    assert promoted.version is not None and promoted.version.number == "0.0.3-0123.abcd"


def test_code_change_bumps_logic_and_records_git(repo: Path) -> None:
    p = make_project(repo)
    git(repo, "add", "dmv.toml")
    git(repo, "commit", "-qm", "dmv project")
    first = train(p, "0123.abcd", ["age", "bmi"], 1.0)
    (repo / "train.py").write_text(TRAIN_PY + "\n# scale before fitting\n")
    with pytest.raises(DirtyTreeError, match="uncommitted changes"):
        train(p, "0123.abcd", ["age", "bmi"], 1.0)
    assert [v.version.number for v in p.versions("price-model")] == ["0.0.1-0123.abcd"]
    git(repo, "commit", "-qam", "scale")
    second = train(p, "0123.abcd", ["age", "bmi"], 1.0)
    assert second.version is not None and second.version.number == "0.0.2-0123.abcd"
    assert second.info is not None and second.info.code is not None
    assert second.info.code["commit"] == git(repo, "rev-parse", "HEAD")
    assert second.info.code["dirty"] is False
    assert first.info is not None and first.info.code is not None
    assert first.info.code["commit"] != second.info.code["commit"]


def test_dirty_run_when_allowed_stores_the_patch_and_flags(repo: Path) -> None:
    p = make_project(repo)
    (repo / "train.py").write_text(TRAIN_PY + "# experiment\n")
    run = train(p, "0123.abcd", ["age"], 1.0, allow_dirty=True)
    info = p.show("price-model@0.0.1-0123.abcd")
    assert info.dirty is True
    assert run.info is not None
    patch = next(a for a in run.info.artifacts if a.kind == "patch")
    from dmv.artifacts import Blob

    text = p.artifacts.get_bytes(Blob(patch.digest, patch.size)).decode()
    assert "+# experiment" in text


def test_derived_run_needs_an_interface(repo: Path) -> None:
    p = make_project(repo)
    with (
        pytest.raises(dmv.InvalidInput, match="interface is unknown"),
        p.run("price-model", data="0123.abcd", params={"alpha": 1}),
    ):
        pass
    assert p.versions("price-model") == []
    assert len(p.failed_runs("price-model")) == 1


def test_declared_interface_and_explicit_versions_coexist(repo: Path) -> None:
    p = make_project(repo)
    with p.run("price-model", version="0.0.1-a.b"):
        pass  # registered elsewhere, no fingerprints
    decl = {"inputs": {"age": "float64"}, "outputs": {"price": "float64"}}
    with p.run("price-model", data="0123.abcd", interface=decl) as run:
        pass
    # the explicit 0.0.1 keeps its slot: the derived run does not land on it
    assert run.version is not None and run.version.number == "0.1.0-0123.abcd"


def test_compare_tag_and_checkout_commands(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from dmv.cli import main

    p = make_project(repo)
    git(repo, "add", "dmv.toml")
    git(repo, "commit", "-qm", "dmv project")
    first_commit = git(repo, "rev-parse", "HEAD")
    train(p, "0123.abcd", ["age", "bmi"], 1.0)
    (repo / "train.py").write_text(TRAIN_PY + "# v2\n")
    git(repo, "commit", "-qam", "v2")
    train(p, "0123.abcd", ["age", "bmi", "bp"], 0.5)
    root = ["-C", str(repo)]

    assert (
        main([*root, "interface", "diff", "price-model@0.0.1", "price-model@0.1.0", "--json"]) == 0
    )
    body = json.loads(capsys.readouterr().out)
    assert body["compat"] == "breaking"
    assert [(c["side"], c["field"], c["kind"]) for c in body["changes"]] == [
        ("input", "bp", "added")
    ]

    assert main([*root, "diff", "price-model@0.0.1", "price-model@0.1.0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["changed"] == ["interface", "logic"]
    assert list(report["logic"]["code"]) == ["train.py"]
    assert report["params"] == {"alpha": {"old": 1.0, "new": 0.5}}
    assert main([*root, "diff", "price-model@0.0.1", "price-model@0.1.0"]) == 0
    text = capsys.readouterr().out
    assert "changed: interface, logic (code, alpha)" in text
    assert "interface   breaking for clients" in text
    assert re.search(r"^  alpha +1 +0\.5 +-0\.5$", text, re.M), text

    assert main([*root, "interface", "export", "price-model@0.1.0", "--format", "proto"]) == 0
    assert "message Input" in capsys.readouterr().out

    assert main([*root, "tag", "price-model@0.0.1"]) == 0
    tagged = git(repo, "rev-list", "-n", "1", "price-model@0.0.1-0123.abcd")
    assert tagged == first_commit
    assert main([*root, "checkout", "price-model@0.0.1"]) == 0
    assert git(repo, "rev-parse", "HEAD") == first_commit
    assert (repo / "train.py").read_text() == TRAIN_PY
    capsys.readouterr()
    assert main([*root, "interface", "show", "price-model@0.0.1-0123.abcd"]) == 0
    assert "bmi" in capsys.readouterr().out
    with p.run("price-model", version="0.0.9-a.b"):
        pass
    assert main([*root, "interface", "show", "price-model@0.0.9-a.b"]) == 3
    assert "no recorded interface" in capsys.readouterr().err


def test_tree_draws_the_diagram(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmv.cli import main

    p = make_project(repo)
    base = ["age", "bmi", "bp"]
    x, y = frame(base)
    with p.experiment("price-model", data="0123.abcd") as ex:
        ex.log_model(Ridge().fit(x, y), sample_input=x.head(3))
    train(p, "0123.abcd", base, 1.0)
    train(p, "0123.abcd", base, 0.5)
    train(p, "0123.abcd", [*base, "s1"], 0.5)
    train(p, "0123.efgh", [*base, "s1"], 0.5)
    train(p, "0123.efgh", [*base, "s1"], 0.5)
    p.release("price-model@0.1.0-0123.efgh")
    tree = p.tree("price-model")
    assert [n.label for n in tree.stage("experiment")] == ["x.x.x-0123.abcd"]
    assert [n.label for n in tree.stage("development")] == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
    ]
    assert [n.label for n in tree.stage("production")] == ["1.1.0-0123.efgh"]
    edges = {(e.source, e.target): e.changes for e in tree.edges}
    assert edges[("0.0.1-0123.abcd", "0.0.2-0123.abcd")] == ("logic",)
    assert edges[("0.0.2-0123.abcd", "0.1.0-0123.abcd")] == ("interface",)
    assert edges[("0.1.0-0123.abcd", "0.1.0-0123.efgh")] == ("data",)
    assert edges[("0.1.0-0123.efgh", "1.1.0-0123.efgh")] == ("release",)
    dev = {n.label: n for n in tree.stage("development")}
    assert dev["0.1.0-0123.efgh"].runs == ("tr0", "tr1")
    assert main(["-C", str(repo), "tree", "price-model"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"0\.1\.0-0123\.abcd ──data─*▶ 0\.1\.0-0123\.efgh", text)
    assert re.search(r"0\.1\.0-0123\.efgh ──release─*▶ 1\.1\.0-0123\.efgh", text)
    assert "promoted" not in text  # the experiment was never promoted
