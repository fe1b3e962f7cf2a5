"""``dmv webhooks``: deliver the outbox to ``[[webhooks]]``, list it, queue a redelivery."""

from __future__ import annotations

import click

from dmv.cli._context import Context, pass_ctx
from dmv.cli._output import emit, json_option, table, when

__all__ = ["webhooks"]


@click.group()
def webhooks() -> None:
    """Events for the systems that deploy: the [[webhooks]] of dmv.toml.

    Every release, alias, deprecation, failed verify, … is written to an outbox in
    the registry with the change itself; 'dmv server' delivers it in the background,
    'dmv webhooks deliver' from a job. Each POST is signed: X-Dmv-Signature-256 is
    sha256=HMAC-SHA256(secret, body), the secret read from the variable secret_env
    names. See docs/webhooks.md.
    """


@webhooks.command("deliver")
@click.option(
    "--wait",
    type=click.FloatRange(0, 86400),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Keep retrying what fails, with backoff, for up to this long.",
)
@pass_ctx
@json_option
def deliver(ctx: Context, wait: float, as_json: bool) -> None:
    """Deliver every pending event now, then exit (1 if any stays undelivered)."""
    summary = ctx.project.deliver_webhooks(wait=wait)

    def human() -> str:
        lines = [
            f"{a['event']} #{a['id']} → {a['hook']}: "
            + ("delivered" if a["delivered"] else f"attempt {a['attempt']} failed: {a['error']}")
            for a in summary.attempts
        ]
        lines.append(
            f"{summary.delivered} delivered, {summary.pending} pending, {summary.failed} failed"
        )
        if not ctx.project.config.webhooks:
            lines.append("(no [[webhooks]] in dmv.toml: nothing to deliver to)")
        return "\n".join(lines)

    emit(as_json, summary.to_dict(), human)
    if not summary.ok:
        raise click.exceptions.Exit(1)


@webhooks.command("list")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]), help="Only these.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="At most."
)
@pass_ctx
@json_option
def list_cmd(ctx: Context, status: str | None, limit: int, as_json: bool) -> None:
    """List webhook deliveries, newest first, with attempts and the last error."""
    items = ctx.project.webhook_deliveries(status=status, limit=limit)
    rows = [
        (
            d.record.id,
            d.record.event,
            d.record.model or "",
            d.record.hook,
            d.url or "(not configured)",
            d.record.status,
            d.record.attempts,
            when(d.record.created_at),
            d.record.last_error or "",
        )
        for d in items
    ]
    headers = ["id", "event", "model", "hook", "url", "status", "attempts", "created", "error"]
    emit(
        as_json,
        [d.to_dict() for d in items],
        lambda: table(rows, headers) if rows else "no webhook deliveries",
    )


@webhooks.command("redeliver")
@click.argument("delivery", metavar="ID")
@pass_ctx
@json_option
def redeliver(ctx: Context, delivery: str, as_json: bool) -> None:
    """Queue delivery ID (its number or X-Dmv-Delivery id) again, due now."""
    record = ctx.project.redeliver_webhook(delivery)
    emit(
        as_json,
        record.to_dict(),
        f"queued {record.event} #{record.id} for {record.hook} again "
        "(dmv server delivers it, or dmv webhooks deliver)",
    )
