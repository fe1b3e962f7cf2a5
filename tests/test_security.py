"""The server against a browser-driven attacker: Host, Origin, CSRF, bodies, headers.

In-process tests over the real app and a real project (SQLite registry, a real
scikit-learn model); the real-process and real-Chromium tests are in
``test_security_browser.py``. Each test checks the registry afterwards: a refused
request must have changed nothing.
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

from fastapi.testclient import TestClient

from dmv import tokens
from dmv.server import create_app
from dmv.server.app import default_policy
from dmv.server.security import SECURITY_HEADERS, Policy, csrf_token, json_depth

VERSION = "0.0.1-0123.abcd"
RELEASE = f"/api/v1/models/iris/versions/{VERSION}/release"
DEPRECATE = f"/api/v1/models/iris/versions/{VERSION}/deprecate"
JSON = {"content-type": "application/json"}


@pytest.fixture
def project(tmp_path: Path, small_model: Any) -> Iterator[dmv.Project]:
    p = dmv.init(tmp_path / "proj")
    with p.run("iris", version=VERSION) as run:
        run.log_model(small_model)
    yield p
    p.close()


def _state(p: dmv.Project) -> str:
    return p.show(f"iris@{VERSION}").to_dict()["state"]


# -- Host allow-list: DNS rebinding --------------------------------------------------


def test_a_rebound_host_cannot_create_a_token(project: dmv.Project) -> None:
    """The issue's curl: Host evil.example on an open server used to mint an admin token."""
    client = TestClient(create_app(project))
    r = client.post(
        "/api/v1/tokens",
        headers={"host": "evil.example:8000", **JSON},
        json={"name": "x", "scope": "admin"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    assert "evil.example" in r.json()["error"]["message"]
    assert "--allow-host" in r.json()["error"]["hint"]
    assert tokens.list_tokens(project.registry) == []
    # Reads are refused too: the rebound page could otherwise read the registry.
    assert client.get("/api/v1/models", headers={"host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000", "[::1]", "localhost:65535"],
)
def test_loopback_names_are_answered(project: dmv.Project, host: str) -> None:
    r = TestClient(create_app(project)).get("/api/v1/models", headers={"host": host})
    assert r.status_code == 200, r.text


#: Host values that are not exactly ``host[:port]`` of an allowed name.
MALFORMED_HOSTS = [
    "localhost:80@evil.example",  # userinfo-looking: the old parser read "localhost"
    "localhost.",  # a trailing dot is another name to a browser's origin
    "",
    " ",
    "localhost:0",
    "localhost:65536",
    "localhost:99999",
    "localhost:-1",
    "localhost:",
    "localhost:80:80",
    "localhost:8o",
    "::1",  # IPv6 needs brackets in Host
    "[::1",
    "[::1]x",
    "[evil.example]",
    "local host",
    "localhost/evil",
    "localhost#x",
    "localhost\\evil.example",
    "evil.example,localhost",
]


@pytest.mark.parametrize("host", MALFORMED_HOSTS)
def test_the_host_header_is_exactly_an_allowed_host_and_port(
    project: dmv.Project, host: str
) -> None:
    client = TestClient(create_app(project))
    r = client.get("/api/v1/models", headers={"host": host})
    assert r.status_code == 400, (host, r.text)
    assert r.json()["error"]["code"] == "bad_request" and r.json()["error"]["hint"]
    r = client.post(DEPRECATE, headers={"host": host, **JSON}, json={})
    assert r.status_code == 400 and _state(project) == "prerelease"


def test_allowed_hosts_come_from_the_flag_and_the_setting(project: dmv.Project) -> None:
    policy = default_policy(project, "0.0.0.0", ["dmv.example.org", "*.corp.example"])
    client = TestClient(create_app(project, policy=policy))
    for ok in ("dmv.example.org", "ci.corp.example:8000", "127.0.0.1"):
        assert client.get("/api/v1/models", headers={"host": ok}).status_code == 200, ok
    for bad in ("0.0.0.0", "corp.example", "dmv.example.org.evil.example", "evil.example"):
        assert client.get("/api/v1/models", headers={"host": bad}).status_code == 400, bad
    # The bound address, when it is one specific address, is a name the server answers.
    assert "192.0.2.7" in default_policy(project, "192.0.2.7").allowed_hosts
    other = dmv.open(project.root, allowed_hosts="dmv.internal")
    try:
        assert "dmv.internal" in default_policy(other).allowed_hosts
    finally:
        other.close()


# -- Origin on state-changing requests ----------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:9999", "null", "http://localhost"]
)
def test_a_foreign_origin_cannot_release(project: dmv.Project, origin: str) -> None:
    client = TestClient(create_app(project), base_url="http://127.0.0.1:8000")
    r = client.post(RELEASE, headers={"origin": origin, **JSON}, json={})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert _state(project) == "prerelease"


def test_the_servers_own_origin_and_non_browsers_may_write(project: dmv.Project) -> None:
    client = TestClient(create_app(project), base_url="http://127.0.0.1:8000")
    own = client.post(DEPRECATE, headers={"origin": "http://127.0.0.1:8000", **JSON}, json={})
    assert own.status_code == 200, own.text
    assert _state(project) == "deprecated"


def test_a_cross_site_fetch_without_origin_is_refused(project: dmv.Project) -> None:
    client = TestClient(create_app(project))
    r = client.post(DEPRECATE, headers={"sec-fetch-site": "cross-site", **JSON}, json={})
    assert r.status_code == 403 and _state(project) == "prerelease"
    r = client.post(DEPRECATE, headers={"sec-fetch-site": "same-site", **JSON}, json={})
    assert r.status_code == 403 and _state(project) == "prerelease"


#: The Fetch-Metadata a browser sends for ``<img src>`` on another page.
IMG = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
@pytest.mark.parametrize(
    "path", ["/api/v1/models", f"/api/v1/models/iris/versions/{VERSION}", "/", "/openapi.json"]
)
def test_a_foreign_page_cannot_read_either(project: dmv.Project, site: str, path: str) -> None:
    """An ``<img src>``, ``<script src>`` or no-cors fetch from another site: 403 on reads too."""
    client = TestClient(create_app(project))
    for dest, mode in (("image", "no-cors"), ("script", "no-cors"), ("empty", "cors")):
        headers = {"sec-fetch-site": site, "sec-fetch-mode": mode, "sec-fetch-dest": dest}
        r = client.get(path, headers=headers)
        assert r.status_code == 403, (path, site, dest, r.status_code)
        assert r.json()["error"]["code"] == "forbidden" and r.json()["error"]["hint"]


def test_links_from_other_sites_and_the_servers_own_pages_still_work(
    project: dmv.Project,
) -> None:
    client = TestClient(create_app(project))
    link = {
        "sec-fetch-site": "cross-site",
        "sec-fetch-mode": "navigate",
        "sec-fetch-dest": "document",
    }
    assert client.get("/ui/models/iris", headers=link).status_code == 200
    own = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "style"}
    assert client.get("/ui/static/app.css", headers=own).status_code == 200
    typed = {"sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert client.get("/api/v1/models", headers=typed).status_code == 200
    # A cross-site navigation is still refused where it would post or load a frame.
    frame = {**link, "sec-fetch-dest": "iframe"}
    assert client.get("/ui/models/iris", headers=frame).status_code == 403
    assert client.post(DEPRECATE, headers={**link, **JSON}, json={}).status_code == 403
    assert _state(project) == "prerelease"


def test_verify_is_a_post_a_foreign_page_cannot_start(project: dmv.Project) -> None:
    """The full verify loads the model in a fresh process: it is a POST, never a GET."""
    client = TestClient(create_app(project))
    path = f"/api/v1/models/iris/versions/{VERSION}/verify"
    r = client.get(path, headers=IMG)
    assert r.status_code in (403, 405)
    assert client.get(path).status_code == 405  # not a GET at all, even from curl
    r = client.post(path, headers={"origin": "http://evil.example", **JSON}, json={})
    assert r.status_code == 403
    r = client.post(path)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True


# -- JSON-only writes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_writes_take_json_only(project: dmv.Project, content_type: str) -> None:
    """The bodies a foreign page can send without a preflight are all refused (415)."""
    client = TestClient(create_app(project))
    r = client.post(DEPRECATE, content=b"reason=x", headers={"content-type": content_type})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert "application/json" in r.json()["error"]["hint"]
    r = client.post(RELEASE, content=b"", headers={"content-type": content_type})
    assert r.status_code == 415
    assert _state(project) == "prerelease"


def test_a_body_without_content_type_is_refused_but_an_empty_post_is_fine(
    project: dmv.Project,
) -> None:
    client = TestClient(create_app(project))
    r = client.post(DEPRECATE, content=b'{"reason": "x"}', headers={"content-type": ""})
    assert r.status_code == 415, r.text
    r = client.post(DEPRECATE)  # curl -X POST: no body, no type
    assert r.status_code == 200 and _state(project) == "deprecated"


# -- cookie sessions need the CSRF token ------------------------------------------------


def test_the_login_cookie_writes_only_with_its_csrf_token(project: dmv.Project) -> None:
    secret, _ = tokens.create_token(project.registry, "admin", "admin")
    app = create_app(project)
    client = TestClient(app)
    client.cookies.set("dmv_token", secret)
    r = client.post(DEPRECATE, json={})
    assert r.status_code == 403 and "x-csrf-token" in r.json()["error"]["message"]
    r = client.post(DEPRECATE, json={}, headers={"x-csrf-token": "0" * 64})
    assert r.status_code == 403
    assert _state(project) == "prerelease"
    # The UI's pages carry the session's token for its own scripts.
    page = client.get("/")
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text)
    assert found, page.text[:500]
    assert found.group(1) == csrf_token(app.state.policy.secret, secret)
    r = client.post(DEPRECATE, json={}, headers={"x-csrf-token": found.group(1)})
    assert r.status_code == 200, r.text
    # Reading with the cookie needs no token: a foreign page cannot read the answer.
    assert client.get("/api/v1/models").status_code == 200


def test_a_bearer_token_needs_no_csrf_token(project: dmv.Project) -> None:
    secret, _ = tokens.create_token(project.registry, "ci", "write")
    client = TestClient(create_app(project))
    r = client.post(DEPRECATE, json={}, headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and _state(project) == "deprecated"


# -- locked means locked -----------------------------------------------------------------


def test_a_locked_server_documents_itself_only_to_a_reader(project: dmv.Project) -> None:
    client = TestClient(create_app(project))
    assert "/api/v1/models" in client.get("/openapi.json").json()["paths"]  # open: local mode
    secret, _ = tokens.create_token(project.registry, "reader", "read")
    r = client.get("/openapi.json")
    assert r.status_code == 401 and "iris" not in r.text
    assert r.json()["error"]["code"] == "unauthorized"
    r = client.get("/openapi.json", headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
    assert client.get("/openapi.json", headers={"authorization": "Bearer dmv_x"}).status_code == 401


def test_no_swagger_or_redoc_pages_with_cdn_scripts(project: dmv.Project) -> None:
    client = TestClient(create_app(project))
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "cdn.jsdelivr" not in r.text and "<script" not in r.text


@pytest.mark.parametrize("path", ["/", "/api/v1/models", "/login", "/nope", "/openapi.json"])
def test_every_answer_carries_the_security_headers(project: dmv.Project, path: str) -> None:
    r = TestClient(create_app(project)).get(path)
    for key, value in SECURITY_HEADERS:
        assert r.headers.get(key) == value, (path, key)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_refusals_carry_the_security_headers_too(project: dmv.Project) -> None:
    r = TestClient(create_app(project)).get("/", headers={"host": "evil.example"})
    assert r.status_code == 400 and r.headers["x-frame-options"] == "DENY"


# -- limits ------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_declared_or_streamed(project: dmv.Project) -> None:
    policy = Policy(max_request_size=1024)
    client = TestClient(create_app(project, policy=policy))
    big = b'{"reason": "' + b"x" * 2000 + b'"}'
    r = client.post(DEPRECATE, content=big, headers=JSON)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large" and "1,024" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    r = client.post(DEPRECATE, content=chunks(), headers=JSON)
    assert r.status_code == 413, r.text
    assert _state(project) == "prerelease"
    r = client.post(DEPRECATE, content=b'{"reason": "small"}', headers=JSON)
    assert r.status_code == 200


def test_the_size_limit_is_a_setting(tmp_path: Path) -> None:
    p = dmv.init(tmp_path / "p", max_request_size="512kB")
    try:
        assert p.config["max_request_size"] == 512 * 1024
        assert default_policy(p).max_request_size == 512 * 1024
    finally:
        p.close()
    with pytest.raises(dmv.errors.ConfigError, match="max_request_size"):
        dmv.open(tmp_path / "p", max_request_size="lots")
    assert dmv.open(tmp_path / "p").config["max_request_size"] == 512 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models",
        "/models/iris/versions/latest/predict",
        "/v2/models/iris/versions/0.0.1-0123.abcd/infer",
    ],
)
def test_deep_json_is_a_400_never_a_500(project: dmv.Project, path: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    client = TestClient(create_app(project), raise_server_exceptions=False)
    r = client.post(path, content=b'{"inputs": ' + deep + b"}", headers=JSON)
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    if path.startswith("/v2/"):  # the Open Inference Protocol's error is a string
        assert isinstance(error, str) and "nests" in error
    else:
        assert error["code"] == "bad_request"
        assert "nests" in error["message"]


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth(b'{"a": "[[[[[[{{{{\\"[[[["}') == 1
    assert json_depth(b"[[1, [2]], {}]") == 3
    assert json_depth(b"") == 0
    assert json_depth(b"[" * 200_000) == 200_000  # no recursion, no crash
