"""The model repository: models, versions, training runs, aliases and the audit log.

Every write is one transaction that also appends to the audit log, so the log
and the data can never disagree. Numbers (``trN``, versions, aliases) are
handed out under a per-model lock, which makes them unique and gap-free even
with many processes writing at once.

On a SQLite file the hot paths (create a version, resolve a reference, list a
model's versions, move an alias) run as plain SQL on ``sqlite3`` (see
:mod:`dmv.registry.fast`); PostgreSQL runs the same logic through SQLAlchemy.
Every audited write also bumps its model's ``seq`` in the same transaction,
which is what lets ``list_versions`` serve a cached list after one tiny query
proves nothing of the model changed, in this process or any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dmv.errors import ConflictError, ImmutableError, InvalidInput, NotFound
from dmv.registry import fast as f
from dmv.registry import schema as t
from dmv.registry.engine import create_engine, is_sqlite, pid_actor, redact_url, transaction
from dmv.registry.fast import SqliteFast, dumps, loads
from dmv.registry.migrations import ensure_schema
from dmv.registry.queries import q
from dmv.registry.records import (
    AliasInfo,
    ArtifactInfo,
    AuditEntry,
    ModelInfo,
    RunInfo,
    VersionInfo,
)
from dmv.version import Reference, RefKind, Version, check_alias, check_name

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["NewArtifact", "NewRun", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class NewArtifact:
    name: str
    kind: str
    digest: str
    size: int
    meta: dict[str, Any] | None = None


@dataclass
class NewRun:
    """Everything a finished run registers, in one transaction."""

    model: str
    kind: str  # training | experiment
    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    started_at: float
    ended_at: float
    version: Version | None = None
    data: str | None = None
    split: str | None = None
    status: str = "finished"
    error: str | None = None
    intended: str | None = None
    environment: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    entry_point: str | None = None
    artifacts: list[NewArtifact] = field(default_factory=list)
    meta: dict[str, Any] | None = None
    # Filled from the versioning step; stored on the version when it is created.
    interface_fp: str | None = None
    logic_fp: str | None = None
    interface: dict[str, Any] | None = None
    interface_compat: str | None = None
    logic: dict[str, Any] | None = None
    dirty: bool = False
    # Called inside the registry transaction, under the model's lock, with every
    # known version row (x, y, z, data, split, interface_fp, logic_fp, interface);
    # returns the version and extra version components. Must be pure: it may run twice.
    derive: Callable[[list[Any]], tuple[Version, dict[str, Any]]] | None = None


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> int:
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


def _run_id(kind: str, number: int | None, pk: int = 0) -> str:
    if number is None:
        return f"failed-{pk}"
    return f"{'tr' if kind == 'training' else 'ex'}{number}"


def parse_run_id(text: str) -> tuple[str, int]:
    """``tr3`` → ("training", 3); ``ex2`` → ("experiment", 2)."""
    prefix, digits = text[:2], text[2:]
    if prefix not in ("tr", "ex") or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        raise InvalidInput(
            f"run id {text!r} is not valid", hint="training runs are tr0, tr1, …; experiments ex1…"
        )
    return ("training" if prefix == "tr" else "experiment"), int(digits)


def _no_model(name: str) -> NotFound:
    return NotFound(
        f"model {name!r} does not exist",
        hint="create it with 'dmv model create NAME' or by logging its first run",
    )


def _no_version(version: Version) -> NotFound:
    return NotFound(
        f"version {version} does not exist",
        hint=f"list the versions with 'dmv versions {version.name}'",
    )


def _no_alias(name: str, alias: str | None) -> NotFound:
    return NotFound(
        f"{name} has no alias {alias!r}", hint=f"list aliases with 'dmv alias list {name}'"
    )


def _no_match(r: Reference) -> NotFound:
    hint = f"list the versions with 'dmv versions {r.name}'"
    if r.kind is RefKind.LATEST:
        hint = f"nothing is released yet; '{r.name}@0' is the newest prerelease"
    return NotFound(f"no version of {r.name} matches {r}", hint=hint)


def _check_fingerprints(
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


_VERSION_COLUMNS = tuple(c.name for c in t.versions.c if c.name != "id")
_JSON_VERSION_COLUMNS = frozenset(
    c.name for c in t.versions.c if getattr(c.type, "__visit_name__", "") == "JSON"
)
_SQL_INSERT_VERSION = (
    f"INSERT INTO versions ({', '.join(_VERSION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _VERSION_COLUMNS)})"
)


def _new_version_values(
    model_id: int, version: Version, components: dict[str, Any]
) -> dict[str, Any]:
    """The row of a new version: its components over dmv's defaults."""
    allowed = set(_VERSION_COLUMNS) - {"model_id", "x", "y", "z"}
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


def _info_from_raw(row: Sequence[Any]) -> VersionInfo:
    """A VersionInfo from a row of ``fast._INFO_SELECT``."""
    (
        _vid,
        _model_id,
        name,
        x,
        y,
        z,
        data,
        split,
        state,
        created_at,
        interface_fp,
        logic_fp,
        interface,
        interface_compat,
        logic,
        dirty,
        serving_run,
        meta,
        released_from,
        run_count,
        aliases,
    ) = row
    return VersionInfo(
        version=Version._trusted(name, x, y, z, data, split),
        state=state,
        created_at=created_at,
        interface_fp=interface_fp,
        logic_fp=logic_fp,
        interface=loads(interface),
        interface_compat=interface_compat,
        logic=loads(logic),
        dirty=bool(dirty),
        released_from=released_from,
        serving_run=None if serving_run is None else f"tr{serving_run}",
        # SQLite's BINARY collation orders text as Python does.
        aliases=tuple(sorted(aliases.split(" "))) if aliases else (),
        run_count=int(run_count),
        meta=loads(meta),
    )


class Registry:
    """The model repository behind one project (SQLite file or PostgreSQL)."""

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

    # -- plumbing -----------------------------------------------------------

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

    def _model_row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        query = q().model_by_name_locked if lock else q().model_by_name
        row = conn.execute(query, {"name": name}).first()
        if row is None:
            raise _no_model(name)
        return row

    def _model_id_raw(self, conn: Any, name: str) -> int:
        row = conn.execute(f.SQL_MODEL_ID, (name,)).fetchone()
        if row is None:
            raise _no_model(name)
        return int(row[0])

    def _ensure_model_raw(self, conn: Any, name: str) -> int:
        """:meth:`_ensure_model` on the fast path (its write lock is BEGIN IMMEDIATE's)."""
        check_name(name)
        row = conn.execute(f.SQL_MODEL_ID, (name,)).fetchone()
        if row is not None:
            return int(row[0])
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
            raise _no_model(name)
        return tuple(rows[0])

    def _ensure_model(self, conn: sa.Connection, name: str) -> Any:
        """The model's row, locked; created (and audited) when missing."""
        check_name(name)
        row = conn.execute(q().model_by_name_locked, {"name": name}).first()
        if row is not None:
            return row
        inserted = _insert_ignore(
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

    def _version_row(self, conn: sa.Connection, model_id: int, v: Version) -> Any:
        params = {"model_id": model_id, "x": v.x, "y": v.y, "z": v.z}
        return conn.execute(q().version_row, {**params, "data": v.data, "split": v.split}).first()

    # -- models -------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        purpose: str = "",
        function: str = "",
        description: str = "",
        primary_metric: str | None = None,
        metric_goal: str = "max",
        exist_ok: bool = False,
    ) -> ModelInfo:
        """Create a model; an existing one is a conflict unless ``exist_ok``."""
        check_name(name)
        if metric_goal not in ("max", "min"):
            raise InvalidInput(f"metric goal {metric_goal!r} must be 'max' or 'min'")
        values = {
            "name": name,
            "purpose": purpose,
            "function": function,
            "description": description,
            "primary_metric": primary_metric,
            "metric_goal": metric_goal,
            "generation": 0,
            "created_at": time.time(),
        }

        def write(conn: sa.Connection) -> None:
            if _insert_ignore(conn, t.models, values):
                self._audit(conn, "model.create", name, name, {"purpose": purpose})
            elif not exist_ok:
                raise ConflictError(
                    f"model {name!r} exists already",
                    hint="see it with 'dmv model list'; change it with 'dmv model update'",
                )

        self._write(write)
        return self.get_model(name)

    def update_model(self, name: str, **fields: Any) -> ModelInfo:
        """Change a model's purpose, function, description or primary metric."""
        import sqlalchemy as sa

        allowed = {"purpose", "function", "description", "primary_metric", "metric_goal"}
        changes = {k: v for k, v in fields.items() if v is not None}
        if bad := set(changes) - allowed:
            raise InvalidInput(f"cannot update {', '.join(sorted(bad))} of a model")
        if changes.get("metric_goal", "max") not in ("max", "min"):
            raise InvalidInput("metric goal must be 'max' or 'min'")

        def write(conn: sa.Connection) -> None:
            row = self._model_row(conn, name, lock=True)
            if changes:
                conn.execute(sa.update(t.models).where(t.models.c.id == row.id).values(**changes))
                self._audit(conn, "model.update", name, name, changes)

        self._write(write)
        return self.get_model(name)

    def get_model(self, name: str) -> ModelInfo:
        return self._models(name)[0]

    def list_models(self) -> list[ModelInfo]:
        return self._models(None)

    def _models(self, name: str | None) -> list[ModelInfo]:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[ModelInfo]:
            query = sa.select(t.models).order_by(t.models.c.name)
            if name is not None:
                query = query.where(t.models.c.name == name)
            rows = conn.execute(query).all()
            if name is not None and not rows:
                self._model_row(conn, name)  # raises NotFound with the hint
            ids = [r.id for r in rows]
            v = t.versions.c
            latest: dict[tuple[int, bool], str] = {}
            counts: dict[int, int] = {}
            vrows = conn.execute(
                sa.select(v.model_id, v.x, v.y, v.z, v.data, v.split, v.state)
                .where(v.model_id.in_(ids))
                .order_by(v.model_id, v.x, v.y, v.z, v.id)
            ).all()
            for r in vrows:
                counts[r.model_id] = counts.get(r.model_id, 0) + 1
                if r.state != "deprecated":
                    latest[(r.model_id, r.x >= 1)] = f"{r.x}.{r.y}.{r.z}-{r.data}.{r.split}"
            alias_map: dict[int, dict[str, str]] = {}
            for a in conn.execute(
                sa.select(t.aliases.c.model_id, t.aliases.c.alias, v.x, v.y, v.z, v.data, v.split)
                .join(t.versions, t.versions.c.id == t.aliases.c.version_id)
                .where(t.aliases.c.model_id.in_(ids))
                .order_by(t.aliases.c.alias)
            ):
                alias_map.setdefault(a.model_id, {})[a.alias] = (
                    f"{a.x}.{a.y}.{a.z}-{a.data}.{a.split}"
                )
            return [
                ModelInfo(
                    name=r.name,
                    purpose=r.purpose,
                    function=r.function,
                    description=r.description,
                    primary_metric=r.primary_metric,
                    metric_goal=r.metric_goal,
                    generation=r.generation,
                    created_at=r.created_at,
                    latest_prerelease=latest.get((r.id, False)),
                    latest_release=latest.get((r.id, True)),
                    aliases=alias_map.get(r.id, {}),
                    version_count=counts.get(r.id, 0),
                )
                for r in rows
            ]

        result: list[ModelInfo] = self._read(read)
        return result

    # -- versions -----------------------------------------------------------

    def create_version(self, version: Version, **components: Any) -> VersionInfo:
        """Register ``version`` (the model is created if missing); idempotent."""
        if self._fast is not None:
            return self._fast.write(
                lambda conn: self._create_version_raw(conn, version, components)
            )

        def write(conn: sa.Connection) -> VersionInfo:
            model = self._ensure_model(conn, version.name)
            self._insert_version(conn, model, version, components)
            return self._exact(conn, version)

        result: VersionInfo = self._write(write)
        return result

    def _insert_version(
        self, conn: sa.Connection, model: Any, version: Version, components: dict[str, Any]
    ) -> int:
        """The id of ``version``, inserting it (with an audit entry) when new."""
        row = self._version_row(conn, model.id, version)
        if row is not None:
            _check_fingerprints(version, components, row.interface_fp, row.logic_fp)
            return int(row.id)
        values = _new_version_values(model.id, version, components)
        vid = conn.execute(q().insert_version, values).inserted_primary_key[0]  # type: ignore[index]
        self._audit(conn, "version.create", version.name, version.number)
        return int(vid)

    def _create_version_raw(
        self, conn: Any, version: Version, components: dict[str, Any]
    ) -> VersionInfo:
        """:meth:`create_version`'s transaction on the fast path."""
        model_id = self._ensure_model_raw(conn, version.name)
        v = version
        key = (model_id, v.x, v.y, v.z, v.data, v.split)
        row = conn.execute(f.SQL_VERSION_FPS, key).fetchone()
        if row is not None:
            _check_fingerprints(version, components, row[1], row[2])
            return _info_from_raw(self._exact_raw(conn, version))
        values = _new_version_values(model_id, version, components)
        stored = {
            c: dumps(values[c]) if c in _JSON_VERSION_COLUMNS else values[c]
            for c in _VERSION_COLUMNS
        }
        conn.execute(_SQL_INSERT_VERSION, tuple(stored.values()))
        self._audit_raw(conn, "version.create", version.name, version.number)
        if values["released_from"] is not None:
            return _info_from_raw(self._exact_raw(conn, version))
        # A new row: no aliases, no runs (a deleted version's runs went with it),
        # every other field as just stored (JSON read back from its stored text).
        return VersionInfo(
            version=Version._trusted(
                version.name, version.x, version.y, version.z, values["data"], values["split"]
            ),
            state=values["state"],
            created_at=values["created_at"],
            interface_fp=values["interface_fp"],
            logic_fp=values["logic_fp"],
            interface=loads(stored["interface"]),
            interface_compat=values["interface_compat"],
            logic=loads(stored["logic"]),
            dirty=bool(values["dirty"]),
            released_from=None,
            serving_run=None if values["serving_run"] is None else f"tr{values['serving_run']}",
            aliases=(),
            run_count=0,
            meta=loads(stored["meta"]),
        )

    def _exact_raw(self, conn: Any, version: Version) -> Sequence[Any]:
        v = version
        row = conn.execute(f.SQL_INFO_EXACT, (v.name, v.x, v.y, v.z, v.data, v.split)).fetchone()
        if row is None:
            self._model_id_raw(conn, v.name)  # NotFound for the model comes first
            raise _no_version(v)
        return row  # type: ignore[no-any-return]

    def _resolve_raw(self, conn: Any, r: Reference) -> Sequence[Any]:
        """The ``fast._INFO_SELECT`` row of the version ``r`` points at, now."""
        if r.kind is RefKind.EXACT and r.version is not None:
            return self._exact_raw(conn, r.version)
        if r.kind is RefKind.ALIAS:
            row = conn.execute(f.SQL_INFO_ALIAS, (r.name, r.alias)).fetchone()
            if row is None:
                self._model_id_raw(conn, r.name)
                raise _no_alias(r.name, r.alias)
            return row  # type: ignore[no-any-return]
        sql, params = f.SQL_INFO_NEWEST, [self._model_id_raw(conn, r.name)]
        if r.kind is RefKind.LATEST:
            sql += " AND v.x >= 1"
        for col, number in zip(("x", "y", "z"), r.numbers, strict=False):
            sql += f" AND v.{col} = ?"
            params.append(number)
        row = conn.execute(sql + f.SQL_INFO_NEWEST_ORDER, params).fetchone()
        if row is None:
            raise _no_match(r)
        return row  # type: ignore[no-any-return]

    def _version_info(self, conn: sa.Connection, row: Any) -> VersionInfo:
        """A VersionInfo from a row of ``q().version_exact`` (or one shaped like it)."""
        aliases = tuple(conn.execute(q().aliases_of_version, {"vid": row.id}).scalars())
        released_from = None
        if row.released_from is not None:
            src = conn.execute(q().version_by_id, {"vid": row.released_from}).first()
            if src is not None:
                released_from = f"{src.x}.{src.y}.{src.z}-{src.data}.{src.split}"
        return VersionInfo(
            version=Version._trusted(row.model_name, row.x, row.y, row.z, row.data, row.split),
            state=row.state,
            created_at=row.created_at,
            interface_fp=row.interface_fp,
            logic_fp=row.logic_fp,
            interface=row.interface,
            interface_compat=row.interface_compat,
            logic=row.logic,
            dirty=bool(row.dirty),
            released_from=released_from,
            serving_run=None if row.serving_run is None else f"tr{row.serving_run}",
            aliases=aliases,
            run_count=int(row.run_count),
            meta=row.meta,
        )

    def _exact(self, conn: sa.Connection, version: Version) -> VersionInfo:
        return self._version_info(conn, self._resolve_row(conn, Reference.exact(version)))

    def get_version(self, version: Version) -> VersionInfo:
        if self._fast is not None:
            return self._fast.read(lambda conn: _info_from_raw(self._exact_raw(conn, version)))
        result: VersionInfo = self._read(lambda conn: self._exact(conn, version))
        return result

    def list_versions(self, model: str, *, state: str | None = None) -> list[VersionInfo]:
        """The model's versions in dmv's precedence: X, Y, Z, then creation.

        The result is cached per model and served again only while the model's
        token (see :meth:`_model_token`) is unchanged: every write that touches
        the model bumps it in its own transaction, in any process, so a cached
        list is never stale. The records are immutable; each call gets its own list.
        """
        key = (model, state)
        hit = self._list_cache.get(key)
        if hit is not None and self._model_token(model) == hit[0]:
            return list(hit[1])
        if self._fast is not None:
            token, infos = self._fast.read(lambda conn: self._list_versions_raw(conn, model, state))
        else:
            token, infos = self._list_versions(model, state)
        if len(self._list_cache) >= 64:
            self._list_cache.clear()
        self._list_cache[key] = (token, infos)
        return list(infos)

    def _list_versions_raw(
        self, conn: Any, model: str, state: str | None
    ) -> tuple[tuple[Any, ...], tuple[VersionInfo, ...]]:
        # The token first: the rows read after it are at least as new as it is.
        token = conn.execute(f.SQL_MODEL_TOKEN, (model,)).fetchone()
        if token is None:
            raise _no_model(model)
        model_id = token[0]
        if state is None:
            rows = conn.execute(f.SQL_LIST_VERSIONS, (model_id,)).fetchall()
        else:
            rows = conn.execute(f.SQL_LIST_VERSIONS_STATE, (model_id, state)).fetchall()
        by_version: dict[int, list[str]] = {}
        for vid, alias in conn.execute(f.SQL_LIST_ALIASES, (model_id,)):
            by_version.setdefault(vid, []).append(alias)
        counts = dict(conn.execute(f.SQL_LIST_RUN_COUNTS, (model_id,)).fetchall())
        trusted = Version._trusted
        no_aliases: tuple[str, ...] = ()
        infos = tuple(
            VersionInfo(
                trusted(model, x, y, z, data, split),
                state_,
                created,
                ifp,
                lfp,
                None,
                compat,
                None,
                bool(dirty),
                None,
                None if srun is None else f"tr{srun}",
                tuple(by_version[vid]) if vid in by_version else no_aliases,
                counts.get(vid, 0),
            )
            for vid, x, y, z, data, split, state_, created, ifp, lfp, compat, dirty, srun in rows
        )
        return tuple(token), infos

    def _list_versions(
        self, model: str, state: str | None
    ) -> tuple[tuple[Any, ...], tuple[VersionInfo, ...]]:
        import sqlalchemy as sa

        v = t.versions.c

        def read(conn: sa.Connection) -> tuple[tuple[Any, ...], tuple[VersionInfo, ...]]:
            # The token first: the rows read after it are at least as new as it is.
            m = self._model_row(conn, model)
            token = (m.id, m.created_at, m.seq)
            query = (
                sa.select(
                    v.id,
                    v.x,
                    v.y,
                    v.z,
                    v.data,
                    v.split,
                    v.state,
                    v.created_at,
                    v.interface_fp,
                    v.logic_fp,
                    v.interface_compat,
                    v.dirty,
                    v.serving_run,
                )
                .where(v.model_id == m.id)
                .order_by(v.x, v.y, v.z, v.id)
            )
            if state is not None:
                query = query.where(v.state == state)
            rows = conn.execute(query).all()
            alias_rows = conn.execute(
                sa.select(t.aliases.c.version_id, t.aliases.c.alias)
                .where(t.aliases.c.model_id == m.id)
                .order_by(t.aliases.c.alias)
            ).all()
            by_version: dict[int, list[str]] = {}
            for vid, alias in alias_rows:
                by_version.setdefault(vid, []).append(alias)
            counts: dict[int, int] = dict(
                conn.execute(
                    sa.select(t.runs.c.version_id, sa.func.count())
                    .where(t.runs.c.model_id == m.id, t.runs.c.version_id.is_not(None))
                    .group_by(t.runs.c.version_id)
                ).all()
            )
            trusted = Version._trusted
            return token, tuple(
                VersionInfo(
                    trusted(model, x, y, z, data, split),
                    state,
                    created,
                    interface_fp=ifp,
                    logic_fp=lfp,
                    interface_compat=compat,
                    dirty=bool(dirty),
                    serving_run=None if srun is None else f"tr{srun}",
                    aliases=tuple(by_version.get(vid, ())),
                    run_count=int(counts.get(vid, 0)),
                )
                for vid, x, y, z, data, split, state, created, ifp, lfp, compat, dirty, srun in rows
            )

        result: tuple[tuple[Any, ...], tuple[VersionInfo, ...]] = self._read(read)
        return result

    def resolve(self, ref: Reference | str) -> VersionInfo:
        """The version a reference points at, now."""
        if isinstance(ref, str):
            ref = Reference.parse(ref)
        r = ref
        if self._fast is not None:
            return self._fast.read(lambda conn: _info_from_raw(self._resolve_raw(conn, r)))
        if r.kind is RefKind.EXACT and r.version is not None:
            return self.get_version(r.version)
        result: VersionInfo = self._read(
            lambda conn: self._version_info(conn, self._resolve_row(conn, r))
        )
        return result

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
                raise _no_version(version)
            return row
        if r.kind is RefKind.ALIAS:
            row = conn.execute(q().version_by_alias, {"name": r.name, "alias": r.alias}).first()
            if row is None:
                self._model_row(conn, r.name)
                raise _no_alias(r.name, r.alias)
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
            raise _no_match(r)
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

    # -- runs ---------------------------------------------------------------

    def commit_run(self, run: NewRun) -> RunInfo:
        """Register a finished (or failed) run and whatever it creates, atomically."""
        import sqlalchemy as sa

        def write(conn: sa.Connection) -> tuple[str, int]:
            model = self._ensure_model(conn, run.model)
            version_id = None
            version = run.version
            if run.kind == "training" and run.status == "finished":
                components = {
                    "interface_fp": run.interface_fp,
                    "logic_fp": run.logic_fp,
                    "interface": run.interface,
                    "interface_compat": run.interface_compat,
                    "logic": run.logic,
                    "dirty": run.dirty or None,
                }
                if version is None and run.derive is not None:
                    # Derived under the model's lock: no other writer can take the
                    # number between our reading what is known and inserting it.
                    version, extra = run.derive(self._known_rows(conn, model.id))
                    components.update(extra)
                if version is None:
                    raise InvalidInput("a training run needs a version")
                version_id = self._insert_version(conn, model, version, components)
            number = None
            if run.status == "finished":
                c = t.runs.c
                scope = (
                    c.version_id == version_id
                    if version_id is not None
                    else sa.and_(c.model_id == model.id, c.kind == "experiment")
                )
                last = conn.execute(sa.select(sa.func.max(c.number)).where(scope)).scalar()
                number = 0 if last is None else int(last) + 1
                if run.kind == "experiment" and last is None:
                    number = 1
            run_pk = conn.execute(
                sa.insert(t.runs).values(
                    model_id=model.id,
                    version_id=version_id,
                    number=number,
                    kind=run.kind,
                    status=run.status,
                    intended=run.intended,
                    data=run.data,
                    split=run.split,
                    params=run.params,
                    metrics=run.metrics,
                    environment=run.environment,
                    code=run.code,
                    entry_point=run.entry_point,
                    error=run.error,
                    meta=run.meta,
                    started_at=run.started_at,
                    ended_at=run.ended_at,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if run.artifacts:
                now = time.time()
                conn.execute(
                    sa.insert(t.artifacts),
                    [
                        {
                            "run_id": run_pk,
                            "name": a.name,
                            "kind": a.kind,
                            "digest": a.digest,
                            "size": a.size,
                            "meta": a.meta,
                            "created_at": now,
                        }
                        for a in run.artifacts
                    ],
                )
            run_id = _run_id(run.kind, number)
            target = version.number if version else run.intended
            self._audit(
                conn,
                f"run.{run.status}",
                run.model,
                f"{target} {run_id}" if target else run_id,
                {"kind": run.kind},
            )
            return run_id, int(run_pk)

        _, pk = self._write(write)
        return self._run_by_pk(pk)

    def _known_rows(self, conn: sa.Connection, model_id: int) -> list[Any]:
        """Every version of a model with what derivation needs to know of it."""
        import sqlalchemy as sa

        v = t.versions.c
        query = sa.select(
            v.x, v.y, v.z, v.data, v.split, v.interface_fp, v.logic_fp, v.interface
        ).where(v.model_id == model_id)
        return list(conn.execute(query.order_by(v.x, v.y, v.z, v.id)).all())

    def _run_info(
        self, conn: sa.Connection, row: Any, model: str, version: Version | None
    ) -> RunInfo:
        import sqlalchemy as sa

        arts = tuple(
            ArtifactInfo(a.name, a.kind, a.digest, int(a.size), a.meta)
            for a in conn.execute(
                sa.select(t.artifacts)
                .where(t.artifacts.c.run_id == row.id)
                .order_by(t.artifacts.c.id)
            )
        )
        return RunInfo(
            id=_run_id(row.kind, row.number, row.id),
            model=model,
            kind=row.kind,
            status=row.status,
            version=version,
            data=row.data if version is None else version.data,
            split=row.split if version is None else version.split,
            params=row.params or {},
            metrics=row.metrics or {},
            started_at=row.started_at,
            ended_at=row.ended_at,
            environment=row.environment,
            code=row.code,
            entry_point=row.entry_point,
            error=row.error,
            intended=row.intended,
            artifacts=arts,
            meta=row.meta,
        )

    def _run_by_pk(self, pk: int) -> RunInfo:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> RunInfo:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == pk)).one()
            name = conn.execute(
                sa.select(t.models.c.name).where(t.models.c.id == row.model_id)
            ).scalar_one()
            version = None
            if row.version_id is not None:
                v = conn.execute(
                    sa.select(t.versions).where(t.versions.c.id == row.version_id)
                ).one()
                version = Version(name, v.x, v.y, v.z, v.data, v.split)
            return self._run_info(conn, row, name, version)

        result: RunInfo = self._read(read)
        return result

    def list_runs(self, version: Version) -> list[RunInfo]:
        """The training runs of one version, tr0 first."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[RunInfo]:
            _, vrow = self._require_version(conn, version, lock=False)
            owner, trained = self._run_owner(conn, version, vrow)
            rows = conn.execute(
                sa.select(t.runs).where(t.runs.c.version_id == owner).order_by(t.runs.c.number)
            ).all()
            return [self._run_info(conn, r, version.name, trained) for r in rows]

        result: list[RunInfo] = self._read(read)
        return result

    def list_model_runs(
        self, model: str, *, kind: str | None = None, status: str | None = None
    ) -> list[RunInfo]:
        """Every run of a model (experiments and failed runs included), oldest first."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[RunInfo]:
            m = self._model_row(conn, model)
            query = sa.select(t.runs).where(t.runs.c.model_id == m.id).order_by(t.runs.c.id)
            if kind:
                query = query.where(t.runs.c.kind == kind)
            if status:
                query = query.where(t.runs.c.status == status)
            vmap = {
                r.id: Version(model, r.x, r.y, r.z, r.data, r.split)
                for r in conn.execute(sa.select(t.versions).where(t.versions.c.model_id == m.id))
            }
            return [
                self._run_info(conn, r, model, vmap.get(r.version_id))
                for r in conn.execute(query).all()
            ]

        result: list[RunInfo] = self._read(read)
        return result

    def get_run(self, model: str, run_id: str, version: Version | None = None) -> RunInfo:
        """One run: ``trN`` of ``version``, or experiment ``exN`` of ``model``."""
        import sqlalchemy as sa

        kind, number = parse_run_id(run_id)

        def read(conn: sa.Connection) -> RunInfo:
            m = self._model_row(conn, model)
            c = t.runs.c
            trained = version
            if kind == "training":
                if version is None:
                    raise InvalidInput(f"{run_id} is a training run: name its version too")
                _, vrow = self._require_version(conn, version, lock=False)
                owner, trained = self._run_owner(conn, version, vrow)
                where: Sequence[Any] = (c.version_id == owner, c.number == number)
            else:
                where = (c.model_id == m.id, c.kind == "experiment", c.number == number)
            row = conn.execute(sa.select(t.runs).where(*where)).first()
            if row is None:
                whose = str(version) if kind == "training" else model
                raise NotFound(f"{whose} has no run {run_id}")
            return self._run_info(conn, row, model, trained if kind == "training" else None)

        result: RunInfo = self._read(read)
        return result

    # -- aliases ------------------------------------------------------------

    def set_alias(self, version: Version | Reference, alias: str) -> AliasInfo:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere).

        ``version`` may be any reference (``name@0.1``, ``name@staging``…): it is
        resolved in the same write transaction that moves the alias.
        """
        import sqlalchemy as sa

        check_alias(alias)
        ref = Reference.exact(version) if isinstance(version, Version) else version
        now = time.time()

        if self._fast is not None:
            target: Version = self._fast.write(
                lambda conn: self._set_alias_raw(conn, ref, alias, now)
            )
            return AliasInfo(target.name, alias, target, now)

        def write(conn: sa.Connection) -> Version:
            model = self._model_row(conn, ref.name, lock=True)
            vrow = self._resolve_row(conn, ref)
            target = Version._trusted(
                vrow.model_name, vrow.x, vrow.y, vrow.z, vrow.data, vrow.split
            )
            if vrow.state == "deprecated":
                raise ConflictError(f"{target} is deprecated: an alias cannot point at it")
            a = t.aliases.c
            old = conn.execute(
                sa.select(
                    t.versions.c.x,
                    t.versions.c.y,
                    t.versions.c.z,
                    t.versions.c.data,
                    t.versions.c.split,
                    a.version_id,
                )
                .join(t.versions, t.versions.c.id == a.version_id)
                .where(a.model_id == model.id, a.alias == alias)
            ).first()
            previous = None
            if old is None:
                conn.execute(
                    sa.insert(t.aliases).values(
                        model_id=model.id, alias=alias, version_id=vrow.id, updated_at=now
                    )
                )
            else:
                previous = f"{old.x}.{old.y}.{old.z}-{old.data}.{old.split}"
                conn.execute(
                    sa.update(t.aliases)
                    .where(a.model_id == model.id, a.alias == alias)
                    .values(version_id=vrow.id, updated_at=now)
                )
            self._audit(
                conn,
                "alias.set",
                target.name,
                alias,
                {"from": previous, "to": target.number},
            )
            return target

        target = self._write(write)
        return AliasInfo(target.name, alias, target, now)

    def _set_alias_raw(self, conn: Any, ref: Reference, alias: str, now: float) -> Version:
        """:meth:`set_alias`'s transaction on the fast path."""
        row = self._resolve_raw(conn, ref)
        vid, model_id, name, x, y, z, data, split, state = row[:9]
        target = Version._trusted(name, x, y, z, data, split)
        if state == "deprecated":
            raise ConflictError(f"{target} is deprecated: an alias cannot point at it")
        old = conn.execute(f.SQL_ALIAS_TARGET, (model_id, alias)).fetchone()
        previous = None
        if old is None:
            conn.execute(f.SQL_INSERT_ALIAS, (model_id, alias, vid, now))
        else:
            previous = old[0]
            conn.execute(f.SQL_MOVE_ALIAS, (vid, now, model_id, alias))
        self._audit_raw(conn, "alias.set", name, alias, {"from": previous, "to": target.number})
        return target

    def remove_alias(self, model: str, alias: str) -> None:
        import sqlalchemy as sa

        check_alias(alias)

        def write(conn: sa.Connection) -> None:
            m = self._model_row(conn, model, lock=True)
            deleted = conn.execute(
                sa.delete(t.aliases).where(t.aliases.c.model_id == m.id, t.aliases.c.alias == alias)
            ).rowcount
            if not deleted:
                raise NotFound(f"{model} has no alias {alias!r}")
            self._audit(conn, "alias.remove", model, alias)

        self._write(write)

    def list_aliases(self, model: str) -> list[AliasInfo]:
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[AliasInfo]:
            m = self._model_row(conn, model)
            v = t.versions.c
            return [
                AliasInfo(
                    model, r.alias, Version(model, r.x, r.y, r.z, r.data, r.split), r.updated_at
                )
                for r in conn.execute(
                    sa.select(
                        t.aliases.c.alias, t.aliases.c.updated_at, v.x, v.y, v.z, v.data, v.split
                    )
                    .join(t.versions, v.id == t.aliases.c.version_id)
                    .where(t.aliases.c.model_id == m.id)
                    .order_by(t.aliases.c.alias)
                )
            ]

        result: list[AliasInfo] = self._read(read)
        return result

    # -- audit --------------------------------------------------------------

    def audit_log(
        self, *, model: str | None = None, action: str | None = None, limit: int | None = 100
    ) -> list[AuditEntry]:
        """The newest audit entries first."""
        import sqlalchemy as sa

        def read(conn: sa.Connection) -> list[AuditEntry]:
            query = sa.select(t.audit).order_by(t.audit.c.id.desc())
            if model:
                query = query.where(t.audit.c.model == model)
            if action:
                query = query.where(t.audit.c.action.startswith(action))
            if limit:
                query = query.limit(limit)
            return [
                AuditEntry(r.id, r.at, r.actor, r.action, r.model, r.target, r.details)
                for r in conn.execute(query)
            ]

        result: list[AuditEntry] = self._read(read)
        return result

    def ensure_mutable(self, versions: Iterable[VersionInfo]) -> None:
        """Refuse to change anything that belongs to a released version."""
        for info in versions:
            if info.state != "prerelease":
                raise ImmutableError(
                    f"{info.version} is {info.state}: its runs, files, splits and metadata "
                    "cannot change",
                    hint="deprecate it instead, or work on a new prerelease",
                )
