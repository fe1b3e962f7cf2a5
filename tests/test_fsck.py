"""dmv fsck: registered things present and intact, orphans listed and repaired."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import dmv
from dmv.cli import main


def test_clean_project_is_ok(project: dmv.Project, small_model: object) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        run.log_model(small_model)
    report = project.fsck()
    assert report.ok and report.checked["artifacts"] == 1 and report.orphans == []


def test_orphans_from_a_crash_are_listed_then_removed(
    project: dmv.Project, small_model: object
) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        run.log_model(small_model)
    # What a process killed before its registry transaction leaves behind:
    orphan = project.artifacts.put_bytes(b"uploaded, never registered")
    tmp = Path(project.artifacts.path_of(orphan.digest)).parents[2] / "tmp" / "deadbeef"
    tmp.write_bytes(b"half an upload")
    report = project.fsck()
    assert report.ok  # nothing registered is broken
    kinds = sorted(o["kind"] for o in report.orphans)
    assert kinds == ["blob", "partial upload"]
    assert project.fsck(repair=True).repaired == []  # younger than the grace period
    repaired = project.fsck(repair=True, grace_seconds=0).repaired
    assert sorted(o["kind"] for o in repaired) == ["blob", "partial upload"]
    assert not project.artifacts.exists(orphan) and not tmp.exists()
    assert project.fsck().orphans == []
    assert project.load_model("m@0.0.1-a.b") is not None  # registered blobs untouched


def test_missing_or_corrupt_registered_artifact_is_a_problem(
    project: dmv.Project, small_model: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with project.run("m", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
    os.remove(project.artifacts.path_of(art.digest))
    code = main(["-C", str(project.root), "fsck", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 6 and body["ok"] is False
    assert body["problems"][0]["what"] == "m 0.0.1-a.b tr0 model"
    assert "missing" in body["problems"][0]["error"]
