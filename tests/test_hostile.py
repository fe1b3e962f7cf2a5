"""Hostile input: SQL injection, path traversal, credentials in URLs, swapped model files.

Names, aliases, DATA/SPLIT ids, split columns, query parameters and table names
that try SQL injection are refused with InvalidInput or quoted (the warehouse
keeps exactly its tables and rows); artifact digests and names cannot reach
outside the store; source URLs are stored without their secrets; and a model
file whose bytes were swapped is never unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dmv
from dmv.artifacts import Blob, FsspecArtifacts
from dmv.cli import main
from dmv.data._sql import check_identifier, quote_ident
from dmv.data.credentials import strip_credentials
from dmv.errors import ArtifactError, DataError, InvalidInput, NotFound

pytest.importorskip("sklearn")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from conftest import requires_pg, seed_warehouse
from dmv.server import create_app

SQL_INJECTIONS = [
    "x'; DROP TABLE models; --",
    'x"; DROP TABLE patients; --',
    "x' OR '1'='1",
    "x) OR 1=1 --",
    "x; DELETE FROM aliases",
    "x/**/OR/**/1=1",
    "x%",
    "x_",
]
PATHS = ["../../etc/passwd", "..", "a/../../b", "/etc/passwd", "a\\..\\b", "a/b", "~root"]
WEIRD = ["", "a\x00b", "Ａbc", "abc\n", " abc", "a" * 65, "ab c", "-ab", "ABC", "é"]
HOSTILE = SQL_INJECTIONS + PATHS + WEIRD
BASE_TABLES = {
    f"price_model__0123__{s}__{p}" for s in ("abcd", "efgh") for p in ("train", "valid", "test")
}


@pytest.fixture
def seeded(project: dmv.Project) -> dmv.Project:
    """The diabetes warehouse, retrieval 0123, splits abcd/efgh, one version, an alias."""
    seed_warehouse(project)
    from sklearn.linear_model import Ridge

    with project.run("price-model", data="0123.abcd") as run:
        rows = run.dataset("train")
        run.log_model(
            Ridge().fit(rows[["age", "bmi"]], rows["target"]), sample_input=rows[["age", "bmi"]]
        )
    project.set_alias("price-model@0.0.1", "production")
    return project


def warehouse_state(project: dmv.Project) -> tuple[set[str], int]:
    """The warehouse's tables and the row count of its source table."""
    import duckdb

    with duckdb.connect(project.config.location("warehouse"), read_only=True) as con:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        rows = con.execute("SELECT count(*) FROM patients").fetchone()
    return tables, int(rows[0]) if rows else -1


def registry_state(project: dmv.Project) -> dict[str, int]:
    """Every registry table with its row count (SQLite)."""
    path = project.config.location("registry").removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def registry_state_except_audit(project: dmv.Project) -> dict[str, int]:
    return {k: v for k, v in registry_state(project).items() if k != "audit"}


# -- SQL injection: refused or quoted ---------------------------------------------------------


def test_hostile_names_aliases_and_ids_are_refused(seeded: dmv.Project) -> None:
    p = seeded
    tables, rows = warehouse_state(p)
    assert BASE_TABLES | {"patients"} <= tables and rows == 442
    before = registry_state(p)
    for bad in HOSTILE:
        calls: list[Callable[..., object]] = [
            lambda bad=bad: p.create_model(bad),
            lambda bad=bad: p.model(bad),
            lambda bad=bad: p.versions(bad),
            lambda bad=bad: p.show(f"{bad}@latest"),
            lambda bad=bad: p.show(f"price-model@{bad}"),
            lambda bad=bad: p.set_alias("price-model@0.0.1", bad),
            lambda bad=bad: p.remove_alias("price-model", bad),
            lambda bad=bad: p.aliases(bad),
            lambda bad=bad: p.data_query(bad, sql="SELECT * FROM patients"),
            lambda bad=bad: p.data_query("price-model", sql="SELECT * FROM patients", id=bad),
            lambda bad=bad: p.data_split("price-model", "0123", id=bad),
            lambda bad=bad: p.data_split("price-model", bad),
            lambda bad=bad: p.data_show("price-model", bad),
            lambda bad=bad: p.split_info("price-model", "0123", bad),
            lambda bad=bad: p.split_info("price-model", bad, "abcd"),
            lambda bad=bad: p.run("price-model", version=f"0.0.9-{bad}.abcd").__enter__(),
        ]
        for call in calls:
            with pytest.raises((InvalidInput, NotFound)) as caught:
                call()
            # Reference text is trimmed: ' abc' may name nothing; anything else is invalid.
            trimmed = bad != bad.strip()
            assert isinstance(caught.value, InvalidInput) or trimmed, (bad, caught.value)
    assert registry_state(p) == before  # not even an audit entry
    assert warehouse_state(p) == (tables, rows)
    assert [a.alias for a in p.aliases("price-model")] == ["production"]


@pytest.mark.parametrize(
    "column", ['patient_id"; DROP TABLE patients; --', "x' OR '1'='1", "a\x00b"]
)
@pytest.mark.parametrize("kind", ["key", "group", "time"])
def test_hostile_split_columns_are_refused(seeded: dmv.Project, kind: str, column: str) -> None:
    before = warehouse_state(seeded)
    with pytest.raises(InvalidInput, match=r"not in the retrieved data|NUL"):
        seeded.data_split("price-model", "0123", by=f"{kind}:{column}", salt=column)
    assert warehouse_state(seeded) == before


def test_hostile_column_names_that_exist_are_quoted(seeded: dmv.Project) -> None:
    """A real column named like an injection splits fine: it only ever appears quoted."""
    import duckdb

    column = 'id"; DROP TABLE patients; --'
    with duckdb.connect(seeded.config.location("warehouse")) as con:
        con.execute(
            f"CREATE TABLE evil AS SELECT patient_id AS {quote_ident(column)}, bmi FROM patients"
        )
    q = seeded.data_query("price-model", sql="SELECT * FROM evil", id="evil")
    assert [c["name"] for c in q.columns] == [column, "bmi"]
    split = seeded.data_split("price-model", "evil", by=f"key:{column}", id="s1")
    assert sum(part["rows"] for part in split.parts) == 442
    tables, rows = warehouse_state(seeded)
    assert rows == 442 and "patients" in tables
    assert {t for t in tables if t.startswith("price_model__evil")} == {
        f"price_model__evil__s1__{part}" for part in ("train", "valid", "test")
    }
    frame = seeded.dataset("price-model", "evil.s1", "train")
    assert list(frame.columns) == [column, "bmi"]


def test_query_parameters_are_bound_not_spliced(seeded: dmv.Project) -> None:
    payload = "1'; DROP TABLE patients; --"
    q = seeded.data_query(
        "price-model",
        sql="SELECT * FROM patients WHERE CAST(patient_id AS VARCHAR) <> $pid",
        params={"pid": payload},
        id="param",
    )
    assert q.definition["params"] == {"pid": payload}
    split = seeded.data_split("price-model", "param", by="key:patient_id", id="p1")
    assert sum(part["rows"] for part in split.parts) == 442  # no row equals the payload
    assert warehouse_state(seeded)[1] == 442


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE patients",
        "DROP TABLE patients",
        "DELETE FROM patients",
        "SELECT * FROM patients; DELETE FROM patients",
        "WITH d AS (DELETE FROM patients RETURNING *) SELECT * FROM d",
        "WITH d AS (UPDATE patients SET bmi = 0 RETURNING *) SELECT * FROM d",
        "WITH d AS (INSERT INTO patients SELECT * FROM patients RETURNING *) SELECT 1 FROM d",
        "/* SELECT */ DROP TABLE patients",
        "ATTACH 'other.db' AS other",
        "COPY patients TO 'leak.csv'",
    ],
)
def test_queries_that_write_are_refused(seeded: dmv.Project, sql: str) -> None:
    import duckdb

    before = warehouse_state(seeded)
    with duckdb.connect(seeded.config.location("warehouse"), read_only=True) as con:
        bmi = con.execute("SELECT sum(bmi) FROM patients").fetchone()
    with pytest.raises((DataError, InvalidInput)):
        seeded.data_query("price-model", sql=sql)
    assert warehouse_state(seeded) == before
    with duckdb.connect(seeded.config.location("warehouse"), read_only=True) as con:
        assert con.execute("SELECT sum(bmi) FROM patients").fetchone() == bmi
    assert not (Path(seeded.root) / "leak.csv").exists()


@pytest.mark.parametrize(
    "table", ['patients"; DROP TABLE patients; --', "patients; drop", "Patients", "a" * 64]
)
def test_table_names_are_checked_before_any_sql(seeded: dmv.Project, table: str) -> None:
    from dmv.data.catalog import warehouse

    with pytest.raises(InvalidInput):
        check_identifier(table)
    with warehouse(seeded) as wh, pytest.raises(InvalidInput):
        wh.drop_table(table)
    assert warehouse_state(seeded)[1] == 442


def test_rest_api_refuses_hostile_names_and_quotes_query_params(seeded: dmv.Project) -> None:
    client = TestClient(create_app(seeded))
    before = registry_state_except_audit(seeded)
    for bad in HOSTILE:
        r = client.post("/api/v1/models", json={"name": bad})
        assert r.status_code == 422, (bad, r.text)
        if not bad:
            continue  # an empty path segment is another route, not a name
        # '.' too: an HTTP client would resolve a bare '..' segment before sending.
        segment = quote(bad, safe="").replace(".", "%2E")
        for path in (
            f"/api/v1/models/{segment}",
            f"/api/v1/models/price-model/versions/{segment}",
            f"/api/v1/models/{segment}/versions/latest/runs",
            f"/models/{segment}/versions/latest",
            f"/v2/models/{segment}",
        ):
            r = client.get(path)
            assert r.status_code in (404, 422), (path, r.status_code, r.text)
            assert "Traceback" not in r.text
        r = client.put(f"/api/v1/models/price-model/aliases/{segment}", json={"version": "0.0.1"})
        assert r.status_code in (404, 405, 422), (bad, r.text)
        r = client.delete(f"/api/v1/models/price-model/aliases/{segment}")
        assert r.status_code in (404, 405, 422), (bad, r.text)
        r = client.put("/api/v1/models/price-model/aliases/staging", json={"version": bad})
        assert r.status_code in (404, 422), (bad, r.text)
        r = client.post(
            f"/models/price-model/versions/{segment}/predict",
            json={"inputs": [{"age": 0, "bmi": 0}]},
        )
        assert r.status_code in (404, 405, 422), (bad, r.text)
    assert registry_state_except_audit(seeded) == before
    # Query parameters go into SQL as bound values: nothing matches, nothing leaks.
    for bad in SQL_INJECTIONS:
        r = client.get("/api/v1/audit", params={"model": bad})
        assert r.status_code == 200 and r.json()["items"] == [], bad
        r = client.get("/api/v1/audit", params={"action": bad})
        assert r.status_code == 200 and r.json()["items"] == [], bad
    # '%' and '_' are characters of the prefix, not LIKE wildcards.
    assert client.get("/api/v1/audit", params={"action": "%"}).json()["items"] == []
    assert client.get("/api/v1/audit", params={"action": "data_"}).json()["items"] == []
    actions = {
        e["action"] for e in client.get("/api/v1/audit", params={"action": "data."}).json()["items"]
    }
    assert actions == {"data.query", "data.split"}
    r = client.get("/api/v1/audit", params={"offset": 2**80})
    assert (r.status_code in (200, 422) and r.status_code == 200) or "offset" in r.text


def test_cli_refuses_hostile_ids_and_columns(
    seeded: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(seeded.root)
    before = warehouse_state(seeded)
    for args in (
        ["data", "split", "price-model", "0123", "--id", "x'; DROP TABLE patients; --"],
        [
            "data",
            "split",
            "price-model",
            "0123",
            "--by",
            'key:patient_id"; DROP TABLE patients; --',
        ],
        ["data", "split", "x'; DROP TABLE patients; --", "0123"],
        ["data", "query", "price-model", "--sql", "SELECT * FROM patients", "--id", "../x"],
        ["data", "show", "price-model", "0123' OR '1'='1"],
        ["alias", "set", "price-model@0.0.1", "x'; DROP TABLE aliases; --"],
    ):
        code = main(["-C", root, *args])
        _, err = capsys.readouterr()
        assert code == 2, (args, code, err)
        assert "Traceback" not in err
    assert warehouse_state(seeded) == before


# -- paths: nothing escapes the store ------------------------------------------------------------


@pytest.mark.parametrize(
    "digest",
    [
        "blake3:../../../etc/passwd",
        "blake3:" + "../" * 21 + "x",
        "blake3:" + "0" * 63 + "/",
        "blake3:" + "A" * 64,
        "sha256:" + "0" * 64,
        "../" + "0" * 64,
        "blake3:" + "0" * 64 + "/../x",
        "",
    ],
)
def test_digests_cannot_name_paths(tmp_path: Path, digest: str) -> None:
    store = FsspecArtifacts(str(tmp_path / "store"))
    sentinel = tmp_path / "sentinel"
    sentinel.write_text("keep me")
    for call in (
        lambda: store.path_of(digest),
        lambda: store.get_bytes(Blob(digest, 7)),
        lambda: store.fetch(Blob(digest, 7), tmp_path / "out"),
        lambda: store.verify(Blob(digest, 7)),
        lambda: store.remove(digest),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert sentinel.read_text() == "keep me" and not (tmp_path / "out").exists()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=80))
def test_any_digest_text_stays_inside_the_store(text: str) -> None:
    store = FsspecArtifacts("/srv/store")
    try:
        path = store.path_of(text)
    except InvalidInput:
        return
    assert os.path.normpath(path).startswith("/srv/store/blobs/") and ".." not in path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../../escape", "/tmp/escape-abs", "..", "a/../../../escape"])
def test_artifact_names_never_become_paths(project: dmv.Project, tmp_path: Path, name: str) -> None:
    """A name that is not one file name is refused where it enters, and nothing is written."""
    source = tmp_path / "payload.txt"
    source.write_bytes(b"hostile payload " + name.encode())
    before = _files(tmp_path)
    with pytest.raises(InvalidInput), project.run("m", version="0.0.1-a.b") as run:
        run.log_artifact(source, name=name)
    assert run.artifacts == []
    store = Path(project.config.location("artifacts")).resolve()
    outside = [f for f in _files(tmp_path) - before if not f.resolve().is_relative_to(store)]
    outside = [f for f in outside if not f.resolve().is_relative_to(Path(project.root).resolve())]
    assert outside == []
    assert not Path("/tmp/escape-abs").exists() and not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("name", ["..", "../price-model", "price-model/../../x", "%2e%2e"])
def test_model_names_are_never_path_segments(project: dmv.Project, name: str) -> None:
    with pytest.raises(InvalidInput):
        project.create_model(name)
    client = TestClient(create_app(project))
    r = client.get(f"/api/v1/models/{quote(name, safe='').replace('.', '%2E')}")
    assert r.status_code in (404, 422)
    assert not any(Path(project.root).rglob("*..*"))


def test_export_writes_only_where_asked(
    seeded: dmv.Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(seeded.root)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    before = _files(tmp_path)
    target = out_dir / "sub" / ".." / "train.parquet"  # a path with '..' that stays inside
    code = main(
        ["-C", root, "data", "export", "price-model", "0123.abcd", "--out", str(target), "--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["rows"] > 0
    new = {f.resolve() for f in _files(tmp_path) - before}
    # The file asked for, nothing else (no leftover partial file) outside the project's own stores.
    project_root = Path(root).resolve()
    assert {f for f in new if not f.is_relative_to(project_root)} == {
        (out_dir / "train.parquet").resolve()
    }
    # Part names that try SQL or paths, and a folder as --out, are refused: nothing written.
    before = _files(tmp_path)
    for args in (
        ["--part", "train; DROP TABLE patients", "--out", str(out_dir / "x.parquet")],
        ["--part", "../train", "--out", str(out_dir / "y.parquet")],
        ["--out", str(out_dir)],
    ):
        code = main(["-C", root, "data", "export", "price-model", "0123.abcd", *args])
        _, err = capsys.readouterr()
        assert code != 0 and "Traceback" not in err, (args, err)
    assert {
        f for f in _files(tmp_path) - before if not f.resolve().is_relative_to(project_root)
    } == set()
    assert warehouse_state(seeded)[1] == 442


# -- credentials never reach the registry -------------------------------------------------------


SECRET = "hunter2-S3cr3t"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://alice:{SECRET}@db.example.com:5432/prod",
        f"postgresql://:{SECRET}@db.example.com/prod",
        f"postgresql://alice:{quote(SECRET + '@/:?#', safe='')}@db.example.com/prod",
        f"postgresql://alice:{SECRET}@@db.example.com/prod",
        f"postgresql://alice@db.example.com/prod?password={SECRET}&sslmode=require",
        f"snowflake://alice:{SECRET}@acct/db?token={SECRET}&warehouse=wh",
        f"s3://bucket/data/*.parquet?access_key={SECRET}&secret_key={SECRET}",
        f"https://alice:{SECRET}@example.com/files/x.csv?sig={SECRET}",
    ],
)
def test_strip_credentials_removes_every_secret(url: str) -> None:
    stripped = strip_credentials(url)
    assert SECRET not in stripped and quote(SECRET) not in stripped
    assert "example.com" in stripped or "acct" in stripped or "bucket" in stripped


def test_password_with_a_raw_slash_is_stripped() -> None:
    # SQLAlchemy reads a password up to the first '@', even across a raw '/'.
    stripped = strip_credentials(f"mysql://alice:{SECRET}/x@db.example.com/prod")
    assert SECRET not in stripped and stripped.endswith("@db.example.com/prod")


def test_stripping_keeps_everything_else_as_written() -> None:
    for url in (
        "sqlite:////abs/path.db",
        "sqlite:///relative.db",
        "postgresql://u@h:5432/db",
        "s3://bucket/key@v1",
        "postgresql://h/db?sslmode=require&x=a@b",
    ):
        assert strip_credentials(url) == url


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.text(min_size=6, max_size=30).map(lambda t: "pw" + t),
    st.sampled_from(["postgresql", "mysql", "mssql+pyodbc"]),
)
def test_any_password_is_stripped(password: str, scheme: str) -> None:
    url = f"{scheme}://bob:{quote(password, safe='')}@host.example:5432/db"
    stripped = strip_credentials(url)
    assert quote(password, safe="") not in stripped
    assert stripped == f"{scheme}://bob@host.example:5432/db"


@requires_pg
def test_source_url_is_stored_without_password(
    project: dmv.Project, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as con:
        con.execute(
            "CREATE TABLE people AS SELECT g AS id, g * 2 AS score FROM generate_series(1, 50) g"
        )
    scheme, rest = pg_database.split("://", 1)
    user, _, host = rest.partition("@")
    url = f"{scheme}://{user}:{SECRET}@{host}?connect_timeout=5&password={SECRET}"
    q = project.data_query("people", source=url, sql="SELECT * FROM people", id="src")
    assert SECRET not in json.dumps(q.to_dict())
    path = project.config.location("registry").removeprefix("sqlite:///")
    raw = Path(path).read_bytes() + b"".join(
        f.read_bytes() for f in Path(path).parent.glob(Path(path).name + "-*") if f.is_file()
    )
    assert SECRET.encode() not in raw  # the registry file (and its WAL) never saw it
    with sqlite3.connect(path) as con:
        stored = [r[0] for r in con.execute("SELECT definition FROM data_queries")]
        audit = [r[0] for r in con.execute("SELECT details FROM audit")]
    assert stored and all(SECRET not in str(s) for s in stored + audit)
    code = main(["-C", str(project.root), "data", "show", "people", "src", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    shown = json.loads(out)
    assert SECRET not in out and user.split(":")[0] in json.dumps(shown)


def test_unreachable_source_errors_do_not_echo_the_password(project: dmv.Project) -> None:
    for url in (
        f"postgresql://alice:{SECRET}@127.0.0.1:1/db?connect_timeout=2",
        f"mysql+nodriver://alice:{SECRET}@127.0.0.1:1/db",
    ):
        with pytest.raises((DataError, InvalidInput)) as caught:
            project.data_query("m", source=url, sql="SELECT 1")
        text = json.dumps(caught.value.to_dict())
        assert SECRET not in text and SECRET not in str(caught.value)


# -- a swapped model file is never unpickled -----------------------------------------------------


class _Touch:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def _hostile_pickle(marker: Path, size: int) -> bytes:
    data = pickle.dumps(_Touch(marker), protocol=5)
    assert len(data) <= size, "the real model file is smaller than the payload"
    return data + b"\0" * (size - len(data))  # pickle ignores bytes after STOP


@pytest.fixture
def swapped(
    project: dmv.Project, small_model: Any, tmp_path: Path
) -> Iterator[tuple[dmv.Project, Path]]:
    """iris 0.0.1 whose stored model file now holds a same-size pickle that touches a marker."""
    with project.run("iris", version="0.0.1-a.b") as run:
        art = run.log_model(small_model)
    marker = tmp_path / "unpickled.marker"
    blob = Path(project.artifacts.path_of(art.digest))
    hostile = _hostile_pickle(marker, art.size)
    # The payload really is dangerous: loading it (elsewhere) creates its marker.
    control = tmp_path / "control.marker"
    pickle.loads(_hostile_pickle(control, art.size))
    assert control.exists()
    os.chmod(blob, 0o644)
    blob.write_bytes(hostile)
    assert blob.stat().st_size == art.size
    yield project, marker
    assert not marker.exists(), "a swapped model file was unpickled"


def test_load_model_refuses_a_swapped_file(swapped: tuple[dmv.Project, Path]) -> None:
    project, marker = swapped
    with pytest.raises(ArtifactError, match="does not match its digest"):
        project.load_model("iris@0.0.1")
    assert not marker.exists()


def test_predict_refuses_a_swapped_file(swapped: tuple[dmv.Project, Path]) -> None:
    project, marker = swapped
    client = TestClient(create_app(project))
    row = {"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}
    r = client.post("/models/iris/versions/0.0.1/predict", json={"inputs": [row]})
    error = r.json()["error"]
    assert r.status_code == 503 and error["details"]["cause"] == "artifact_error", r.text
    assert "Traceback" not in r.text
    r = client.post(
        "/v2/models/iris/versions/0.0.1-a.b/infer",
        json={
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
            ]
        },
    )
    assert r.status_code >= 400
    assert not marker.exists()


def test_fetch_and_verify_refuse_a_swapped_file(
    swapped: tuple[dmv.Project, Path], tmp_path: Path
) -> None:
    project, marker = swapped
    (run,) = project.runs("iris@0.0.1")
    (art,) = [a for a in run.artifacts if a.kind == "model"]
    blob = Blob(art.digest, art.size)
    assert isinstance(project.artifacts.verify(blob), ArtifactError)
    with pytest.raises(ArtifactError):
        project.artifacts.fetch(blob, tmp_path / "model.pkl")
    assert not (tmp_path / "model.pkl").exists()
    assert not list(tmp_path.glob(".model.pkl.*"))
    assert not marker.exists()
