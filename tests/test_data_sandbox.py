"""Retrieval SQL reads what the retrieval names and nothing else; profiles hold no text."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import data_conftest
import dmv
from data_conftest import load, sample_table
from dmv.cli import main
from dmv.data.records import SplitSpec
from dmv.data.sources import Retrieval, Source, retrieve
from dmv.data.split import store_split
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError

duck = data_conftest.duck
pg = data_conftest.pg
pg_url = data_conftest.pg_url

SECRET = "s3cr3t-c0ntent-0f-a-h0st-f1le"

ATTACKS = [
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM glob('{folder}/*')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/root/*')",
    "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
    "WITH s AS (SELECT * FROM t) SELECT * FROM s, read_text('{secret}')",
]


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    folder = tmp_path / "host"
    folder.mkdir()
    secret = folder / "secret.csv"
    secret.write_text(f"a\n{SECRET}\n")
    return secret


@pytest.fixture
def project_t(project: dmv.Project) -> dmv.Project:
    with duckdb.connect(project.config.location("warehouse")) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id, 'n' || range AS name FROM range(300)")
    return project


@pytest.mark.parametrize("attack", ATTACKS)
def test_warehouse_retrieval_cannot_read_host_files(
    project_t: dmv.Project, host_file: Path, attack: str
) -> None:
    sql = attack.format(secret=host_file, folder=host_file.parent)
    with pytest.raises(DataError) as err:
        project_t.data_query("m", sql=sql)
    assert "refused" in err.value.message and "does not name" in err.value.message
    assert err.value.exit_code == 7


def test_cli_says_what_was_refused(
    project_t: dmv.Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "-C",
            str(project_t.root),
            "data",
            "query",
            "m",
            "--sql",
            "SELECT * FROM read_csv('/etc/passwd')",
            "--json",
        ]
    )
    body = json.loads(capsys.readouterr().out)
    assert code == 7 and body["error"]["details"]["refused"] == "/etc/passwd"
    assert "root:" not in json.dumps(body)


def test_a_split_rerun_is_sandboxed_too(project_t: dmv.Project, host_file: Path) -> None:
    """A retrieval registered before the sandbox (or edited in the registry) is refused
    when the split runs it."""
    info = project_t.data_query("m", sql="SELECT * FROM t")
    import sqlalchemy as sa

    from dmv.registry import schema as t

    bad = {**info.definition, "sql": f"SELECT * FROM t, read_text('{host_file}')"}
    with project_t.registry.engine.begin() as conn:
        conn.execute(sa.update(t.data_queries).values(definition=bad))
    with pytest.raises(DataError, match="refused"):
        project_t.data_split("m", info.data)


def test_file_source_reads_only_its_files(tmp_path: Path, host_file: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("id,v\n1,a\n2,b\n")
    source = Source.from_url(data / "rows.csv")
    assert [c.name for c in source.describe("SELECT * FROM source")] == ["id", "v"]
    for sql in (
        f"SELECT * FROM read_csv('{host_file}')",
        f"SELECT * FROM source, read_text('{host_file}')",
        "SELECT * FROM glob('/root/*')",
        f"SELECT * FROM read_csv('{data}/../host/secret.csv')",
    ):
        with pytest.raises(DataError, match="refused"):
            source.describe(sql)
    folder = Source.from_url(data)  # a folder: any file below it, none beside it
    assert folder.describe("SELECT * FROM source")
    with pytest.raises(DataError, match="refused"):
        folder.describe(f"SELECT * FROM read_text('{host_file}')")
    glob = Source.from_url(f"csv:{data}/*.csv")
    with pytest.raises(DataError, match="refused"):
        glob.describe(f"SELECT * FROM read_text('{host_file}')")


def test_sandbox_cannot_be_switched_off_by_the_query(duck: Warehouse) -> None:
    duck.sandbox()
    for sql in ("SET enable_external_access = true", "SET lock_configuration = false"):
        with pytest.raises(DataError):
            duck.execute(sql)
    with pytest.raises(DataError, match="refused"):
        duck.rows("SELECT * FROM read_text('/etc/hostname')")


def test_sandboxed_warehouse_still_splits(duck: Warehouse) -> None:
    load(duck, "src", sample_table(3000))
    duck.sandbox()
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "user_id"), "m__d__s")
    assert result.rows == 3000


def test_duckdb_file_source_is_sandboxed(tmp_path: Path, host_file: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE x AS SELECT 1 AS a")
    source = Source.from_url(path)
    assert source.describe("SELECT * FROM x")[0].name == "a"
    with pytest.raises(DataError, match="refused"):
        source.describe(f"SELECT * FROM read_text('{host_file}')")


@pytest.mark.postgres
def test_postgres_source_is_read_only_with_a_timeout(
    pg: Warehouse, pg_url: str, duck: Warehouse
) -> None:
    pg.execute("CREATE TABLE pt AS SELECT 1 AS a")
    pg.execute("CREATE SEQUENCE dmv_seq")
    schema = pg.rows("SELECT current_schema()")[0][0]
    source = Source.from_url(f"{pg_url}?options=-csearch_path%3D{schema}", timeout=0.5)
    with pytest.raises(DataError) as err:
        retrieve(Retrieval(source, "SELECT pg_sleep(3) AS s"), duck, "slept")
    assert "statement timeout" in err.value.message and "source_timeout" in (err.value.hint or "")
    with pytest.raises(DataError, match="read-only"):
        retrieve(Retrieval(source, "SELECT nextval('dmv_seq') AS n"), duck, "n")
    assert retrieve(Retrieval(source, "SELECT * FROM pt"), duck, "copied") == 1


def test_text_profiles_hold_no_values(duck: Warehouse) -> None:
    import pyarrow as pa

    emails = [f"person{i}@example.com" for i in range(400)]
    rows = pa.table({"id": pa.array(range(400), pa.int64()), "email": pa.array(emails)})
    load(duck, "src", rows)
    result = store_split(duck, "SELECT * FROM src", SplitSpec("key", "id"), "m__d__s")
    body = json.dumps(result.to_dict())
    assert not any(e in body for e in emails) and "example.com" not in body
    profile = result.part("train").profile["email"].to_dict()
    assert profile["min"].startswith("md5:") and profile["max"].startswith("md5:")
    assert profile["min_length"] == len("person0@example.com")
    assert profile["max_length"] == len("person100@example.com")
    assert 0 < profile["distinct"] <= result.part("train").rows * 1.1
    numbers = result.part("train").profile["id"].to_dict()
    assert isinstance(numbers["min"], int)  # numbers keep their range
