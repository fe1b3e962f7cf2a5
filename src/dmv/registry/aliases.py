"""The registry's aliases: named pointers such as ``production`` to one version each."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dmv.errors import ConflictError, NotFound
from dmv.registry import schema as t
from dmv.registry import statements as s
from dmv.registry.compiled import Tx
from dmv.registry.core import RegistryCore
from dmv.registry.records import AliasInfo
from dmv.registry.rows import number_of
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
        check_alias(alias)
        ref = Reference.exact(version) if isinstance(version, Version) else version
        now = time.time()

        def write(tx: Tx) -> Version:
            model_id = self._model_id(tx, ref.name, lock=True)
            row = self._resolve(tx, ref)
            target = Version._trusted(
                row["model_name"], row["x"], row["y"], row["z"], row["data"], row["split"]
            )
            if row["state"] == "deprecated":
                raise ConflictError(
                    f"{target} is deprecated: an alias cannot point at it",
                    hint="point the alias at a version that is not deprecated, or remove it with "
                    "'dmv alias rm'",
                )
            key = {"model_id": model_id, "alias": alias}
            old = tx.first(s.alias_target(), key)
            if old is None:
                tx.run(s.insert_alias(), {**key, "version_id": row["id"], "updated_at": now})
            else:
                moved = {"of_model": model_id, "named": alias, "to_version": row["id"], "now": now}
                tx.run(s.move_alias(), moved)
            previous = None if old is None else number_of(old)
            self._audit(
                tx, "alias.set", target.name, alias, {"from": previous, "to": target.number}
            )
            return target

        target = self._twrite(write)
        return AliasInfo(target.name, alias, target, now)

    def remove_alias(self, model: str, alias: str) -> None:
        import sqlalchemy as sa

        check_alias(alias)

        def write(conn: sa.Connection) -> None:
            m = self._model_row(conn, model, lock=True)
            deleted = conn.execute(
                sa.delete(t.aliases).where(t.aliases.c.model_id == m.id, t.aliases.c.alias == alias)
            ).rowcount
            if not deleted:
                raise NotFound(
                    f"{model} has no alias {alias!r}",
                    hint="list the aliases with 'dmv alias list MODEL'",
                )
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
