"""Hostile retrieval SQL, per engine, through ``dmv data query``: nothing is written.

Each attack is registered as a retrieval on a PostgreSQL source, a PostgreSQL
warehouse, a DuckDB source and a DuckDB warehouse. The test asserts that the
``victim`` table still holds its row and that no table appeared, not only the exit
code. Legitimate queries that look like attacks to a naive scanner keep working.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

import data_conftest
import dmv
from dmv.cli import main
from dmv.data.engines.duckdb import check_duckdb_select
from dmv.data.engines.postgres import check_postgres_select
from dmv.data.sources import Source
from dmv.data.warehouse import Warehouse
from dmv.errors import DataError

pg_url = data_conftest.pg_url
pg = data_conftest.pg

# the reproduction of issue 22, finding 1: an E'' string hides the `;` from a regex
REPRO = (
    r"SELECT E'\'' AS a) z; COMMIT; BEGIN READ WRITE; CREATE TABLE pwned AS SELECT 1 AS x; "
    r"DROP TABLE victim; COMMIT; BEGIN READ ONLY; SELECT * FROM (SELECT '1' AS a"
)

COMMON = [
    pytest.param(REPRO, id="issue22-repro"),
    r"SELECT E'\'' AS a; DROP TABLE victim",
    r"SELECT E'\\' AS a; DROP TABLE victim; SELECT '1' AS b",
    "SELECT $x$ ; $x$ AS a; DROP TABLE victim",
    "SELECT 1 AS a; DROP TABLE victim",
    "SELECT 1 AS a -- c\n; DROP TABLE victim",
    "SELECT 1 AS a /* ; */; DROP TABLE victim",
    "DROP TABLE victim",
    "CREATE TABLE pwned AS SELECT 1 AS x",
    "INSERT INTO victim VALUES (2)",
    "WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d",
    "WITH d AS (INSERT INTO victim VALUES (3) RETURNING *) SELECT * FROM d",
    "SELECT 1 AS a; COMMIT; DROP TABLE victim",
    "COMMIT",
]

POSTGRES = [
    *COMMON,
    r"SELECT U&'!0027' UESCAPE '!' AS a; DROP TABLE victim",
    r"SELECT U&'\0027' AS a; DROP TABLE victim",
    "SELECT 1 AS a /* /* */ */; DROP TABLE victim",
    "SELECT 1 AS a; SET default_transaction_read_only = off; DROP TABLE victim",
    "SET default_transaction_read_only = off",
    "RESET ALL",
    "DO $$BEGIN EXECUTE 'DROP TABLE victim'; END$$",
    "CALL dmv_no_such_procedure()",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SELECT lo_import('/etc/hostname') AS a",
    "SELECT lo_create(0) AS a",
    "SELECT * FROM dblink('dbname=test', 'DROP TABLE victim') AS t(a text)",
    "SELECT dblink_exec('dbname=test', 'DROP TABLE victim') AS a",
    "SELECT set_config('default_transaction_read_only', 'off', false) AS a",
    "SELECT pg_catalog.set_config('statement_timeout', '0', false) AS a",
    "SELECT query_to_xml('DROP TABLE victim', true, false, '') AS a",
    "SELECT * INTO pwned FROM victim",
    "SELECT * FROM victim FOR UPDATE",
    "SELECT * FROM (SELECT * FROM victim FOR SHARE) AS s",
    "WITH u AS (UPDATE victim SET x = 0 RETURNING *) SELECT * FROM u",
    "TABLE victim; DROP TABLE victim",
    "EXPLAIN ANALYZE DELETE FROM victim",
]

# a SELECT to DuckDB's parser; DuckDB's query() runs only a SELECT, and refuses the rest
QUERY_FUNCTION = "SELECT * FROM query('DROP TABLE victim')"

DUCKDB = [
    *COMMON,
    "SET enable_external_access = true",
    "ATTACH ':memory:' AS other",
    "COPY victim TO '/tmp/dmv_hostile.csv'",
    "CALL pragma_version()",
    "PRAGMA version",
    QUERY_FUNCTION,
    "FROM victim; DROP TABLE victim",
]

LEGIT = [
    "WITH a AS (SELECT 1 AS y) SELECT y FROM a",
    r"SELECT E'it\'s; DROP TABLE victim' AS a",
    "SELECT $q$; DROP TABLE victim$q$ AS a",
    "SELECT 1 AS a -- ; DROP TABLE victim",
    "SELECT x, row_number() OVER (ORDER BY x) AS r FROM victim",
    "SELECT 'a;b' AS a; ",
]
LEGIT_POSTGRES = [
    *LEGIT,
    "SELECT 1 /* /* ; */ ; */ AS a",
    r"SELECT U&'d\0061t\+000061' AS a",
]


class Target:
    """A place retrieval SQL runs against, and a look at what it holds."""

    def __init__(
        self, project: dmv.Project, source: str | None, tables: Callable[[], dict[str, int]]
    ):
        self.project = project
        self.source = source
        self.tables = tables

    def query(self, sql: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        args = ["-C", str(self.project.root), "data", "query", "m", "--sql", sql, *extra]
        if self.source:
            args += ["--source", self.source]
        code = main(args)
        out, err = capsys.readouterr()
        return code, out + err


def _project(tmp_path: Path, **settings: str) -> dmv.Project:
    p = dmv.init(tmp_path / "proj", **settings)
    p.create_model("m", purpose="hostile SQL corpus", function="regression")
    return p


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[tuple[str, Callable[[], dict[str, int]]]]:
    """A fresh schema holding ``victim`` (one row); its tables and their row counts."""
    import psycopg

    schema = f"dmv_hostile_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
        con.execute(f'CREATE TABLE "{schema}".victim AS SELECT 1 AS x')

    def tables() -> dict[str, int]:
        with psycopg.connect(pg_url, autocommit=True) as con:
            names = con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
            found = {}
            for (name,) in names:
                row = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()
                found[name] = int(row[0]) if row else -1
            return found

    yield f"{pg_url}?options=-csearch_path%3D{schema}", tables
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _duck_tables(path: Path) -> Callable[[], dict[str, int]]:
    def tables() -> dict[str, int]:
        with duckdb.connect(str(path), read_only=True) as con:
            names = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
            return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}  # type: ignore[index]

    return tables


@pytest.fixture(params=["pg-source", "pg-warehouse"])
def pg_target(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_schema: tuple[str, Callable[[], dict[str, int]]],
) -> Iterator[Target]:
    url, tables = pg_schema
    if request.param == "pg-source":
        p = _project(tmp_path)
        yield Target(p, url, tables)
    else:
        p = _project(tmp_path, warehouse=url)
        yield Target(p, None, tables)
    p.close()


@pytest.fixture(params=["duckdb-source", "duckdb-warehouse"])
def duck_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    p = _project(tmp_path)
    if request.param == "duckdb-source":
        path = tmp_path / "source.duckdb"
        source: str | None = str(path)
    else:
        path = Path(p.config.location("warehouse"))
        source = None
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE victim AS SELECT 1 AS x")
    yield Target(p, source, _duck_tables(path))
    p.close()


def _assert_refused_and_intact(target: Target, attack: str, capsys: pytest.CaptureFixture) -> None:
    before = target.tables()
    assert before == {"victim": 1}
    code, out = target.query(attack, capsys)
    after = target.tables()
    assert after == before, f"the attack changed the tables: {after}"
    assert code != 0, f"the attack was registered: {out}"
    assert "error:" in out and "internal error" not in out and "Traceback" not in out


@pytest.mark.postgres
@pytest.mark.parametrize("attack", POSTGRES)
def test_postgres_refuses_hostile_sql_and_writes_nothing(
    pg_target: Target, attack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_refused_and_intact(pg_target, attack, capsys)


@pytest.mark.parametrize("attack", DUCKDB)
def test_duckdb_refuses_hostile_sql_and_writes_nothing(
    duck_target: Target, attack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_refused_and_intact(duck_target, attack, capsys)


@pytest.mark.postgres
@pytest.mark.parametrize("sql", LEGIT_POSTGRES)
def test_postgres_keeps_legitimate_selects(
    pg_target: Target, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = pg_target.query(sql, capsys)
    assert code == 0, out
    assert pg_target.tables() == {"victim": 1}


@pytest.mark.parametrize("sql", LEGIT)
def test_duckdb_keeps_legitimate_selects(
    duck_target: Target, sql: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = duck_target.query(sql, capsys)
    assert code == 0, out
    assert duck_target.tables() == {"victim": 1}


@pytest.mark.postgres
def test_postgres_server_refuses_a_second_statement_past_the_parser(pg: Warehouse) -> None:
    # what the warehouse sends goes over the extended protocol: even SQL that never met
    # the parser runs as one statement or not at all
    pg.execute("CREATE TABLE victim AS SELECT 1 AS x")
    with pytest.raises(DataError, match="multiple commands"):
        pg.execute("SELECT 1; DROP TABLE victim")
    with pytest.raises(DataError, match="multiple commands"):
        pg.rows("SELECT 1; DROP TABLE victim", {"p": 1})
    with pytest.raises(DataError, match="multiple commands"):
        pg.query_columns("SELECT 1 AS a) z; DROP TABLE victim; SELECT * FROM (SELECT 1 AS a")
    assert pg.rows("SELECT count(*) FROM victim") == [(1,)]


@pytest.mark.postgres
def test_postgres_source_read_only_transaction_stops_writes_the_parser_allows(
    pg_schema: tuple[str, Callable[[], dict[str, int]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a function of the source's own that writes is not on any list: the READ ONLY
    # transaction (and a read-only role) is what stops it
    import psycopg

    url, tables = pg_schema
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as con:
        con.execute(
            f'CREATE FUNCTION "{schema}".dmv_writer() RETURNS int LANGUAGE plpgsql AS '
            f'$$BEGIN DROP TABLE "{schema}".victim; RETURN 1; END$$'
        )
    target = Target(_project(tmp_path), url, tables)
    code, out = target.query("SELECT dmv_writer() AS a", capsys)  # described: LIMIT 0
    assert code == 0 and tables() == {"victim": 1}
    data_id = out.split()[0]
    code = main(["-C", str(target.project.root), "data", "split", "m", data_id])
    assert code != 0 and "read-only" in capsys.readouterr().err
    assert tables() == {"victim": 1}
    source = Source.from_url(url)
    with source._pg() as wh, pytest.raises(DataError, match="read-only"):
        wh.rows("SELECT dmv_writer() AS a")
    assert tables() == {"victim": 1}
    target.project.close()


@pytest.mark.parametrize("attack", POSTGRES)
def test_postgres_parser_alone_refuses_the_corpus(attack: str) -> None:
    with pytest.raises(DataError):
        check_postgres_select(attack)


@pytest.mark.parametrize("attack", [a for a in DUCKDB if a != QUERY_FUNCTION])
def test_duckdb_parser_alone_refuses_the_corpus(attack: str) -> None:
    with pytest.raises(DataError):
        check_duckdb_select(attack)


def test_comments_go_and_literals_stay_in_the_checked_text() -> None:
    sql = r"SELECT E'it\'s -- no; comment' AS a, $q$/* ; */$q$ AS b /* gone */ -- gone" + "\n;"
    want = r"SELECT E'it\'s -- no; comment' AS a, $q$/* ; */$q$ AS b"
    assert check_postgres_select(sql) == want
    assert check_postgres_select("SELECT 1 /* /* ; */ ; */ AS a") == "SELECT 1   AS a"
    assert check_duckdb_select(sql) == want
    like = "SELECT * FROM t WHERE n LIKE '%son' AND a = 5 %% 2"
    assert check_postgres_select(like) == like  # no parameters: psycopg leaves % alone


@pytest.mark.postgres
def test_postgres_parameters_are_values_never_structure(
    pg_target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = pg_target.query("SELECT x FROM victim WHERE x = %(v)s", capsys, "--param", "v=1")
    assert code == 0, out
    smuggled = "x' , set_config('default_transaction_read_only', 'off', false) , '"
    for sql in ("SELECT E'%(v)s' AS a", "SELECT 1 AS a -- %(v)s", 'SELECT "%(v)s" FROM victim'):
        code, out = pg_target.query(sql, capsys, "--param", f"v={smuggled}")
        assert code != 0 and "query parameter stands inside" in out
    assert pg_target.tables() == {"victim": 1}
