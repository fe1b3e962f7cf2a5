"""The registry's versions: register, look up, resolve and list them.

On a SQLite file creating a version, resolving a reference and listing a
model's versions run as plain SQL (see :mod:`dmv.registry.fast`); PostgreSQL
runs the same logic through SQLAlchemy, and both return the same records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dmv.errors import ImmutableError
from dmv.registry import fast as f
from dmv.registry import schema as t
from dmv.registry.core import (
    JSON_VERSION_COLUMNS,
    SQL_INSERT_VERSION,
    VERSION_COLUMNS,
    RegistryCore,
    check_fingerprints,
    new_version_values,
    no_model,
)
from dmv.registry.fast import dumps, loads
from dmv.registry.queries import q
from dmv.registry.records import VersionInfo
from dmv.version import Reference, RefKind, Version

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["VersionsMixin"]


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


class VersionsMixin(RegistryCore):
    """Versions: ``name X.Y.Z-DATA.SPLIT`` with their components, state and aliases."""

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

    def _create_version_raw(
        self, conn: Any, version: Version, components: dict[str, Any]
    ) -> VersionInfo:
        """:meth:`create_version`'s transaction on the fast path."""
        model_id = self._ensure_model_raw(conn, version.name)
        v = version
        key = (model_id, v.x, v.y, v.z, v.data, v.split)
        row = conn.execute(f.SQL_VERSION_FPS, key).fetchone()
        if row is not None:
            check_fingerprints(version, components, row[1], row[2])
            return _info_from_raw(self._exact_raw(conn, version))
        values = new_version_values(model_id, version, components)
        stored = {
            c: dumps(values[c]) if c in JSON_VERSION_COLUMNS else values[c] for c in VERSION_COLUMNS
        }
        conn.execute(SQL_INSERT_VERSION, tuple(stored.values()))
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
            raise no_model(model)
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
                source,
                None if srun is None else f"tr{srun}",
                tuple(by_version[vid]) if vid in by_version else no_aliases,
                # A release serves its prerelease's runs (as in fast._INFO_SELECT).
                counts.get(vid if source_id is None else source_id, 0),
            )
            for (
                vid,
                x,
                y,
                z,
                data,
                split,
                state_,
                created,
                ifp,
                lfp,
                compat,
                dirty,
                srun,
                source_id,
                source,
            ) in rows
        )
        return tuple(token), infos

    def _list_versions(
        self, model: str, state: str | None
    ) -> tuple[tuple[Any, ...], tuple[VersionInfo, ...]]:
        import sqlalchemy as sa

        v = t.versions.c
        # A release's source: its number, and the id whose runs the release counts.
        s = t.versions.alias("source")

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
                    s.c.id.label("source_id"),
                    s.c.x.label("source_x"),
                    s.c.y.label("source_y"),
                    s.c.z.label("source_z"),
                    s.c.data.label("source_data"),
                    s.c.split.label("source_split"),
                )
                .select_from(t.versions.outerjoin(s, s.c.id == v.released_from))
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
                    trusted(model, r.x, r.y, r.z, r.data, r.split),
                    r.state,
                    r.created_at,
                    interface_fp=r.interface_fp,
                    logic_fp=r.logic_fp,
                    interface_compat=r.interface_compat,
                    dirty=bool(r.dirty),
                    released_from=None
                    if r.source_id is None
                    else f"{r.source_x}.{r.source_y}.{r.source_z}-{r.source_data}.{r.source_split}",
                    serving_run=None if r.serving_run is None else f"tr{r.serving_run}",
                    aliases=tuple(by_version.get(r.id, ())),
                    # A release serves its prerelease's runs (as q().version_exact counts).
                    run_count=int(counts.get(r.id if r.source_id is None else r.source_id, 0)),
                )
                for r in rows
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

    def ensure_mutable(self, versions: Iterable[VersionInfo]) -> None:
        """Refuse to change anything that belongs to a released version."""
        for info in versions:
            if info.state != "prerelease":
                raise ImmutableError(
                    f"{info.version} is {info.state}: its runs, files, splits and metadata "
                    "cannot change",
                    hint="deprecate it instead, or work on a new prerelease",
                )
