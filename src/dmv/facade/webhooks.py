"""Webhooks: delivering the outbox to ``[[webhooks]]``, listing it, queueing a redelivery."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from dmv.errors import InvalidInput
from dmv.facade._base import FacadeBase
from dmv.integrations import webhooks

if TYPE_CHECKING:
    from dmv.registry.records import DeliveryRecord

__all__ = ["WebhooksMixin"]

_STATUSES = ("pending", "delivered", "failed")


class WebhooksMixin(FacadeBase):
    """Webhooks: delivering the outbox to ``[[webhooks]]``, listing it, queueing a redelivery."""

    def deliver_webhooks(self, *, wait: float = 0.0) -> webhooks.Summary:
        """Send every pending delivery now; retry failures with backoff for ``wait`` seconds."""
        if wait < 0:
            raise InvalidInput(f"wait {wait} is negative", hint="--wait takes seconds, e.g. 60")
        return webhooks.deliver(self.registry, self.config.webhooks, wait=wait)

    def webhook_deliveries(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[webhooks.Delivery]:
        """The outbox, newest first: pending, delivered and failed deliveries."""
        if status is not None and status not in _STATUSES:
            raise InvalidInput(
                f"status {status!r} is not one of {', '.join(_STATUSES)}",
                hint="--status pending, delivered or failed",
            )
        return webhooks.listing(self.registry, self.config.webhooks, status=status, limit=limit)

    def redeliver_webhook(self, delivery: str) -> DeliveryRecord:
        """Queue the delivery ``delivery`` (its number or delivery id) again, due now."""
        return self.registry.redeliver(delivery)

    def start_webhook_delivery(self) -> threading.Event | None:
        """Deliver in a background thread until the returned event is set (None: no hooks)."""
        if not self.config.webhooks:
            return None
        stop = threading.Event()
        thread = threading.Thread(
            target=webhooks.run_deliverer,
            args=(self.registry, self.config.webhooks, stop),
            name="dmv-webhooks",
            daemon=True,
        )
        thread.start()
        return stop
