"""Prepared statements for the registry's hot paths.

Building a SQLAlchemy statement costs more than running it on SQLite, so the
statements used on every lookup are built once, with bound parameters, and
reused; SQLAlchemy's compiled cache then makes each call a plain execute.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any

from dmv.registry import schema as t

__all__ = ["q"]


@cache
def q() -> Any:
    import sqlalchemy as sa

    b = sa.bindparam
    v, m, r, a = t.versions.c, t.models.c, t.runs.c, t.aliases.c
    run_count = (
        sa.select(sa.func.count())
        .select_from(t.runs)
        .where(r.version_id == sa.func.coalesce(v.released_from, v.id))
    ).scalar_subquery()
    version_cols = [*t.versions.c, run_count.label("run_count"), m.name.label("model_name")]
    exact = (
        v.x == b("x"),
        v.y == b("y"),
        v.z == b("z"),
        v.data == b("data"),
        v.split == b("split"),
    )
    return SimpleNamespace(
        model_by_name=sa.select(t.models).where(m.name == b("name")),
        model_by_name_locked=sa.select(t.models).where(m.name == b("name")).with_for_update(),
        version_exact=sa.select(*version_cols)
        .join(t.models, m.id == v.model_id)
        .where(m.name == b("name"), *exact),
        version_row=sa.select(t.versions).where(v.model_id == b("model_id"), *exact),
        version_by_alias=sa.select(*version_cols)
        .join(t.models, m.id == v.model_id)
        .join(t.aliases, a.version_id == v.id)
        .where(m.name == b("name"), a.alias == b("alias")),
        aliases_of_version=sa.select(a.alias).where(a.version_id == b("vid")).order_by(a.alias),
        alias_row=sa.select(a.id, a.version_id).where(
            a.model_id == b("model_id"), a.alias == b("alias")
        ),
        version_by_id=sa.select(t.versions).where(v.id == b("vid")),
        insert_audit=sa.insert(t.audit),
        bump_model_seq=sa.update(t.models).where(m.name == b("model_name")).values(seq=m.seq + 1),
        model_token=sa.select(m.id, m.created_at, m.seq).where(m.name == b("name")),
        insert_version=sa.insert(t.versions),
    )
