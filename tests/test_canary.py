"""No secret written into a URL ever leaves dmv: the canary test.

Every URL a project can hold carries a distinctive secret: the registry and the
warehouse (PostgreSQL, ``?password=`` / ``sslpassword=`` — the server trusts the
connection and ignores them), a retrieval's source, the artifact store, the MLflow
tracking URI and the OpenLineage endpoints (a file transport and an HTTP receiver
whose URL carries ``?api_key=``); a released project's signing key (``key_env``) is
a canary too. The reference scenario then runs through the
CLI — text and ``--json`` — plus fsck, backup (its refusal, and a backup and restore
of an embedded project whose data came from the secret source), show, card, audit,
versions, runs, MLflow export, the server's REST API and web UI pages and the
logs. Every byte printed, logged, written under the test's folders (SQLite and
DuckDB files included), stored in the PostgreSQL databases (every row of every
table, as text) or received over HTTP is then searched for every canary.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import dmv
from conftest import PG_ADMIN_URL
from dmv.cli import main

pytest.importorskip("openlineage.client", reason="lineage needs pip install 'dmv[lineage]'")
psycopg = pytest.importorskip("psycopg", reason="needs pip install 'dmv[postgres]'")

from dmv.integrations import lineage  # noqa: E402


def _signing_key() -> str:
    """A fresh PEM private key: a released scenario signs with it (``key_env``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


SIGNING_KEY = _signing_key()
SIGNING_ENV = "DMV_CANARY_SIGNING_KEY"
CANARIES = {
    # the private key's body (its first base64 line): never printed, stored or sent
    "signing-key": SIGNING_KEY.splitlines()[1],
    "registry": "CANARYREG1",
    "registry-ssl": "CANARYREG2",
    "warehouse": "CANARYWH3",
    "source": "CANARYSRC4",
    "lineage-http": "CANARYOL5",
    "lineage-file": "CANARYOL6",
    "artifacts": "CANARYART7",
    "mlflow": "CANARYMLF8",
}
MODEL = "price-model"


class _Receiver(BaseHTTPRequestHandler):
    """An OpenLineage HTTP backend: keeps the path and body of each event."""

    got: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append(self.path.encode() + b"\n" + body)
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (skipped with the reason when the server is down)."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {str(exc).strip()[:120]}")
    name = f"dmv_canary_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Sink:
    """Everything dmv printed, logged or sent during the test."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
        self.capsys, self.caplog = capsys, caplog
        self.texts: list[tuple[str, str]] = []
        # Names of an in-memory file system's own files: for that store a path is the
        # whole URL, query included (an object store's is bucket/key): not a leak.
        self.fs_paths: re.Pattern[str] | None = None

    def cli(self, root: Path, *args: str, ok: bool = True) -> str:
        code = main(["-C", str(root), *args])
        out, err = self.capsys.readouterr()
        self.texts.append((f"dmv {' '.join(args)}", out + err))
        if ok:
            assert code == 0, f"dmv {' '.join(args)} → {code}\n{out}{err}"
        return out

    def add(self, where: str, text: str | bytes) -> None:
        self.texts.append((where, text if isinstance(text, str) else text.decode("latin-1")))

    def leaks(self, *folders: Path, databases: tuple[str, ...] = ()) -> list[str]:
        """Where a canary was found: printed text, logs, files, database rows, HTTP bodies."""
        assert lineage.flush(20)
        found: list[str] = []
        for record in self.caplog.records:
            self.add(f"log {record.name}", record.getMessage() + str(record.exc_info or ""))
        self.add("lineage HTTP bodies", b"\n".join(_Receiver.got))
        for folder in folders:
            for path in folder.rglob("*"):
                if path.name == "dmv.toml":
                    continue  # the user's own settings file is where a secret may live
                self.add(f"path {path}", str(path))
                if path.is_file():
                    self.add(f"file {path}", path.read_bytes())
        for url in databases:
            self.add(f"rows of {url}", _all_rows(url))
        for where, text in self.texts:
            if self.fs_paths is not None:
                text = self.fs_paths.sub("", text)
            found += [
                f"{name} ({secret}) in {where}"
                for name, secret in CANARIES.items()
                if secret in text
            ]
        return found


def _all_rows(url: str) -> str:
    """Every row of every table of every schema of the database at ``url``, as text."""
    lines: list[str] = []
    with psycopg.connect(url, autocommit=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert tables, "the database holds no tables: the scenario did not run"
        for schema, table in tables:
            rows = con.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
            lines += [f"{schema}.{table}: {r[0]}" for r in rows]
        for (text,) in con.execute("SELECT current_setting('application_name')").fetchall():
            lines.append(text)
    return "\n".join(lines)


def _secret(url: str, **params: str) -> str:
    return url + "?" + "&".join(f"{k}={v}" for k, v in params.items())


def _lineage_env(monkeypatch: pytest.MonkeyPatch, receiver: str, log: Path) -> None:
    """Events go both to a file and to an HTTP backend whose URL holds a key."""
    t = "OPENLINEAGE__TRANSPORT__"
    for key, value in {
        "TYPE": "composite",
        "TRANSPORTS__FILE__TYPE": "file",
        "TRANSPORTS__FILE__LOG_FILE_PATH": str(log),
        "TRANSPORTS__FILE__APPEND": "true",
        "TRANSPORTS__HTTP__TYPE": "http",
        "TRANSPORTS__HTTP__URL": _secret(receiver, api_key=CANARIES["lineage-http"]),
    }.items():
        monkeypatch.setenv(t + key, value)
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "team-a")


def _seed_source(url: str) -> None:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    frame = x.assign(target=y, patient_id=range(len(x)))
    cols = ", ".join(f'"{c}" double precision' for c in frame.columns if c != "patient_id")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE TABLE patients ({cols}, patient_id integer)")
        with con.cursor().copy("COPY patients FROM STDIN") as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([*row[:-1], int(row[-1])])


def _train(root: Path, ref: str) -> str:
    from sklearn.linear_model import Ridge

    project = dmv.open(root)
    try:
        with project.run(MODEL, data=ref) as run:
            train = run.dataset("train")
            x = train.drop(columns=["target", "patient_id"])
            run.log_metrics({"rmse": 1.0}, split="test")
            run.log_model(Ridge().fit(x, train["target"]), sample_input=x.head(5))
        return str(project.versions(MODEL)[-1].version.number)
    finally:
        project.close()


def _scenario(sink: Sink, root: Path, source: str, tmp: Path, *, release: bool = True) -> None:
    """The reference scenario through the CLI: model, retrieval, split, run, release.

    Without ``release`` the version stays a prerelease and is not verified: both load
    the model in a fresh process, which an in-memory artifact store does not reach.
    """
    sink.cli(root.parent, "init", str(root), "--json")
    if release:  # releases are signed with a key from the environment
        with (root / "dmv.toml").open("a") as toml:
            toml.write(f'[signing]\nkey_env = "{SIGNING_ENV}"\n')
    sink.cli(root, "model", "create", MODEL, "--metric", "rmse", "--goal", "min")
    data = json.loads(
        sink.cli(
            root,
            "data",
            "query",
            MODEL,
            "--source",
            source,
            "--sql",
            "SELECT * FROM patients",
            "--json",
        )
    )["data"]
    split = json.loads(
        sink.cli(root, "data", "split", MODEL, data, "--by", "key:patient_id", "--json")
    )["split"]
    ref = f"{data}.{split}"
    for args in (
        ("data", "list", MODEL),
        ("data", "check", MODEL, ref),
        ("data", "verify", MODEL, ref, "--against-source"),
    ):
        sink.cli(root, *args)
        sink.cli(root, *args, "--json")
    latest = f"{MODEL}@{_train(root, ref)}"
    if release:
        sink.cli(root, "release", latest, "--json")
        latest = f"{MODEL}@latest"
    commands = [
        ("show", latest),
        ("card", latest),
        ("versions", MODEL),
        ("runs", latest),
        ("audit",),
        ("model", "list"),
        ("fsck",),
    ]
    if release:
        commands += [("verify", latest), ("sign", latest), ("provenance", latest)]
    for args in commands:
        # The in-memory store's blobs are not seen the same way by every check: fsck
        # may report them, and what matters here is how it names the store.
        ok = release or args != ("fsck",)
        sink.cli(root, *args, ok=ok)
        sink.cli(root, *args, "--json", ok=ok)
    if release:
        sink.cli(root, "export", latest, str(tmp / "mlflow-model"), "--json")
    _server_pages(sink, root)


def _server_pages(sink: Sink, root: Path) -> None:
    from fastapi.testclient import TestClient

    from dmv.server.app import create_app

    project = dmv.open(root)
    try:
        client = TestClient(create_app(project))
        version = project.versions(MODEL)[-1].version.number
        for path in (
            "/api/v1/models",
            f"/api/v1/models/{MODEL}",
            f"/api/v1/models/{MODEL}/versions",
            f"/api/v1/models/{MODEL}/splits",
            f"/api/v1/models/{MODEL}/versions/latest/provenance",
            f"/api/v1/models/{MODEL}/versions/latest/signature",
            "/api/v1/audit",
            "/openapi.json",
            "/",
            f"/ui/models/{MODEL}",
            f"/ui/models/{MODEL}/versions/{version}",
        ):
            r = client.get(path)
            sink.add(f"GET {path} ({r.status_code})", r.text)
    finally:
        project.close()


@pytest.fixture
def sink(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Sink:
    caplog.set_level(logging.DEBUG)
    return Sink(capsys, caplog)


def test_no_secret_of_a_postgresql_project_leaves_dmv(
    sink: Sink,
    database: str,
    receiver: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_db = database
    _seed_source(source_db)
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    monkeypatch.setenv(
        "DMV_REGISTRY",
        _secret(database, password=CANARIES["registry"], sslpassword=CANARIES["registry-ssl"]),
    )
    monkeypatch.setenv("DMV_WAREHOUSE", _secret(database, password=CANARIES["warehouse"]))
    _lineage_env(monkeypatch, receiver, tmp_path / "lineage.jsonl")
    root = tmp_path / "proj"
    source = _secret(source_db, password=CANARIES["source"])
    _scenario(sink, root, source, tmp_path)
    # A PostgreSQL project cannot be backed up by dmv: the refusal names the store.
    sink.cli(root, "backup", str(tmp_path / "backup"), ok=False)
    sink.cli(root, "backup", str(tmp_path / "backup"), "--json", ok=False)
    assert _Receiver.got, "the HTTP lineage backend received nothing"
    assert (tmp_path / "lineage.jsonl").read_text(), "the file transport wrote nothing"
    leaks = sink.leaks(tmp_path, databases=(database,))
    assert not leaks, "\n".join(leaks)


def test_no_secret_leaves_an_embedded_project_its_backup_or_restore(
    sink: Sink,
    database: str,
    receiver: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed_source(database)
    _lineage_env(monkeypatch, receiver, tmp_path / "lineage.jsonl")
    # An fsspec URL with a query: the in-memory file system keeps it within this process.
    store = _secret(f"canary-{uuid.uuid4().hex[:8]}/artifacts", token=CANARIES["artifacts"])
    monkeypatch.setenv("DMV_ARTIFACTS", f"memory://{store}")
    sink.fs_paths = re.compile(r"(?<![:/])/?" + re.escape(store) + "/")
    root = tmp_path / "proj"
    source = _secret(database, password=CANARIES["source"], sslpassword=CANARIES["registry-ssl"])
    _scenario(sink, root, source, tmp_path, release=False)
    sink.cli(root, "backup", str(tmp_path / "backup"), "--json")
    other = tmp_path / "restored"
    monkeypatch.delenv("DMV_ARTIFACTS")
    sink.cli(tmp_path, "init", str(other))
    sink.cli(other, "restore", str(tmp_path / "backup"), "--json")
    sink.cli(other, "versions", MODEL, "--json")
    sink.cli(other, "fsck", "--json", ok=False)  # the in-memory blob, as above
    leaks = sink.leaks(tmp_path, databases=(database,))
    assert not leaks, "\n".join(leaks)


def test_the_search_finds_a_planted_canary(sink: Sink, tmp_path: Path) -> None:
    # The search itself can fail: a canary in a file, a log record or the output is found.
    (tmp_path / "f.bin").write_bytes(b"\x00" + CANARIES["warehouse"].encode())
    logging.getLogger("dmv").warning("at %s", CANARIES["source"])
    print(CANARIES["registry"])
    sink.add("stdout", sink.capsys.readouterr().out)
    assert len(sink.leaks(tmp_path)) == 3
    assert (
        os.environ.get("DMV_REGISTRY") is None
        or CANARIES["registry"] not in os.environ["DMV_REGISTRY"]
    )


class _NoMlflow(BaseHTTPRequestHandler):
    """An HTTP server that is not an MLflow tracking server: every request is a 404."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


def test_an_mlflow_import_hides_the_tracking_uris_token(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow_env import mlflow_python

    monkeypatch.setenv("DMV_MLFLOW_PYTHON", str(mlflow_python()))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoMlflow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.socket() as closed:  # a port nothing listens on: connection refused
            closed.bind(("127.0.0.1", 0))
            refused = closed.getsockname()[1]
        root = tmp_path / "proj"
        sink.cli(tmp_path, "init", str(root))
        for port in (server.server_address[1], refused):
            uri = _secret(f"http://127.0.0.1:{port}", token=CANARIES["mlflow"])
            for args in (("--json",), ()):
                out = sink.cli(root, "import", "mlflow", "--tracking-uri", uri, *args, ok=False)
                assert "MLflow" in sink.texts[-1][1], out  # it failed, and said why
    finally:
        server.shutdown()
    leaks = sink.leaks(tmp_path)
    assert not leaks, "\n".join(leaks)
