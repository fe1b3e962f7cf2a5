"""Model lifecycle: archive / unarchive, delete (never a released model), rename refused.

Real project folders: the SQLite registry, the local artifact store and the DuckDB
warehouse; the commands go through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import dmv
from conftest import seed_warehouse
from dmv.cli import main
from dmv.cli.commands import cli as command
from dmv.errors import ConflictError, NotFound

IFACE = {"inputs": [{"name": "a", "type": "float"}], "outputs": [{"name": "y", "type": "float"}]}


def cli(capsys: pytest.CaptureFixture[str], project: dmv.Project, *args: str) -> tuple[int, str]:
    code = main(["-C", str(project.root), *args])
    out, err = capsys.readouterr()
    return code, out + err


def _train(project: dmv.Project, model: str, data: str, blob: Path, c: int = 1) -> None:
    with project.run(model, data=data, params={"C": c}, interface=IFACE) as run:
        run.log_metrics({"acc": 0.5}, "test")
        run.log_artifact(blob, name="weights.bin")
        run.log_artifact(blob.with_name(f"own-{model}-{c}.bin"), name="own.bin")


@pytest.fixture
def trained(project: dmv.Project, tmp_path: Path) -> dmv.Project:
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"the same bytes in two models")
    seed_warehouse(project, "keep-model")
    for model in ("keep-model", "old-model"):
        project.create_model(model, exist_ok=True)
        if model == "old-model":
            project.data_query(model, sql="SELECT * FROM patients", id="0123")
            project.data_split(model, "0123", by="key:patient_id", id="abcd")
            project.data_split(model, "0123", by="key:patient_id", salt="2", id="efgh")
        for c in (1, 2):
            (tmp_path / f"own-{model}-{c}.bin").write_bytes(f"{model} {c}".encode())
            _train(project, model, "0123.abcd", shared, c)
    return project


def _tables(project: dmv.Project) -> set[str]:
    with duckdb.connect(project.config.location("warehouse"), read_only=True) as con:
        rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        return {r[0] for r in rows}


def test_archive_hides_a_model_refuses_runs_and_keeps_everything(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = cli(capsys, trained, "model", "archive", "old-model")
    assert code == 0 and "archived model old-model" in out
    code, out = cli(capsys, trained, "model", "list")
    assert "keep-model" in out and "old-model" not in out
    code, out = cli(capsys, trained, "model", "list", "--all", "--json")
    assert {m["name"]: m["archived"] for m in json.loads(out)} == {
        "keep-model": False,
        "old-model": True,
    }
    assert len(trained.versions("old-model")) == 2  # kept for audit
    assert cli(capsys, trained, "show", "old-model@0.0.1-0123.abcd")[0] == 0
    with pytest.raises(ConflictError, match="archived"):
        _train(trained, "old-model", "0123.abcd", tmp_path / "shared.bin", 3)
    with pytest.raises(ConflictError, match="archived"), trained.experiment("old-model"):
        pass
    code, out = cli(capsys, trained, "model", "unarchive", "old-model")
    assert code == 0 and "old-model" in cli(capsys, trained, "model", "list")[1]
    actions = [e.action for e in trained.audit(model="old-model", action="model.")]
    assert actions[:2] == ["model.unarchive", "model.archive"]


def test_delete_removes_the_model_its_tables_and_only_unshared_blobs(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = trained.runs("old-model@0.0.1-0123.abcd") + trained.runs("old-model@0.0.2-0123.abcd")
    digests = {a.name: a.digest for r in runs for a in r.artifacts if a.name == "weights.bin"}
    own = [a.digest for r in runs for a in r.artifacts if a.name == "own.bin"]
    shared = digests["weights.bin"]
    assert {t for t in _tables(trained) if t.startswith("old_model__")}
    # without --yes it asks, and "no" leaves everything
    refused = CliRunner().invoke(
        command, ["-C", str(trained.root), "model", "delete", "old-model"], input="n\n"
    )
    assert refused.exit_code == 1 and "delete model old-model" in refused.output
    assert trained.model("old-model").version_count == 2
    code, out = cli(capsys, trained, "model", "delete", "old-model", "--yes", "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert (summary["versions"], summary["runs"], summary["splits"]) == (2, 2, 2)
    assert summary["blobs_kept"] == 1 and summary["blobs_removed"] >= 2
    with pytest.raises(NotFound):
        trained.model("old-model")
    assert not {t for t in _tables(trained) if t.startswith("old_model__")}
    assert {t for t in _tables(trained) if t.startswith("keep_model__")}
    store = trained.artifacts
    assert store.fs.exists(store.path_of(shared))  # keep-model still uses it
    assert not any(store.fs.exists(store.path_of(d)) for d in own)
    entry = trained.audit(model="old-model", action="model.delete")[0]
    assert entry.details == {"versions": 2, "runs": 2, "splits": 2}
    # the other model is whole
    assert len(trained.runs("keep-model@0.0.1-0123.abcd")) == 1
    assert cli(capsys, trained, "fsck")[0] == 0


def test_a_released_model_cannot_be_deleted(
    trained: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with trained.run("keep-model", version="0.5.0-x.y") as run:
        run.log_metrics({"acc": 1.0}, "test")
    trained.registry.create_version(dmv.Version.parse("keep-model 1.5.0-x.y"))
    code, out = cli(capsys, trained, "model", "delete", "keep-model", "--yes")
    assert code == 5 and "has a release" in out and "dmv model archive keep-model" in out
    assert trained.model("keep-model").version_count == 4


def test_rename_is_refused_with_the_reason(
    project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.create_model("a-model")
    code, out = cli(capsys, project, "model", "rename", "a-model", "b-model")
    assert code == 2 and "cannot be renamed" in out and "table" in out and "tag" in out
    assert project.model("a-model").name == "a-model"
