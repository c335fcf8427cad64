"""Delivers pending notification_outbox rows. Runs as service_role (a system job, never
in the request path). Rows hold no secrets: links are minted here, at delivery time."""

from __future__ import annotations

import json
from typing import Any, Protocol

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from samia.config import Settings
from samia.core.ports import Mailer
from samia.core.tokens import issue_email_token

log = structlog.get_logger("samia.outbox")

SYSTEM_CLAIMS = json.dumps({"role": "service_role", "actor": "system:outbox"})


class Sender(Protocol):
    """What delivery needs: the API's Platform or a job worker's Resources."""
    settings: Settings
    pool: AsyncConnectionPool
    mailer: Mailer


async def as_system(conn: AsyncConnection) -> None:
    await conn.execute("select set_config('role', 'service_role', true), "
                       "set_config('request.jwt.claims', %s, true)", (SYSTEM_CLAIMS,))


# Subject and body per template; {placeholders} come from the row's params. No PII here:
# the recipient's own details are in their account, not in the message.
TEMPLATES: dict[str, tuple[str, str]] = {
    "payment_failed": ("Your Samia Tarot payment did not go through",
                       "Your payment did not go through, so the reserved time was released.\n"
                       "You can choose a time again and retry whenever you like."),
    "booking_cancelled": ("A Samia Tarot booking was cancelled",
                          "Booking {booking} was cancelled. Any refund is shown in your account."),
    "booking_rescheduled": ("A Samia Tarot booking moved", "Booking {booking} has a new time; see your bookings."),
    "booking_reminder": ("Your Samia Tarot session is coming up", "Booking {booking} starts in {in}."),
    "reader_no_show": ("Reader no-show", "The reader did not start booking {booking}; the client was refunded "
                                         "in full."),
    "late_payment_credited": ("Your payment is in your Samia Tarot wallet",
                              "Your payment for booking {booking} arrived after the reserved time had gone to "
                              "someone else, so the full amount was credited to your wallet."),
    "order_assigned": ("A new reading for you", "Order {order} is assigned to you; it is in your queue."),
    "order_rejected": ("A reading came back from review",
                       "The monitor sent order {order} back with a note; it is in your queue."),
    "reading_delivered": ("Your Samia Tarot reading is ready", "Your reading for order {order} is ready to listen to."),
    "order_refunded": ("A refund to your Samia Tarot wallet",
                       "The payment for order {order} was returned to your wallet ({reason})."),
    "review_overdue": ("A reading is waiting too long for review", "Order {order} is past its review deadline."),
    "data_request_filed": ("A data request is waiting", "A {kind} request ({request}) was filed; it is in the "
                                                         "data-request queue with its deadline."),
    "data_request_approved": ("Your data request was approved",
                              "Your {kind} request ({request}) was approved and is being carried out."),
    "data_request_declined": ("About your data request",
                              "Your {kind} request ({request}) was declined; the reason is in your account."),
    "data_export_ready": ("Your Samia Tarot data export is ready",
                          "Your data export ({request}) is ready; download it from your account while it lasts."),
}


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


async def render(platform: Sender, template: str, profile: dict[str, Any], params: dict[str, Any]) -> tuple[str, str]:
    if template == "verify_email":
        token = issue_email_token(platform.settings, str(profile["id"]), profile["email"])
        link = f"{platform.settings.public_base_url}/verify-email?token={token}"  # the page; the API route stays
        return ("Confirm your email for Samia Tarot",
                f"Welcome to Samia Tarot.\n\nConfirm your email address by opening:\n{link}\n\n"
                "The link is valid for 48 hours.")
    if template in TEMPLATES:
        subject, body = TEMPLATES[template]
        return subject, body.format_map(_Params({k: str(v) for k, v in params.items()}))
    raise ValueError(f"unknown template {template}")


async def dispatch_pending(platform: Sender, limit: int = 50) -> int:
    """Send up to `limit` pending rows; each row commits on its own. Returns rows handled."""
    handled, last_id = 0, 0
    async with platform.pool.connection() as conn:
        while handled < limit:
            await as_system(conn)
            cur = await conn.execute("""
                select o.id, o.channel, o.template, o.params, p.id, p.email
                  from notification_outbox o join profiles p on p.id = o.recipient_id
                 where o.status = 'pending' and o.channel = 'email' and o.id > %s
                   and (o.not_before is null or o.not_before <= now())
                 order by o.id limit 1 for update of o skip locked""", (last_id,))
            row = await cur.fetchone()
            if row is None:
                await conn.rollback()
                break
            oid, _channel, template, params, uid, email = row
            last_id = oid  # a failed row waits for the next pass, not this one
            try:
                subject, text = await render(platform, template, {"id": uid, "email": email}, params)
                ref = await platform.mailer.send(email, subject, text)
                await conn.execute("update notification_outbox set status = 'sent', sent_at = now(), "
                                   "attempts = attempts + 1, provider_ref = %s where id = %s", (ref, oid))
            except Exception as e:  # a provider failure must not stop the queue
                log.warning("outbox_send_failed", outbox_id=oid, error_class=type(e).__name__)
                await conn.execute("update notification_outbox set attempts = attempts + 1, "
                                   "status = case when attempts >= 4 then 'failed' else status end "
                                   "where id = %s", (oid,))
            await conn.commit()
            handled += 1
    return handled
