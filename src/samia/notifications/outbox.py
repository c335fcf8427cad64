"""Delivers pending notification_outbox rows. Runs as service_role (a system job, never
in the request path). Rows hold no secrets: links are minted here, at delivery time."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from psycopg import AsyncConnection

from samia.auth.tokens import issue_email_token

if TYPE_CHECKING:
    from samia.app import Platform

log = structlog.get_logger("samia.outbox")

SYSTEM_CLAIMS = json.dumps({"role": "service_role", "actor": "system:outbox"})


async def as_system(conn: AsyncConnection) -> None:
    await conn.execute("select set_config('role', 'service_role', true), "
                       "set_config('request.jwt.claims', %s, true)", (SYSTEM_CLAIMS,))


async def render(platform: Platform, template: str, profile: dict[str, Any], params: dict[str, Any]) -> tuple[str, str]:
    if template == "verify_email":
        token = issue_email_token(platform.settings, str(profile["id"]), profile["email"])
        link = f"{platform.settings.public_base_url}/auth/verify-email?token={token}"
        return ("Confirm your email for Samia Tarot",
                f"Welcome to Samia Tarot.\n\nConfirm your email address by opening:\n{link}\n\n"
                "The link is valid for 48 hours.")
    if template == "payment_failed":
        return ("Your Samia Tarot payment did not go through",
                "Your payment did not go through, so the reserved time was released.\n"
                "You can choose a time again and retry whenever you like.")
    if template == "booking_cancelled":
        return ("A Samia Tarot booking was cancelled",
                f"Booking {params.get('booking')} was cancelled. Any refund is shown in your account.")
    if template == "booking_rescheduled":
        return ("A Samia Tarot booking moved", f"Booking {params.get('booking')} has a new time; see your bookings.")
    if template == "booking_reminder":
        return ("Your Samia Tarot session is coming up",
                f"Booking {params.get('booking')} starts in {params.get('in')}.")
    if template == "reader_no_show":
        return ("Reader no-show", f"The reader did not start booking {params.get('booking')}; "
                                  "the client was refunded in full.")
    if template == "late_payment_credited":
        return ("Your payment is in your Samia Tarot wallet",
                f"Your payment for booking {params.get('booking')} arrived after the reserved time had gone to "
                "someone else, so the full amount was credited to your wallet.")
    raise ValueError(f"unknown template {template}")


async def dispatch_pending(platform: Platform, limit: int = 50) -> int:
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
