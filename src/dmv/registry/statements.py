"""The registry's hot statements, written once in SQLAlchemy Core.

Each is built once (``functools.cache``) with bound parameters. PostgreSQL and
the SQLAlchemy path run them as they are; the SQLite fast path runs the same
statements compiled to SQL text once (see :mod:`dmv.registry.compiled`). Rows
come back keyed by column name: :mod:`dmv.registry.rows` maps them to records.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from dmv.registry import schema as t

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "alias_target",
    "aliases_of_model",
    "aliases_of_version",
    "bump_model_seq",
    "insert_alias",
    "insert_audit",
    "insert_model",
    "insert_outbox",
    "insert_version",
    "model_by_name",
    "model_names",
    "model_token",
    "move_alias",
    "run_counts_of_model",
    "token_any",
    "token_by_hash",
    "token_mark",
    "version_by_alias",
    "version_exact",
    "version_newest",
    "version_numbers",
    "version_row",
    "versions_of_model",
]


def _exact() -> tuple[Any, ...]:
    import sqlalchemy as sa

    b, v = sa.bindparam, t.versions.c
    return (
        v.x == b("x"),
        v.y == b("y"),
        v.z == b("z"),
        v.data == b("data"),
        v.split == b("split"),
    )


@cache
def model_by_name(*, lock: bool = False) -> sa.Select[Any]:
    import sqlalchemy as sa

    query = sa.select(t.models).where(t.models.c.name == sa.bindparam("name"))
    return query.with_for_update() if lock else query


@cache
def model_token() -> sa.Select[Any]:
    """What changes whenever anything of a model changes: (id, created_at, seq)."""
    import sqlalchemy as sa

    m = t.models.c
    return sa.select(m.id, m.created_at, m.seq).where(m.name == sa.bindparam("name"))


@cache
def model_names() -> sa.Select[Any]:
    import sqlalchemy as sa

    return sa.select(t.models.c.name)


@cache
def insert_model(postgresql: bool = False) -> Any:
    """A new model row with the schema's defaults; a row of that name already there is kept."""
    if postgresql:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(t.models).on_conflict_do_nothing().returning(t.models.c.id)
    from sqlalchemy.dialects.sqlite import insert

    return insert(t.models).on_conflict_do_nothing().returning(t.models.c.id)


@cache
def insert_audit() -> sa.Insert:
    import sqlalchemy as sa

    return sa.insert(t.audit)


@cache
def insert_outbox() -> sa.Insert:
    import sqlalchemy as sa

    return sa.insert(t.webhook_outbox)


@cache
def bump_model_seq() -> sa.Update:
    import sqlalchemy as sa

    m = t.models.c
    return sa.update(t.models).where(m.name == sa.bindparam("model_name")).values(seq=m.seq + 1)


@cache
def version_row() -> sa.Select[Any]:
    import sqlalchemy as sa

    return sa.select(t.versions).where(t.versions.c.model_id == sa.bindparam("model_id"), *_exact())


@cache
def insert_version() -> sa.Insert:
    import sqlalchemy as sa

    return sa.insert(t.versions)


def _info_select() -> sa.Select[Any]:
    """Everything a VersionInfo holds but its aliases, by column name."""
    import sqlalchemy as sa

    v, m, r = t.versions.c, t.models.c, t.runs.c
    s = t.versions.alias("source")
    run_count = (
        sa.select(sa.func.count())
        .select_from(t.runs)
        .where(r.version_id == sa.func.coalesce(v.released_from, v.id))
        .scalar_subquery()
    )
    return sa.select(
        *t.versions.c,
        m.name.label("model_name"),
        run_count.label("run_count"),
        s.c.x.label("source_x"),
        s.c.y.label("source_y"),
        s.c.z.label("source_z"),
        s.c.data.label("source_data"),
        s.c.split.label("source_split"),
    ).select_from(
        t.versions.join(t.models, m.id == v.model_id).outerjoin(s, s.c.id == v.released_from)
    )


@cache
def version_exact() -> sa.Select[Any]:
    import sqlalchemy as sa

    return _info_select().where(t.models.c.name == sa.bindparam("name"), *_exact())


@cache
def version_by_alias() -> sa.Select[Any]:
    import sqlalchemy as sa

    a = t.aliases.c
    return (
        _info_select()
        .join(t.aliases, a.version_id == t.versions.c.id)
        .where(t.models.c.name == sa.bindparam("name"), a.alias == sa.bindparam("alias"))
    )


@cache
def version_newest(latest: bool, numbers: int) -> sa.Select[Any]:
    """The newest version not deprecated, optionally released, with ``numbers`` of X, Y, Z fixed."""
    import sqlalchemy as sa

    v = t.versions.c
    query = _info_select().where(v.model_id == sa.bindparam("model_id"), v.state != "deprecated")
    if latest:
        query = query.where(v.x >= 1)
    for col in (v.x, v.y, v.z)[:numbers]:
        query = query.where(col == sa.bindparam(col.name))
    return query.order_by(v.x.desc(), v.y.desc(), v.z.desc(), v.id.desc()).limit(1)


@cache
def aliases_of_version() -> sa.Select[Any]:
    import sqlalchemy as sa

    a = t.aliases.c
    return sa.select(a.alias).where(a.version_id == sa.bindparam("vid")).order_by(a.alias)


@cache
def versions_of_model(state: bool) -> sa.Select[Any]:
    """A model's versions in precedence order (a release's source by id: ``version_numbers``)."""
    import sqlalchemy as sa

    v = t.versions.c
    query = sa.select(
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
        # Read as stored (0/1 on SQLite); the listing's mapper makes it a bool.
        sa.type_coerce(v.dirty, sa.Integer).label("dirty"),
        v.serving_run,
        v.released_from,
    ).where(v.model_id == sa.bindparam("model_id"))
    if state:
        query = query.where(v.state == sa.bindparam("state"))
    return query.order_by(v.x, v.y, v.z, v.id)


@cache
def version_numbers() -> sa.Select[Any]:
    """The number parts of every version of a model, by id."""
    import sqlalchemy as sa

    v = t.versions.c
    return sa.select(v.id, v.x, v.y, v.z, v.data, v.split).where(
        v.model_id == sa.bindparam("model_id")
    )


@cache
def aliases_of_model() -> sa.Select[Any]:
    import sqlalchemy as sa

    a = t.aliases.c
    return (
        sa.select(a.version_id, a.alias)
        .where(a.model_id == sa.bindparam("model_id"))
        .order_by(a.alias)
    )


@cache
def run_counts_of_model() -> sa.Select[Any]:
    import sqlalchemy as sa

    r = t.runs.c
    return (
        sa.select(r.version_id, sa.func.count().label("runs"))
        .where(r.model_id == sa.bindparam("model_id"), r.version_id.is_not(None))
        .group_by(r.version_id)
    )


@cache
def alias_target() -> sa.Select[Any]:
    """The version an alias points at now (its number's parts)."""
    import sqlalchemy as sa

    a, v = t.aliases.c, t.versions.c
    return (
        sa.select(v.x, v.y, v.z, v.data, v.split, a.version_id)
        .join(t.versions, v.id == a.version_id)
        .where(a.model_id == sa.bindparam("model_id"), a.alias == sa.bindparam("alias"))
    )


@cache
def insert_alias() -> sa.Insert:
    import sqlalchemy as sa

    return sa.insert(t.aliases)


@cache
def move_alias() -> sa.Update:
    import sqlalchemy as sa

    a = t.aliases.c
    b = sa.bindparam
    return (
        sa.update(t.aliases)
        .where(a.model_id == b("of_model"), a.alias == b("named"))
        .values(version_id=b("to_version"), updated_at=b("now"))
    )


@cache
def token_any() -> sa.Select[Any]:
    import sqlalchemy as sa

    return sa.select(t.tokens.c.id).limit(1)


@cache
def token_mark() -> sa.Select[Any]:
    import sqlalchemy as sa

    c = t.tokens.c
    counts: Any = (
        sa.func.count(c.id).label("created"),
        sa.func.count(c.revoked_at).label("revoked"),
    )
    return sa.select(*counts)


@cache
def token_by_hash() -> sa.Select[Any]:
    import sqlalchemy as sa

    return sa.select(t.tokens).where(t.tokens.c.hash == sa.bindparam("hash"))
