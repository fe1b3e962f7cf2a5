"""The REST API under /api/v1: shapes, pages, errors, aliases, audit; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from dmv.server import create_app

V1, V2, V3 = "0.0.1-0123.abcd", "0.0.2-0123.abcd", "0.1.0-0123.efgh"
API = "/api/v1"


@pytest.fixture
def populated(any_project: dmv.Project, small_model: Any) -> dmv.Project:
    """price-model with three prereleases (V2 has two runs), an alias and a second model."""
    p = any_project
    p.create_model("price-model", purpose="price forecast", function="regression")
    for number in (V1, V2, V2, V3):
        with p.run("price-model", version=number, params={"c": 1.0}) as run:
            run.log_metrics({"accuracy": 0.9}, split="test")
            run.log_model(small_model)
    p.set_alias(f"price-model@{V1}", "production")
    p.create_model("churn", purpose="retention")
    return p


@pytest.fixture
def client(populated: dmv.Project) -> TestClient:
    return TestClient(create_app(populated))


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message"[, "hint"][, "details"]}}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "hint", "details"}
    assert "Traceback" not in response.text
    return dict(error)


# -- models -----------------------------------------------------------------------------


def test_models_list_and_pagination(client: TestClient) -> None:
    for i in range(5):
        assert client.post(f"{API}/models", json={"name": f"m{i}"}).status_code == 201
    page = client.get(f"{API}/models", params={"limit": 3, "offset": 2}).json()
    assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == 2
    assert [m["name"] for m in page["items"]] == ["m1", "m2", "m3"]
    last = client.get(f"{API}/models", params={"limit": 3, "offset": 6}).json()
    assert [m["name"] for m in last["items"]] == ["price-model"]
    everything = client.get(f"{API}/models").json()
    assert everything["total"] == len(everything["items"]) == 7
    price = next(m for m in everything["items"] if m["name"] == "price-model")
    assert price["latest_prerelease"] == V3 and price["aliases"] == {"production": V1}
    r = client.get(f"{API}/models", params={"limit": 0})
    error = _error(r, 422, "invalid_input")
    assert error["details"]["problems"][0]["field"] == "limit"


def test_model_create_get_update(client: TestClient, populated: dmv.Project) -> None:
    body = {"name": "fraud", "purpose": "fraud detection", "primary_metric": "auc"}
    r = client.post(f"{API}/models", json=body)
    assert r.status_code == 201 and r.json()["purpose"] == "fraud detection"
    assert client.get(f"{API}/models/fraud").json()["primary_metric"] == "auc"
    r = client.patch(f"{API}/models/fraud", json={"function": "classification"})
    assert r.json()["function"] == "classification" and r.json()["purpose"] == "fraud detection"
    assert populated.model("fraud").function == "classification"
    _error(client.post(f"{API}/models", json={"name": "fraud"}), 409, "conflict")
    _error(client.get(f"{API}/models/nobody"), 404, "not_found")
    _error(client.patch(f"{API}/models/nobody", json={"purpose": "x"}), 404, "not_found")
    # The document states dmv's grammar, so the request is refused naming the field.
    bad = _error(client.post(f"{API}/models", json={"name": "Bad Name"}), 422, "invalid_input")
    assert bad["details"]["problems"][0]["field"] == "name"


def test_request_validation_names_each_bad_field(client: TestClient) -> None:
    r = client.post(f"{API}/models", json={"purpose": 3, "colour": "red"})
    error = _error(r, 422, "invalid_input")
    fields = {p["field"]: p["problem"] for p in error["details"]["problems"]}
    assert fields == {"name": "missing", "purpose": "string_type", "colour": "extra_forbidden"}
    r = client.post(
        f"{API}/models", content=b"{not json", headers={"content-type": "application/json"}
    )
    _error(r, 422, "invalid_input")


def test_unknown_route_method_and_crash_share_the_shape(populated: dmv.Project) -> None:
    app: FastAPI = create_app(populated)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    client = TestClient(app, raise_server_exceptions=False)
    _error(client.get(f"{API}/nothing-here"), 404, "not_found")
    _error(client.delete(f"{API}/models"), 405, "method_not_allowed")
    error = _error(client.get("/boom"), 500, "internal")
    assert "secret internals" not in error["message"]


# -- versions and runs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [(V2, V2), ("0.0.2", V2), ("0.0", V2), ("0", V3), ("production", V1)],
)
def test_version_by_every_reference_form(client: TestClient, ref: str, expected: str) -> None:
    body = client.get(f"{API}/models/price-model/versions/{ref}").json()
    assert body["version"] == expected and body["model"] == "price-model"
    assert body["ref"] == f"price-model@{expected}"


def test_version_errors(client: TestClient) -> None:
    _error(client.get(f"{API}/models/price-model/versions/latest"), 404, "not_found")
    _error(client.get(f"{API}/models/price-model/versions/staging"), 404, "not_found")
    bad = _error(client.get(f"{API}/models/price-model/versions/01.2"), 422, "invalid_input")
    assert bad["details"]["problems"][0]["field"] == "ref"
    _error(client.get(f"{API}/models/nobody/versions/1"), 404, "not_found")


def test_versions_list_paginated(client: TestClient) -> None:
    page = client.get(f"{API}/models/price-model/versions", params={"limit": 2}).json()
    assert page["total"] == 3 and [v["version"] for v in page["items"]] == [V1, V2]
    rest = client.get(f"{API}/models/price-model/versions", params={"offset": 2}).json()
    assert [v["version"] for v in rest["items"]] == [V3]
    assert [v["run_count"] for v in page["items"]] == [1, 2]
    released = client.get(f"{API}/models/price-model/versions", params={"state": "released"})
    assert released.json()["total"] == 0


def test_runs(client: TestClient) -> None:
    runs = client.get(f"{API}/models/price-model/versions/0.0.2/runs").json()
    assert runs["total"] == 2 and [r["id"] for r in runs["items"]] == ["tr0", "tr1"]
    assert runs["items"][0]["metrics"] == {"test": {"accuracy": 0.9}}
    one = client.get(f"{API}/models/price-model/versions/{V2}/runs/tr1").json()
    assert one["id"] == "tr1" and one["version"] == V2 and "environment" in one
    assert one["artifacts"][0]["kind"] == "model"
    _error(client.get(f"{API}/models/price-model/versions/{V2}/runs/tr7"), 404, "not_found")
    _error(client.get(f"{API}/models/price-model/versions/{V2}/runs/x1"), 422, "invalid_input")
    assert client.get(f"{API}/models/price-model/runs").json()["total"] == 0


# -- aliases and audit ------------------------------------------------------------------------


def test_alias_put_moves_and_is_audited(client: TestClient, populated: dmv.Project) -> None:
    url = f"{API}/models/price-model/aliases/production"
    r = client.put(url, json={"version": "0.0.2"})
    assert r.status_code == 200 and r.json()["version"] == V2
    assert populated.resolve("price-model@production").number == V2
    entry = populated.audit(action="alias", limit=1)[0]
    assert (entry.action, entry.target, entry.details) == (
        "alias.set",
        "production",
        {"from": V1, "to": V2},
    )
    aliases = client.get(f"{API}/models/price-model/aliases").json()
    assert [(a["alias"], a["version"]) for a in aliases["items"]] == [("production", V2)]
    audit = client.get(f"{API}/audit", params={"model": "price-model", "action": "alias"}).json()
    assert audit["items"][0]["details"] == {"from": V1, "to": V2}
    assert client.delete(url).status_code == 204
    _error(client.delete(url), 404, "not_found")
    _error(client.get(f"{API}/models/price-model/versions/production"), 404, "not_found")
    _error(client.put(url, json={"version": "9.9.9"}), 404, "not_found")
    latest = f"{API}/models/price-model/aliases/latest"
    _error(client.put(latest, json={"version": V1}), 422, "invalid_version")
    _error(client.put(url, json={}), 422, "invalid_input")


def test_audit_filters_and_pages(client: TestClient) -> None:
    everything = client.get(f"{API}/audit", params={"limit": 1000}).json()["items"]
    assert everything[0]["id"] > everything[-1]["id"]  # newest first
    runs = client.get(f"{API}/audit", params={"action": "run."}).json()["items"]
    assert len(runs) == 4 and {e["action"] for e in runs} == {"run.finished"}
    second = client.get(f"{API}/audit", params={"limit": 2, "offset": 1}).json()["items"]
    assert [e["id"] for e in second] == [e["id"] for e in everything[1:3]]
    churn = client.get(f"{API}/audit", params={"model": "churn"}).json()["items"]
    assert [e["action"] for e in churn] == ["model.create"]


# -- release, select, deprecate -------------------------------------------------------------


def test_release_select_deprecate(client: TestClient, populated: dmv.Project) -> None:
    base = f"{API}/models/price-model/versions"
    r = client.post(f"{base}/{V2}/select", json={"run": "tr0"})
    assert r.status_code == 200, r.text
    assert r.json()["serving_run"] == "tr0"
    _error(client.post(f"{base}/{V2}/select", json={"run": "tr9"}), 404, "not_found")
    r = client.post(f"{base}/0.0.2/release")
    assert r.status_code == 201, r.text
    released = r.json()
    assert released["version"] == "1.0.2-0123.abcd" and released["state"] == "released"
    assert released["released_from"] == V2
    assert client.get(f"{base}/latest").json()["version"] == "1.0.2-0123.abcd"
    r = client.post(f"{base}/{V3}/release", json={"major": True})
    assert r.status_code == 201 and r.json()["version"] == "2.1.0-0123.efgh"
    r = client.post(f"{base}/1.0.2-0123.abcd/deprecate", json={"reason": "superseded"})
    assert r.status_code == 200 and r.json()["state"] == "deprecated"
    assert populated.show("price-model@1.0.2-0123.abcd").state == "deprecated"
    _error(client.delete(f"{base}/2.1.0-0123.efgh"), 409, "immutable")
    _error(client.delete(f"{base}/{V1}"), 409, "conflict")  # production points at it
    assert client.delete(f"{API}/models/price-model/aliases/production").status_code == 204
    assert client.delete(f"{base}/{V1}").status_code == 204
    _error(client.get(f"{base}/{V1}"), 404, "not_found")
    actions = [e.action for e in populated.audit(model="price-model", action="version.")]
    assert actions[:5] == [
        "version.delete",
        "version.deprecate",
        "version.release",
        "version.release",
        "version.select",
    ]
