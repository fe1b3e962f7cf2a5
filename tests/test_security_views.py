"""A token limited to one model sees that model only, on every route of the app.

The walk enumerates ``app.routes``, so a route added later is walked too: every
answer to a model-limited token is searched for the other model's name, its
input fields, its version and its metric; a route that names the other model
answers 403 or 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from dmv import tokens
from dmv.server import create_app

SEEN, SEEN_VERSION = "seen-model", "0.0.1-0123.abcd"
OTHER, OTHER_VERSION = "hush-model", "0.7.3-0999.beef"
#: Everything that tells about the other model: its name, fields, version, metric.
SECRETS = (OTHER, "zeta_hidden_width", "zeta_hidden_depth", "0.7.3", "0999.beef", "hush_metric")


def _fit(columns: list[str]) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    x = pd.DataFrame({c: [1.0, 2.0, 3.0, 4.0] for c in columns})
    x[columns[0]] = [1.0, 2.0, 3.0, 5.0]
    return LinearRegression().fit(x, [1.0, 2.0, 3.0, 4.0]), x


@pytest.fixture
def project(tmp_path: Path) -> Iterator[dmv.Project]:
    p = dmv.init(tmp_path / "proj")
    for name, version, cols, metric in (
        (SEEN, SEEN_VERSION, ["alpha_width", "alpha_depth"], "seen_metric"),
        (OTHER, OTHER_VERSION, ["zeta_hidden_width", "zeta_hidden_depth"], "hush_metric"),
    ):
        model, x = _fit(cols)
        with p.run(name, version=version) as run:
            run.log_model(model, sample_input=x)
            run.log_metric(metric, 0.5)
        p.set_alias(f"{name}@{version}", "production")
    p.release(f"{OTHER}@{OTHER_VERSION}")
    p.release(f"{SEEN}@{SEEN_VERSION}")
    yield p
    p.close()


def _values(model: str, version: str) -> dict[str, str]:
    return {
        "name": model,
        "ref": version,
        "version": version,
        "alias": "production",
        "run_id": "0",
        "filename": "app.css",
    }


def _requests(app: Any) -> Iterator[tuple[str, str, str | None]]:
    """(method, path, the model the path names) for every route, once per model."""
    for route in iter_route_contexts(app.routes):  # included routers' routes too
        if route.path is None:
            continue
        params = set(re.findall(r"{(\w+)", route.path))
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            models = (SEEN, OTHER) if "name" in params else (None,)
            for model in models:
                # The other model is named by alias: its version must come from nowhere.
                values = _values(model or SEEN, SEEN_VERSION if model != OTHER else "production")
                path = re.sub(r"{(\w+)(?::\w+)?}", lambda m, v=values: v[m.group(1)], route.path)
                yield method, path, model


def test_a_model_limited_token_sees_only_its_model_on_every_route(project: dmv.Project) -> None:
    token, _ = tokens.create_token(project.registry, "one", "read", model=SEEN)
    app = create_app(project)
    client = TestClient(app, follow_redirects=False)
    auth = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    walked = 0
    for method, path, model in _requests(app):
        query = ""
        if path.endswith("/diff"):
            version = "production" if model == OTHER else SEEN_VERSION
            query = f"?a={version}&b={version}"
        r = client.request(method, path + query, headers=auth, json={} if method != "GET" else None)
        walked += 1
        text = r.text + " ".join(r.headers.values())
        if model == OTHER:
            assert r.status_code in (403, 404), (method, path, r.status_code, r.text[:300])
            leaked = [s for s in SECRETS[1:] if s in text]
        else:
            assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
            leaked = [s for s in SECRETS if s in text]
        assert not leaked, (method, path, leaked, r.text[:500])
    assert walked > 40
    # The UI's comparison and the audit log, asked about the other model by query.
    for path in (
        f"/ui/diff?a={OTHER}@production&b={SEEN}@{SEEN_VERSION}",
        f"/api/v1/audit?model={OTHER}",
    ):
        r = client.get(path, headers=auth)
        assert r.status_code in (403, 404), (path, r.status_code)
        assert not [s for s in SECRETS[1:] if s in r.text], path


def test_the_openapi_document_follows_the_tokens_view(project: dmv.Project) -> None:
    limited, _ = tokens.create_token(project.registry, "one", "read", model=SEEN)
    every, _ = tokens.create_token(project.registry, "all", "read")
    client = TestClient(create_app(project))
    mine = client.get("/openapi.json", headers={"Authorization": f"Bearer {limited}"})
    assert mine.status_code == 200
    assert f"/models/{SEEN}/versions/" in mine.text and "alpha_width" in mine.text
    assert not [s for s in SECRETS if s in mine.text]
    # A token for every model, asked after the limited one, still gets both: the
    # document is built per view, never one cached answer for everybody.
    full = client.get("/openapi.json", headers={"Authorization": f"Bearer {every}"})
    assert "zeta_hidden_width" in full.text and "alpha_width" in full.text
    again = client.get("/openapi.json", headers={"Authorization": f"Bearer {limited}"})
    assert again.json() == mine.json()
