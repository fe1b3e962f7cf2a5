"""The webhook outbox: claiming deliveries under a lease, recording outcomes, listing.

Rows are written by :meth:`RegistryCore._audit` in the transaction of the change they
announce. A deliverer claims a row by setting a lease (owner and end time) in one
conditional UPDATE, so two deliverers (two server processes) never hold the same row
at once; a deliverer that dies mid-delivery frees it when the lease ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dmv.errors import InvalidInput, NotFound
from dmv.registry import schema as t
from dmv.registry.core import RegistryCore
from dmv.registry.records import EVENT_OF_ACTION, DeliveryRecord

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["WebhooksMixin"]


def _record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(**{c.name: getattr(row, c.name) for c in t.webhook_outbox.c})


class WebhooksMixin(RegistryCore):
    """Events for the systems that deploy: the outbox rows and their delivery state."""

    def record_event(
        self, model: str, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        """Audit ``action`` (one of :data:`EVENT_OF_ACTION`) with no other change: the
        outcome of a read-only operation (a failed verify) that deploy systems hear of."""
        if action not in EVENT_OF_ACTION:
            raise InvalidInput(
                f"{action!r} is not an event action",
                hint="the event actions are " + ", ".join(EVENT_OF_ACTION),
            )
        self._write(lambda conn: self._audit(conn, action, model, target, details))

    def claim_deliveries(
        self,
        hook: str,
        owner: str,
        *,
        lease: float,
        limit: int = 50,
        not_attempted_since: float | None = None,
        now: float | None = None,
    ) -> list[DeliveryRecord]:
        """Pending deliveries to ``hook`` no one holds, now leased to ``owner`` for ``lease`` s.

        Those due (their retry time passed), or with ``not_attempted_since``, every one
        not attempted since then, whatever its schedule (an operator's "send it now").
        """
        import sqlalchemy as sa

        o = t.webhook_outbox.c
        at = time.time() if now is None else now
        free = sa.or_(o.lease_until.is_(None), o.lease_until < at)

        def claim(conn: sa.Connection) -> list[DeliveryRecord]:
            query = sa.select(o.id).where(o.hook == hook, o.status == "pending", free)
            if not_attempted_since is None:
                query = query.where(o.next_at <= at)
            else:
                since = not_attempted_since
                query = query.where(sa.or_(o.attempted_at.is_(None), o.attempted_at < since))
            ids = conn.execute(query.order_by(o.id).limit(limit)).scalars().all()
            claimed = []
            for delivery_id in ids:
                # Conditional: on PostgreSQL a concurrent claimer re-checks it after the lock.
                took = conn.execute(
                    sa.update(t.webhook_outbox)
                    .where(o.id == delivery_id, o.status == "pending", free)
                    .values(lease_owner=owner, lease_until=at + lease)
                ).rowcount
                if took == 1:
                    claimed.append(delivery_id)
            if not claimed:
                return []
            rows = conn.execute(sa.select(t.webhook_outbox).where(o.id.in_(claimed)).order_by(o.id))
            return [_record(r) for r in rows]

        result: list[DeliveryRecord] = self._write(claim)
        return result

    def finish_delivery(
        self,
        delivery_id: int,
        owner: str,
        *,
        delivered: bool,
        status: int | None,
        error: str | None,
        retry_at: float | None,
    ) -> None:
        """Record one attempt: delivered, or failed (``retry_at`` None: given up)."""
        import sqlalchemy as sa

        o = t.webhook_outbox.c
        now = time.time()
        values: dict[str, Any] = {
            "attempts": o.attempts + 1,
            "attempted_at": now,
            "last_status": status,
            "last_error": None if delivered else (error or "")[:2000],
            "lease_owner": None,
            "lease_until": None,
        }
        where = [o.id == delivery_id, o.status == "pending"]
        if delivered:
            values.update(status="delivered", delivered_at=now)
        else:
            # Only the holder records a failure: a lease taken over belongs to another.
            where.append(o.lease_owner == owner)
            if retry_at is None:
                values.update(status="failed")
            else:
                values.update(next_at=retry_at)
        update = sa.update(t.webhook_outbox).where(*where).values(values)
        self._write(lambda conn: conn.execute(update))

    def list_deliveries(
        self, *, status: str | None = None, limit: int | None = 100
    ) -> list[DeliveryRecord]:
        """Outbox rows, newest first (``status``: pending, delivered or failed)."""
        import sqlalchemy as sa

        o = t.webhook_outbox.c

        def read(conn: sa.Connection) -> list[DeliveryRecord]:
            query = sa.select(t.webhook_outbox).order_by(o.id.desc())
            if status:
                query = query.where(o.status == status)
            if limit:
                query = query.limit(min(limit, 2**62))
            return [_record(r) for r in conn.execute(query)]

        result: list[DeliveryRecord] = self._read(read)
        return result

    def redeliver(self, delivery: str) -> DeliveryRecord:
        """Queue a delivery (its number or delivery id) again, now; audited."""
        import sqlalchemy as sa

        o = t.webhook_outbox.c
        key = o.id == int(delivery) if delivery.isdigit() and len(delivery) < 18 else None
        match = o.delivery == delivery if key is None else key

        def write(conn: sa.Connection) -> DeliveryRecord:
            row = conn.execute(sa.select(t.webhook_outbox).where(match)).first()
            if row is None:
                raise NotFound(
                    f"no webhook delivery {delivery!r}",
                    hint="list the deliveries with 'dmv webhooks list'",
                )
            conn.execute(
                sa.update(t.webhook_outbox)
                .where(o.id == row.id)
                .values(status="pending", next_at=time.time(), lease_owner=None, lease_until=None)
            )
            self._audit(conn, "webhook.redeliver", row.model, row.delivery, {"event": row.event})
            return _record(conn.execute(sa.select(t.webhook_outbox).where(o.id == row.id)).one())

        result: DeliveryRecord = self._write(write)
        return result
