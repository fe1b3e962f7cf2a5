"""Engines are plug-ins: one table of schemes, entry points, no dialect branches elsewhere."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import dmv
from dmv.data import engines
from dmv.data.engines import open_warehouse
from dmv.data.engines.duckdb import DuckDBWarehouse, open_duckdb
from dmv.data.engines.spark import open_spark
from dmv.errors import InvalidInput

SRC = Path(dmv.__file__).parent
ADAPTERS = SRC / "data" / "engines"
#: what branching on the engine looks like: comparing its name, or testing its class
BRANCH = re.compile(
    r"""dialect\s*(==|!=|\bin\b|\bnot in\b)|(==|!=)\s*["'](duckdb|postgresql|spark)["']"""
    r"""|isinstance\([^)]*(DuckDB|Postgres|Spark)Warehouse"""
)


def test_no_module_outside_the_adapters_branches_on_the_engine() -> None:
    found = []
    for path in SRC.rglob("*.py"):
        if ADAPTERS in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if "conn.dialect.name" in code or "engine.dialect.name" in code or "tx.dialect" in code:
                continue  # the registry's SQLAlchemy dialects (SQLite/PostgreSQL), not warehouses
            if "self.kind ==" in code:
                continue  # a source's kind: which other database a retrieval reads
            if BRANCH.search(code):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not found, "engine branches outside dmv/data/engines:\n" + "\n".join(found)


def test_the_grep_finds_a_branch() -> None:  # the check above can fail
    assert BRANCH.search('if wh.dialect == "duckdb":')
    assert BRANCH.search("if warehouse.dialect in {'postgresql'}:")
    assert BRANCH.search("isinstance(wh, PostgresWarehouse)")
    assert not BRANCH.search("wh.sql.value_text(c, family)")


def test_schemes_choose_engines(tmp_path: Path) -> None:
    table = engines.BACKENDS.schemes()
    assert {"duckdb", "postgresql", "postgres", "sc"} <= set(table)
    for url in [str(tmp_path / "a.duckdb"), f"duckdb:///{tmp_path / 'b.duckdb'}"]:
        with open_warehouse(url) as wh:
            assert isinstance(wh, DuckDBWarehouse) and wh.dialect == "duckdb"
    assert engines.BACKENDS.factory("C:\\data\\w.duckdb") is open_duckdb
    assert engines.BACKENDS.factory("sc://h:15002") is open_spark
    with pytest.raises(InvalidInput, match="unsupported warehouse URL mysql"):
        open_warehouse("mysql://u@h/db")


def _install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party engine, installed the way a package would be: a dist-info entry point."""
    (tmp_path / "dmv_memwh.py").write_text(
        "from dmv.data.engines.duckdb import DuckDBWarehouse\n\n"
        "class MemWarehouse(DuckDBWarehouse):\n"
        "    dialect = 'mem'\n\n"
        "def open_mem(url, **options):\n"
        "    return MemWarehouse(':memory:')\n"
    )
    info = tmp_path / "dmv_memwh-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dmv-memwh\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dmv.warehouses]\nmem = dmv_memwh:open_mem\nduckdb = dmv_memwh:open_mem\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    engines.BACKENDS.refresh()


def test_a_third_party_engine_registers_through_the_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(tmp_path, monkeypatch)
    try:
        assert engines.BACKENDS.factory("mem://x") is sys.modules["dmv_memwh"].open_mem
        # a plug-in never takes over a built-in scheme
        assert engines.BACKENDS.factory("duckdb:///x") is open_duckdb
        with open_warehouse("mem://anything") as wh:
            assert wh.dialect == "mem"
            wh.execute("CREATE TABLE t AS SELECT 1 AS x")
            assert wh.list_tables() == ["t"]
    finally:
        sys.modules.pop("dmv_memwh", None)
        engines.BACKENDS.refresh()


def test_builtins_register_like_plug_ins() -> None:
    for scheme in ("file", "duckdb", "postgresql", "postgres", "sc"):
        factory: Any = engines.BACKENDS.factory(f"{scheme}://x")
        assert callable(factory)
