"""Warehouse engines, chosen by the URL's scheme from one table.

==================================  =============================================
warehouse URL                       engine
==================================  =============================================
a file path, ``duckdb:///path``     DuckDB (the default ``.dmv/warehouse.duckdb``)
``postgresql://…``,                 PostgreSQL (psycopg 3)
``postgresql+psycopg://…``,
``postgres://…``
``sc://host:port/;database=…``      Spark through Spark Connect (``pip install
                                    'dmv[spark]'``); Databricks and EMR included
==================================  =============================================

Every engine, built-in or not, is a factory ``(url, **options) -> Warehouse``
registered for a scheme in :data:`BACKENDS`, a :class:`dmv.plugins.Backends` table
like the registries' and the artifact stores'. The built-ins register first; another
package adds one through the ``dmv.warehouses`` entry point group, naming a factory
by its scheme, and cannot take over a scheme registered already::

    [project.entry-points."dmv.warehouses"]
    trino = "dmv_trino:open_trino"

The scheme is :func:`dmv.plugins.scheme_of`'s: a URL with no ``scheme://`` is a
``file``, which DuckDB opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dmv.data.engines.duckdb import open_duckdb
from dmv.data.engines.postgres import dump_command, open_postgres
from dmv.data.engines.spark import open_spark
from dmv.data.warehouse import Warehouse
from dmv.errors import InvalidInput
from dmv.plugins import Backends

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "embedded_file",
    "external_backup_command",
    "open_engine",
    "open_warehouse",
]

ENTRY_POINT_GROUP = "dmv.warehouses"
#: the schemes of an embedded warehouse (a DuckDB file)
_EMBEDDED = ("file", "duckdb")


def _unsupported(scheme: str, known: list[str]) -> InvalidInput:
    return InvalidInput(
        f"unsupported warehouse URL {scheme}://…",
        hint="use a DuckDB file path, a postgresql:// URL or an sc:// Spark Connect URL "
        f"(schemes: {', '.join(known)}); other engines install as plug-ins "
        f"through the {ENTRY_POINT_GROUP} entry point",
    )


#: Warehouse engines by URL scheme; other packages add theirs in ``dmv.warehouses``.
BACKENDS: Backends[Warehouse] = Backends("warehouse", ENTRY_POINT_GROUP, unknown=_unsupported)
for _scheme in _EMBEDDED:
    BACKENDS.register(_scheme, open_duckdb)
for _scheme in ("postgresql", "postgres"):  # postgresql+psycopg:// is postgresql
    BACKENDS.register(_scheme, open_postgres)
BACKENDS.register("sc", open_spark)


def embedded_file(url: str) -> str | None:
    """The file of an embedded warehouse (DuckDB), or None for a server's URL."""
    if BACKENDS.scheme_of(url) not in _EMBEDDED:
        return None
    return url.removeprefix("duckdb:///").removeprefix("duckdb://")


def external_backup_command(location: str, shown_url: str, tables: list[str]) -> str | None:
    """The engine's own command that backs up ``tables`` of the warehouse at ``location``
    (``shown_url``: the same URL without credentials), or None where the engine has none
    (Spark: the table format's snapshots)."""
    if BACKENDS.scheme_of(location) not in ("postgresql", "postgres"):
        return None
    with open_warehouse(location) as wh:
        ((schema,),) = wh.rows("SELECT current_schema()")
    return dump_command(shown_url, str(schema), tables)


def open_engine(url: str, **options: Any) -> Warehouse:
    """Open ``url`` with the engine registered for its scheme."""
    return BACKENDS.open(url, **options)


def open_warehouse(
    url: str | Path,
    *,
    schema: str | None = None,
    read_only: bool = False,
    memory_limit: str | None = None,
) -> Warehouse:
    """Open a warehouse by URL; the scheme picks the engine."""
    return open_engine(str(url), schema=schema, read_only=read_only, memory_limit=memory_limit)
