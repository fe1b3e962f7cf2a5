"""What every part of the registry shares: the connection, transactions, the audit
write, and the model and version rows the other parts look up.

Every write is one transaction that also appends to the audit log, so the log
and the data can never disagree. Numbers (``trN``, versions, aliases) are
handed out under a per-model lock, which makes them unique and gap-free even
with many processes writing at once. Every audited write also bumps its model's
``seq`` in the same transaction, which is what lets ``list_versions`` serve a
cached list after one tiny query proves nothing of the model changed.

Methods ending in ``_raw`` are the SQLite fast path's (plain SQL on a ``sqlite3``
connection, see :mod:`dmv.registry.fast`); the others run on SQLAlchemy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, InvalidInput, NotFound
from dmv.limits import check_table_prefix
from dmv.registry import fast as f
from dmv.registry import schema as t
from dmv.registry.engine import create_engine, is_sqlite, pid_actor, redact_url, transaction
from dmv.registry.fast import SqliteFast, dumps
from dmv.registry.migrations import ensure_schema
from dmv.registry.queries import q
from dmv.registry.records import VersionInfo
from dmv.version import Reference, RefKind, Version, check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "JSON_VERSION_COLUMNS",
    "SQL_INSERT_VERSION",
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
SQL_INSERT_VERSION = (
    f"INSERT INTO versions ({', '.join(VERSION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in VERSION_COLUMNS)})"
)


def new_version_values(
    model_id: int, version: Version, components: dict[str, Any]
) -> dict[str, Any]:
    """The row of a new version: its components over dmv's defaults."""
    allowed = set(VERSION_COLUMNS) - {"model_id", "x", "y", "z"}
    if bad := set(components) - allowed:
        raise InvalidInput(f"unknown version component(s): {', '.join(sorted(bad))}")
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

    :class:`~dmv.registry.store.Registry` is this plus one mixin per noun
    (models, versions, runs, aliases, audit); each mixin uses only what is here.
    """

    def __init__(self, location: str, *, actor: str | None = None) -> None:
        self.location = location
        self.engine = create_engine(location)
        self.actor = actor or pid_actor()
        ensure_schema(self.engine)
        # On a SQLite file the hot paths skip SQLAlchemy (see dmv.registry.fast).
        self._fast: SqliteFast | None = None
        database = self.engine.url.database
        if is_sqlite(self.engine) and database and database != ":memory:":
            self._fast = SqliteFast(database, self.url)
        # list_versions results by (model, state): (model token, versions). A hit
        # is served only after one query shows the model's token unchanged.
        self._list_cache: dict[tuple[str, str | None], tuple[Any, tuple[VersionInfo, ...]]] = {}

    @property
    def url(self) -> str:
        return redact_url(str(self.engine.url))

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self.engine.dispose()

    # -- transactions and the audit write -----------------------------------

    def _read(self, fn: Any) -> Any:
        return transaction(self.engine, fn, write=False)

    def _write(self, fn: Any) -> Any:
        return transaction(self.engine, fn, write=True)

    def _audit(
        self,
        conn: sa.Connection,
        action: str,
        model: str | None,
        target: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            q().insert_audit,
            {
                "at": time.time(),
                "actor": self.actor,
                "action": action,
                "model": model,
                "target": target,
                "details": details,
            },
        )
        if model is not None:
            # Every write is audited, so this is the one place that marks the
            # model changed, in the same transaction as the change itself.
            conn.execute(q().bump_model_seq, {"model_name": model})

    def _audit_raw(
        self,
        conn: Any,
        action: str,
        model: str | None,
        target: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """:meth:`_audit` on the SQLite fast path's ``sqlite3`` connection."""
        conn.execute(
            f.SQL_INSERT_AUDIT, (time.time(), self.actor, action, model, target, dumps(details))
        )
        if model is not None:
            conn.execute(f.SQL_BUMP_SEQ, (model,))

    # -- model rows --------------------------------------------------------

    def _model_row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        query = q().model_by_name_locked if lock else q().model_by_name
        row = conn.execute(query, {"name": name}).first()
        if row is None:
            raise no_model(name)
        return row

    def _model_id_raw(self, conn: Any, name: str) -> int:
        row = conn.execute(f.SQL_MODEL_ID, (name,)).fetchone()
        if row is None:
            raise no_model(name)
        return int(row[0])

    def _ensure_model_raw(self, conn: Any, name: str) -> int:
        """:meth:`_ensure_model` on the fast path (its write lock is BEGIN IMMEDIATE's)."""
        check_name(name)
        row = conn.execute(f.SQL_MODEL_ID, (name,)).fetchone()
        if row is not None:
            return int(row[0])
        check_table_prefix(name, (r[0] for r in conn.execute("SELECT name FROM models")))
        if conn.execute(f.SQL_INSERT_MODEL, (name, time.time())).rowcount:
            self._audit_raw(conn, "model.create", name, name, {"implicit": True})
        return self._model_id_raw(conn, name)

    def _model_token(self, name: str) -> tuple[Any, ...]:
        """What changes whenever anything of the model changes: (id, created_at, seq)."""
        if self._fast is not None:
            rows = self._fast.query(f.SQL_MODEL_TOKEN, (name,))
        else:
            rows = self._read(lambda conn: conn.execute(q().model_token, {"name": name}).all())
        if not rows:
            raise no_model(name)
        return tuple(rows[0])

    def _check_new_model_name(self, conn: sa.Connection, name: str) -> None:
        """Refuse a new model whose table prefix clashes with an existing one's."""
        import sqlalchemy as sa

        if conn.dialect.name == "postgresql":  # creators take turns (SQLite writers always do)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7213004)"))
        names = list(conn.execute(sa.select(t.models.c.name)).scalars())
        if name not in names:
            check_table_prefix(name, names)

    def _ensure_model(self, conn: sa.Connection, name: str) -> Any:
        """The model's row, locked; created (and audited) when missing."""
        check_name(name)
        row = conn.execute(q().model_by_name_locked, {"name": name}).first()
        if row is not None:
            return row
        self._check_new_model_name(conn, name)
        inserted = insert_ignore(
            conn,
            t.models,
            {
                "name": name,
                "purpose": "",
                "function": "",
                "description": "",
                "metric_goal": "max",
                "generation": 0,
                "created_at": time.time(),
            },
        )
        if inserted:
            self._audit(conn, "model.create", name, name, {"implicit": True})
        return self._model_row(conn, name, lock=True)

    # -- version rows ------------------------------------------------------

    def _version_row(self, conn: sa.Connection, model_id: int, v: Version) -> Any:
        params = {"model_id": model_id, "x": v.x, "y": v.y, "z": v.z}
        return conn.execute(q().version_row, {**params, "data": v.data, "split": v.split}).first()

    def _insert_version(
        self, conn: sa.Connection, model: Any, version: Version, components: dict[str, Any]
    ) -> int:
        """The id of ``version``, inserting it (with an audit entry) when new."""
        row = self._version_row(conn, model.id, version)
        if row is not None:
            check_fingerprints(version, components, row.interface_fp, row.logic_fp)
            return int(row.id)
        values = new_version_values(model.id, version, components)
        vid = conn.execute(q().insert_version, values).inserted_primary_key[0]  # type: ignore[index]
        self._audit(conn, "version.create", version.name, version.number)
        return int(vid)

    def _exact_raw(self, conn: Any, version: Version) -> Sequence[Any]:
        v = version
        row = conn.execute(f.SQL_INFO_EXACT, (v.name, v.x, v.y, v.z, v.data, v.split)).fetchone()
        if row is None:
            self._model_id_raw(conn, v.name)  # NotFound for the model comes first
            raise no_version(v)
        return row  # type: ignore[no-any-return]

    def _resolve_raw(self, conn: Any, r: Reference) -> Sequence[Any]:
        """The ``fast._INFO_SELECT`` row of the version ``r`` points at, now."""
        if r.kind is RefKind.EXACT and r.version is not None:
            return self._exact_raw(conn, r.version)
        if r.kind is RefKind.ALIAS:
            row = conn.execute(f.SQL_INFO_ALIAS, (r.name, r.alias)).fetchone()
            if row is None:
                self._model_id_raw(conn, r.name)
                raise no_alias(r.name, r.alias)
            return row  # type: ignore[no-any-return]
        sql, params = f.SQL_INFO_NEWEST, [self._model_id_raw(conn, r.name)]
        if r.kind is RefKind.LATEST:
            sql += " AND v.x >= 1"
        for col, number in zip(("x", "y", "z"), r.numbers, strict=False):
            sql += f" AND v.{col} = ?"
            params.append(number)
        row = conn.execute(sql + f.SQL_INFO_NEWEST_ORDER, params).fetchone()
        if row is None:
            raise no_match(r)
        return row  # type: ignore[no-any-return]

    def _resolve_row(self, conn: sa.Connection, r: Reference) -> Any:
        """The ``q().version_exact``-shaped row of the version ``r`` points at, now."""
        import sqlalchemy as sa

        v = t.versions.c
        if r.kind is RefKind.EXACT and r.version is not None:
            version = r.version
            row = conn.execute(
                q().version_exact,
                {
                    "name": version.name,
                    "x": version.x,
                    "y": version.y,
                    "z": version.z,
                    "data": version.data,
                    "split": version.split,
                },
            ).first()
            if row is None:
                self._model_row(conn, version.name)  # NotFound for the model comes first
                raise no_version(version)
            return row
        if r.kind is RefKind.ALIAS:
            row = conn.execute(q().version_by_alias, {"name": r.name, "alias": r.alias}).first()
            if row is None:
                self._model_row(conn, r.name)
                raise no_alias(r.name, r.alias)
            return row
        model = self._model_row(conn, r.name)
        query = (
            sa.select(*q().version_exact.selected_columns)
            .join(t.models, t.models.c.id == v.model_id)
            .where(v.model_id == model.id, v.state != "deprecated")
        )
        if r.kind is RefKind.LATEST:
            query = query.where(v.x >= 1)
        for col, number in zip((v.x, v.y, v.z), r.numbers, strict=False):
            query = query.where(col == number)
        row = conn.execute(
            query.order_by(v.x.desc(), v.y.desc(), v.z.desc(), v.id.desc()).limit(1)
        ).first()
        if row is None:
            raise no_match(r)
        return row

    def _run_owner(self, conn: sa.Connection, version: Version, vrow: Any) -> tuple[int, Version]:
        """The version row whose runs ``version`` has: a release serves its prerelease's runs."""
        if vrow.released_from is None:
            return int(vrow.id), version
        src = conn.execute(q().version_by_id, {"vid": vrow.released_from}).one()
        return int(src.id), Version._trusted(version.name, src.x, src.y, src.z, src.data, src.split)

    def _require_version(self, conn: sa.Connection, version: Version, *, lock: bool) -> Any:
        model = self._model_row(conn, version.name, lock=lock)
        row = self._version_row(conn, model.id, version)
        if row is None:
            raise NotFound(f"version {version} does not exist")
        return model, row
