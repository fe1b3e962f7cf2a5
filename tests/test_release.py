"""Release, run selection, deprecation and immutability."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

import dmv
from conftest import part_storage
from dmv import ConflictError, ImmutableError, IntegrityError, NotFound, Version
from dmv.errors import DirtyTreeError
from dmv.registry.releases import best_run


def train(p: dmv.Project, version: str, rmse: float, model: object | None = None) -> str:
    with p.run("price-model", version=version) as run:
        run.log_metrics({"rmse": rmse}, split="test")
        if model is not None:
            run.log_model(model)
    assert run.id is not None
    return run.id


def test_best_run_by_primary_metric() -> None:
    runs = [(0, {"test": {"rmse": 3.0}}), (1, {"test": {"rmse": 2.0}}), (2, {"train": {}})]
    assert best_run(runs, "rmse", "min") == 1
    assert best_run(runs, "rmse", "max") == 0
    assert best_run(runs, None, "max") == 2  # no metric: the latest
    assert best_run([(0, {"valid": {"auc": 0.7}}), (1, {"test": {"auc": 0.6}})], "auc", "max") == 0


def test_release_creates_n_y_z_serving_the_best_run(any_project: dmv.Project) -> None:
    p = any_project
    p.create_model("price-model", primary_metric="rmse", metric_goal="min")
    train(p, "0.1.0-0123.efgh", 3.0)
    train(p, "0.1.0-0123.efgh", 2.0)
    train(p, "0.1.0-0123.efgh", 2.5)
    info = p.release("price-model@0.1.0-0123.efgh")
    assert info.version == Version.parse("price-model 1.1.0-0123.efgh")
    assert (info.state, info.released_from, info.serving_run) == (
        "released",
        "0.1.0-0123.efgh",
        "tr1",
    )
    assert p.resolve("price-model@latest") == info.version
    assert p.model("price-model").generation == 1
    # the release shows the runs it was trained with
    assert [r.id for r in p.runs("price-model@1.1.0-0123.efgh")] == ["tr0", "tr1", "tr2"]
    assert p.show("price-model@1.1.0-0123.efgh").run_count == 3
    audit = p.audit(action="version.release")[0]
    assert audit.details == {
        "from": "0.1.0-0123.efgh",
        "serving_run": "tr1",
        "generation": 1,
        "verified": ["logic", "environment"],  # what the release gate found intact
    }


def test_generations_and_major(project: dmv.Project) -> None:
    p = project
    train(p, "0.0.1-a.b", 1.0)
    train(p, "0.0.2-a.b", 1.0)
    train(p, "0.1.0-a.b", 1.0)
    train(p, "0.0.3-a.b", 1.0)
    assert p.release("price-model@0.0.1-a.b").version.number == "1.0.1-a.b"
    assert p.release("price-model@0.0.2-a.b").version.number == "1.0.2-a.b"
    assert p.release("price-model@0.1.0-a.b", major=True).version.number == "2.1.0-a.b"
    assert p.resolve("price-model@latest").number == "2.1.0-a.b"
    assert p.resolve("price-model@1").number == "1.0.2-a.b"
    with pytest.raises(ConflictError, match=r"released already as price-model 2\.1\.0-a\.b"):
        p.release("price-model@0.1.0-a.b")
    # a prerelease is released once, in whatever generation: not again in this one,
    # and --major does not make a second release of it either
    for major in (False, True):
        with pytest.raises(ConflictError, match=r"released already as price-model 1\.0\.1-a\.b"):
            p.release("price-model@0.0.1-a.b", major=major)
    assert p.model("price-model").generation == 2
    # an older prerelease never released may join the current generation
    assert p.release("price-model@0.0.3-a.b").version.number == "2.0.3-a.b"
    with pytest.raises(ConflictError, match="is a release already"):
        p.release("price-model@1.0.1-a.b")


def test_select_then_release_serves_the_chosen_run(
    project: dmv.Project, small_model: object
) -> None:
    p = project
    p.create_model("price-model", primary_metric="rmse", metric_goal="min")
    train(p, "0.1.0-a.b", 1.0, small_model)
    train(p, "0.1.0-a.b", 9.0, small_model)
    p.select_run("price-model@0.1.0-a.b", "tr1")
    info = p.release("price-model@0.1.0-a.b")
    assert info.serving_run == "tr1"
    assert p.load_model("price-model@latest") is not None
    with pytest.raises(NotFound, match="no finished run tr7"):
        p.select_run("price-model@0.1.0-a.b", "tr7")


def test_released_versions_are_immutable(project: dmv.Project) -> None:
    p = project
    train(p, "0.1.0-a.b", 1.0)
    p.release("price-model@0.1.0-a.b")
    with pytest.raises(ImmutableError) as info:
        p.select_run("price-model@1.1.0-a.b", "tr0")
    assert info.value.exit_code == 5
    with pytest.raises(ImmutableError):
        p.delete_version("price-model@1.1.0-a.b")
    with pytest.raises(ImmutableError, match=r"released as 1\.1\.0"):
        p.delete_version("price-model@0.1.0-a.b")
    assert p.show("price-model@1.1.0-a.b").serving_run == "tr0"


def test_deprecated_versions_are_skipped_but_exact_still_resolves(project: dmv.Project) -> None:
    p = project
    train(p, "0.1.0-a.b", 1.0)
    train(p, "0.1.1-a.b", 1.0)
    p.release("price-model@0.1.0-a.b")
    p.release("price-model@0.1.1-a.b")
    p.set_alias("price-model@1.1.1-a.b", "production")
    with pytest.raises(ConflictError, match="still production"):
        p.deprecate("price-model@1.1.1-a.b")
    p.set_alias("price-model@1.1.0-a.b", "production")
    p.deprecate("price-model@1.1.1-a.b", reason="bad calibration")
    assert p.resolve("price-model@latest").number == "1.1.0-a.b"
    assert p.show("price-model@1.1.1-a.b").state == "deprecated"
    with pytest.raises(ConflictError, match="deprecated"):
        p.set_alias("price-model@1.1.1-a.b", "staging")


def test_delete_prerelease(project: dmv.Project) -> None:
    train(project, "0.0.1-a.b", 1.0)
    project.delete_version("price-model@0.0.1-a.b")
    assert project.versions("price-model") == []
    assert project.audit(action="version.delete")[0].target == "0.0.1-a.b"


def test_release_needs_a_run(project: dmv.Project) -> None:
    project.registry.create_version(Version.parse("price-model 0.0.1-a.b"))
    with pytest.raises(ConflictError, match="no finished training run"):
        project.release("price-model@0.0.1")


def test_release_cli(project: dmv.Project, capsys: pytest.CaptureFixture[str]) -> None:
    from dmv.cli import main

    train(project, "0.1.0-0123.efgh", 1.0)
    assert main(["-C", str(project.root), "release", "price-model@0.1.0-0123.efgh"]) == 0
    assert "released price-model 1.1.0-0123.efgh" in capsys.readouterr().out
    code = main(["-C", str(project.root), "select", "price-model@1.1.0-0123.efgh", "tr0"])
    assert code == 5
    assert "error: " in capsys.readouterr().err


# -- the release gate --------------------------------------------------------


@pytest.fixture
def trained_on_split(project: dmv.Project) -> tuple[dmv.Project, str]:
    """price-model 0.0.1-0123.abcd trained on its stored split, with a model file."""
    from sklearn.linear_model import Ridge

    from conftest import seed_warehouse

    seed_warehouse(project)
    with project.run("price-model", data="0123.abcd") as run:
        rows = run.dataset("train")
        model = Ridge().fit(rows[["age", "bmi"]], rows["target"])
        run.log_model(model, sample_input=rows[["age", "bmi"]].head(3))
    assert run.version is not None
    return project, run.version.ref


def test_an_intact_version_is_released(trained_on_split: tuple[dmv.Project, str]) -> None:
    p, ref = trained_on_split
    info = p.release(ref)
    assert info.version.x == 1 and info.serving_run == "tr0"
    verified = p.audit(action="version.release")[0].details["verified"]
    assert "artifact tr0/model" in verified and "split" in verified


def test_a_damaged_model_file_cannot_be_released(
    trained_on_split: tuple[dmv.Project, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from dmv.cli import main

    p, ref = trained_on_split
    model = next(a for a in p.runs(ref)[0].artifacts if a.name == "model")
    path = p.artifacts.path_of(model.digest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(10)
        fh.write(b"\0\0\0\0")
    failed = r"cannot be released: 2 check\(s\) failed: artifact tr0/model"
    with pytest.raises(IntegrityError, match=failed) as exc:
        p.release(ref)
    assert exc.value.details["failed"][0]["check"] == "artifact tr0/model"
    # the damaged artifact is named by its version, run and digest, never by its path
    assert f"{model.digest[:19]}… is damaged" in exc.value.message
    assert "price-model 0.0.1-0123.abcd tr0 model" in exc.value.message
    assert path not in exc.value.message
    code = main(["-C", str(p.root), "release", ref, "--json"])
    out = capsys.readouterr()
    assert code == 6 and "artifact tr0/model" in out.err
    assert json.loads(out.out)["error"]["code"] == "integrity_error"
    assert [v.version.x for v in p.versions("price-model")] == [0]  # nothing released
    assert p.audit(action="version.release") == []


def test_a_tampered_split_cannot_be_released(trained_on_split: tuple[dmv.Project, str]) -> None:
    import duckdb

    p, ref = trained_on_split
    with duckdb.connect(p.config.location("warehouse")) as con:
        rows = part_storage(con, "price_model__0123__abcd__train")
        con.execute(
            f"UPDATE {rows} SET target = target + 1 "
            "WHERE patient_id = (SELECT min(patient_id) FROM price_model__0123__abcd__train)"
        )
    with pytest.raises(IntegrityError, match="split: train") as exc:
        p.release(ref)
    assert [c["check"] for c in exc.value.details["failed"]] == ["split"]
    assert [v.version.x for v in p.versions("price-model")] == [0]


def test_release_has_no_force_option() -> None:
    from dmv.cli.commands import release_cmd

    assert {o for p in release_cmd.params for o in p.opts} == {"ref", "--major", "--json"}


def test_the_release_serves_the_run_it_verified(project: dmv.Project) -> None:
    from dmv.release import releases as release

    train(project, "0.1.0-0123.efgh", 1.0)
    version = project.resolve("price-model@0.1.0-0123.efgh")
    serving = release.serving_run(project.registry, version)
    report = project.verify(version)
    train(project, "0.1.0-0123.efgh", 0.5)  # finished while the release was verified
    info = release.release(project.registry, version, verified=report, serving=serving)
    assert info.serving_run == f"tr{serving}" == "tr0"
    # An explicit choice of another run in between contradicts the verify.
    train(project, "0.2.0-0123.efgh", 1.0)
    v2 = project.resolve("price-model@0.2.0-0123.efgh")
    report = project.verify(v2)
    train(project, "0.2.0-0123.efgh", 2.0)
    project.select_run(v2, "tr1")
    with pytest.raises(ConflictError, match="set to serve tr1 while tr0 was verified"):
        release.release(project.registry, v2, verified=report, serving=0)


# -- provenance: the [release] policy ------------------------------------------


def dmv_cli(root: Path, *args: str, stdin: str | None = None, **env: str) -> CompletedProcess[str]:
    """The real ``dmv`` command in a fresh process; ``stdin`` None: closed."""
    return subprocess.run(
        [sys.executable, "-m", "dmv", "-C", str(root), *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def set_release_policy(root: Path, table: str) -> None:
    with open(root / "dmv.toml", "a", encoding="utf-8") as fh:
        fh.write(f"\n[release]\n{table}\n")


@pytest.fixture
def dirty_version(tmp_path: Path) -> tuple[dmv.Project, str]:
    """price-model 0.0.1-0123.abcd trained, with DMV_ALLOW_DIRTY's leave, from uncommitted
    code in a real git repository."""
    from test_scenario import TRAIN_PY, make_project, make_repo
    from test_scenario import train as train_code

    repo = make_repo(tmp_path)
    p = make_project(repo)
    (repo / "train.py").write_text(TRAIN_PY + "# not committed\n")
    run = train_code(p, "0123.abcd", ["age", "bmi"], 1.0, allow_dirty=True)
    assert run.version is not None and p.show(run.version).dirty
    return p, run.version.ref


def test_a_dirty_version_is_refused_by_default(dirty_version: tuple[dmv.Project, str]) -> None:
    p, ref = dirty_version
    # DMV_ALLOW_DIRTY lets a dirty run be recorded; it does not let it be released
    done = dmv_cli(p.root, "release", ref, DMV_ALLOW_DIRTY="true")
    assert done.returncode == DirtyTreeError.exit_code, done.stderr
    assert "cannot be released: trained from uncommitted code (dirty)" in done.stderr
    assert "allow_dirty = true under [release] in dmv.toml" in done.stderr
    assert "Traceback" not in done.stderr
    assert p.versions("price-model", state="released") == []
    assert p.audit(action="version.release") == []


def test_a_dirty_release_allowed_by_policy_is_flagged_everywhere(
    dirty_version: tuple[dmv.Project, str],
) -> None:
    from fastapi.testclient import TestClient

    from dmv.server import create_app

    p, ref = dirty_version
    set_release_policy(p.root, "allow_dirty = true")
    done = dmv_cli(p.root, "release", ref)
    assert done.returncode == 0, done.stderr
    assert "released price-model 1.0.1-0123.abcd" in done.stdout
    assert "warning: flagged dirty: let through by [release] in dmv.toml" in done.stdout
    released = "1.0.1-0123.abcd"
    # dmv versions: text and --json
    text = dmv_cli(p.root, "versions", "price-model").stdout
    header, *rows = text.splitlines()
    assert header.split()[-1] == "FLAGS"
    assert {r.split()[0]: r.split()[-1] for r in rows if r.strip() and r[0] != "-"} == {
        "0.0.1-0123.abcd": "DIRTY",
        released: "DIRTY",
    }
    listed = json.loads(dmv_cli(p.root, "versions", "price-model", "--json").stdout)
    assert {v["version"]: v["flags"] for v in listed} == {
        "0.0.1-0123.abcd": ["dirty"],
        released: ["dirty"],
    }
    # dmv tree: text and --json
    tree = dmv_cli(p.root, "tree", "price-model").stdout
    assert [line for line in tree.splitlines() if released in line and "DIRTY" in line]
    nodes = json.loads(dmv_cli(p.root, "tree", "price-model", "--json").stdout)["nodes"]
    assert {n["id"]: n["flags"] for n in nodes if n["id"] == released} == {released: ["dirty"]}
    # the model card, the REST API and the web UI
    card = p.card(f"price-model@{released}")
    assert "Provenance warning: DIRTY" in card
    api = TestClient(create_app(p))
    assert api.get(f"/api/v1/models/price-model/versions/{released}").json()["flags"] == ["dirty"]
    page = api.get(f"/ui/models/price-model/versions/{released}").text
    assert 'data-flag="dirty"' in page
    listing = api.get("/ui/models/price-model").text
    assert listing.count('data-flag="dirty"') >= 2
    # the override is in the audit log
    audit = p.audit(action="version.release")[0]
    assert audit.details["overrides"] == ["allow_dirty"]


def test_a_tampered_split_released_by_policy_is_flagged_unverified(
    trained_on_split: tuple[dmv.Project, str],
) -> None:
    import duckdb

    p, ref = trained_on_split
    with duckdb.connect(p.config.location("warehouse")) as con:
        rows = part_storage(con, "price_model__0123__abcd__train")
        con.execute(f"UPDATE {rows} SET target = target + 1")
    with pytest.raises(IntegrityError, match="1 check\\(s\\) failed: split: train") as exc:
        p.release(ref)
    assert "allow_unverified_data = true under [release]" in (exc.value.hint or "")
    p.close()
    set_release_policy(p.root, "allow_unverified_data = true")
    done = dmv_cli(p.root, "release", ref, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["flags"] == ["unverified data"]
    q = dmv.open(p.root)
    try:
        info = q.show("price-model@1.0.1-0123.abcd")
        assert info.flags == ["unverified data"]
        assert q.audit(action="version.release")[0].details["overrides"] == [
            "allow_unverified_data"
        ]
        nodes = q.tree("price-model").to_dict()["nodes"]
        assert [n["flags"] for n in nodes if n["id"] == "1.0.1-0123.abcd"] == [["unverified data"]]
        text = dmv_cli(p.root, "versions", "price-model").stdout
        assert "UNVERIFIED DATA" in text
    finally:
        q.close()


def test_a_failed_behaviour_check_is_refused_unless_the_policy_allows_it(
    trained_on_split: tuple[dmv.Project, str],
) -> None:
    p, ref = trained_on_split
    model = next(a for a in p.runs(ref)[0].artifacts if a.name == "model")
    meta = dict(model.meta or {})
    # a sample the stored model does not answer as recorded: behaviour check fails
    sample = meta["sample"]
    assert sample["outputs"]
    p.close()
    import sqlalchemy as sa

    from dmv.registry import schema as t

    engine = sa.create_engine(f"sqlite:///{p.config.location('registry')}")
    with engine.begin() as conn:
        row = conn.execute(sa.select(t.artifacts.c.id, t.artifacts.c.meta)).all()
        for art_id, art_meta in row:
            if (art_meta or {}).get("sample"):
                changed = dict(art_meta)
                changed["sample"] = {**changed["sample"], "outputs": [1e9] * 3}
                conn.execute(
                    sa.update(t.artifacts).where(t.artifacts.c.id == art_id).values(meta=changed)
                )
    engine.dispose()
    refused = dmv_cli(p.root, "release", ref)
    assert refused.returncode == IntegrityError.exit_code
    assert "behaviour tr0/model" in refused.stderr
    assert "allow_failed_behaviour = true under [release]" in refused.stderr
    set_release_policy(p.root, "allow_failed_behaviour = true")
    done = dmv_cli(p.root, "release", ref, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["flags"] == ["failed behaviour"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("allow_dirt = true", "unknown [release] key(s) allow_dirt"),
        ('allow_dirty = "maybe"', "[release] allow_dirty: 'maybe' is not a boolean"),
    ],
)
def test_a_bad_release_policy_is_a_clear_error(
    project: dmv.Project, table: str, message: str
) -> None:
    set_release_policy(project.root, table)
    done = dmv_cli(project.root, "versions", "price-model")
    assert done.returncode == 2
    assert message in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr


# -- a prerelease is released once -----------------------------------------------


def test_following_every_hint_never_releases_a_prerelease_twice(project: dmv.Project) -> None:
    p = project
    train(p, "0.1.0-a.b", 1.0)
    train(p, "0.2.0-a.b", 1.0)
    root = p.root
    assert dmv_cli(root, "release", "price-model@0.1.0-a.b").returncode == 0
    tried: set[tuple[str, ...]] = set()
    todo = [("release", "price-model@0.1.0-a.b"), ("release", "price-model@0.1.0-a.b", "--major")]
    while todo:
        args = todo.pop()
        if args in tried:
            continue
        tried.add(args)
        done = dmv_cli(root, *args)
        assert done.returncode == ConflictError.exit_code, (args, done.stdout)
        assert "is released already as price-model 1.1.0-a.b" in done.stderr
        hint = next(line for line in done.stderr.splitlines() if line.startswith("hint:"))
        # every flag the hint names, and every command it spells out, is tried in turn
        for flag in re.findall(r"--[a-z-]+", hint):
            todo.append(("release", "price-model@0.1.0-a.b", flag))
        for command in re.findall(r"dmv (release [^)\s,;]+(?: --[a-z-]+)*)", hint):
            words = tuple(command.split())
            if len(words) > 1 and "@" in words[1]:
                todo.append(words)
    assert len(tried) >= 2
    released = [v for v in p.versions("price-model") if v.released_from == "0.1.0-a.b"]
    assert [v.version.number for v in released] == ["1.1.0-a.b"]
    assert p.model("price-model").generation == 1
    # --major still starts a new generation for a prerelease not released yet
    done = dmv_cli(root, "release", "price-model@0.2.0-a.b", "--major")
    assert done.returncode == 0 and "released price-model 2.2.0-a.b" in done.stdout


# -- refusals come before any question -------------------------------------------


@pytest.mark.parametrize("stdin", [None, "y\n"])
def test_delete_of_a_released_version_refuses_before_asking(
    project: dmv.Project, stdin: str | None
) -> None:
    train(project, "0.1.0-a.b", 1.0)
    project.release("price-model@0.1.0-a.b")
    for ref, why in (
        ("price-model@1.1.0-a.b", "is released: it cannot be deleted"),
        ("price-model@0.1.0-a.b", "is released as 1.1.0-a.b: it cannot be deleted"),
    ):
        done = dmv_cli(project.root, "delete", ref, stdin=stdin)
        assert done.returncode == ImmutableError.exit_code, done.stdout + done.stderr
        assert "[y/N]" not in done.stdout + done.stderr
        assert why in done.stderr and "hint:" in done.stderr
    assert len(project.versions("price-model")) == 2
    # a deletable prerelease is still asked about, and deleted on 'y'
    train(project, "0.2.0-a.b", 1.0)
    done = dmv_cli(project.root, "delete", "price-model@0.2.0-a.b", stdin="y\n")
    assert done.returncode == 0 and "[y/N]" in done.stdout
    assert len(project.versions("price-model")) == 2


@pytest.mark.parametrize("stdin", [None, "y\n"])
def test_every_command_that_asks_refuses_first(
    trained_on_split: tuple[dmv.Project, str], stdin: str | None
) -> None:
    p, ref = trained_on_split
    p.release(ref)
    for args, why in (
        (("model", "delete", "price-model"), "model price-model has a release"),
        (("data", "drop", "price-model", "0123.abcd"), "cannot change"),
        (("delete", ref), "cannot be deleted"),
    ):
        done = dmv_cli(p.root, *args, stdin=stdin)
        assert done.returncode == ImmutableError.exit_code, (args, done.stdout, done.stderr)
        assert "[y/N]" not in done.stdout + done.stderr
        assert why in done.stderr and "hint:" in done.stderr
    assert len(p.versions("price-model")) == 2
    assert ("0123", "abcd") in [(s.data, s.split) for s in p.data_splits("price-model")]
