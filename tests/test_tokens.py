"""Tokens: stored as hashes, scoped, audited; the API refuses what a token may not do."""

from __future__ import annotations

import json
from typing import Any

import pytest

import dmv
from dmv import tokens
from dmv.cli import main
from dmv.errors import ConfigError, ConflictError, Forbidden, InvalidInput, NotFound, Unauthorized
from dmv.registry import schema as t

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from dmv.server import create_app

V1 = "0.0.1-0123.abcd"
V2 = "0.0.2-0123.abcd"


@pytest.fixture
def registry_project(project: dmv.Project) -> dmv.Project:
    project.create_model("price-model", purpose="price forecast")
    project.create_model("other-model")
    for v in (V1, V2):
        project.registry.create_version(dmv.Version.parse_number("price-model", v))
    project.set_alias(f"price-model@{V1}", "production")
    return project


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


# -- the library ----------------------------------------------------------------------


def test_create_stores_only_a_hash_and_is_audited(project: dmv.Project) -> None:
    plaintext, info = tokens.create_token(project.registry, "ci-bot", "write")
    assert plaintext.startswith("dmv_") and len(plaintext) > 40
    assert info.name == "ci-bot" and info.scope == "write" and info.model is None
    rows = project.registry._read(lambda conn: conn.execute(t.tokens.select()).all())
    assert len(rows) == 1
    assert plaintext not in str(tuple(rows[0]))
    assert rows[0].hash.startswith("sha256:")
    entry = project.audit(action="token")[0]
    assert (entry.action, entry.target) == ("token.create", "ci-bot")


def test_authenticate_and_revoke(project: dmv.Project) -> None:
    plaintext, _ = tokens.create_token(project.registry, "reader", "read")
    assert tokens.authenticate(project.registry, plaintext).name == "reader"
    with pytest.raises(Unauthorized):
        tokens.authenticate(
            project.registry, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
        )
    with pytest.raises(Unauthorized):
        tokens.authenticate(project.registry, None)
    with pytest.raises(Unauthorized):
        tokens.authenticate(project.registry, "not-a-dmv-token")
    revoked = tokens.revoke_token(project.registry, "reader")
    assert revoked.revoked_at is not None and not revoked.active
    with pytest.raises(Unauthorized, match="revoked"):
        tokens.authenticate(project.registry, plaintext)
    with pytest.raises(ConflictError):
        tokens.revoke_token(project.registry, "reader")
    with pytest.raises(NotFound):
        tokens.revoke_token(project.registry, "nobody")
    assert [e.action for e in project.audit(action="token")] == ["token.revoke", "token.create"]


def test_names_scopes_and_models_are_checked(project: dmv.Project) -> None:
    tokens.create_token(project.registry, "one", "read")
    with pytest.raises(ConflictError):
        tokens.create_token(project.registry, "one", "admin")
    with pytest.raises(InvalidInput):
        tokens.create_token(project.registry, "two", "root")
    with pytest.raises(InvalidInput):
        tokens.create_token(project.registry, "Bad Name", "read")
    with pytest.raises(NotFound):
        tokens.create_token(project.registry, "three", "read", model="no-such-model")
    assert [i.name for i in tokens.list_tokens(project.registry)] == ["one"]


def test_scopes_are_ordered() -> None:
    info = tokens.TokenInfo("t", "write", "price-model", 0.0)
    assert info.allows("read", "price-model") and info.allows("write", "price-model")
    assert not info.allows("admin", "price-model")
    assert not info.allows("read", "other-model")
    tokens.require(info, "write", "price-model")
    with pytest.raises(Forbidden):
        tokens.require(info, "admin", "price-model")
    with pytest.raises(Forbidden):
        tokens.require(info, "read", "other-model")
    with pytest.raises(Forbidden):
        tokens.require(info, "read", None)  # a listing of every model


# -- the CLI --------------------------------------------------------------------------


def test_cli_token_commands(
    registry_project: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(registry_project.root)
    assert main(["-C", root, "token", "create", "ci-bot", "--scope", "write", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("dmv_") and created["scope"] == "write"
    assert tokens.authenticate(registry_project.registry, created["token"]).name == "ci-bot"

    code = main(["-C", root, "token", "create", "m", "--scope", "read", "--model", "price-model"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("dmv_") and "only time" in out

    assert main(["-C", root, "token", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(i["name"], i["model"]) for i in listed] == [("ci-bot", None), ("m", "price-model")]
    assert "token" not in listed[0]

    assert main(["-C", root, "token", "revoke", "ci-bot"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["-C", root, "token", "revoke", "ci-bot"]) == ConflictError.exit_code
    assert main(["-C", root, "token", "create", "x", "--scope", "nope"]) != 0


def test_open_server_refuses_a_public_address(project: dmv.Project) -> None:
    from dmv.cli.server import check_bind

    assert check_bind(project, "127.0.0.1") is False
    assert check_bind(project, "localhost") is False
    assert check_bind(project, "::1") is False
    with pytest.raises(ConfigError, match="no tokens") as info:
        check_bind(project, "0.0.0.0")
    assert "dmv token create" in (info.value.hint or "")
    tokens.create_token(project.registry, "admin", "admin")
    assert check_bind(project, "0.0.0.0") is True


# -- the API --------------------------------------------------------------------------


def test_open_mode_without_tokens(registry_project: dmv.Project) -> None:
    client = TestClient(create_app(registry_project))
    assert client.get("/api/v1/models").status_code == 200
    r = client.put("/api/v1/models/price-model/aliases/staging", json={"version": V2})
    assert r.status_code == 200
    # The first token locks the server, without a restart.
    tokens.create_token(registry_project.registry, "admin", "admin")
    _error(client.get("/api/v1/models"), 401, "unauthorized")


def test_no_or_wrong_token_is_401_and_changes_nothing(registry_project: dmv.Project) -> None:
    tokens.create_token(registry_project.registry, "admin", "admin")
    client = TestClient(create_app(registry_project))
    before = len(registry_project.audit(limit=None))
    for headers in ({}, _bearer("dmv_" + "x" * 43), {"Authorization": "Basic abc"}):
        r = client.put(
            "/api/v1/models/price-model/aliases/production", json={"version": V2}, headers=headers
        )
        _error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        _error(client.get("/api/v1/models", headers=headers), 401, "unauthorized")
        _error(
            client.post("/models/price-model/versions/production/predict", headers=headers),
            401,
            "unauthorized",
        )
    assert registry_project.resolve("price-model@production").number == V1
    assert len(registry_project.audit(limit=None)) == before


def test_insufficient_scope_is_403_and_changes_nothing(registry_project: dmv.Project) -> None:
    read, _ = tokens.create_token(registry_project.registry, "reader", "read")
    write, _ = tokens.create_token(registry_project.registry, "writer", "write")
    limited, _ = tokens.create_token(
        registry_project.registry, "limited", "write", model="other-model"
    )
    client = TestClient(create_app(registry_project))
    before = len(registry_project.audit(limit=None))

    assert client.get("/api/v1/models/price-model", headers=_bearer(read)).status_code == 200
    move = {"version": V2}
    url = "/api/v1/models/price-model/aliases/production"
    _error(client.put(url, json=move, headers=_bearer(read)), 403, "forbidden")
    _error(client.delete(url, headers=_bearer(read)), 403, "forbidden")
    _error(client.put(url, json=move, headers=_bearer(limited)), 403, "forbidden")
    _error(client.get("/api/v1/models/price-model", headers=_bearer(limited)), 403, "forbidden")
    r = client.patch("/api/v1/models/price-model", json={"purpose": "x"}, headers=_bearer(read))
    _error(r, 403, "forbidden")
    r = client.post("/api/v1/models", json={"name": "new-model"}, headers=_bearer(read))
    _error(r, 403, "forbidden")
    # Token management needs admin.
    _error(client.get("/api/v1/tokens", headers=_bearer(write)), 403, "forbidden")
    r = client.post("/api/v1/tokens", json={"name": "x", "scope": "admin"}, headers=_bearer(write))
    _error(r, 403, "forbidden")
    _error(client.delete("/api/v1/tokens/reader", headers=_bearer(write)), 403, "forbidden")

    assert registry_project.resolve("price-model@production").number == V1
    assert registry_project.model("price-model").purpose == "price forecast"
    assert [m.name for m in registry_project.models()] == ["other-model", "price-model"]
    assert len(tokens.list_tokens(registry_project.registry)) == 3
    assert len(registry_project.audit(limit=None)) == before


def test_model_limited_token_sees_only_its_model(registry_project: dmv.Project) -> None:
    limited, _ = tokens.create_token(
        registry_project.registry, "limited", "write", model="price-model"
    )
    client = TestClient(create_app(registry_project))
    listed = client.get("/api/v1/models", headers=_bearer(limited)).json()
    assert [m["name"] for m in listed["items"]] == ["price-model"] and listed["total"] == 1
    audit = client.get("/api/v1/audit", headers=_bearer(limited)).json()["items"]
    assert audit and {e["model"] for e in audit} == {"price-model"}
    r = client.get("/api/v1/audit?model=other-model", headers=_bearer(limited))
    _error(r, 403, "forbidden")
    served = client.get("/models", headers=_bearer(limited)).json()["models"]
    assert [m["name"] for m in served] == ["price-model"]
    r = client.put(
        "/api/v1/models/price-model/aliases/staging", json={"version": V2}, headers=_bearer(limited)
    )
    assert r.status_code == 200


def test_writes_are_audited_with_the_token_name(registry_project: dmv.Project) -> None:
    write, _ = tokens.create_token(registry_project.registry, "ci-bot", "write")
    client = TestClient(create_app(registry_project))
    h = _bearer(write)
    assert (
        client.put(
            "/api/v1/models/price-model/aliases/production", json={"version": V2}, headers=h
        ).json()["version"]
        == V2
    )
    assert client.post("/api/v1/models", json={"name": "new-model"}, headers=h).status_code == 201
    assert (
        client.patch("/api/v1/models/new-model", json={"purpose": "demo"}, headers=h).status_code
        == 200
    )
    assert client.delete(
        "/api/v1/models/price-model/aliases/production", headers=h
    ).status_code == (204)
    entries = registry_project.audit(limit=4)
    assert [e.action for e in entries] == [
        "alias.remove",
        "model.update",
        "model.create",
        "alias.set",
    ]
    assert {e.actor for e in entries} == {"token:ci-bot"}
    # And the API shows the same, filtered by actor.
    r = client.get("/api/v1/audit?actor=token:ci-bot", headers=h).json()
    assert r["total"] == 4 and {e["actor"] for e in r["items"]} == {"token:ci-bot"}


def test_cookie_and_revocation(registry_project: dmv.Project) -> None:
    read, _ = tokens.create_token(registry_project.registry, "browser", "read")
    client = TestClient(create_app(registry_project))
    client.cookies.set("dmv_token", read)
    assert client.get("/api/v1/models").status_code == 200
    tokens.revoke_token(registry_project.registry, "browser")
    _error(client.get("/api/v1/models"), 401, "unauthorized")


def test_admin_manages_tokens_over_the_api(registry_project: dmv.Project) -> None:
    admin, _ = tokens.create_token(registry_project.registry, "root", "admin")
    client = TestClient(create_app(registry_project))
    h = _bearer(admin)
    r = client.post("/api/v1/tokens", json={"name": "ci", "scope": "read"}, headers=h)
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("dmv_") and created["scope"] == "read"
    assert client.get("/api/v1/models", headers=_bearer(created["token"])).status_code == 200
    listed = client.get("/api/v1/tokens", headers=h).json()
    assert [i["name"] for i in listed["items"]] == ["root", "ci"]
    assert all("token" not in i and "hash" not in i for i in listed["items"])
    assert client.delete("/api/v1/tokens/ci", headers=h).json()["active"] is False
    _error(client.get("/api/v1/models", headers=_bearer(created["token"])), 401, "unauthorized")
    _error(client.delete("/api/v1/tokens/ci", headers=h), 409, "conflict")
    actors = {e.actor for e in registry_project.audit(action="token", limit=2)}
    assert actors == {"token:root"}


def test_revoking_every_token_keeps_the_server_locked(registry_project: dmv.Project) -> None:
    secret, _ = tokens.create_token(registry_project.registry, "only", "admin")
    running = TestClient(create_app(registry_project))
    assert running.get("/api/v1/models", headers={"Authorization": f"Bearer {secret}"}).is_success
    tokens.revoke_token(registry_project.registry, "only")
    assert [t for t in tokens.list_tokens(registry_project.registry) if t.active] == []
    # neither the running server nor a new one opens again without a token
    for client in (running, TestClient(create_app(registry_project))):
        _error(client.get("/api/v1/models"), 401, "unauthorized")
        bearer = {"Authorization": f"Bearer {secret}"}
        _error(client.get("/api/v1/models", headers=bearer), 401, "unauthorized")
