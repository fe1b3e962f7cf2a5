"""What every part of the registry shares: the connection, transactions, the audit
write, and the model and version rows the other parts look up.

Every write is one transaction that also appends to the audit log, so the log
and the data can never disagree. Numbers (``trN``, versions, aliases) are
handed out under a per-model lock, which makes them unique and gap-free even
with many processes writing at once. Every audited write also bumps its model's
``seq`` in the same transaction, which is what lets ``list_versions`` serve a
cached list after one tiny query proves nothing of the model changed.

The hot paths run on a :class:`~dmv.registry.compiled.Tx`: the same SQLAlchemy
Core statements (:mod:`dmv.registry.statements`) either through SQLAlchemy or,
on a SQLite file, compiled once to plain SQL on ``sqlite3`` (the fast path).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dmv._urls import database_url, registry_url
from dmv.errors import ConflictError, InvalidInput, NotFound, StorageError
from dmv.integrity import RECOVERY
from dmv.limits import check_table_prefix
from dmv.registry import schema as t
from dmv.registry import statements as s
from dmv.registry.compiled import Row, SaTx, SqliteTx, Tx
from dmv.registry.engine import (
    create_engine,
    is_sqlite,
    pid_actor,
    transaction,
)
from dmv.registry.fast import SqliteFast
from dmv.registry.migrations import ensure_schema
from dmv.registry.records import EVENT_OF_ACTION, VersionInfo, iso
from dmv.registry.rows import version_info
from dmv.version import Reference, RefKind, Version, check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

T = TypeVar("T")

__all__ = [
    "JSON_VERSION_COLUMNS",
    "VERSION_COLUMNS",
    "RegistryCore",
    "check_fingerprints",
    "insert_ignore",
    "new_version_values",
    "no_alias",
    "no_match",
    "no_model",
    "no_version",
]


def insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> int:
    """INSERT … ON CONFLICT DO NOTHING; returns the number of rows inserted (0 or 1)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    # rowcount is unreliable here (-1 on psycopg); RETURNING says what happened.
    stmt = stmt.values(**values).on_conflict_do_nothing().returning(table.c.id)
    return len(conn.execute(stmt).all())


def no_model(name: str) -> NotFound:
    return NotFound(
        f"model {name!r} does not exist",
        hint="create it with 'dmv model create NAME' or by logging its first run",
    )


def no_version(version: Version) -> NotFound:
    return NotFound(
        f"version {version} does not exist",
        hint=f"list the versions with 'dmv versions {version.name}'",
    )


def no_alias(name: str, alias: str | None) -> NotFound:
    return NotFound(
        f"{name} has no alias {alias!r}", hint=f"list aliases with 'dmv alias list {name}'"
    )


def no_match(r: Reference) -> NotFound:
    hint = f"list the versions with 'dmv versions {r.name}'"
    if r.kind is RefKind.LATEST:
        hint = f"nothing is released yet; '{r.name}@0' is the newest prerelease"
    return NotFound(f"no version of {r.name} matches {r}", hint=hint)


def check_fingerprints(
    version: Version, components: dict[str, Any], interface_fp: str | None, logic_fp: str | None
) -> None:
    """An existing version may be registered again only with the same fingerprints."""
    for key, theirs in (("interface_fp", interface_fp), ("logic_fp", logic_fp)):
        mine = components.get(key)
        if mine and theirs and mine != theirs:
            raise ConflictError(
                f"{version} exists with another {key.replace('_fp', '')} "
                f"fingerprint ({theirs[:19]}…, not {mine[:19]}…)",
                hint="let dmv derive the version: drop version= from the run",
            )


VERSION_COLUMNS = tuple(c.name for c in t.versions.c if c.name != "id")
JSON_VERSION_COLUMNS = frozenset(
    c.name for c in t.versions.c if getattr(c.type, "__visit_name__", "") == "JSON"
)


def new_version_values(
    model_id: int, version: Version, components: dict[str, Any]
) -> dict[str, Any]:
    """The row of a new version: its components over dmv's defaults."""
    allowed = set(VERSION_COLUMNS) - {"model_id", "x", "y", "z"}
    if bad := set(components) - allowed:
        raise InvalidInput(
            f"unknown version component(s): {', '.join(sorted(bad))}",
            hint=f"the components are {', '.join(sorted(allowed))}",
        )
    values: dict[str, Any] = dict.fromkeys(allowed)
    values.update(
        model_id=model_id,
        x=version.x,
        y=version.y,
        z=version.z,
        data=version.data,
        split=version.split,
        state="released" if version.x >= 1 else "prerelease",
        dirty=False,
        created_at=time.time(),
    )
    values.update((k, v) for k, v in components.items() if v is not None)
    return values


class RegistryCore:
    """The database plumbing and shared row lookups every part of the registry uses.

    :class:`~dmv.registry.registry.Registry` is this plus one mixin per noun
    (models, versions, runs, aliases, audit, data, tokens, releases); each mixin
    uses only what is here.
    """

    def __init__(self, location: str, *, actor: str | None = None) -> None:
        self.location = location
        refuse_empty_file(location)
        self._engine = create_engine(location)
        self.actor = actor or pid_actor()
        ensure_schema(self._engine)
        # On a SQLite file the hot paths skip SQLAlchemy (see dmv.registry.compiled).
        self._fast: SqliteFast | None = None
        database = self._engine.url.database
        if is_sqlite(self._engine) and database and database != ":memory:":
            self._fast = SqliteFast(database, self.url)
        # list_versions results by (model, state): (model token, versions). A hit
        # is served only after one query shows the model's token unchanged.
        self._webhooks: dict[str, frozenset[str]] = {}
        self._list_cache: dict[tuple[str, str | None], tuple[Any, tuple[VersionInfo, ...]]] = {}

    @property
    def url(self) -> str:
        return database_url(str(self._engine.url))

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine, for tools that inspect the database itself (tests, debugging).

        dmv's own modules go through the registry's methods, never through this.
        """
        return self._engine

    @property
    def dialect(self) -> str:
        """The database behind the registry: ``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self._engine.dispose()

    # -- transactions and the audit write -----------------------------------

    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        return transaction(self._engine, fn, write=False)

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        return transaction(self._engine, fn, write=True)

    def _tread(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one read transaction: on the fast path when there is one."""
        if self._fast is not None:
            return self._fast.read(lambda conn: fn(SqliteTx(conn)))
        return self._read(lambda conn: fn(SaTx(conn)))

    def _twrite(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one write transaction: on the fast path when there is one."""
        if self._fast is not None:
            return self._fast.write(lambda conn: fn(SqliteTx(conn)))
        return self._write(lambda conn: fn(SaTx(conn)))

    def _tfirst(self, stmt: Any, params: dict[str, Any]) -> Row | None:
        """One statement's first row, on its own (no explicit transaction on the fast path)."""
        if self._fast is not None:
            return self._fast.once(lambda conn: SqliteTx(conn).first(stmt, params))
        return self._read(lambda conn: SaTx(conn).first(stmt, params))

    def _audit(
        self,
        conn: sa.Connection | Tx,
        action: str,
        model: str | None,
        target: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        tx = as_tx(conn)
        entry = {
            "at": time.time(),
            "actor": self.actor,
            "action": action,
            "model": model,
            "target": target,
            "details": details,
        }
        tx.run(s.insert_audit(), entry)
        event = EVENT_OF_ACTION.get(action)
        hooks = [h for h, wanted in self._webhooks.items() if event in wanted or "*" in wanted]
        if event is not None and hooks:
            # The outbox row is written with the change: committed together or not at all.
            self._outbox(tx, event, entry, hooks)
        if model is not None:
            # Every write is audited, so this is the one place that marks the
            # model changed, in the same transaction as the change itself.
            tx.run(s.bump_model_seq(), {"model_name": model})

    def subscribe_webhooks(self, hooks: dict[str, frozenset[str]]) -> None:
        """Write an outbox row for each of ``hooks`` (name → events) with every audited
        write that is one of its events, in the write's own transaction."""
        self._webhooks = dict(hooks)

    def _outbox(self, tx: Tx, event: str, entry: dict[str, Any], hooks: list[str]) -> None:
        event_id = str(uuid.uuid4())
        payload = {
            "id": event_id,
            "event": event,
            "action": entry["action"],
            "created_at": iso(entry["at"]),
            "actor": entry["actor"],
            "model": entry["model"],
            "target": entry["target"],
            "details": entry["details"] or {},
        }
        if event != "alias":  # every other event's target is a version number
            payload["version"] = f"{entry['model']} {entry['target']}"
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        for hook in hooks:
            row = {
                "delivery": str(uuid.uuid4()),
                "event_id": event_id,
                "event": event,
                "hook": hook,
                "model": entry["model"],
                "body": body,
                "status": "pending",
                "attempts": 0,
                "next_at": entry["at"],
                "created_at": entry["at"],
            }
            tx.run(s.insert_outbox(), row)

    # -- model rows --------------------------------------------------------

    def _model_row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        row = conn.execute(s.model_by_name(lock=lock), {"name": name}).first()
        if row is None:
            raise no_model(name)
        return row

    def _model_id(self, tx: Tx, name: str, *, lock: bool = False) -> int:
        row = tx.first(s.model_by_name(lock=lock), {"name": name})
        if row is None:
            raise no_model(name)
        return int(row["id"])

    def _model_token(self, name: str) -> tuple[Any, ...]:
        """What changes whenever anything of the model changes: (id, created_at, seq)."""
        row = self._tfirst(s.model_token(), {"name": name})
        if row is None:
            raise no_model(name)
        return (row["id"], row["created_at"], row["seq"])

    def _check_new_model_name(self, conn: sa.Connection | Tx, name: str) -> None:
        """Refuse a new model whose table prefix clashes with an existing one's."""
        import sqlalchemy as sa

        tx = as_tx(conn)
        if tx.dialect == "postgresql":  # creators take turns (SQLite writers always do)
            tx.run(sa.text("SELECT pg_advisory_xact_lock(7213004)"))
        names = [r["name"] for r in tx.all(s.model_names())]
        if name not in names:
            check_table_prefix(name, names)

    def _ensure_model_id(self, tx: Tx, name: str) -> int:
        """The model's id, its row locked; created (and audited) when missing."""
        check_name(name)
        row = tx.first(s.model_by_name(lock=True), {"name": name})
        if row is not None:
            return int(row["id"])
        self._check_new_model_name(tx, name)
        insert = s.insert_model(tx.dialect == "postgresql")
        if tx.all(insert, {"name": name, "created_at": time.time()}):
            self._audit(tx, "model.create", name, name, {"implicit": True})
        return self._model_id(tx, name, lock=True)

    def _ensure_model(self, conn: sa.Connection, name: str) -> Any:
        """The model's row, locked; created (and audited) when missing."""
        self._ensure_model_id(SaTx(conn), name)
        return self._model_row(conn, name, lock=True)

    # -- version rows ------------------------------------------------------

    def _version_row(self, conn: sa.Connection, model_id: int, v: Version) -> Any:
        params = {"model_id": model_id, "x": v.x, "y": v.y, "z": v.z}
        return conn.execute(s.version_row(), {**params, "data": v.data, "split": v.split}).first()

    def _add_version(
        self, tx: Tx, model_id: int, version: Version, components: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Insert ``version`` (with an audit entry) when new: its values; None if it existed."""
        v = version
        key = {"model_id": model_id, "x": v.x, "y": v.y, "z": v.z, "data": v.data}
        row = tx.first(s.version_row(), {**key, "split": v.split})
        if row is not None:
            check_fingerprints(version, components, row["interface_fp"], row["logic_fp"])
            return None
        values = new_version_values(model_id, version, components)
        values["id"] = tx.insert(s.insert_version(), values)
        self._audit(tx, "version.create", version.name, version.number)
        return values

    def _insert_version(
        self, conn: sa.Connection, model: Any, version: Version, components: dict[str, Any]
    ) -> int:
        """The id of ``version`` of the model row ``model``, inserting it when new."""
        values = self._add_version(SaTx(conn), int(model.id), version, components)
        if values is not None:
            return int(values["id"])
        return int(self._version_row(conn, model.id, version).id)

    def _resolve(self, tx: Tx, r: Reference) -> Row:
        """The version row (``statements.version_exact``'s columns) ``r`` points at, now."""
        if r.kind is RefKind.EXACT and r.version is not None:
            v = r.version
            params = {"name": v.name, "x": v.x, "y": v.y, "z": v.z, "data": v.data}
            row = tx.first(s.version_exact(), {**params, "split": v.split})
            if row is None:
                self._model_id(tx, v.name)  # NotFound for the model comes first
                raise no_version(v)
            return row
        if r.kind is RefKind.ALIAS:
            row = tx.first(s.version_by_alias(), {"name": r.name, "alias": r.alias})
            if row is None:
                self._model_id(tx, r.name)
                raise no_alias(r.name, r.alias)
            return row
        numbers = dict(zip("xyz", r.numbers, strict=False))
        query = s.version_newest(r.kind is RefKind.LATEST, len(numbers))
        row = tx.first(query, {"model_id": self._model_id(tx, r.name), **numbers})
        if row is None:
            raise no_match(r)
        return row

    def _info(self, tx: Tx, row: Row) -> VersionInfo:
        """The VersionInfo of a row :meth:`_resolve` returned."""
        aliases = tuple(r["alias"] for r in tx.all(s.aliases_of_version(), {"vid": row["id"]}))
        return version_info(row, row["model_name"], aliases, row["run_count"])

    def _run_owner(self, conn: sa.Connection, version: Version, vrow: Any) -> tuple[int, Version]:
        """The version row whose runs ``version`` has: a release serves its prerelease's runs."""
        import sqlalchemy as sa

        if vrow.released_from is None:
            return int(vrow.id), version
        query = sa.select(t.versions).where(t.versions.c.id == vrow.released_from)
        src = conn.execute(query).one()
        return int(src.id), Version._trusted(version.name, src.x, src.y, src.z, src.data, src.split)

    def _require_version(self, conn: sa.Connection, version: Version, *, lock: bool) -> Any:
        model = self._model_row(conn, version.name, lock=lock)
        row = self._version_row(conn, model.id, version)
        if row is None:
            raise NotFound(
                f"version {version} does not exist",
                hint="list the versions with 'dmv versions MODEL'",
            )
        return model, row


def refuse_empty_file(location: str, *, settle: float = 3.0) -> None:
    """Refuse a SQLite registry file that exists but is empty (0 bytes).

    SQLite would take it for a new database and dmv would write an empty
    registry into it: whatever the file held is lost, and every later command
    would report a project with nothing in it. A registry that does not exist
    yet (a new project) is created as usual, and so is one another process is
    creating this moment: SQLite creates the file empty and writes its header
    right after, so a file that grows within ``settle`` seconds is a new one.
    """
    import os

    url = registry_url(location)
    if not url.startswith("sqlite"):
        return
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path == ":memory:":
        return
    deadline = time.monotonic() + settle
    while os.path.isfile(path) and os.path.getsize(path) == 0:
        if time.monotonic() >= deadline:
            raise StorageError(
                f"the registry at {path} is damaged: the file is empty (0 bytes), "
                "it holds no registry",
                hint=f"{RECOVERY}; if the project was just created and its first command "
                "was interrupted, delete the empty file and run 'dmv init' again",
                store="registry",
                path=path,
            )
        time.sleep(0.05)


def as_tx(conn: sa.Connection | Tx) -> Tx:
    """A :class:`Tx` on ``conn`` (a SQLAlchemy connection is wrapped)."""
    if isinstance(conn, SaTx | SqliteTx):
        return conn
    return SaTx(conn)  # type: ignore[arg-type]


def stored_json(value: Any) -> Any:
    """A JSON document as reading it back from the registry returns it."""
    return None if value is None else json.loads(json.dumps(value))
