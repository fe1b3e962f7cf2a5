"""Webhooks: delivering the registry's outbox to the ``[[webhooks]]`` of ``dmv.toml``.

Each event is in the outbox already (written in the transaction of the change it
announces, see :mod:`dmv.registry.webhooks`); this module only sends it, at least
once, until the receiver answers 2xx:

* the body is the exact JSON stored with the event; it is signed like GitHub's
  webhooks, ``X-Dmv-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``, with the
  secret read from the environment variable ``secret_env`` names, at send time;
* ``X-Dmv-Event`` names the event, ``X-Dmv-Delivery`` the delivery (the same on every
  retry), and the body's ``id`` (also ``Idempotency-Key``) the event: a receiver that
  gets it twice recognises it;
* a failed attempt is retried after 1, 2, 4 … seconds (at most an hour apart, with
  jitter) until ``max_attempts``, then the delivery is ``failed`` until
  ``dmv webhooks redeliver``;
* one attempt has ``timeout`` seconds per network operation, a redirect is never
  followed (3xx is a failure) and at most :data:`MAX_RESPONSE` bytes of the answer
  are read;
* a delivery is leased while it is sent, so two deliverers never send it at once;
  a deliverer killed mid-delivery frees it when the lease ends.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dmv._meta import __version__
from dmv._urls import redact, redact_text

if TYPE_CHECKING:
    from dmv.config import Webhook
    from dmv.registry import RegistryStore
    from dmv.registry.records import DeliveryRecord

__all__ = [
    "MAX_RESPONSE",
    "Attempt",
    "Delivery",
    "Summary",
    "backoff",
    "deliver",
    "listing",
    "run_deliverer",
    "sign",
]

log = logging.getLogger("dmv.webhooks")

#: The most bytes of a receiver's answer that are read (the rest is never read).
MAX_RESPONSE = 4096
#: The longest wait between two attempts.
MAX_BACKOFF = 3600.0
#: How often the server's deliverer looks for due deliveries.
POLL_SECONDS = 1.0


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Dmv-Signature-256`` header value: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 1, 2, 4 … ≤ 1 h."""
    return min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF) * random.uniform(0.8, 1.2)


def lease_for(hook: Webhook) -> float:
    """How long a claim holds: the attempt's connect, send and answer, with room to spare."""
    return 3 * hook.timeout + 5


@dataclass(frozen=True)
class Attempt:
    """The outcome of sending one delivery once."""

    delivered: bool
    status: int | None
    error: str | None


@dataclass
class Summary:
    """What one ``deliver`` did: each attempt, and what stays undelivered."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0  # given up in this run (max_attempts reached)
    pending: int = 0  # still waiting for a later attempt

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.pending == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "pending": self.pending,
            "ok": self.ok,
            "attempts": self.attempts,
        }


def _opener() -> Any:
    """A urllib opener that follows no redirect (a 3xx comes back as an HTTPError)."""
    import urllib.request  # lazy: only a deliverer needs it

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its user information, and that as a Basic Authorization header."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Attempt:
    """POST ``body`` to ``url`` once: never following a redirect, reading little."""
    import http.client
    import urllib.error
    import urllib.request

    target, auth = _credentials(url)
    headers = {**headers, **auth}
    opener = _opener()
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE)
            return Attempt(True, int(response.status), None)
    except urllib.error.HTTPError as exc:
        answer = exc.read(MAX_RESPONSE).decode("utf-8", "replace") if exc.fp else ""
        exc.close()
        if 300 <= exc.code < 400:
            where = redact(exc.headers.get("Location", "") or "")
            return Attempt(False, exc.code, f"HTTP {exc.code}: redirect to {where!r} not followed")
        return Attempt(False, exc.code, redact_text(f"HTTP {exc.code}: {answer[:200]}").strip())
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(False, None, redact_text(f"{type(exc).__name__}: {reason}")[:500])


def headers_for(delivery: DeliveryRecord, hook: Webhook, secret: bytes) -> dict[str, str]:
    """The headers one delivery is sent with (the signature over its exact body)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": f"dmv-webhooks/{__version__}",
        "X-Dmv-Event": delivery.event,
        "X-Dmv-Delivery": delivery.delivery,
        "X-Dmv-Hook": hook.name,
        "Idempotency-Key": delivery.event_id,
        "X-Dmv-Signature-256": sign(secret, delivery.body.encode("utf-8")),
    }


def send(delivery: DeliveryRecord, hook: Webhook, environ: Mapping[str, str]) -> Attempt:
    """Send ``delivery`` to ``hook`` once (nothing is sent without its secret)."""
    secret = environ.get(hook.secret_env)
    if not secret:
        return Attempt(
            False, None, f"environment variable {hook.secret_env} is not set: nothing was sent"
        )
    body = delivery.body.encode("utf-8")
    return post(hook.url, body, headers_for(delivery, hook, secret.encode("utf-8")), hook.timeout)


def _owner() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _round(
    registry: RegistryStore,
    hooks: Sequence[Webhook],
    owner: str,
    summary: Summary,
    environ: Mapping[str, str],
    *,
    not_attempted_since: float | None = None,
) -> int:
    """Claim and send what is due for every hook; the number of attempts made."""
    made = 0
    for hook in hooks:
        for delivery in registry.claim_deliveries(
            hook.name, owner, lease=lease_for(hook), not_attempted_since=not_attempted_since
        ):
            try:
                attempt = send(delivery, hook, environ)
            except Exception as exc:  # whatever went wrong, the attempt is recorded as failed
                error = redact_text(f"{type(exc).__name__}: {exc}")[:500]
                attempt = Attempt(False, None, error)
            made += 1
            tries = delivery.attempts + 1
            retry_at = None
            if not attempt.delivered and tries < hook.max_attempts:
                retry_at = time.time() + backoff(tries)
            registry.finish_delivery(
                delivery.id,
                owner,
                delivered=attempt.delivered,
                status=attempt.status,
                error=attempt.error,
                retry_at=retry_at,
            )
            if attempt.delivered:
                summary.delivered += 1
            elif retry_at is None:
                summary.failed += 1
            summary.attempts.append(
                {
                    "id": delivery.id,
                    "delivery": delivery.delivery,
                    "event": delivery.event,
                    "hook": hook.name,
                    "attempt": tries,
                    "delivered": attempt.delivered,
                    "status": attempt.status,
                    "error": attempt.error,
                }
            )
    return made


def _pending(registry: RegistryStore, hooks: Sequence[Webhook]) -> list[DeliveryRecord]:
    names = {h.name for h in hooks}
    return [d for d in registry.list_deliveries(status="pending", limit=None) if d.hook in names]


def deliver(
    registry: RegistryStore,
    hooks: Sequence[Webhook],
    *,
    wait: float = 0.0,
    environ: Mapping[str, str] | None = None,
) -> Summary:
    """Send every pending delivery now, then retry with backoff for up to ``wait`` seconds."""
    env = os.environ if environ is None else environ
    owner = _owner()
    summary = Summary()
    deadline = time.monotonic() + wait
    # Asked for now: first everything pending goes, whatever its schedule, once;
    # then what fails is retried on its schedule.
    start: float | None = time.time()
    while True:
        made = _round(registry, hooks, owner, summary, env, not_attempted_since=start)
        if made:
            continue
        if start is not None:
            start = None
            continue
        pending = _pending(registry, hooks)
        if not pending or time.monotonic() >= deadline:
            summary.pending = len(pending)
            return summary
        due = min(d.next_at for d in pending) - time.time()
        time.sleep(min(max(due, 0.05), POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))


def run_deliverer(registry: RegistryStore, hooks: Sequence[Webhook], stop: threading.Event) -> None:
    """Deliver due deliveries until ``stop`` is set (the server's background task)."""
    owner = _owner()
    while not stop.is_set():
        try:
            made = _round(registry, hooks, owner, Summary(), os.environ)
        except Exception:  # the registry unreachable for a moment: try again later
            log.exception("webhook delivery round failed")
            made = 0
        if not made:
            stop.wait(POLL_SECONDS)


@dataclass(frozen=True)
class Delivery:
    """One outbox row as ``dmv webhooks list`` shows it: the URL redacted, no secret."""

    record: DeliveryRecord
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.record.to_dict(), "url": self.url}


def listing(
    registry: RegistryStore, hooks: Sequence[Webhook], *, status: str | None, limit: int
) -> list[Delivery]:
    """The outbox, newest first, each with its hook's redacted URL (None: not configured)."""
    urls = {h.name: redact(h.url) for h in hooks}
    return [
        Delivery(d, urls.get(d.hook)) for d in registry.list_deliveries(status=status, limit=limit)
    ]
