"""What one delivery attempt on any channel comes to, in the delivery engine's terms.

Every channel's `send` answers a `Delivery` and never raises for what the provider (or the
network to it) did; only a programming error or a missing setting raises. The engine acts on
`status` alone:

- "sent":   the provider accepted the message; `provider_ref` correlates its later callbacks.
- "gone":   the address, number or device is permanently invalid: remove or suppress it.
- "retry":  transient (timeouts, connection errors, 429, 5xx, SMTP 4xx); try again later,
            not before `retry_after` seconds when the provider said so.
- "failed": permanent for this message, but says nothing about the address (a rejected
            payload, our own credentials, a policy refusal); do not retry as is.

`error` is short and machine-readable ("http_503", "smtp_550", "fcm_UNREGISTERED",
"twilio_21610", "ConnectTimeout"): safe to log and store, never a provider's free text, which
may quote the address or the message.
"""

from __future__ import annotations

import email.utils
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import structlog

from samia.core.problems import AppError

Status = Literal["sent", "gone", "retry", "failed"]

log = structlog.get_logger("samia.delivery")


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Status
    provider_ref: str | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, when the provider gave a Retry-After

    @classmethod
    def sent(cls, ref: str | None) -> Delivery:
        return cls("sent", ref)

    @classmethod
    def gone(cls, error: str) -> Delivery:
        return cls("gone", None, error)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> Delivery:
        return cls("retry", None, error, retry_after)

    @classmethod
    def failed(cls, error: str) -> Delivery:
        return cls("failed", None, error)


class DeliveryError(Exception):
    """Raised only by the older `Mailer.send(to, subject, text) -> ref` interface, whose
    callers expect an exception when a message did not go."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__(f"{delivery.status}: {delivery.error}")
        self.delivery = delivery


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def from_http_status(status: int, header_retry_after: str | None = None, *, prefix: str = "http") -> Delivery | None:
    """The common part of the push services' answers; None for a status the caller decides."""
    if 200 <= status < 300:
        return None
    if status in (404, 410):
        return Delivery.gone(f"{prefix}_{status}")
    if status == 429 or status >= 500:
        return Delivery.retry(f"{prefix}_{status}", retry_after(header_retry_after))
    return Delivery.failed(f"{prefix}_{status}")


def is_loopback(host: str) -> bool:
    """Plain http is accepted for provider URLs on these hosts only (loopback fakes in tests)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require(what: str, settings: Iterable[tuple[str, object]]) -> None:
    """503 provider_not_configured naming the first missing setting (DESIGN §3)."""
    missing = [name for name, value in settings if not value]
    if missing:
        raise AppError(503, "provider_not_configured", f"{what} needs {', '.join(missing)}",
                       extra={"setting": missing[0]})


def report(channel: str, provider: str, delivery: Delivery, **ids: object) -> Delivery:
    """One log line per attempt: channel, provider, outcome and our ids; never an address,
    a token or a body (callers pass ids only)."""
    log.info("delivery_attempt", channel=channel, provider=provider, outcome=delivery.status,
             error=delivery.error, provider_ref=delivery.provider_ref, retry_after=delivery.retry_after, **ids)
    return delivery
