"""Webhooks: an outbox written with each change, delivered signed, at least once.

Every test talks to a real HTTP receiver (``http.server`` in a thread) that verifies
``X-Dmv-Signature-256`` with ``hmac.compare_digest``, as a deploy system would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.cli import main
from dmv.errors import ConfigError
from dmv.integrations.webhooks import MAX_RESPONSE, sign

SECRET = "s3cr3t-do-not-print"
ENV = "DMV_TEST_WEBHOOK_SECRET"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A deploy system's endpoint: verifies each signature, records what arrived."""

    def __init__(self, port: int, secret: str = SECRET) -> None:
        self.port = port
        self.secret = secret.encode()
        self.received: list[dict[str, Any]] = []
        self.forged = 0
        self.mode = "ok"  # ok | redirect | slow | big | hang-first
        self.hung = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Dmv-Signature-256", "")
                if not hmac.compare_digest(expected, given):
                    receiver.forged += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append(
                    {
                        "event": self.headers["X-Dmv-Event"],
                        "delivery": self.headers["X-Dmv-Delivery"],
                        "key": self.headers["Idempotency-Key"],
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(body),
                    }
                )
                if receiver.mode == "hang-first" and not receiver.hung.is_set():
                    receiver.hung.set()
                    time.sleep(30)  # the sender is killed meanwhile: no answer reaches it
                    return
                if receiver.mode == "garbage":
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    return
                if receiver.mode == "slow":
                    time.sleep(5)
                if receiver.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://evil.example:9/steal?token=x")
                    self.end_headers()
                    return
                self.send_response(200)
                if receiver.mode == "big":
                    self.send_header("Content-Length", str(50 * 1024 * 1024))
                    self.end_headers()
                    try:
                        for _ in range(50 * 1024):
                            self.wfile.write(b"x" * 1024)
                    except OSError:
                        pass  # the sender stopped reading: as it should
                    return
                self.end_headers()
                self.wfile.write(b"thanks")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> set[str]:
        return {r["key"] for r in self.received}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())  # down until the test starts it
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def hook_config(
    url: str, events: str = '["release", "alias", "deprecate", "verify_failed"]', **extra: Any
) -> str:
    more = "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items())
    return f'\n[[webhooks]]\nurl = "{url}"\nevents = {events}\nsecret_env = "{ENV}"\n{more}'


def with_hooks(p: dmv.Project, text: str) -> dmv.Project:
    """The project ``p`` reopened with ``text`` added to its dmv.toml."""
    with (p.root / "dmv.toml").open("a", encoding="utf-8") as f:
        f.write(text)
    p.close()
    return dmv.Project(p.root)


def train(p: dmv.Project, version: str, rmse: float = 1.0) -> None:
    with p.run("price-model", version=version) as run:
        run.log_metrics({"rmse": rmse}, split="test")


def changes(p: dmv.Project) -> None:
    """A release, two alias moves and a deprecation: 4 subscribed events."""
    train(p, "0.1.0-0123.abcd")
    train(p, "0.1.0-0123.efgh")
    first = p.release("price-model@0.1.0-0123.abcd")
    p.set_alias(first.version, "production")
    second = p.release("price-model@0.1.0-0123.efgh")
    p.set_alias(second.version, "production")
    p.deprecate(first.version, reason="superseded")


def outbox(p: dmv.Project) -> list[Any]:
    return list(reversed(p.registry.list_deliveries(limit=None)))


def test_each_event_joins_the_outbox_in_its_changes_transaction(any_project: dmv.Project) -> None:
    p = with_hooks(any_project, hook_config("http://127.0.0.1:9/hook"))
    changes(p)
    rows = outbox(p)
    assert [r.event for r in rows] == ["release", "alias", "release", "alias", "deprecate"]
    assert {r.status for r in rows} == {"pending"} and all(r.attempts == 0 for r in rows)
    release = json.loads(rows[0].body)
    assert release["event"] == "release" and release["version"] == "price-model 1.1.0-0123.abcd"
    assert release["details"]["from"] == "0.1.0-0123.abcd" and release["id"] == rows[0].event_id
    assert json.loads(rows[3].body)["details"] == {
        "from": "1.1.0-0123.abcd",
        "to": "1.1.0-0123.efgh",
    }
    # A refused change writes nothing: the outbox row goes down with its transaction.
    with pytest.raises(dmv.ConflictError):
        p.deprecate("price-model@production")
    with pytest.raises(dmv.NotFound):
        p.remove_alias("price-model", "staging")
    assert len(outbox(p)) == 5
    # Events nobody subscribed to (version.create above, a select) write no row.
    assert {r.event for r in outbox(p)} <= {"release", "alias", "deprecate"}
    p.close()


def test_receiver_down_then_up_every_event_arrives_signed(
    any_project: dmv.Project, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    p = with_hooks(any_project, hook_config(receiver.url))
    changes(p)
    root = str(p.root)
    # The receiver is down: nothing is lost, the command says so and exits 1.
    assert main(["-C", root, "webhooks", "deliver", "--json"]) == 1
    down = json.loads(capsys.readouterr().out)
    assert down["pending"] == 5 and down["delivered"] == 0 and not down["ok"]
    assert all("Connection refused" in a["error"] for a in down["attempts"])
    assert main(["-C", root, "webhooks", "list", "--json", "--status", "pending"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 5 and {d["attempts"] for d in listed} == {1}
    assert all(d["last_error"] and d["url"] == receiver.url for d in listed)
    # Up again: everything arrives, each signature verifies, each event once.
    receiver.start()
    assert main(["-C", root, "webhooks", "deliver", "--json"]) == 0
    up = json.loads(capsys.readouterr().out)
    assert up["delivered"] == 5 and up["pending"] == 0 and up["ok"]
    assert receiver.forged == 0
    assert [r["event"] for r in receiver.received] == [
        "release",
        "alias",
        "release",
        "alias",
        "deprecate",
    ]
    assert len(receiver.keys()) == 5
    assert all(r["key"] == r["body"]["id"] for r in receiver.received)
    rows = outbox(p)
    assert {r.status for r in rows} == {"delivered"} and {r.attempts for r in rows} == {2}
    # The body that arrived is byte for byte the one stored: the signature covers it.
    assert [r["body"] for r in receiver.received] == [json.loads(r.body) for r in rows]
    # Nothing left: a second run sends nothing and succeeds.
    assert main(["-C", root, "webhooks", "deliver"]) == 0
    assert "0 delivered, 0 pending, 0 failed" in capsys.readouterr().out
    # A redelivery is a duplicate the receiver recognises: same event id, same delivery id.
    first = rows[0]
    assert main(["-C", root, "webhooks", "redeliver", str(first.id)]) == 0
    assert main(["-C", root, "webhooks", "deliver"]) == 0
    again = receiver.received[-1]
    assert (again["key"], again["delivery"]) == (first.event_id, first.delivery)
    assert len(receiver.received) == 6 and len(receiver.keys()) == 5
    assert [a.action for a in p.audit(action="webhook.redeliver")] == ["webhook.redeliver"]
    p.close()


def test_retries_with_backoff_until_the_receiver_comes_up(
    project: dmv.Project, receiver: Receiver
) -> None:
    p = with_hooks(project, hook_config(receiver.url))
    changes(p)
    threading.Timer(2.0, receiver.start).start()  # up in 2 s, while deliver waits
    started = time.monotonic()
    summary = p.deliver_webhooks(wait=30)
    assert summary.ok and summary.delivered == 5, summary.to_dict()
    assert time.monotonic() - started < 20
    tries = [a["attempt"] for a in summary.attempts if a["id"] == outbox(p)[0].id]
    assert tries[0] == 1 and tries[-1] >= 2  # failed while down, retried after a backoff
    assert len(receiver.keys()) == 5 and receiver.forged == 0
    p.close()


def test_a_wrong_secret_is_refused_by_the_receiver(
    project: dmv.Project, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.start()
    p = with_hooks(project, hook_config(receiver.url))
    changes(p)
    monkeypatch.setenv(ENV, "another secret")
    summary = p.deliver_webhooks()
    assert summary.pending == 5 and receiver.forged == 5 and receiver.received == []
    assert all(a["status"] == 401 for a in summary.attempts)
    p.close()


def test_no_secret_nothing_sent_and_no_secret_printed(
    project: dmv.Project,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.start()
    url = f"http://deployer:hunter2@127.0.0.1:{receiver.port}/hook?token=abc123&x=1"
    p = with_hooks(project, hook_config(url))
    changes(p)
    monkeypatch.delenv(ENV)
    summary = p.deliver_webhooks()
    assert summary.pending == 5 and receiver.received == [] and receiver.forged == 0
    assert all(f"{ENV} is not set" in str(a["error"]) for a in summary.attempts)
    monkeypatch.setenv(ENV, SECRET)
    assert main(["-C", str(p.root), "webhooks", "deliver"]) == 0
    assert main(["-C", str(p.root), "webhooks", "list"]) == 0
    assert main(["-C", str(p.root), "webhooks", "list", "--json"]) == 0
    out = capsys.readouterr()
    for secret in (SECRET, "hunter2", "abc123"):
        assert secret not in out.out + out.err
    assert f"http://deployer@127.0.0.1:{receiver.port}/hook?x=1" in out.out
    assert len(receiver.received) == 5
    # The URL's user information is sent as Basic authentication, not in the request line.
    assert {r["auth"] for r in receiver.received} == {"Basic ZGVwbG95ZXI6aHVudGVyMg=="}
    p.close()


def test_a_redirect_is_never_followed(project: dmv.Project, receiver: Receiver) -> None:
    receiver.start()
    receiver.mode = "redirect"
    p = with_hooks(project, hook_config(receiver.url, events='["release"]'))
    train(p, "0.1.0-0123.abcd")
    p.release("price-model@0.1.0-0123.abcd")
    summary = p.deliver_webhooks()
    (attempt,) = summary.attempts
    assert not attempt["delivered"] and attempt["status"] == 307
    assert "redirect to 'http://evil.example:9/steal' not followed" in attempt["error"]
    assert summary.pending == 1 and len(receiver.received) == 1  # sent once, never re-sent
    p.close()


def test_a_receiver_answering_garbage_is_a_failed_attempt(
    project: dmv.Project, receiver: Receiver
) -> None:
    receiver.start()
    receiver.mode = "garbage"
    p = with_hooks(project, hook_config(receiver.url, events='["release"]'))
    train(p, "0.1.0-0123.abcd")
    p.release("price-model@0.1.0-0123.abcd")
    summary = p.deliver_webhooks()
    assert summary.pending == 1 and "BadStatusLine" in str(summary.attempts[0]["error"])
    (row,) = outbox(p)
    assert (row.status, row.attempts, row.lease_owner) == ("pending", 1, None)
    receiver.mode = "ok"
    assert p.deliver_webhooks().delivered == 1
    p.close()


def test_timeout_and_bounded_answer(project: dmv.Project, receiver: Receiver) -> None:
    receiver.start()
    receiver.mode = "slow"
    p = with_hooks(project, hook_config(receiver.url, events='["release"]', timeout=1))
    train(p, "0.1.0-0123.abcd")
    p.release("price-model@0.1.0-0123.abcd")
    started = time.monotonic()
    summary = p.deliver_webhooks()
    assert time.monotonic() - started < 4
    assert summary.pending == 1 and "timed out" in str(summary.attempts[0]["error"])
    # A 50 MB answer: delivered (2xx) after reading at most MAX_RESPONSE bytes of it.
    receiver.mode = "big"
    started = time.monotonic()
    summary = p.deliver_webhooks()
    assert summary.ok and summary.delivered == 1 and time.monotonic() - started < 4
    assert MAX_RESPONSE <= 64 * 1024
    p.close()


def test_gives_up_after_max_attempts_then_redeliver(
    project: dmv.Project, receiver: Receiver
) -> None:
    p = with_hooks(project, hook_config(receiver.url, events='["release"]', max_attempts=2))
    train(p, "0.1.0-0123.abcd")
    p.release("price-model@0.1.0-0123.abcd")
    summary = p.deliver_webhooks(wait=10)
    assert summary.failed == 1 and summary.pending == 0 and len(summary.attempts) == 2
    (row,) = outbox(p)
    assert (row.status, row.attempts) == ("failed", 2)
    receiver.start()
    assert p.deliver_webhooks().attempts == []  # failed stays failed …
    p.redeliver_webhook(row.delivery)  # … until redelivered, by its delivery id
    assert p.deliver_webhooks().delivered == 1
    assert receiver.received[0]["key"] == row.event_id
    with pytest.raises(dmv.NotFound):
        p.redeliver_webhook("999999")
    p.close()


def test_a_failed_verify_is_an_event(project: dmv.Project, receiver: Receiver) -> None:
    receiver.start()
    p = with_hooks(project, hook_config(receiver.url, events='["verify_failed"]'))
    model_file = p.root / "weights.bin"
    model_file.write_bytes(b"w" * 100)
    with p.run("price-model", version="0.1.0-0123.abcd") as run:
        run.log_artifact(model_file)
    art = p.runs("price-model@0.1.0-0123.abcd")[0].artifacts[0]
    Path(p.artifacts.path_of(art.digest)).write_bytes(b"x" * 100)
    assert not p.verify("price-model@0.1.0-0123.abcd").ok
    with pytest.raises(dmv.IntegrityError):
        p.release("price-model@0.1.0-0123.abcd")
    assert p.deliver_webhooks().delivered == 2
    body = receiver.received[0]["body"]
    assert body["event"] == "verify_failed" and body["version"] == "price-model 0.1.0-0123.abcd"
    assert body["details"]["failed"][0]["check"] == "artifact tr0/weights.bin"
    p.close()


def test_two_deliverers_never_hold_the_same_delivery(any_project: dmv.Project) -> None:
    p = with_hooks(any_project, hook_config("http://127.0.0.1:9/hook", events='["alias"]'))
    train(p, "0.1.0-0123.abcd")
    for i in range(40):
        p.set_alias("price-model@0.1.0-0123.abcd", f"a{i}")
    name = p.config.webhooks[0].name
    # Threads with a registry each claim at once: each row goes to one of them.
    claimed: dict[str, list[int]] = {}

    def claim(owner: str) -> None:
        registry = dmv.Project(p.root).registry
        got = []
        while batch := registry.claim_deliveries(name, owner, lease=60, limit=3):
            got += [d.id for d in batch]
        claimed[owner] = got
        registry.close()

    threads = [threading.Thread(target=claim, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for got in claimed.values() for i in got]
    assert sorted(ids) == sorted(r.id for r in outbox(p)) and len(ids) == 40
    # A lease held keeps everyone else off; an expired lease frees the row.
    later = time.time() + 61
    assert p.registry.claim_deliveries(name, "d9", lease=60) == []
    assert len(p.registry.claim_deliveries(name, "d9", lease=60, now=later)) == 40
    p.close()


def test_bad_webhook_config_is_refused(project: dmv.Project) -> None:
    cases = {
        hook_config("file:///etc/passwd"): "http:// or https://",
        hook_config("http://x/\\r\\nX-Injected: 1"): "http:// or https://",
        hook_config("http://x/", events='["release", "explode"]'): "unknown event",
        hook_config("http://x/", events="[]"): "non-empty list",
        '\n[[webhooks]]\nurl = "http://x/"\nevents = ["release"]\nsecret_env = "a b"\n': (
            "secret_env must name"
        ),
        hook_config("http://x/", timeout=0): "timeout must be",
        hook_config("http://x/") + hook_config("http://x/"): "share a name",
        '\n[git]\nbranch_pattern = "{model}/{nope}"\n': "branch_pattern",
    }
    text = (project.root / "dmv.toml").read_text()
    for extra, message in cases.items():
        (project.root / "dmv.toml").write_text(text + extra)
        with pytest.raises(ConfigError, match=message) as caught:
            dmv.Project(project.root)
        assert caught.value.hint


def test_the_signature_is_githubs() -> None:
    # The example of GitHub's "Validating webhook deliveries" page.
    assert sign(b"It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_killed_server_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """``dmv server`` delivers in the background; killed -9 mid-delivery and started
    again, every event arrives (the one in flight twice, with the same key)."""
    project = dmv.init(tmp_path / "proj")
    p = with_hooks(project, hook_config(receiver.url, timeout=1))
    changes(p)
    p.close()
    receiver.mode = "hang-first"
    receiver.start()
    env = {**os.environ, ENV: SECRET, "PYTHONPATH": str(Path(dmv.__file__).parents[1])}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dmv", "-C", str(p.root), "server", "--port", str(free_port())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    server = start()
    try:
        assert receiver.hung.wait(60), "the server never delivered"
        os.kill(server.pid, signal.SIGKILL)  # mid-delivery: its answer never came
        server.wait(10)
        assert len(receiver.received) == 1
        server = start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.keys()) < 5:
            time.sleep(0.2)
    finally:
        server.kill()
        server.wait(10)
    assert len(receiver.keys()) == 5 and receiver.forged == 0
    # The delivery in flight when the server died arrived again: same key, same delivery.
    first = receiver.received[0]
    again = [r for r in receiver.received[1:] if r["key"] == first["key"]]
    assert again and again[0]["delivery"] == first["delivery"]
    reopened = dmv.Project(p.root)
    assert {r.status for r in outbox(reopened)} == {"delivered"}
    reopened.close()


def test_a_version_2_registry_gets_the_outbox_by_migrate(tmp_path: Path) -> None:
    import sqlite3

    p = dmv.init(tmp_path / "old")
    train(p, "0.1.0-0123.abcd")
    db = p.root / ".dmv" / "registry.db"
    p.close()
    with sqlite3.connect(db) as conn:  # the store as dmv with schema 2 left it
        conn.execute("DROP TABLE webhook_outbox")
        conn.execute("UPDATE dmv_schema SET value='2' WHERE key='version'")
    assert main(["-C", str(p.root), "migrate"]) == 0
    migrated = with_hooks(dmv.Project(p.root), hook_config("http://127.0.0.1:9/", '["release"]'))
    migrated.release("price-model@0.1.0-0123.abcd")
    assert [r.event for r in outbox(migrated)] == ["release"]
    assert main(["-C", str(p.root), "migrate"]) == 0  # a second run changes nothing
    migrated.close()


def test_the_docs_receiver_verifies_real_deliveries(
    project: dmv.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import types
    import urllib.error
    import urllib.request
    from http.server import HTTPServer

    page = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text(encoding="utf-8")
    section = page.split("## A receiver", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.setenv("DMV_WEBHOOK_SECRET", SECRET)
    module = types.ModuleType("docs_receiver")
    exec(compile(code.group(1), "docs/webhooks.md", "exec"), module.__dict__)
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), module.Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        p = with_hooks(project, hook_config(f"http://127.0.0.1:{port}/"))
        changes(p)
        assert p.deliver_webhooks().delivered == 5
        assert module.handled == {r.event_id for r in outbox(p)}
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=b'{"id": "x", "event": "alias"}',
            headers={"X-Dmv-Signature-256": "sha256=" + "0" * 64},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 401 and "x" not in module.handled
        p.close()
    finally:
        server.shutdown()
        server.server_close()


def test_no_route_reads_or_sets_a_webhook(project: dmv.Project) -> None:
    """The URL and the secret's variable are configuration: the server has no route
    that shows or changes them (a token holder cannot point events elsewhere)."""
    pytest.importorskip("fastapi")
    from dmv.server import create_app

    p = with_hooks(project, hook_config("http://127.0.0.1:9/hook"))
    app = create_app(p)
    paths = [getattr(r, "path", "") for r in app.routes]
    assert paths and not [path for path in paths if "hook" in path.lower()]
    p.close()


def test_star_subscribes_to_every_event(project: dmv.Project) -> None:
    p = with_hooks(project, hook_config("http://127.0.0.1:9/hook", events='["*"]'))
    train(p, "0.1.0-0123.abcd")  # a new version: on the SQLite fast path
    train(p, "0.1.0-0123.abcd")  # a retrain adds a run, not a version: no event
    train(p, "0.2.0-0123.abcd")
    p.delete_version("price-model@0.2.0-0123.abcd")
    rows = outbox(p)
    assert [(r.event, json.loads(r.body)["version"]) for r in rows] == [
        ("version", "price-model 0.1.0-0123.abcd"),
        ("version", "price-model 0.2.0-0123.abcd"),
        ("delete", "price-model 0.2.0-0123.abcd"),
    ]
    # Each event has its own id, every row its own delivery id.
    assert len({r.event_id for r in rows}) == len({r.delivery for r in rows}) == 3
    p.close()


def test_deliver_sends_a_whole_backlog_now_each_once(
    project: dmv.Project, receiver: Receiver
) -> None:
    p = with_hooks(project, hook_config(receiver.url, events='["alias"]'))
    train(p, "0.1.0-0123.abcd")
    for i in range(120):  # more than one claim's worth (50)
        p.set_alias("price-model@0.1.0-0123.abcd", f"a{i}")
    first = p.deliver_webhooks()  # down: each tried once, none twice
    assert len(first.attempts) == 120 and first.pending == 120
    assert len({a["id"] for a in first.attempts}) == 120
    # Run again at once: their retry times lie ahead, an operator's run sends them anyway.
    second = p.deliver_webhooks()
    assert [a["attempt"] for a in second.attempts] == [2] * 120
    receiver.start()
    assert p.deliver_webhooks().delivered == 120 and len(receiver.keys()) == 120
    assert all(d.attempted_at is not None for d in p.registry.list_deliveries(limit=None))
    p.close()


def test_two_servers_deliver_each_event_once(tmp_path: Path, receiver: Receiver) -> None:
    """Two ``dmv server`` processes over one registry: every event arrives, none twice."""
    project = dmv.init(tmp_path / "proj")
    p = with_hooks(project, hook_config(receiver.url, events='["alias"]'))
    train(p, "0.1.0-0123.abcd")
    receiver.start()
    env = {**os.environ, ENV: SECRET, "PYTHONPATH": str(Path(dmv.__file__).parents[1])}
    cmd = [sys.executable, "-m", "dmv", "-C", str(p.root), "server", "--port"]
    servers = [
        subprocess.Popen(
            [*cmd, str(free_port())], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(2)
    ]
    try:
        for i in range(60):  # written while both servers are delivering
            p.set_alias("price-model@0.1.0-0123.abcd", f"a{i}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(receiver.keys()) < 60:
            time.sleep(0.2)
        time.sleep(2)  # a duplicate would arrive now
    finally:
        for server in servers:
            server.kill()
            server.wait(10)
    assert len(receiver.keys()) == 60 and len(receiver.received) == 60
    assert {r.status for r in outbox(p)} == {"delivered"}
    p.close()
