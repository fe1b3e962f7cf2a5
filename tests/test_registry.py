"""The model repository on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import dmv
from dmv import ConflictError, NotFound, StorageError, Version
from dmv.registry import schema


def v(text: str) -> Version:
    return Version.parse("price-model " + text)


def test_registry_is_a_wal_sqlite_file(project: dmv.Project) -> None:
    path = project.root / ".dmv" / "registry.db"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        stamp = conn.execute("SELECT value FROM dmv_schema WHERE key='version'").fetchone()
    assert int(stamp[0]) == schema.SCHEMA_VERSION


def test_models_are_created_listed_and_updated(any_project: dmv.Project) -> None:
    p = any_project
    info = p.create_model("price-model", purpose="price forecast", function="regression")
    assert (info.purpose, info.function, info.generation) == ("price forecast", "regression", 0)
    with pytest.raises(ConflictError, match="exists already"):
        p.create_model("price-model")
    assert p.create_model("price-model", exist_ok=True).purpose == "price forecast"
    p.update_model("price-model", primary_metric="rmse", metric_goal="min")
    assert p.model("price-model").primary_metric == "rmse"
    assert [m.name for m in p.models()] == ["price-model"]
    with pytest.raises(NotFound, match="does not exist"):
        p.model("nope")


def test_versions_resolve_by_every_reference_form(any_project: dmv.Project) -> None:
    reg = any_project.registry
    for text in [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
        "0.0.10-0123.abcd",
    ]:
        reg.create_version(v(text))
    p = any_project
    assert p.resolve("price-model@0.1.0-0123.abcd") == v("0.1.0-0123.abcd")
    # X.Y.Z: newest data/split for that logic (efgh was created after abcd)
    assert p.resolve("price-model@0.1.0") == v("0.1.0-0123.efgh")
    # X.Y: newest with that interface; 10 > 2 numerically
    assert p.resolve("price-model@0.0") == v("0.0.10-0123.abcd")
    assert p.resolve("price-model@0") == v("0.1.0-0123.efgh")
    assert p.resolve("price-model@latest") == v("1.1.0-0123.efgh")
    p.set_alias("price-model@0.0.2-0123.abcd", "staging")
    assert p.resolve("price-model@staging") == v("0.0.2-0123.abcd")
    numbers = [i.version.number for i in p.versions("price-model")]
    assert numbers == [
        "0.0.1-0123.abcd",
        "0.0.2-0123.abcd",
        "0.0.10-0123.abcd",
        "0.1.0-0123.abcd",
        "0.1.0-0123.efgh",
        "1.1.0-0123.efgh",
    ]
    assert [i.version.number for i in p.versions("price-model", state="released")] == [
        "1.1.0-0123.efgh"
    ]
    with pytest.raises(NotFound, match="no version of price-model matches"):
        p.resolve("price-model@2")
    with pytest.raises(NotFound, match="has no alias"):
        p.resolve("price-model@production")


def test_latest_needs_a_release(any_project: dmv.Project) -> None:
    any_project.registry.create_version(v("0.0.1-a.b"))
    with pytest.raises(NotFound) as info:
        any_project.resolve("price-model@latest")
    assert "price-model@0" in (info.value.hint or "")


def test_create_version_is_idempotent_and_audited(any_project: dmv.Project) -> None:
    reg = any_project.registry
    first = reg.create_version(v("0.0.1-0123.abcd"), interface_fp="i1", logic_fp="l1")
    again = reg.create_version(v("0.0.1-0123.abcd"), interface_fp="i1", logic_fp="l1")
    assert first.created_at == again.created_at
    with pytest.raises(ConflictError, match="another logic fingerprint"):
        reg.create_version(v("0.0.1-0123.abcd"), interface_fp="i1", logic_fp="l2")
    actions = [e.action for e in any_project.audit(model="price-model")]
    assert actions.count("version.create") == 1
    assert actions.count("model.create") == 1


def test_alias_moves_are_audited_with_from_and_to(any_project: dmv.Project) -> None:
    reg, p = any_project.registry, any_project
    reg.create_version(v("0.0.1-a.b"))
    reg.create_version(v("0.0.2-a.b"))
    p.set_alias("price-model@0.0.1-a.b", "production")
    p.set_alias("price-model@0.0.2-a.b", "production")
    entries = p.audit(action="alias")
    assert [e.details for e in entries] == [
        {"from": "0.0.1-a.b", "to": "0.0.2-a.b"},
        {"from": None, "to": "0.0.1-a.b"},
    ]
    assert all(e.actor for e in entries)
    assert [a.alias for a in p.aliases("price-model")] == ["production"]
    p.remove_alias("price-model", "production")
    assert p.aliases("price-model") == []
    with pytest.raises(NotFound):
        p.remove_alias("price-model", "production")


def test_failed_write_leaves_nothing_behind(any_project: dmv.Project) -> None:
    reg = any_project.registry
    reg.create_version(v("0.0.1-a.b"))
    before = len(any_project.audit(limit=None))
    with pytest.raises(NotFound):
        any_project.set_alias("price-model@0.0.9-a.b", "production")
    assert len(any_project.audit(limit=None)) == before
    assert any_project.aliases("price-model") == []


def test_older_schema_is_refused_until_migrated(tmp_path: Path) -> None:
    p = dmv.init(tmp_path / "old")
    db = p.root / ".dmv" / "registry.db"
    p.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE dmv_schema SET value='0' WHERE key='version'")
    with pytest.raises(StorageError, match="schema version 0") as info:
        _ = dmv.open(p.root).registry
    assert "dmv migrate" in (info.value.hint or "")
    from dmv.cli import main

    assert main(["-C", str(p.root), "migrate"]) == 0
    assert dmv.open(p.root).models() == []


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    p = dmv.init(tmp_path / "new")
    db = p.root / ".dmv" / "registry.db"
    p.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE dmv_schema SET value='999' WHERE key='version'")
    with pytest.raises(StorageError, match="newer than this dmv"):
        _ = dmv.open(p.root).registry


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "dmv.toml").write_text('[dmv]\nregistry = "postgresql://postgres@127.0.0.1:1/x"\n')
    with pytest.raises(StorageError, match="registry"):
        _ = dmv.open(root).registry


def test_an_empty_registry_file_is_refused_as_damaged_and_left_alone(tmp_path: Path) -> None:
    project = dmv.init(tmp_path / "p")
    project.create_model("kept")
    path = Path(project.config.location("registry"))
    project.close()
    path.write_bytes(b"")  # truncated by a full disk, a bad copy, a sync tool…
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    with pytest.raises(StorageError, match="is damaged: the file is empty") as caught:
        dmv.Project(tmp_path / "p").models()
    assert caught.value.exit_code == StorageError.exit_code
    assert path.stat().st_size == 0  # nothing was written into it
    fresh = dmv.init(tmp_path / "new")  # a new project still gets its registry
    assert fresh.models() == []
    fresh.close()


def test_the_cli_refuses_an_empty_registry_with_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dmv.cli import main

    project = dmv.init(tmp_path / "p")
    path = Path(project.config.location("registry"))
    project.close()
    path.write_bytes(b"")
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    code = main(["--project", str(tmp_path / "p"), "model", "list"])
    out = capsys.readouterr()
    assert code == StorageError.exit_code, out
    assert "the file is empty" in out.err and "Traceback" not in out.err + out.out
    assert path.stat().st_size == 0
