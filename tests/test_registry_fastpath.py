"""The registry's SQLite fast path, its validated list cache and the models.seq migration.

The fast path (plain SQL on ``sqlite3``) must behave exactly like the SQLAlchemy
path PostgreSQL uses: the same records, the same errors, the same stored rows,
every write audited and marking its model changed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv import ConflictError, DmvError, NotFound, Version
from dmv.registry import Registry, schema


def v(text: str) -> Version:
    return Version.parse("price-model " + text)


def slow_twin(project: dmv.Project) -> Registry:
    """A second registry on the same SQLite file that uses only the SQLAlchemy path."""
    twin = Registry(project.config.location("registry"))
    twin.close()
    twin._fast = None
    return twin


def _populate(p: dmv.Project) -> None:
    reg = p.registry
    p.create_model("price-model", primary_metric="rmse", metric_goal="min")
    reg.create_version(
        v("0.0.1-0123.abcd"),
        interface_fp="i1",
        logic_fp="l1",
        interface={"inputs": [{"name": "x", "type": "float"}]},
        logic={"params": {"a": 1}},
        meta={"note": "first"},
    )
    for text in ("0.0.2-0123.abcd", "0.1.0-0123.abcd", "0.1.0-0123.efgh", "0.0.10-0123.abcd"):
        reg.create_version(v(text))
    for metric in (0.5, 0.3):
        with p.run("price-model", version="0.0.2-0123.abcd", params={"a": 1}) as run:
            run.log_metrics({"rmse": metric}, split="test")
    p.release("price-model@0.0.2-0123.abcd")
    p.set_alias("price-model@0.0.2-0123.abcd", "staging")
    p.set_alias("price-model@0.0.2-0123.abcd", "canary")
    p.set_alias("price-model@1", "production")
    p.deprecate("price-model@0.1.0-0123.efgh", reason="bad split")


REFS = [
    "price-model@0.0.1-0123.abcd",
    "price-model@0.0.2-0123.abcd",
    "price-model@1.0.2-0123.abcd",
    "price-model@0.1.0-0123.efgh",
    "price-model@0.1.0",
    "price-model@0.0",
    "price-model@0",
    "price-model@1",
    "price-model@latest",
    "price-model@staging",
    "price-model@canary",
    "price-model@production",
]
MISSING = [
    "nope@0.0.1-0123.abcd",
    "nope@production",
    "nope@0",
    "price-model@0.0.9-0123.abcd",
    "price-model@nothing",
    "price-model@7",
    "price-model@0.9",
]


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DmvError as exc:
        return (type(exc).__name__, str(exc), exc.hint)


def test_fast_and_sqlalchemy_paths_agree_on_every_read(project: dmv.Project) -> None:
    _populate(project)
    fast, slow = project.registry, slow_twin(project)
    assert fast._fast is not None
    for ref in REFS + MISSING:
        a = _outcome(lambda ref=ref: fast.resolve(ref).to_dict())
        b = _outcome(lambda ref=ref: slow.resolve(ref).to_dict())
        assert a == b, ref
    for ref in REFS[:4] + MISSING[:1] + MISSING[3:4]:
        version = dmv.Reference.parse(ref).version
        assert version is not None
        a = _outcome(lambda version=version: fast.get_version(version).to_dict())
        b = _outcome(lambda version=version: slow.get_version(version).to_dict())
        assert a == b, ref
    for state in (None, "prerelease", "released", "deprecated"):
        a = [i.to_dict() for i in fast.list_versions("price-model", state=state)]
        b = [i.to_dict() for i in slow.list_versions("price-model", state=state)]
        assert a == b
    assert _outcome(lambda: fast.list_versions("nope")) == _outcome(
        lambda: slow.list_versions("nope")
    )
    info = fast.resolve("price-model@0.0.2-0123.abcd")
    assert info.aliases == ("canary", "staging") and info.run_count == 2
    released = fast.resolve("price-model@production")
    assert (released.released_from, released.serving_run) == ("0.0.2-0123.abcd", "tr1")
    first = fast.resolve("price-model@0.0.1-0123.abcd")
    assert first.interface == {"inputs": [{"name": "x", "type": "float"}]}
    assert (first.logic, first.meta) == ({"params": {"a": 1}}, {"note": "first"})


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_both_paths_store_the_same_rows(tmp_path: Path) -> None:
    def make(root: Path, fast: bool) -> dmv.Project:
        p = dmv.init(root)
        reg = p.registry
        if not fast:
            reg._fast = None
        reg.create_version(v("0.0.1-a.b"), interface_fp="i", interface={"k": [1, None]})
        reg.create_version(v("0.0.1-a.b"), interface_fp="i")  # idempotent
        reg.create_version(v("0.0.2-a.b"), dirty=True, meta={"m": 1})
        p.set_alias("price-model@0.0.1-a.b", "production")
        p.set_alias("price-model@0.0.2-a.b", "production")
        p.close()
        return p

    a, b = make(tmp_path / "fast", True), make(tmp_path / "slow", False)
    version_cols = (
        "model_id, x, y, z, data, split, state, interface_fp, logic_fp, interface, "
        "interface_compat, logic, dirty, released_from, serving_run, meta"
    )
    for sql in (
        f"SELECT {version_cols}, typeof(interface), typeof(meta), typeof(dirty) FROM versions",
        "SELECT action, model, target, details, typeof(details) FROM audit ORDER BY id",
        "SELECT name, purpose, function, description, primary_metric, metric_goal, "
        "generation, seq FROM models",
        "SELECT model_id, alias, version_id FROM aliases",
    ):
        rows = _rows(a.root / ".dmv" / "registry.db", sql)
        assert rows == _rows(b.root / ".dmv" / "registry.db", sql), sql
        assert rows


def test_set_alias_resolves_and_moves_in_one_audited_transaction(
    any_project: dmv.Project,
) -> None:
    p, reg = any_project, any_project.registry
    for text in ("0.0.1-a.b", "0.0.2-a.b", "0.1.0-a.b"):
        reg.create_version(v(text))
    moved = p.set_alias("price-model@0.0", "production")
    assert moved.version == v("0.0.2-a.b")
    assert p.set_alias("price-model@production", "staging").version == v("0.0.2-a.b")
    assert reg.set_alias(v("0.1.0-a.b"), "production").version == v("0.1.0-a.b")
    entries = p.audit(action="alias.set")
    assert [(e.target, e.details) for e in entries] == [
        ("production", {"from": "0.0.2-a.b", "to": "0.1.0-a.b"}),
        ("staging", {"from": None, "to": "0.0.2-a.b"}),
        ("production", {"from": None, "to": "0.0.2-a.b"}),
    ]
    p.deprecate("price-model@0.0.1-a.b")
    before = len(p.audit(limit=None))
    with pytest.raises(ConflictError, match="deprecated"):
        p.set_alias("price-model@0.0.1-a.b", "old")
    with pytest.raises(NotFound, match="no version of price-model matches"):
        p.set_alias("price-model@3", "old")
    with pytest.raises(NotFound, match="has no alias"):
        p.set_alias("price-model@nothing", "old")
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        p.set_alias("nope@0", "old")
    assert len(p.audit(limit=None)) == before
    assert [a.alias for a in p.aliases("price-model")] == ["production", "staging"]


def _token(reg: Registry) -> tuple[Any, ...]:
    return reg._model_token("price-model")


def test_every_write_marks_its_model_changed(any_project: dmv.Project) -> None:
    p, reg = any_project, any_project.registry
    other = p.create_model("other-model")
    assert other.name == "other-model"
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("create model", lambda: p.create_model("price-model")),
        ("create version", lambda: reg.create_version(v("0.0.1-a.b"))),
        ("update model", lambda: p.update_model("price-model", purpose="x")),
        ("run", lambda: _train(p, "0.0.1-a.b")),
        ("second run", lambda: _train(p, "0.0.1-a.b")),
        ("select run", lambda: p.select_run("price-model@0.0.1-a.b", "tr0")),
        ("alias", lambda: p.set_alias("price-model@0.0.1-a.b", "staging")),
        ("release", lambda: p.release("price-model@0.0.1-a.b")),
        ("new prerelease", lambda: reg.create_version(v("0.0.2-a.b"))),
        ("move alias", lambda: p.set_alias("price-model@0.0.2-a.b", "staging")),
        ("remove alias", lambda: p.remove_alias("price-model", "staging")),
        ("deprecate", lambda: p.deprecate("price-model@1.0.1-a.b")),
        ("delete", lambda: p.delete_version("price-model@0.0.2-a.b")),
    ]
    for what, step in steps:
        if what != "create model":
            before, other_before = _token(reg), reg._model_token("other-model")
            listed = reg.list_versions("price-model")
        step()
        if what == "create model":
            continue
        assert _token(reg) != before, what
        assert reg._model_token("other-model") == other_before, what
        # The list served next is the database's, not the one cached before the write.
        fresh = [i.to_dict() for i in slow_twin_of(p).list_versions("price-model")]
        assert [i.to_dict() for i in reg.list_versions("price-model")] == fresh, what
        assert listed is not reg.list_versions("price-model")
    reads = len(p.audit(limit=None))
    reg.list_versions("price-model")
    p.show("price-model@0")
    assert len(p.audit(limit=None)) == reads  # reads neither audit nor bump


def _train(p: dmv.Project, version: str) -> None:
    with p.run("price-model", version=version, params={"a": 1}) as run:
        run.log_metrics({"acc": 0.9}, split="test")


def slow_twin_of(p: dmv.Project) -> Registry:
    twin = Registry(p.config.location("registry"))
    twin.close()
    twin._fast = None
    twin._list_cache.clear()
    return twin


def test_a_cached_list_is_served_only_while_the_model_is_unchanged(project: dmv.Project) -> None:
    reg = project.registry
    reg.create_version(v("0.0.1-a.b"))
    first = reg.list_versions("price-model")
    second = reg.list_versions("price-model")
    assert first == second and first is not second  # each call gets its own list
    first.clear()  # the caller's list is the caller's own
    assert len(reg.list_versions("price-model")) == 1
    # A write that bypasses this registry object entirely (another connection).
    db = project.root / ".dmv" / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE versions SET state = 'deprecated'")
        conn.execute("UPDATE models SET seq = seq + 1 WHERE name = 'price-model'")
    assert reg.list_versions("price-model")[0].state == "deprecated"
    # A model dropped and created again under its name never matches an old token.
    token = reg._model_token("price-model")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE models SET created_at = created_at + 1")
    assert reg._model_token("price-model") != token


def test_threads_share_a_registry(project: dmv.Project) -> None:
    reg = project.registry
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                reg.create_version(Version("price-model", 0, t, i, "a", "b"))
                reg.set_alias(Version("price-model", 0, t, i, "a", "b"), f"t{t}")
                assert reg.resolve(f"price-model@t{t}").version.z == i
                reg.list_versions("price-model")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(reg.list_versions("price-model")) == 120
    assert len(project.audit(action="version.create", limit=None)) == 120
    assert len(project.audit(action="alias.set", limit=None)) == 120


def test_a_closed_registry_opens_again(project: dmv.Project) -> None:
    reg = project.registry
    reg.create_version(v("0.0.1-a.b"))
    reg.close()
    assert reg.get_version(v("0.0.1-a.b")).version == v("0.0.1-a.b")
    reg.create_version(v("0.0.2-a.b"))
    assert len(reg.list_versions("price-model")) == 2


# -- the migration to schema 2 (models.seq) ------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def v1_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A project whose registry has schema version 1 (no models.seq) and some data."""
    import sqlalchemy as sa

    registry = request.getfixturevalue("pg_database") if request.param == "postgres" else ""
    settings = {"registry": registry} if registry else {}
    p = dmv.init(tmp_path / "old", **settings)
    p.registry.create_version(v("0.0.1-a.b"))
    p.set_alias("price-model@0.0.1-a.b", "production")
    engine = p.registry.engine
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE models DROP COLUMN seq"))
        conn.execute(sa.text("DROP TABLE signatures"))
        conn.execute(sa.text("UPDATE dmv_schema SET value = '1' WHERE key = 'version'"))
    p.close()
    yield p.root, registry


def test_a_schema_1_store_is_migrated_in_place(
    v1_store: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from dmv.cli import main
    from dmv.errors import StorageError
    from dmv.registry.migrations import MIGRATIONS

    root, registry = v1_store
    settings = {"registry": registry} if registry else {}
    # one step per version after 1, each upgrading from the one before
    assert [m[0] for m in MIGRATIONS] == list(range(2, schema.SCHEMA_VERSION + 1))
    with pytest.raises(StorageError, match="schema version 1"):
        _ = dmv.open(root, **settings).registry
    if registry:
        monkeypatch.setenv("DMV_REGISTRY", registry)
    assert main(["-C", str(root), "migrate"]) == 0
    p = dmv.open(root, **settings)
    with p.registry.engine.connect() as conn:
        stamp = conn.execute(sa.text("SELECT value FROM dmv_schema WHERE key = 'version'"))
        assert stamp.scalar() == str(schema.SCHEMA_VERSION)
        assert conn.execute(sa.text("SELECT seq FROM models")).scalar() == 0
        for table in (  # every later table was added
            "signatures",
            "webhook_outbox",
            "evaluations",
            "approvals",
            "metric_history",
            "prediction_runs",
        ):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
    assert [i.version.number for i in p.versions("price-model")] == ["0.0.1-a.b"]
    assert p.resolve("price-model@production") == v("0.0.1-a.b")
    p.registry.create_version(v("0.0.2-a.b"))
    assert p.registry._model_token("price-model")[2] == 1
    assert len(p.versions("price-model")) == 2
    p.close()


def test_listed_releases_say_where_they_came_from_as_show_does(any_project: dmv.Project) -> None:
    p, reg = any_project, any_project.registry
    reg.create_version(v("0.0.1-a.b"))
    for _ in range(2):
        _train(p, "0.0.1-a.b")
    p.release("price-model@0.0.1-a.b")

    def listed(state: str | None = None) -> dict[str, tuple[str | None, int]]:
        infos = reg.list_versions("price-model", state=state)
        return {i.version.number: (i.released_from, i.run_count) for i in infos}

    def shown() -> dict[str, tuple[str | None, int]]:
        infos = [p.show(i.version) for i in slow_twin_of(p).list_versions("price-model")]
        return {i.version.number: (i.released_from, i.run_count) for i in infos}

    expected = {"0.0.1-a.b": (None, 2), "1.0.1-a.b": ("0.0.1-a.b", 2)}
    assert shown() == expected
    assert listed() == expected  # read from the database
    assert listed() == expected  # served from the list cache
    assert listed("released") == {"1.0.1-a.b": ("0.0.1-a.b", 2)}  # its source not listed
    fresh = [i.to_dict() for i in slow_twin_of(p).list_versions("price-model")]
    assert [i.to_dict() for i in reg.list_versions("price-model")] == fresh
    _train(p, "0.0.1-a.b")  # a third run of the prerelease is the release's too
    expected = {"0.0.1-a.b": (None, 3), "1.0.1-a.b": ("0.0.1-a.b", 3)}
    assert listed() == shown() == expected
    assert listed("released") == {"1.0.1-a.b": ("0.0.1-a.b", 3)}


def test_listed_records_are_ordinary_frozen_records(any_project: dmv.Project) -> None:
    import dataclasses
    import pickle

    from dmv.registry.records import VersionInfo

    p, reg = any_project, any_project.registry
    reg.create_version(v("0.0.1-a.b"))
    reg.create_version(v("0.0.2-a.b"), interface_fp="i1", logic_fp="l1", dirty=True)
    _train(p, "0.0.1-a.b")
    p.release("price-model@0.0.1-a.b")
    p.set_alias("price-model@1", "production")
    listed = reg.list_versions_uncached("price-model")
    assert [i.version.number for i in listed] == ["0.0.1-a.b", "0.0.2-a.b", "1.0.1-a.b"]
    for info in listed:
        assert type(info) is VersionInfo and type(info.version) is Version
        shown = p.show(info.version)
        # A listing leaves the documents out; everything else is what show reads.
        expected = dataclasses.replace(shown, interface=None, logic=None, meta=None)
        assert info == expected and hash(info) == hash(expected)
        assert info.version == shown.version and hash(info.version) == hash(shown.version)
        assert info.version == Version.parse(str(info.version))
        assert pickle.loads(pickle.dumps(info)) == info
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.state = "deprecated"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            info.version.x = 7  # type: ignore[misc]
    _, prerelease, release = listed
    assert (prerelease.dirty, prerelease.interface_fp, prerelease.logic_fp) == (True, "i1", "l1")
    assert (release.released_from, release.run_count, release.aliases) == (
        "0.0.1-a.b",
        1,
        ("production",),
    )
    assert release.serving_run == "tr0"
    assert sorted(listed, key=lambda i: i.version) == listed
