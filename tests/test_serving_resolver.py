"""Serving from memory with a bound: change marks, the resolver, and two real servers.

A server answers ``name@ref`` and checks tokens from memory re-read at most every
``serve_refresh`` seconds (:mod:`dmv.server.resolver`). These tests hold the
parts to the bound it states: every mark moves with every write that changes
what a reference resolves to; a server sees its own process's writes at once;
and two real server processes on one registry (SQLite and PostgreSQL) serve a
moved alias, refuse a deprecated version and refuse a revoked token for every
request that arrives ``serve_refresh`` seconds after the change committed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from sklearn.datasets import load_iris
from sklearn.dummy import DummyClassifier

from dmv.server.resolver import Resolver, Tokens
from dmv.tokens import create_token, revoke_token

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS = {"inputs": dict.fromkeys(FEATURES, "float64"), "outputs": {"species": "int64"}}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
V1, V2 = "0.0.1-0123.abcd", "0.0.2-0123.abcd"


def _register(project: dmv.Project, number: str, constant: int) -> None:
    from dmv.interface import Interface

    iface = Interface.from_dict(IRIS)
    project.registry.create_version(
        dmv.Version.parse_number("iris", number),
        interface=iface.to_dict(),
        interface_fp=iface.fingerprint,
    )
    x, y = load_iris(return_X_y=True)
    with project.run("iris", version=number) as run:
        run.log_model(DummyClassifier(strategy="constant", constant=constant).fit(x, y))


@pytest.fixture
def iris(any_project: dmv.Project) -> dmv.Project:
    """iris 0.0.1 (always class 0, @production) and 0.0.2 (always class 2)."""
    _register(any_project, V1, 0)
    _register(any_project, V2, 2)
    any_project.set_alias(f"iris@{V1}", "production")
    return any_project


# -- the marks -------------------------------------------------------------------------


def test_the_change_mark_moves_with_every_write_a_reference_depends_on(
    iris: dmv.Project,
) -> None:
    registry = iris.registry
    seen = [registry.change_marks(["iris"])["iris"]]

    def moved() -> bool:
        mark = registry.change_marks(["iris"]).get("iris")
        fresh = mark not in seen
        seen.append(mark)
        return fresh

    assert not moved()  # reading changes nothing
    iris.set_alias(f"iris@{V2}", "production")
    assert moved()
    iris.set_alias(f"iris@{V2}", "staging")
    assert moved()
    iris.registry.remove_alias("iris", "staging")
    assert moved()
    iris.deprecate(f"iris@{V1}")
    assert moved()
    iris.registry.set_archived("iris", True)
    assert moved()
    assert registry.change_marks(["iris", "no-such-model"]).keys() == {"iris"}
    iris.registry.delete_model("iris")
    assert registry.change_marks(["iris"]) == {}


def test_the_token_mark_moves_with_every_token_write(any_project: dmv.Project) -> None:
    registry = any_project.registry
    assert registry.token_mark() == (0, 0)
    create_token(registry, "ci", "read")
    assert registry.token_mark() == (1, 0)
    revoke_token(registry, "ci")
    assert registry.token_mark() == (1, 1)
    any_project.registry.create_model("other")
    create_token(registry, "scoped", "read", model="other")
    any_project.registry.delete_model("other")  # revokes the model's tokens
    assert registry.token_mark() == (2, 2)


# -- in one process -----------------------------------------------------------------------


class _Counting:
    """A real registry whose calls are counted."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        return getattr(self.registry, name)


def test_an_unchanged_model_is_resolved_once_however_many_requests(iris: dmv.Project) -> None:
    counting = _Counting(iris.registry)
    resolver = Resolver(lambda: counting, 1.0)  # type: ignore[arg-type, return-value]
    for _ in range(200):
        assert resolver.show("iris", "production").version.number == V1
    assert counting.calls["resolve"] == 1
    # Without memory (serve_refresh = 0) every request asks.
    direct = _Counting(iris.registry)
    uncached = Resolver(lambda: direct, 0.0)  # type: ignore[arg-type, return-value]
    for _ in range(5):
        uncached.show("iris", "production")
    assert direct.calls == {"resolve": 5}


def test_writes_of_the_servers_own_process_are_seen_at_once(iris: dmv.Project) -> None:
    resolver = Resolver(lambda: iris.registry, 1.0)
    tokens = Tokens(lambda: iris.registry, 1.0)
    assert resolver.show("iris", "production").version.number == V1
    assert resolver.show("iris", "0").version.number == V2
    assert not tokens.exist()
    iris.set_alias(f"iris@{V2}", "production")
    assert resolver.show("iris", "production").version.number == V2
    iris.set_alias(f"iris@{V1}", "production")
    iris.deprecate(f"iris@{V2}")
    assert resolver.show("iris", "0").version.number == V1  # @0 skips a deprecated version
    assert resolver.show("iris", V2).state == "deprecated"
    plaintext, _ = create_token(iris.registry, "ci", "read")
    assert tokens.exist()
    from dmv.tokens import _digest

    row = tokens.by_hash(_digest(plaintext))
    assert row is not None and row.revoked_at is None
    revoke_token(iris.registry, "ci")
    row = tokens.by_hash(_digest(plaintext))
    assert row is not None and row.revoked_at is not None


@pytest.mark.postgres
def test_a_registry_that_cannot_be_read_fails_the_request_rather_than_answer_stale(
    pg_database: str, tmp_path: Path
) -> None:
    import psycopg

    from conftest import PG_ADMIN_URL

    project = dmv.init(tmp_path / "proj", registry=pg_database)
    _register(project, V1, 0)
    project.set_alias(f"iris@{V1}", "production")
    resolver = Resolver(lambda: project.registry, 0.05)
    assert resolver.show("iris", "production").version.number == V1
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{pg_database.rsplit("/", 1)[1]}" WITH (FORCE)')
    time.sleep(0.05)
    with pytest.raises(dmv.errors.StorageError):
        resolver.show("iris", "production")
    project.close()


# -- two real server processes ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http(
    method: str, url: str, body: Any = None, token: str | None = None
) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def _cli(root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dmv", "-C", str(root), *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def two_servers(iris: dmv.Project, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``dmv server`` (API and every model) and ``dmv serve iris@production iris@0``
    on the project's registry, each its own process: their base URLs."""
    procs, bases = [], []
    commands = [["server"], ["serve", "iris@production", "iris@0"]]
    try:
        for i, command in enumerate(commands):
            port = _free_port()
            log = (tmp_path / f"server{i}.log").open("wb")
            cmd = [sys.executable, "-m", "dmv", "-C", str(iris.root), *command, "--port"]
            procs.append(subprocess.Popen([*cmd, str(port)], stderr=log))
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for proc, base, i in zip(procs, bases, range(2), strict=True):
            while True:
                try:
                    if _http("GET", f"{base}/v2/health/ready")[0] == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / f"server{i}.log").read_text())
                time.sleep(0.1)
        yield bases[0], bases[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


def _served(base: str, ref: str, token: str | None = None) -> tuple[int, str | None]:
    url = f"{base}/models/iris/versions/{ref}/predict"
    status, headers, _ = _http("POST", url, {"inputs": [ROW]}, token)
    return status, headers.get("X-Model-Version") if status == 200 else None


@pytest.mark.slow
def test_two_servers_follow_a_move_a_deprecation_and_a_revocation_within_the_bound(
    iris: dmv.Project, two_servers: tuple[str, str]
) -> None:
    a, b = two_servers
    bound = iris.config["serve_refresh"]
    assert 0 < bound <= 1
    for base in (a, b):
        assert _served(base, "production") == (200, V1)
        assert _served(base, V1) == (200, V1)
        assert _served(base, V2) == (200, V2)  # b: iris@0 points at it

    # The alias moves through server a's API: a serves the new version at once
    # (its own write), b once the bound has passed since the commit.
    status, _, _ = _http("PUT", f"{a}/api/v1/models/iris/aliases/production", {"version": V2})
    assert status == 200
    assert _served(a, "production") == (200, V2)
    time.sleep(bound)
    assert _served(b, "production") == (200, V2)

    # Another process (the CLI) moves it back and deprecates V2: neither server
    # serves V2 by any reference once the bound has passed.
    _cli(iris.root, "alias", "set", f"iris@{V1}", "production")
    _cli(iris.root, "deprecate", f"iris@{V2}", "--reason", "bad")
    time.sleep(bound)
    for base in (a, b):
        assert _served(base, "production") == (200, V1)
        assert _served(base, "0") == (200, V1)  # @0 no longer reaches the deprecated V2
    assert _served(a, V2)[0] == 410  # deprecated
    assert _served(b, V2)[0] == 404  # none of b's references points at it any more

    # The first token locks both servers; revoking it shuts it out of both.
    created = json.loads(_cli(iris.root, "token", "create", "ci", "--scope", "read", "--json"))
    token = created["token"]
    time.sleep(bound)
    for base in (a, b):
        assert _served(base, "production")[0] == 401
        assert _served(base, "production", token) == (200, V1)
    _cli(iris.root, "token", "revoke", "ci")
    time.sleep(bound)
    for base in (a, b):
        assert _served(base, "production", token)[0] == 401
