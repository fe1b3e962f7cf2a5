"""Ctrl-C and SIGTERM during long commands: the query stops at once, nothing is registered.

The real CLI runs in a subprocess (``python -m dmv …``); once its long query runs
(DuckDB: a cross join the test makes slow through a view of the warehouse;
PostgreSQL: the query seen in ``pg_stat_activity``) it gets one signal. The
command must end within seconds with exit code 130 and one line
``interrupted: nothing was registered; …`` (never a traceback or "a bug in dmv"),
register nothing, and leave ``dmv fsck`` clean: no problem, no orphan.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dmv as dmv_api
from data_conftest import PG_URL, pg_available

SRC = Path(__file__).resolve().parents[1] / "src"
MESSAGE = "interrupted: nothing was registered; run the same command again to finish it"
#: seconds from the signal to the process's exit that count as "at once"
PROMPT = 5.0

FAST_VIEW = "SELECT range AS id, range % 7 AS v FROM range(400)"
SLOW_VIEW = (
    "SELECT a.range AS id, b.range AS v FROM range(400000) a, range(50000) b "
    "WHERE (a.range * b.range) % 1000003 = 7"
)
PG_FAST_VIEW = "SELECT g AS id, g % 7 AS v FROM generate_series(1, 400) g"
PG_SLOW_VIEW = (
    "SELECT g AS id, g % 7 AS v FROM generate_series(1, 400) g, (SELECT pg_sleep(60)) AS s"
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}


def dmv(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dmv", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(cwd: Path, *args: str) -> str:
    done = dmv(cwd, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def interrupt(
    cwd: Path, args: list[str], started: Callable[[], bool], sig: signal.Signals
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``dmv args``, send ``sig`` once ``started()``; the result and the seconds it took."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dmv", *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.PIPE,  # open and silent: a prompt waits
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the long work never started"
            time.sleep(0.1)
        assert proc.poll() is None, "the command ended before the signal"
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), took


def after(seconds: float) -> Callable[[], bool]:
    """Started: ``seconds`` after the call (the query runs far longer)."""
    at = time.monotonic() + seconds
    return lambda: time.monotonic() >= at


def assert_interrupted(done: subprocess.CompletedProcess[str], took: float) -> None:
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == MESSAGE
    assert "Traceback" not in done.stderr + done.stdout
    assert took < PROMPT, f"took {took:.1f} s to stop"


def assert_clean(cwd: Path) -> dict[str, object]:
    report = json.loads(ok(cwd, "fsck", "--json"))
    assert report["ok"], report
    assert report["problems"] == [] and report["orphans"] == [], report
    return report


def splits_of(root: Path) -> list[str]:
    return [s.split for s in dmv_api.open(root).data_splits("m")]


def project_reading(root: Path, sql: str, **settings: str) -> dmv_api.Project:
    """A project (set up in process: quicker) with model ``m`` and retrieval ``d1``."""
    project = dmv_api.init(root, **settings)
    project.create_model("m")
    project.data_query("m", sql=sql, id="d1")
    return project


# -- DuckDB ----------------------------------------------------------------------------


def _duck_sql(project: Path, sql: str) -> None:
    import duckdb

    with duckdb.connect(str(project / ".dmv" / "warehouse.duckdb")) as con:
        con.execute(sql)


@pytest.fixture
def duck_project(tmp_path: Path) -> Path:
    """A project whose retrieval reads the view ``src``: fast now, made slow by the test."""
    (tmp_path / ".dmv").mkdir()
    _duck_sql(tmp_path, f"CREATE VIEW src AS {FAST_VIEW}")
    project_reading(tmp_path, "SELECT id, v FROM src")
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_split_on_duckdb_stops_at_once_and_registers_nothing(
    duck_project: Path, sig: signal.Signals
) -> None:
    _duck_sql(duck_project, f"CREATE OR REPLACE VIEW src AS {SLOW_VIEW}")
    done, took = interrupt(duck_project, ["data", "split", "m", "d1"], after(2.5), sig)
    assert_interrupted(done, took)
    assert splits_of(duck_project) == []
    assert_clean(duck_project)


def test_split_under_json_answers_the_error_body(duck_project: Path) -> None:
    _duck_sql(duck_project, f"CREATE OR REPLACE VIEW src AS {SLOW_VIEW}")
    args = ["data", "split", "m", "d1", "--json"]
    done, took = interrupt(duck_project, args, after(2.5), signal.SIGINT)
    assert_interrupted(done, took)
    assert json.loads(done.stdout)["error"]["code"] == "interrupted"


def test_verify_against_source_on_duckdb(duck_project: Path) -> None:
    dmv_api.open(duck_project).data_split("m", "d1", id="s1")
    _duck_sql(duck_project, f"CREATE OR REPLACE VIEW src AS {SLOW_VIEW}")
    args = ["data", "verify", "m", "d1.s1", "--against-source"]
    done, took = interrupt(duck_project, args, after(2.5), signal.SIGINT)
    assert_interrupted(done, took)
    assert splits_of(duck_project) == ["s1"]
    assert_clean(duck_project)


def test_backup_on_duckdb_leaves_no_partial_folder(duck_project: Path) -> None:
    dmv_api.open(duck_project).data_split("m", "d1", id="s1")
    # a big table makes the warehouse copy long (not a dmv table: fsck leaves it alone)
    _duck_sql(
        duck_project,
        "CREATE TABLE ballast AS SELECT range AS i, range % 1000 AS j FROM range(30000000)",
    )
    target = duck_project.parent / f"{duck_project.name}-backup"

    def copying() -> bool:  # the warehouse copy has begun in the partial folder
        return any(duck_project.parent.glob(f".{target.name}.*.partial/warehouse.duckdb"))

    done, took = interrupt(duck_project, ["backup", str(target)], copying, signal.SIGTERM)
    assert_interrupted(done, took)
    assert not target.exists()
    assert [p for p in duck_project.parent.iterdir() if p.name.endswith(".partial")] == []
    assert_clean(duck_project)


def test_a_prompt_interrupted_says_interrupted(duck_project: Path) -> None:
    done, took = interrupt(duck_project, ["model", "delete", "m"], after(2.0), signal.SIGINT)
    assert_interrupted(done, took)
    assert [m.name for m in dmv_api.open(duck_project).models()] == ["m"]


# -- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"dmv_intr_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (schema,),
        )
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _pg(sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as con:
        cur = con.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def _sleeping(schema: str) -> int:
    """How many of the project's connections (named after the schema) sleep in the view."""
    rows = _pg(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        f"AND wait_event = 'PgSleep' AND application_name = '{schema}'"
    )
    return int(str(rows[0][0]))


def _running(schema: str) -> Callable[[], bool]:
    """Started: the retrieval's query runs on the server (asleep in the slow view)."""
    return lambda: _sleeping(schema) > 0


def _still_running(schema: str) -> int:
    time.sleep(0.5)
    return _sleeping(schema)


def _pg_project(root: Path, schema: str, *, warehouse: bool) -> Path:
    """A project reading ``schema.src`` (a PostgreSQL view), from its warehouse or as a source."""
    _pg(f'CREATE VIEW "{schema}".src AS {PG_FAST_VIEW}')
    url = f"{PG_URL}?application_name={schema}"
    sql = f'SELECT id, v FROM "{schema}".src'
    if warehouse:
        project_reading(root, sql, warehouse=f"{url}&options=-csearch_path%3D{schema}")
    else:
        project = dmv_api.init(root)
        project.create_model("m")
        project.data_query("m", sql=sql, source=url, id="d1")
    return root


def _slow(schema: str) -> None:
    _pg(f'CREATE OR REPLACE VIEW "{schema}".src AS {PG_SLOW_VIEW}')


@pytest.mark.parametrize(
    ("where", "sig"),
    [("warehouse", signal.SIGINT), ("source", signal.SIGTERM)],
    ids=["warehouse-SIGINT", "source-SIGTERM"],
)
def test_split_on_postgresql_cancels_the_query(
    tmp_path: Path, pg_schema: str, where: str, sig: signal.Signals
) -> None:
    project = _pg_project(tmp_path, pg_schema, warehouse=where == "warehouse")
    _slow(pg_schema)
    done, took = interrupt(project, ["data", "split", "m", "d1"], _running(pg_schema), sig)
    assert_interrupted(done, took)
    assert _still_running(pg_schema) == 0, "the query still runs on the server"
    assert splits_of(project) == []
    assert_clean(project)


@pytest.mark.parametrize("where", ["warehouse", "source"])
def test_verify_against_source_on_postgresql(tmp_path: Path, pg_schema: str, where: str) -> None:
    project = _pg_project(tmp_path, pg_schema, warehouse=where == "warehouse")
    dmv_api.open(project).data_split("m", "d1", id="s1")
    _slow(pg_schema)
    args = ["data", "verify", "m", "d1.s1", "--against-source"]
    done, took = interrupt(project, args, _running(pg_schema), signal.SIGINT)
    assert_interrupted(done, took)
    assert _still_running(pg_schema) == 0
    assert splits_of(project) == ["s1"]
    assert_clean(project)


# -- reproduce -------------------------------------------------------------------------

TRAIN = """
import os, pathlib, time
import dmv
from sklearn.linear_model import Ridge

if os.environ.get("DMV_RUN_META"):  # a reproduction: say so, then train for a long time
    pathlib.Path(os.environ["HOLD"]).write_text("training")
    time.sleep(120)
FEATURES = ["age", "bmi", "bp"]
with dmv.open().run("price-model", data="0123.abcd", code=["train.py"]) as run:
    rows = run.dataset("train")
    model = Ridge().fit(rows[FEATURES], rows["target"])
    run.log_metrics({"r2": model.score(rows[FEATURES], rows["target"])}, split="train")
    run.log_model(model, sample_input=rows[FEATURES].head(3))
"""


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_reproduce_stops_in_the_source_check_and_in_training(tmp_path: Path) -> None:
    import duckdb

    from conftest import seed_warehouse

    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "ml@example.com")
    _git(root, "config", "user.name", "ML")
    (root / "train.py").write_text(TRAIN)
    seed_warehouse(dmv_api.init(root))
    _git(root, "add", "train.py", "dmv.toml")
    _git(root, "commit", "-qm", "train")
    trained = subprocess.run(
        [sys.executable, "train.py"], cwd=root, env=_env(), capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    runs = json.loads(ok(root, "runs", "price-model@0.0.1", "--json"))

    # 1. the retrieval re-run by --from-source is cancelled
    with duckdb.connect(str(root / ".dmv" / "warehouse.duckdb")) as con:
        con.execute("ALTER TABLE patients RENAME TO patients_rows")
        con.execute(
            "CREATE VIEW patients AS SELECT * FROM patients_rows WHERE (SELECT count(*) FROM "
            f"({SLOW_VIEW})) >= 0"
        )
    args = ["reproduce", "price-model@0.0.1", "--from-source"]
    done, took = interrupt(root, args, after(3.0), signal.SIGTERM)
    assert_interrupted(done, took)

    # 2. the training dmv runs is stopped, and its worktree removed
    hold = tmp_path / "hold"
    os.environ["HOLD"] = str(hold)
    try:
        done, took = interrupt(root, args[:2], hold.exists, signal.SIGINT)
    finally:
        del os.environ["HOLD"]
    assert_interrupted(done, took)
    assert json.loads(ok(root, "runs", "price-model@0.0.1", "--json")) == runs
    assert len(_git(root, "worktree", "list").splitlines()) == 1
    assert_clean(root)


# -- Spark -----------------------------------------------------------------------------

SPARK_SLOW_VIEW = (
    "SELECT a.id AS id, b.id AS v FROM range(2000000) a CROSS JOIN range(200000) b "
    "WHERE (a.id * b.id) % 1000003 = 7"
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_split_on_spark_interrupts_the_server_and_drops_its_tables(tmp_path: Path) -> None:
    import spark_conftest

    why = spark_conftest.java_missing()
    if why:
        pytest.skip(why)
    url = spark_conftest.spark_database_url(spark_conftest.start_server())
    from dmv.data.engines import open_warehouse

    with open_warehouse(url) as wh:
        wh.execute("CREATE VIEW src AS SELECT id, id % 7 AS v FROM range(400)")
    project_reading(tmp_path, "SELECT id, v FROM src", warehouse=url)
    with open_warehouse(url) as wh:
        wh.execute(f"CREATE OR REPLACE VIEW src AS {SPARK_SLOW_VIEW}")
        done, took = interrupt(tmp_path, ["data", "split", "m", "d1"], after(8.0), signal.SIGINT)
        assert_interrupted(done, took)
        assert [t for t in wh.list_tables() if t.startswith("__dmv")] == []
    assert splits_of(tmp_path) == []
    assert_clean(tmp_path)
