"""The registry's audit log, read back (every write appends to it: see ``RegistryCore._audit``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import AuditEntry

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["AuditMixin"]


class AuditMixin(RegistryCore):
    """The audit log: who did what to which model, newest first."""

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
                # Escaped: '%' and '_' in the prefix are plain characters, not LIKE wildcards.
                query = query.where(t.audit.c.action.startswith(action, autoescape=True))
            if limit:
                # Clamped to what the databases' 64-bit LIMIT holds (the REST offset is unbounded).
                query = query.limit(min(limit, 2**62))
            return [
                AuditEntry(r.id, r.at, r.actor, r.action, r.model, r.target, r.details)
                for r in conn.execute(query)
            ]

        result: list[AuditEntry] = self._read(read)
        return result
