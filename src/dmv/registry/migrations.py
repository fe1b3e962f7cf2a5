"""Schema creation and in-place upgrades of the registry.

A fresh database gets the current schema in one transaction and is stamped
with :data:`SCHEMA_VERSION`. An older database is upgraded by ``dmv migrate``,
which applies each step of :data:`MIGRATIONS` newer than its stamp, in order,
in one transaction. Concurrent openers are serialised (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL) so a store is created exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dmv._urls import database_url
from dmv.errors import StorageError
from dmv.registry import schema
from dmv.registry.engine import create_engine, transaction

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["MIGRATIONS", "current_version", "ensure_schema", "migrate", "upgrade_schema"]

_PG_LOCK_KEY = 0x646D76  # "dmv"


def _add_model_seq(conn: sa.Connection) -> None:
    import sqlalchemy as sa

    columns = {c["name"] for c in sa.inspect(conn).get_columns("models")}
    if "seq" not in columns:  # idempotent: a half-stamped store may have it already
        conn.execute(sa.text("ALTER TABLE models ADD COLUMN seq BIGINT NOT NULL DEFAULT 0"))


def _create_table(table: sa.Table) -> Callable[[sa.Connection], None]:
    """A step that adds a new table and its indexes."""

    def step(conn: sa.Connection) -> None:
        # checkfirst: idempotent, like every step (a half-stamped store may have it already)
        table.create(conn, checkfirst=True)
        for index in table.indexes:
            index.create(conn, checkfirst=True)

    return step


def _steps(*steps: Callable[[sa.Connection], None]) -> Callable[[sa.Connection], None]:
    """One step made of several, run in order in the same transaction."""

    def step(conn: sa.Connection) -> None:
        for one in steps:
            one(conn)

    return step


#: (version it produces, description, step). Each step upgrades from version - 1.
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (2, "models.seq: a per-model change counter for validated read caches", _add_model_seq),
    (
        3,
        "webhook_outbox: webhook deliveries written with the change",
        _create_table(schema.webhook_outbox),
    ),
    (
        4,
        "signatures: release signatures and provenance envelopes",
        _create_table(schema.signatures),
    ),
    (
        5,
        "evaluations and approvals: versions measured on other stored splits "
        "(dmv evaluate), and who approved a version for release (dmv approve)",
        _steps(_create_table(schema.evaluations), _create_table(schema.approvals)),
    ),
    (
        6,
        "metric_history: every value of a metric logged with a step (learning curves)",
        _create_table(schema.metric_history),
    ),
    (
        7,
        "prediction_runs: batch predictions by version (dmv predict)",
        _create_table(schema.prediction_runs),
    ),
]


def current_version(conn: sa.Connection) -> int | None:
    """The schema stamp, or None for a database dmv has never touched."""
    import sqlalchemy as sa

    if not sa.inspect(conn).has_table(schema.schema_info.name):
        return None
    row = conn.execute(
        sa.select(schema.schema_info.c.value).where(schema.schema_info.c.key == "version")
    ).first()
    return int(row[0]) if row else None


def _lock(conn: sa.Connection) -> None:
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def _stamp(conn: sa.Connection, version: int) -> None:
    import sqlalchemy as sa

    table = schema.schema_info
    updated = conn.execute(
        sa.update(table).where(table.c.key == "version").values(value=str(version))
    )
    if updated.rowcount == 0:
        conn.execute(sa.insert(table).values(key="version", value=str(version)))


def ensure_schema(engine: sa.Engine) -> None:
    """Create the schema when missing; refuse a schema of another version."""

    def check(conn: sa.Connection) -> int | None:
        return current_version(conn)

    found = transaction(engine, check, write=False)
    if found == schema.SCHEMA_VERSION:
        return
    if found is None:

        def create(conn: sa.Connection) -> None:
            _lock(conn)
            if current_version(conn) is not None:
                return  # another process created it while we waited
            schema.metadata.create_all(conn)
            _stamp(conn, schema.SCHEMA_VERSION)

        transaction(engine, create, write=True)
        return
    where = database_url(str(engine.url))
    if found < schema.SCHEMA_VERSION:
        raise StorageError(
            f"the registry at {where} has schema version {found}; "
            f"this dmv needs {schema.SCHEMA_VERSION}",
            hint="run 'dmv migrate' to upgrade it in place",
        )
    raise StorageError(
        f"the registry at {where} has schema version {found}, newer than this dmv "
        f"understands ({schema.SCHEMA_VERSION})",
        hint="upgrade dmv: pip install -U dmv",
    )


def migrate(engine: sa.Engine) -> tuple[int | None, int]:
    """Upgrade the schema in place; returns (version before, version after)."""

    def step(conn: sa.Connection) -> tuple[int | None, int]:
        _lock(conn)
        before = current_version(conn)
        if before is None:
            schema.metadata.create_all(conn)
        else:
            for version, _description, upgrade in MIGRATIONS:
                if version > before:
                    upgrade(conn)
        _stamp(conn, schema.SCHEMA_VERSION)
        return before, schema.SCHEMA_VERSION

    return transaction(engine, step, write=True)


def upgrade_schema(location: str) -> tuple[int | None, int]:
    """Upgrade the registry at ``location`` in place; returns (version before, version after)."""

    engine = create_engine(location)
    try:
        return migrate(engine)
    finally:
        engine.dispose()
