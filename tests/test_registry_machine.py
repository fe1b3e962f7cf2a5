"""The registry's three paths, driven by the same random operations, must agree.

A Hypothesis state machine runs each operation on three registries: a SQLite
file on the fast path (statements compiled to ``sqlite3``), a SQLite file on
the SQLAlchemy path, and the local PostgreSQL. After every step the three
return the same records (times aside, which each stamps itself) and refuse with
the same error class and message.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from dmv.errors import DmvError
from dmv.registry import Registry
from dmv.version import Reference, Version

NAMES = st.sampled_from(["alpha", "beta", "nope"])
DATA = st.sampled_from(["0123", "4567"])
SPLITS = st.sampled_from(["abcd", "efgh"])
ALIASES = st.sampled_from(["production", "staging"])
NUMBER = st.integers(min_value=0, max_value=2)
TIMES = {"created_at", "updated_at", "at", "revoked_at"}


def _plain(value: Any) -> Any:
    """A record as comparable data: dataclasses as dicts, times and ids left out."""
    if isinstance(value, Version):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {
            k: _plain(v)
            for k, v in asdict(value).items()
            if k not in TIMES and not (k == "id" and type(value).__name__ == "AuditEntry")
        }
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", _plain(fn())
    except DmvError as exc:
        return type(exc).__name__, exc.message


class Paths:
    """The three registries one example runs on."""

    def __init__(self, pg_url: str | None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="dmv-machine-")
        folder = Path(self._tmp.name)
        self.fast = Registry(f"sqlite:///{folder / 'fast.db'}", actor="machine")
        self.slow = Registry(f"sqlite:///{folder / 'slow.db'}", actor="machine")
        assert self.fast._fast is not None
        self.slow.close()
        self.slow._fast = None  # the SQLAlchemy path only
        self.all = [self.fast, self.slow]
        if pg_url is not None:
            self.all.append(Registry(pg_url, actor="machine"))

    def close(self) -> None:
        for registry in self.all:
            registry.close()
        self._tmp.cleanup()


def _reset_postgres(url: str) -> None:
    """Empty every registry table (one example's state must not leak into the next)."""
    import sqlalchemy as sa

    from dmv.registry import schema

    registry = Registry(url)
    names = ", ".join(t.name for t in schema.metadata.sorted_tables if t.name != "dmv_schema")
    with registry.engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    registry.close()


class RegistryMachine(RuleBasedStateMachine):
    pg_url: str | None = None

    def __init__(self) -> None:
        super().__init__()
        if self.pg_url is not None:
            _reset_postgres(self.pg_url)
        self.paths = Paths(self.pg_url)

    def teardown(self) -> None:
        self.paths.close()

    def same(self, call: Callable[[Registry], Any]) -> tuple[str, Any]:
        outcomes = [_outcome(lambda r=r: call(r)) for r in self.paths.all]
        first = outcomes[0]
        for other in outcomes[1:]:
            assert other == first, f"paths disagree:\n{outcomes}"
        return first

    # -- writes ----------------------------------------------------------------

    @rule(name=NAMES, exist_ok=st.booleans())
    def create_model(self, name: str, exist_ok: bool) -> None:
        self.same(lambda r: r.create_model(name, purpose="p", exist_ok=exist_ok))

    @rule(
        name=NAMES,
        x=NUMBER,
        y=NUMBER,
        z=NUMBER,
        data=DATA,
        split=SPLITS,
        fp=st.sampled_from([None, "i1", "i2"]),
        meta=st.sampled_from([None, {"note": "n"}, {"a": [1, 2]}]),
    )
    def create_version(
        self, name: str, x: int, y: int, z: int, data: str, split: str, fp: str | None, meta: Any
    ) -> None:
        version = Version(name, x, y, z, data, split)
        self.same(lambda r: r.create_version(version, interface_fp=fp, meta=meta))

    @rule(name=NAMES, ref=st.sampled_from(["0", "0.0", "0.1", "1", "latest", "staging"]))
    def set_alias_by_reference(self, name: str, ref: str) -> None:
        alias = "production" if ref != "production" else "staging"
        self.same(lambda r: r.set_alias(Reference.parse(f"{name}@{ref}"), alias))

    @rule(name=NAMES, x=NUMBER, z=NUMBER, data=DATA, split=SPLITS, alias=ALIASES)
    def set_alias_exact(self, name: str, x: int, z: int, data: str, split: str, alias: str) -> None:
        self.same(lambda r: r.set_alias(Version(name, x, 0, z, data, split), alias))

    @rule(name=NAMES, alias=ALIASES)
    def remove_alias(self, name: str, alias: str) -> None:
        self.same(lambda r: r.remove_alias(name, alias))

    @rule(name=NAMES, x=NUMBER, z=NUMBER, data=DATA, split=SPLITS)
    def deprecate(self, name: str, x: int, z: int, data: str, split: str) -> None:
        version = Version(name, x, 0, z, data, split)
        self.same(lambda r: r.deprecate_version(version, reason="r"))

    @rule(token=st.sampled_from(["ci", "bot"]), scope=st.sampled_from(["read", "admin"]))
    def add_token(self, token: str, scope: str) -> None:
        self.same(lambda r: r.add_token(token, f"sha256:{token}", scope, None, 1.0))

    @rule(token=st.sampled_from(["ci", "bot", "nobody"]))
    def revoke_token(self, token: str) -> None:
        self.same(lambda r: r.revoke_token(token, 2.0))

    # -- reads -----------------------------------------------------------------

    @rule(
        name=NAMES,
        ref=st.sampled_from(
            ["0", "0.0", "0.1", "0.0.1", "1", "2.0", "latest", "production", "staging", "nothing"]
        ),
    )
    def resolve(self, name: str, ref: str) -> None:
        self.same(lambda r: r.resolve(f"{name}@{ref}"))

    @rule(name=NAMES, x=NUMBER, y=NUMBER, z=NUMBER, data=DATA, split=SPLITS)
    def get_version(self, name: str, x: int, y: int, z: int, data: str, split: str) -> None:
        self.same(lambda r: r.get_version(Version(name, x, y, z, data, split)))

    @rule(name=NAMES, state=st.sampled_from([None, "prerelease", "released", "deprecated"]))
    def list_versions(self, name: str, state: str | None) -> None:
        self.same(lambda r: r.list_versions(name, state=state))
        self.same(lambda r: r.list_versions_uncached(name, state=state))

    @rule(token=st.sampled_from(["ci", "bot", "nobody"]))
    def token_by_hash(self, token: str) -> None:
        self.same(lambda r: r.token_by_hash(f"sha256:{token}"))

    @invariant()
    def same_models_aliases_tokens_and_audit(self) -> None:
        self.same(lambda r: r.list_models(include_archived=True))
        self.same(lambda r: [r.list_aliases(m.name) for m in r.list_models()])
        self.same(lambda r: (r.has_tokens(), r.list_tokens()))
        self.same(lambda r: r.audit_log(limit=None))


MACHINE_SETTINGS = settings(
    max_examples=8,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for the run (skipped, with the reason, when it is down)."""
    yield request.getfixturevalue("pg_database")


@pytest.mark.postgres
def test_fast_sqlalchemy_and_postgres_paths_agree(pg_url: str) -> None:
    RegistryMachine.pg_url = pg_url
    try:
        run_state_machine_as_test(RegistryMachine, settings=MACHINE_SETTINGS)
    finally:
        RegistryMachine.pg_url = None


def test_fast_and_sqlalchemy_sqlite_paths_agree() -> None:
    """The two SQLite paths alone: runs even where PostgreSQL is not available."""
    run_state_machine_as_test(RegistryMachine, settings=settings(MACHINE_SETTINGS, max_examples=4))
