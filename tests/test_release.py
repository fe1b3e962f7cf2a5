"""Release, run selection, deprecation and immutability."""

from __future__ import annotations

import json
import os

import pytest

import dmv
from conftest import part_storage
from dmv import ConflictError, ImmutableError, IntegrityError, NotFound, Version
from dmv.release import best_run


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
    assert p.release("price-model@0.0.1-a.b").version.number == "1.0.1-a.b"
    assert p.release("price-model@0.0.2-a.b").version.number == "1.0.2-a.b"
    assert p.release("price-model@0.1.0-a.b", major=True).version.number == "2.1.0-a.b"
    assert p.resolve("price-model@latest").number == "2.1.0-a.b"
    assert p.resolve("price-model@1").number == "1.0.2-a.b"
    with pytest.raises(ConflictError, match=r"released already as price-model 2\.1\.0-a\.b"):
        p.release("price-model@0.1.0-a.b")
    # an older prerelease may join the current generation
    assert p.release("price-model@0.0.1-a.b").version.number == "2.0.1-a.b"
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
    from dmv import release

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
