"""A foreign page in a real Chromium cannot change a real ``dmv server`` process.

Each test starts ``dmv server`` as its own process on a real project, and an
attacker's web server on another port. Chromium resolves ``evil.example`` to
127.0.0.1 (``--host-resolver-rules``), which is exactly what a DNS-rebinding
attacker arranges, so the attacker's page is a different *site*
(``http://evil.example:Q``); a second attacker page at ``http://127.0.0.1:Q`` is the
same site on another port, to which the browser does send the SameSite=Lax login
cookie — only the server's own checks stand in its way there. After every attack
the registry is read directly: nothing may have changed.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dmv

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")

from dmv import tokens

CHROMIUM = "/usr/bin/chromium"
VERSION = "0.0.1-0123.abcd"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _source_path() -> str:
    """This dmv's source folder first, absolute: the child runs in the project's folder."""
    own = str(Path(dmv.__file__).resolve().parents[1])
    return os.pathsep.join([own, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])


class DmvServer:
    """``dmv server`` as a child process, on a real project folder."""

    def __init__(self, root: Path, host: str = "127.0.0.1", *extra: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.port = _free_port(family, host.strip("[]"))
        self.host = host
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dmv",
                "server",
                "--host",
                host,
                "--port",
                str(self.port),
                *extra,
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _source_path()},
        )
        bare = host.strip("[]")
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dmv server exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                with socket.create_connection((bare, self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("dmv server did not start") from None
                time.sleep(0.1)
        shown = f"[{bare}]" if ":" in bare else bare
        self.url = f"http://{shown}:{self.port}"

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host.strip("[]"), self.port, timeout=10)
        data = None if body is None else json.dumps(body).encode()
        conn.request(
            method, path, body=data, headers={"content-type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        return response.status, json.loads(text) if text.startswith(("{", "[")) else text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()


class Attacker:
    """A web server of the attacker's, serving one page on its own port."""

    def __init__(self) -> None:
        self.html = ""
        attacker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = attacker.html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def project(tmp_path: Path, small_model: Any) -> Iterator[dmv.Project]:
    p = dmv.init(tmp_path / "proj")
    with p.run("iris", version=VERSION) as run:
        run.log_model(small_model)
    p.update_model("iris", description="before")
    yield p
    p.close()


@pytest.fixture
def server(project: dmv.Project) -> Iterator[DmvServer]:
    s = DmvServer(project.root)
    yield s
    s.stop()


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    a = Attacker()
    yield a
    a.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                # What a DNS-rebinding attacker arranges: their name, our address.
                "--host-resolver-rules=MAP evil.example 127.0.0.1",
            ],
        )
        yield b
        b.close()


def attack_page(target: str) -> str:
    """Everything a page may send to another origin without asking it first, and more."""
    v = f"/api/v1/models/iris/versions/{VERSION}"
    return f"""<!doctype html><html><body>
<iframe name="sink"></iframe>
<script>
const T = {json.dumps(target)};
function post(path, fields) {{
  const f = document.createElement("form");
  f.method = "POST"; f.action = T + path; f.target = "sink";
  for (const [k, val] of Object.entries(fields)) {{
    const i = document.createElement("input"); i.name = k; i.value = val; f.appendChild(i);
  }}
  document.body.appendChild(f);
  return new Promise(done => {{
    document.querySelector("iframe").onload = () => done("loaded");
    setTimeout(() => done("timeout"), 3000);
    f.submit();
  }});
}}
async function attack() {{
  const out = {{}};
  const opts = (body, type) => ({{method: "POST", mode: "no-cors", credentials: "include",
                                   headers: {{"Content-Type": type}}, body}});
  for (const [name, path, init] of [
    ["release", "{v}/release", opts("{{}}", "text/plain")],
    ["release-empty", "{v}/release", {{method: "POST", mode: "no-cors", credentials: "include",
                                        headers: {{"Content-Type": "text/plain"}}}}],
    ["token", "/api/v1/tokens", opts('{{"name":"x","scope":"admin"}}', "text/plain")],
    ["form-fetch", "/api/v1/models/iris",
     opts("description=pwned", "application/x-www-form-urlencoded")],
  ]) {{
    try {{ await fetch(T + path, init); out[name] = "sent"; }}
    catch (e) {{ out[name] = "blocked: " + e; }}
  }}
  try {{
    await fetch(T + "/api/v1/models/iris", {{method: "PATCH", credentials: "include",
      headers: {{"Content-Type": "application/json"}}, body: '{{"description":"pwned"}}'}});
    out["patch-json"] = "sent";
  }} catch (e) {{ out["patch-json"] = "blocked: " + e; }}
  out["deprecate-form"] = await post("{v}/deprecate", {{reason: "pwned"}});
  out["token-form"] = await post("/api/v1/tokens", {{name: "y", scope: "admin"}});
  out["logout-form"] = await post("/logout", {{}});
  out["login-form"] = await post("/login", {{token: "dmv_attacker", next: "/"}});
  return out;
}}
</script></body></html>"""


def _unchanged(project: dmv.Project, admins: int) -> None:
    assert project.show(f"iris@{VERSION}").to_dict()["state"] == "prerelease"
    assert [v.to_dict()["version"] for v in project.versions("iris")] == [VERSION]
    assert project.model("iris").to_dict()["description"] == "before"
    assert len(tokens.list_tokens(project.registry)) == admins


#: What a foreign page learns of an answer: its status (a form's frame) or, when the
#: server's Cross-Origin-Resource-Policy hides it from a fetch, only that one came back.
HIDDEN = "net::ERR_BLOCKED_BY_RESPONSE"


def _run_attack(
    context: Any, page_url: str, attacker: Attacker, server: DmvServer
) -> dict[str, Any]:
    """Run the attack page; its results, and each request to dmv with its outcome."""
    attacker.html = attack_page(server.url)
    seen: list[dict[str, Any]] = []
    page = context.new_page()
    page.set_default_timeout(15_000)

    def record(request: Any, outcome: Any) -> None:
        if request.url.startswith(server.url):
            seen.append(
                {
                    "what": f"{request.method} {request.url[len(server.url) :]}",
                    "outcome": outcome,
                    "cookie": request.all_headers().get("cookie", ""),
                }
            )

    page.on("response", lambda r: record(r.request, r.status))
    page.on("requestfailed", lambda r: record(r, r.failure))
    page.goto(page_url)
    result: dict[str, Any] = page.evaluate("attack()")
    page.close()
    result["_seen"] = seen
    return result


def _writes_refused(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every state-changing request reached dmv and was refused (403/415, or hidden)."""
    writes = [s for s in seen if not s["what"].startswith(("GET", "OPTIONS"))]
    assert any("/release" in s["what"] for s in writes), seen
    assert any("/deprecate" in s["what"] for s in writes), seen
    for s in writes:
        if s["what"].startswith("PATCH"):
            continue  # preflighted: the browser never sent it (asserted by the caller)
        assert s["outcome"] in (403, 415) or str(s["outcome"]).startswith(HIDDEN), s
    return writes


def test_a_foreign_page_cannot_change_an_open_server(
    project: dmv.Project, server: DmvServer, attacker: Attacker, browser: Any
) -> None:
    """No token anywhere yet (local mode): Origin and JSON-only writes are all that stand."""
    for origin in (f"http://evil.example:{attacker.port}", f"http://127.0.0.1:{attacker.port}"):
        context = browser.new_context()
        result = _run_attack(context, origin + "/", attacker, server)
        context.close()
        # Each request reached the server (no-cors and forms need no permission), which
        # refused it; a JSON fetch needs a preflight the server never grants.
        _writes_refused(result["_seen"])
        assert result["patch-json"].startswith("blocked"), result
        _unchanged(project, admins=0)


def test_a_foreign_page_cannot_change_a_locked_server_with_the_login_cookie(
    project: dmv.Project, server: DmvServer, attacker: Attacker, browser: Any
) -> None:
    secret, _ = tokens.create_token(project.registry, "admin", "admin")
    context = browser.new_context()
    login = context.new_page()
    login.goto(server.url + "/login")
    login.fill("#token", secret)
    login.click("button[type=submit]")
    login.wait_for_url(server.url + "/")
    assert login.locator("form.logout button").is_visible()
    login.close()
    for origin in (f"http://127.0.0.1:{attacker.port}", f"http://evil.example:{attacker.port}"):
        result = _run_attack(context, origin + "/", attacker, server)
        writes = _writes_refused(result["_seen"])
        if origin.startswith("http://127.0.0.1"):
            # Same site, another port: the browser sent the admin's cookie along, and
            # only the server's checks refused it.
            assert any("dmv_token=" in s["cookie"] for s in writes), writes
        _unchanged(project, admins=1)
    # Still logged in as the admin: the forged log-out and log-in did nothing.
    cookies = {c["name"]: c["value"] for c in context.cookies(server.url)}
    assert cookies.get("dmv_token") == secret
    context.close()


def test_a_rebound_name_gets_nothing_in_the_browser(
    project: dmv.Project, server: DmvServer, browser: Any
) -> None:
    """The page is served (the name resolves to us) but the server will not answer it."""
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"http://evil.example:{server.port}/")
    assert response is not None and response.status == 400
    assert "evil.example" in page.content()
    status = page.evaluate(
        """async () => (await fetch("/api/v1/tokens", {method: "POST",
             headers: {"Content-Type": "application/json"},
             body: JSON.stringify({name: "x", scope: "admin"})})).status"""
    )
    assert status == 400
    context.close()
    _unchanged(project, admins=0)
    # The same request with curl's headers, outside any browser (the report).
    status, body = server.request(
        "POST",
        "/api/v1/tokens",
        {"name": "x", "scope": "admin"},
        {"host": f"evil.example:{server.port}"},
    )
    assert status == 400 and "token" not in body
    assert tokens.list_tokens(project.registry) == []


def test_the_ui_works_under_its_content_security_policy(
    project: dmv.Project, server: DmvServer, browser: Any
) -> None:
    secret, _ = tokens.create_token(project.registry, "admin", "admin")
    context = browser.new_context(base_url=server.url)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    response = page.goto("/ui/models/iris")
    assert response is not None and response.status == 401
    assert page.locator("#token").is_visible()  # a login form, not a header to send
    page.fill("#token", secret)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/models/iris")
    assert "iris" in page.title()
    stylesheet = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert stylesheet and "Times" not in stylesheet  # app.css applied under style-src 'self'
    for path in (
        "/",
        f"/ui/models/iris/versions/{VERSION}",
        f"/ui/diff?a=iris@{VERSION}&b=iris@{VERSION}",
    ):
        r = page.goto(path)
        assert r is not None and r.status == 200, path
        assert page.evaluate("window.__csp") == [], (path, page.evaluate("window.__csp"))
    assert not [m for m in console if "Content Security Policy" in m], console
    # A script of this origin writes with the page's CSRF token, and only with it.
    write = """async (withToken) => {
        const token = document.querySelector('meta[name=csrf-token]').content;
        const headers = {"Content-Type": "application/json"};
        if (withToken) headers["X-CSRF-Token"] = token;
        const r = await fetch("/api/v1/models/iris", {method: "PATCH", headers,
                              body: JSON.stringify({description: "from the ui"})});
        return r.status; }"""
    assert page.evaluate(write, False) == 403
    assert project.model("iris").to_dict()["description"] == "before"
    assert page.evaluate(write, True) == 200
    assert project.model("iris").to_dict()["description"] == "from the ui"
    # Log out is a button (a POST with the token), and it works.
    page.click("form.logout button")
    page.wait_for_url(server.url + "/")
    assert not any(c["name"] == "dmv_token" for c in context.cookies(server.url))
    assert page.goto("/ui/models/iris").status == 401  # type: ignore[union-attr]
    context.close()


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_dmv_server_listens_on_ipv6_loopback(project: dmv.Project, host: str) -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    s = DmvServer(project.root, host)
    try:
        assert s.url.startswith("http://[::1]:")
        status, body = s.request("GET", "/api/v1/models", headers={"host": f"[::1]:{s.port}"})
        assert status == 200 and body["items"][0]["name"] == "iris"
        status, _ = s.request("GET", "/api/v1/models", headers={"host": "evil.example"})
        assert status == 400
    finally:
        s.stop()


def test_allow_host_lets_a_real_deployment_name_in(project: dmv.Project) -> None:
    s = DmvServer(project.root, "127.0.0.1", "--allow-host", "dmv.example.org")
    try:
        status, _ = s.request("GET", "/api/v1/models", headers={"host": "dmv.example.org"})
        assert status == 200
        status, _ = s.request("GET", "/api/v1/models", headers={"host": "other.example.org"})
        assert status == 400
    finally:
        s.stop()
