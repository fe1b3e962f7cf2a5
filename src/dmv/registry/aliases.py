"""The registry's aliases: named pointers such as ``production`` to one version each."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import ConflictError, NotFound
from dmv.registry import fast as f
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import AliasInfo
from dmv.version import Reference, Version, check_alias

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["AliasesMixin"]


class AliasesMixin(RegistryCore):
    """Aliases: set (or move) in one transaction with resolving the target, remove, list."""

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
