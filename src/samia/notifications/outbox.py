"""The delivery engine. Runs as service_role in the `send_outbox` job (never in the request path).

1. Plan: pending notification_outbox rows fan out into notification_sends, one per channel
   (and device) of the recipient (app.plan_outbox: the rules are in schema/13_notifications.sql).
2. Claim: due sends of the channels whose flag is on move queued → sending in one statement
   under `for update skip locked`, and that claim COMMITS before any provider is called. A
   worker killed after the claim leaves `sending` rows, which are never sent again blindly:
   after SENDING_LEASE they go to the dead letter ("outcome_unknown"), except critical web
   pushes, which go again under the same idempotency key (the Topic header replaces the copy
   the push service holds). Every send carries its key to the provider where the protocol has
   a place for it (Web Push Topic, APNs apns-id, the email Message-ID, FCM data.key).
3. Send: each claimed row through its channel, behind the provider's admin switch, monthly
   budget and circuit breaker; many at once, bounded.
4. Record: one statement for the whole batch. retry → queued again after a jittered backoff
   (or the provider's Retry-After); after MAX_ATTEMPTS, or on a permanent failure, the dead
   letter (admins see it). gone → the device is removed, or the address suppressed.

Links are minted here, at delivery time: an outbox row never holds a secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from samia.config import Settings
from samia.core.breaker import Breaker
from samia.core.ports import Mailer
from samia.core.problems import AppError
from samia.core.tokens import issue_email_token
from samia.notifications.templates import render
from samia.providers.delivery import Delivery
from samia.providers.email import EmailChannel, build_message
from samia.providers.push import make_push
from samia.providers.push_message import PushChannel, PushKind, PushMessage
from samia.providers.sms import Channel as SmsChannel
from samia.providers.sms import Messenger, make_messenger

log = structlog.get_logger("samia.outbox")

SYSTEM_CLAIMS = json.dumps({"role": "service_role", "actor": "system:outbox"})
CHANNELS = ("email", "webpush", "fcm", "apns", "sms", "whatsapp")
PROVIDER = {"email": "email", "webpush": "webpush", "fcm": "fcm", "apns": "apns", "sms": "twilio",
            "whatsapp": "twilio"}
MAX_ATTEMPTS = 5
BACKOFF_BASE, BACKOFF_CAP = 30.0, 3600.0
SENDING_LEASE = dt.timedelta(minutes=10)


class Sender(Protocol):
    """What delivery needs: the API's Platform or a job worker's Resources."""
    settings: Settings
    pool: AsyncConnectionPool
    mailer: Mailer
    breakers: dict[str, Breaker]


async def as_system(conn: AsyncConnection) -> None:
    await conn.execute("select set_config('role', 'service_role', true), "
                       "set_config('request.jwt.claims', %s, true)", (SYSTEM_CLAIMS,))


@dataclass
class Channels:
    """The providers one run uses, built on first use (an unconfigured one fails its sends
    only) and closed at the end of the run."""
    settings: Settings
    mailer: EmailChannel
    push: dict[str, PushChannel] = field(default_factory=dict)
    phone: dict[str, Messenger] = field(default_factory=dict)

    def pusher(self, kind: PushKind) -> PushChannel:
        if kind not in self.push:
            self.push[kind] = make_push(self.settings, kind)
        return self.push[kind]

    def messenger(self, channel: SmsChannel) -> Messenger:
        if channel not in self.phone:
            self.phone[channel] = make_messenger(self.settings, channel)
        return self.phone[channel]

    async def aclose(self) -> None:
        for push in self.push.values():
            await push.aclose()
        for phone in self.phone.values():
            await phone.aclose()


@dataclass(frozen=True)
class Claimed:
    id: int
    channel: str
    key: uuid.UUID
    template: str
    params: dict[str, Any]
    critical: bool
    attempts: int
    address: str | None
    lang: str
    recipient_id: uuid.UUID
    device_id: int | None
    campaign_id: int | None
    skip: str | None


@dataclass(frozen=True)
class Outcome:
    send: Claimed
    delivery: Delivery


async def dispatch_pending(platform: Sender, limit: int = 500, batch: int = 100, concurrency: int = 16,
                           at: dt.datetime | None = None) -> int:
    """Plan pending outbox rows, then send due sends until none is left or `limit` were
    handled. Returns the sends handled (sent, retried, failed or cancelled). `at` stands for
    the clock when deciding what is due (tests and catch-up runs)."""
    channels = Channels(platform.settings, cast(EmailChannel, platform.mailer))
    handled = 0
    try:
        async with platform.pool.connection() as conn:
            await as_system(conn)
            await conn.execute("select app.plan_outbox(1000)")
            await _expire_leases(conn)
            await conn.commit()
            while handled < limit:
                rows = await _claim(conn, min(batch, limit - handled), at)
                if not rows:
                    break
                outcomes = await _send_all(platform, conn, channels, rows, concurrency)
                await _record(conn, outcomes, at)
                handled += len(rows)
    finally:
        await channels.aclose()
    return handled


async def _expire_leases(conn: AsyncConnection) -> None:
    """Sends a dead worker left in `sending`: their outcome is unknown (the provider may have
    it), so they are not sent again, except critical web pushes (the Topic makes it safe)."""
    await conn.execute("""
        update notification_sends
           set state = case when critical and channel = 'webpush' then 'queued' else 'failed' end,
               dead_letter = not (critical and channel = 'webpush'),
               error = 'outcome_unknown', updated_at = now()
         where state = 'sending' and claimed_at < now() - %s""", (SENDING_LEASE,))


async def _claim(conn: AsyncConnection, n: int, at: dt.datetime | None) -> list[Claimed]:
    await as_system(conn)
    cur = await conn.execute("select key, app.flag_on(key) from unnest(%s::text[]) key",
                             ([f"messaging.{c}" for c in (*CHANNELS, "campaigns")],))
    on = {k.removeprefix("messaging."): bool(v) for k, v in await cur.fetchall()}
    live = [c for c in CHANNELS if on.get(c)]
    cur = await conn.execute("select * from app.claim_sends(%s, %s, %s, %s)",
                             (n, live, on.get("campaigns", False), at))
    rows = [Claimed(*r) for r in await cur.fetchall()]
    await conn.commit()  # the claim is durable before any provider hears of it
    return rows


async def _send_all(platform: Sender, conn: AsyncConnection, channels: Channels, rows: list[Claimed],
                    concurrency: int) -> list[Outcome]:
    await as_system(conn)
    cur = await conn.execute("select p, app.provider_enabled(p), app.provider_within_budget(p) "
                             "from unnest(%s::text[]) p", (sorted({PROVIDER[r.channel] for r in rows}),))
    refused = {p: ("provider_disabled" if en is False else "budget_exhausted")
               for p, en, budget in await cur.fetchall() if en is False or budget is False}
    cur = await conn.execute("select id, title_en, body_en, title_ar, body_ar from campaigns where id = any(%s)",
                             (sorted({r.campaign_id for r in rows if r.campaign_id}),))
    texts = {cid: {"en": (te, be), "ar": (ta, ba)} for cid, te, be, ta, ba in await cur.fetchall()}
    await conn.commit()
    gate = asyncio.Semaphore(concurrency)
    used: dict[str, list[bool]] = {}

    async def one(row: Claimed) -> Outcome:
        if row.skip:
            return Outcome(row, Delivery("failed", None, row.skip))
        provider = PROVIDER[row.channel]
        if provider in refused:
            return Outcome(row, Delivery.retry(refused[provider]))
        breaker = platform.breakers.setdefault(provider, Breaker(provider))
        async with gate:
            try:
                d = await breaker.call(_attempt(platform, channels, row, texts))
            except AppError as e:  # circuit open, provider not configured: try again later
                return Outcome(row, Delivery.retry(e.code))
            except Exception as e:  # a programming error must not stop the batch
                log.warning("send_crashed", send_id=row.id, error_class=type(e).__name__)
                return Outcome(row, Delivery.retry(type(e).__name__))
        used.setdefault(provider, []).append(d.status == "retry")
        return Outcome(row, d)

    outcomes = list(await asyncio.gather(*(one(r) for r in rows)))
    await as_system(conn)
    uses = [(p, f) for p, fails in used.items() for f in fails]  # against the monthly budget, one per attempt
    await conn.execute("select count(app.provider_use(p, f)) from unnest(%s::text[], %s::boolean[]) u (p, f)",
                       ([p for p, _ in uses], [f for _, f in uses]))
    await conn.commit()
    return outcomes


def _attempt(platform: Sender, channels: Channels, row: Claimed,
             texts: dict[int, dict[str, tuple[str, str]]]) -> Callable[[], Awaitable[Delivery]]:
    async def go() -> Delivery:
        assert row.address is not None
        params = dict(row.params)
        if row.template == "verify_email":
            token = issue_email_token(platform.settings, str(row.recipient_id), row.address)
            params["link"] = f"{platform.settings.public_base_url}/verify-email?token={token}"
        if row.campaign_id is not None:
            title, body = texts[row.campaign_id]["ar" if row.lang == "ar" else "en"]
        else:
            title, body = render(row.template, row.lang, params)
        lang: Literal["en", "ar"] = "ar" if row.lang == "ar" else "en"
        if row.channel == "email":
            mailer = channels.mailer
            msg = build_message(to=row.address, subject=title, text=body, key=row.key, sender=mailer.sender,
                                lang=lang, unsubscribe_url=(f"{platform.settings.public_base_url}/account/"
                                                            "notifications" if row.campaign_id else None))
            return await mailer.send_message(msg)
        if row.channel in ("sms", "whatsapp"):
            return await channels.messenger(cast(SmsChannel, row.channel)).send(row.address, f"{title}\n{body}",
                                                                                key=row.key)
        data = {k: str(v) for k, v in params.items() if k in ("request", "incident", "order", "booking",
                                                                "campaign", "level", "severity")}
        data["template"] = row.template
        msg_push = PushMessage(title, body, data, critical=row.critical, lang=lang,
                               ttl=300 if row.critical else 86_400)
        return await channels.pusher(cast(PushKind, row.channel)).send(row.address, msg_push, key=row.key)
    return go


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Full jitter: uniform in [1, min(cap, base·2^(n-1))] seconds, never before Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return max(retry_after or 0.0, secrets.SystemRandom().uniform(1.0, ceiling))


async def _record(conn: AsyncConnection, outcomes: list[Outcome], at: dt.datetime | None = None) -> None:
    ids, states, refs, errors, dead, delays = [], [], [], [], [], []
    gone_devices: list[int] = []
    suppress: list[tuple[str, str, str]] = []
    for o in outcomes:
        d, s = o.delivery, o.send
        state, is_dead, delay = "failed", False, 0.0
        if d.status == "sent":
            state = "sent"
        elif d.status == "retry" and s.attempts < MAX_ATTEMPTS:
            state, delay = "queued", backoff(s.attempts, d.retry_after)
        elif d.status == "retry" or (d.status == "failed" and not s.skip):
            is_dead = True
        elif d.status == "gone":
            state = "bounced" if s.channel == "email" else "failed"
            if s.device_id is not None:
                gone_devices.append(s.device_id)
            elif s.address:
                suppress.append((s.channel, s.address, "hard_bounce" if s.channel == "email" else "stop"))
        if s.skip:
            state = "cancelled"
        ids.append(s.id)
        states.append(state)
        refs.append(d.provider_ref)
        errors.append(d.error)
        dead.append(is_dead)
        delays.append(delay)
        if d.status != "sent":
            log.info("send_not_delivered", send_id=s.id, channel=s.channel, outcome=d.status, error=d.error,
                     attempts=s.attempts, dead_letter=is_dead)
    await as_system(conn)
    await conn.execute("""
        update notification_sends s
           set state = u.state, provider_ref = coalesce(u.ref, s.provider_ref), error = u.error,
               dead_letter = u.dead, updated_at = now(),
               sent_at = case when u.state = 'sent' then now() else s.sent_at end,
               -- the retry waits from the run's clock (`at`, when a catch-up or test runs ahead)
               not_before = case when u.state = 'queued'
                                 then greatest(now(), coalesce(%s, now())) + make_interval(secs => u.delay)
                                 else s.not_before end
          from unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::boolean[], %s::float8[])
               as u (id, state, ref, error, dead, delay)
         where s.id = u.id and s.state = 'sending'""", (at, ids, states, refs, errors, dead, delays))
    if gone_devices:
        await conn.execute("delete from devices where id = any(%s)", (gone_devices,))
    for channel, address, reason in suppress:
        await conn.execute("insert into suppressions (channel, address_hash, reason) "
                           "values (%s, app.address_hash(%s), %s) on conflict do nothing",
                           ("email" if channel == "email" else channel, address, reason))
    await conn.commit()
