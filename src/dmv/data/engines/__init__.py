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
registered for a scheme. The built-ins are listed in :data:`BUILTIN`; another
package adds one through the ``dmv.warehouses`` entry point group, naming a factory
by its scheme::

    [project.entry-points."dmv.warehouses"]
    trino = "dmv_trino:open_trino"

A URL with no ``scheme://`` is a DuckDB file path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput

if TYPE_CHECKING:
    from dmv.data.warehouse import Warehouse

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "engines", "open_engine", "scheme_of"]

Factory = Callable[..., "Warehouse"]
ENTRY_POINT_GROUP = "dmv.warehouses"

#: the built-in engines, as ``scheme: "module:factory"`` (what an entry point names)
BUILTIN: dict[str, str] = {
    "duckdb": "dmv.data.engines.duckdb:open_duckdb",
    "postgresql": "dmv.data.engines.postgres:open_postgres",
    "postgresql+psycopg": "dmv.data.engines.postgres:open_postgres",
    "postgres": "dmv.data.engines.postgres:open_postgres",
    "sc": "dmv.data.engines.spark:open_spark",
}

_loaded: dict[str, str] | None = None


def engines() -> dict[str, str]:
    """Every registered scheme and the ``module:factory`` it opens with."""
    global _loaded
    if _loaded is None:
        from importlib.metadata import entry_points

        found = dict(BUILTIN)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name.lower(), ep.value)  # a plug-in never shadows a built-in
        _loaded = found
    return dict(_loaded)


def scheme_of(url: str) -> str:
    """The URL's scheme, lowercase (``duckdb`` for a bare path)."""
    head, sep, _ = url.partition(":")
    if not sep or "/" in head or "\\" in head or len(head) <= 1:  # a path (C:\\ too)
        return "duckdb"
    return head.lower()


def embedded_file(url: str) -> str | None:
    """The file of an embedded warehouse (DuckDB), or None for a server's URL."""
    if scheme_of(url) != "duckdb":
        return None
    return url.removeprefix("duckdb:///").removeprefix("duckdb://")


def _factory(value: str) -> Factory:
    module, _, attr = value.partition(":")
    found: Any = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise InvalidInput(f"the warehouse engine {value} is not callable")
    return found  # type: ignore[no-any-return]


def open_engine(url: str, **options: Any) -> Warehouse:
    """Open ``url`` with the engine registered for its scheme."""
    scheme = scheme_of(url)
    table = engines()
    if scheme not in table and "://" not in url:
        scheme = "duckdb"  # a file name with a colon in it
    if scheme not in table:
        raise InvalidInput(
            f"unsupported warehouse URL {scheme}://…",
            hint="use a DuckDB file path, a postgresql:// URL or an sc:// Spark Connect URL "
            f"(schemes: {', '.join(sorted(table))}); other engines install as plug-ins "
            f"through the {ENTRY_POINT_GROUP} entry point",
        )
    return _factory(table[scheme])(url, **options)
