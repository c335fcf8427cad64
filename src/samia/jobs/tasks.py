"""Every background task and every schedule, declared in this one place.

Tasks are idempotent (safe to run twice, safe to retry) and retried with full-jitter
exponential backoff. Periodic tasks are queued while a worker runs (`samia worker`); outside
schedulers can queue the same tasks through POST /api/cron/<task> with X-Job-Token.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import structlog
from procrastinate import App, BaseRetryStrategy, JobContext, PsycopgConnector, RetryDecision
from procrastinate.jobs import Job
from psycopg_pool import AsyncConnectionPool

from samia.config import Settings
from samia.core.breaker import Breaker
from samia.core.ports import Mailer
from samia.notifications.outbox import dispatch_pending

log = structlog.get_logger("samia.jobs")


class JitteredBackoff(BaseRetryStrategy):
    """Exponential backoff with full jitter: retry after a uniform draw in [1, min(cap, base·2^n)]."""

    def __init__(self, max_attempts: int = 8, base: float = 2.0, cap: float = 3600.0) -> None:
        self.max_attempts, self.base, self.cap = max_attempts, base, cap

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        ceiling = min(self.cap, self.base * 2 ** job.attempts)
        return RetryDecision(retry_in={"seconds": int(max(1.0, secrets.SystemRandom().uniform(1.0, ceiling)))})


RETRY = JitteredBackoff()

# Where the queue is, set by the worker before it opens the app (the pool resolves it then).
QUEUE: dict[str, str] = {}


def _queue_conninfo() -> str:
    """The queue's connections: authenticator login running as service_role, with the
    procrastinate schema first on the search path (its functions use unqualified names)."""
    return QUEUE["dsn"] + " options='-c role=service_role -c search_path=procrastinate,public'"


app = App(connector=PsycopgConnector(conninfo=_queue_conninfo))


@dataclass
class Resources:
    """What tasks share in a worker process (what of the API's Platform they need)."""
    settings: Settings
    pool: AsyncConnectionPool
    mailer: Mailer
    breakers: dict[str, Breaker] = field(default_factory=dict)  # per process, like the API's


def resources(context: JobContext) -> Resources:
    res: Resources = context.additional_context["samia"]
    return res


async def system_tx(res: Resources, actor: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement in its own transaction as service_role, with an explicit system actor."""
    async with res.pool.connection() as conn:
        await conn.execute("select set_config('role', 'service_role', true), "
                           "set_config('request.jwt.claims', %s, true)",
                           (json.dumps({"role": "service_role", "actor": f"system:{actor}"}),))
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall() if cur.description else []
        await conn.commit()
        return rows


@app.periodic(cron="* * * * *", periodic_id="send_outbox")
@app.task(name="send_outbox", pass_context=True, retry=RETRY)
async def send_outbox(context: JobContext, timestamp: int | None = None, at: str | None = None) -> int:
    """Fan pending notifications out to each recipient's channels and send what is due
    (claims under SKIP LOCKED, committed before the provider call: at most once)."""
    return await dispatch_pending(resources(context), limit=5000, at=dt.datetime.fromisoformat(at) if at else None)


@app.periodic(cron="17 3 * * *", periodic_id="purge_old")
@app.task(name="purge_old", pass_context=True, retry=RETRY)
async def purge_old(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Daily purge (seeds 004 `purge_old`): spent refresh tokens, long-ended sessions and old
    closed phone verifications. Audited with the counts."""
    rows = await system_tx(resources(context), "purge_old", """
        with tokens as (delete from app_auth.refresh_tokens
                         where expires_at < now() - interval '1 day'
                            or (used_at is not null and used_at < now() - interval '7 days') returning 1),
             sessions as (delete from app_auth.sessions s
                           where (s.revoked_at is not null and s.revoked_at < now() - interval '30 days')
                              or not exists (select 1 from app_auth.refresh_tokens t
                                              where t.session_id = s.id and t.expires_at > now() - interval '1 day')
                             and s.created_at < now() - interval '1 day'
                          returning 1),
             phones as (delete from public.phone_verifications
                         where status in ('expired', 'failed', 'sent') and expires_at < now() - interval '30 days'
                        returning 1)
        select (select count(*) from tokens), (select count(*) from sessions), (select count(*) from phones)""")
    counts = dict(zip(("refresh_tokens", "sessions", "phone_verifications"), map(int, rows[0]), strict=True))
    await system_tx(resources(context), "purge_old", "select app.audit('job.purge_old', 'job', 'purge_old', %s)",
                    (json.dumps(counts),))
    return counts


@app.periodic(cron="41 * * * *", periodic_id="sweep_rate_buckets")
@app.task(name="sweep_rate_buckets", pass_context=True, retry=RETRY)
async def sweep_rate_buckets(context: JobContext, timestamp: int | None = None) -> int:
    """Drop rate-limit buckets whose every hit is older than the longest window (31 days)."""
    rows = await system_tx(resources(context), "sweep_rate_buckets", """
        with gone as (delete from app_private.rate_buckets
                       where cardinality(hits) = 0 or hits[cardinality(hits)] < now() - interval '31 days'
                      returning 1)
        select count(*) from gone""")
    return int(rows[0][0])


@app.periodic(cron="* * * * *", periodic_id="expire_holds")
@app.task(name="expire_holds", pass_context=True, retry=RETRY)
async def expire_holds(context: JobContext, timestamp: int | None = None) -> int:
    """Mark lapsed booking holds expired (new holds also clear a reader's stale ones first,
    so an expired hold never blocks anyone even before this runs)."""
    rows = await system_tx(resources(context), "expire_holds", """
        with lapsed as (update public.reader_capacity set status = 'expired'
                         where status = 'held' and expires_at <= now() returning id),
             held as (update public.bookings set status = 'expired'
                       where status = 'held' and capacity_id in (select id from lapsed) returning 1)
        select count(*) from held""")
    return int(rows[0][0])


@app.periodic(cron="* * * * *", periodic_id="booking_reminders")
@app.task(name="booking_reminders", pass_context=True, retry=RETRY)
async def booking_reminders(context: JobContext, timestamp: int | None = None) -> int:
    """Remind both sides 24 h and 15 min before a confirmed booking (each reminder once; a
    booking made at short notice gets only the nearer one)."""
    rows = await system_tx(resources(context), "booking_reminders", """
        with due as (
          select b.id, b.client_id, b.reader_id,
                 case when b.starts_at <= now() + interval '15 minutes' then '15m' else '24h' end as which
            from public.bookings b
           where b.status = 'confirmed' and b.starts_at > now()
             and ((b.starts_at <= now() + interval '24 hours' and not ('24h' = any(b.reminded)))
                  or (b.starts_at <= now() + interval '15 minutes' and not ('15m' = any(b.reminded))))
           for update skip locked),
        marked as (
          update public.bookings b set reminded = array(select distinct unnest(b.reminded || array['24h', due.which]))
            from due where b.id = due.id returning due.id, due.client_id, due.reader_id, due.which),
        sent as (
          insert into public.notification_outbox (recipient_id, channel, template, params)
          select r, 'email', 'booking_reminder',
                 jsonb_build_object('booking', m.id,
                                    'in', case m.which when '15m' then '15 minutes' else '24 hours' end)
            from marked m, unnest(array[m.client_id, m.reader_id]) r
          returning 1)
        select count(*) from sent""")
    return int(rows[0][0])


@app.periodic(cron="* * * * *", periodic_id="reader_no_show")
@app.task(name="reader_no_show", pass_context=True, retry=RETRY)
async def reader_no_show(context: JobContext, timestamp: int | None = None) -> int:
    """A reader who has not started the call N minutes (policy snapshot) after the start:
    the client is refunded in full and monitors and admins are alerted."""
    from samia.bookings.refunds import refund_for_cancellation
    from samia.payments.processors import make_processor

    res = resources(context)
    late = await system_tx(res, "reader_no_show", """
        select b.id, b.starts_at, b.policy, t.amount_minor, t.provider, t.provider_ref
          from public.bookings b
          left join public.payment_transactions t on t.booking_id = b.id and t.kind = 'charge'
                                                  and t.status = 'succeeded'
         where b.status = 'confirmed' and b.started_at is null
           and now() > b.starts_at + make_interval(mins => coalesce((b.policy->>'reader_no_show_minutes')::int, 10))""")
    for booking_id, starts_at, policy, paid, provider, ref in late:
        refund, refund_ref = await refund_for_cancellation(
            lambda p: make_processor(res.settings, p), booking_id=booking_id, policy=policy, starts_at=starts_at,
            cancelled_at=starts_at, by="system", paid=paid or 0, provider=provider or "wallet", charge_ref=ref)
        await system_tx(res, "reader_no_show", """
            with done as (select app.cancel_booking(%(b)s, 'system', 'reader no-show', %(amt)s, %(dest)s, %(ref)s))
            insert into public.notification_outbox (recipient_id, channel, template, params)
            select p.id, 'email', 'reader_no_show', jsonb_build_object('booking', %(b)s)
              from public.profiles p, done where p.role_id in (1, 2, 4) and p.deleted_at is null""",
                        {"b": booking_id, "amt": refund.amount_minor, "dest": refund.destination, "ref": refund_ref})
        await system_tx(res, "reader_no_show", "select app.audit('booking.reader_no_show', 'booking', %s, %s)",
                        (str(booking_id), json.dumps({"refund_minor": refund.amount_minor})))
    return len(late)


@app.periodic(cron="* * * * *", periodic_id="order_clocks")
@app.task(name="order_clocks", pass_context=True, retry=RETRY)
async def order_clocks(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """The orders' service clocks: a missed delivery deadline strikes the reader, escalates
    and refunds the client to the wallet (once); an overdue review escalates to admins."""
    rows = await system_tx(resources(context), "order_clocks", "select * from app.order_clocks()")
    return {"delivery_breaches": rows[0][0], "review_breaches": rows[0][1]}


@app.periodic(cron="* * * * *", periodic_id="lift_expired_blocks")
@app.task(name="lift_expired_blocks", pass_context=True, retry=RETRY)
async def lift_expired_blocks(context: JobContext, timestamp: int | None = None) -> int:
    """Close the records of blocks that have ended (the block itself stops at its end time:
    app.user_role() compares blocked_until with now())."""
    rows = await system_tx(resources(context), "lift_expired_blocks", "select app.lift_expired_blocks()")
    return int(rows[0][0])


@app.periodic(cron="30 2 * * *", periodic_id="moderation_sweeps")
@app.task(name="moderation_sweeps", pass_context=True, retry=RETRY)
async def moderation_sweeps(context: JobContext, timestamp: int | None = None) -> int:
    """Nightly rules (thresholds in sweep_rules) that open cases; at most one per subject,
    rule and day, so a rerun opens nothing new."""
    rows = await system_tx(resources(context), "moderation_sweeps", "select app.moderation_sweeps()")
    return int(rows[0][0])


@app.periodic(cron="45 2 * * *", periodic_id="retention_purge")
@app.task(name="retention_purge", pass_context=True, retry=RETRY)
async def retention_purge(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Moderation data, appeals and redacted call transcripts past their windows
    (retention_windows); audited."""
    rows = await system_tx(resources(context), "retention_purge",
                           "select app.retention_purge() || app.retention_purge_calls()")
    return dict(rows[0][0])


@app.periodic(cron="* * * * * */10", periodic_id="audit_seal")
@app.task(name="audit_seal", pass_context=True, retry=RETRY)
async def audit_seal(context: JobContext, timestamp: int | None = None) -> int:
    """Link committed audit rows into the hash chain (every 10 s)."""
    rows = await system_tx(resources(context), "audit_seal", "select app.audit_seal()")
    return int(rows[0][0])


@app.periodic(cron="0 4 1 * *", periodic_id="audit_attest")
@app.task(name="audit_attest", pass_context=True, retry=RETRY)
async def audit_attest(context: JobContext, timestamp: int | None = None) -> int:
    """Monthly signed snapshot of the audit chain (as POST /admin/audit/attest does)."""
    from samia.audit.service import record_attestation
    from samia.providers.storage import make_storage

    res = resources(context)
    undo: list[Any] = []
    after: list[Any] = []
    async with res.pool.connection() as conn:
        try:
            await conn.execute("select set_config('role', 'service_role', true), "
                               "set_config('request.jwt.claims', %s, true)",
                               (json.dumps({"role": "service_role", "actor": "system:audit_attest"}),))
            out = await record_attestation(conn, make_storage(res.settings), res.settings, undo, after)
            await conn.commit()
        except BaseException:
            await conn.rollback()
            for step in undo:
                await step()
            raise
    for step in after:
        await step()
    return int(out["id"])


@app.periodic(cron="* * * * * */5", periodic_id="emergency_escalate")
@app.task(name="emergency_escalate", pass_context=True, retry=RETRY)
async def emergency_escalate(context: JobContext, timestamp: int | None = None, at: str | None = None) -> int:
    """The siren's ladder: every step that is due, in order, each with its own timer. State
    is in the database, so a restarted worker catches up without losing a step. `at` (ISO
    time) replaces the clock: tests and drills only."""
    rows = await system_tx(resources(context), "emergency_escalate",
                           "select app.emergency_escalate(coalesce(%s::timestamptz, now()))", (at,))
    return int(rows[0][0])


@app.periodic(cron="* * * * * */30", periodic_id="incident_escalate")
@app.task(name="incident_escalate", pass_context=True, retry=RETRY)
async def incident_escalate(context: JobContext, timestamp: int | None = None, at: str | None = None) -> int:
    """Unacknowledged incident pages climb Monitor → Admin → Super Admin on the severity's
    ack window. `at` (ISO time) replaces the clock: tests and drills only."""
    rows = await system_tx(resources(context), "incident_escalate",
                           "select app.incident_escalate(coalesce(%s::timestamptz, now()))", (at,))
    return int(rows[0][0])


@app.periodic(cron="* * * * *", periodic_id="dsr_process")
@app.task(name="dsr_process", pass_context=True, retry=RETRY)
async def dsr_process(context: JobContext, timestamp: int | None = None) -> int:
    """Approved data-subject requests: an export built as the person under RLS, or the erasure.
    Queued at approval too, so it starts at once."""
    from samia.privacy.jobs import process_requests
    from samia.providers.storage import make_storage

    res = resources(context)
    return await process_requests(res.pool, make_storage(res.settings))


@app.periodic(cron="*/15 * * * *", periodic_id="dsr_sweep")
@app.task(name="dsr_sweep", pass_context=True, retry=RETRY)
async def dsr_sweep(context: JobContext, timestamp: int | None = None, at: str | None = None) -> dict[str, int]:
    """Data-request deadlines (an incident before one passes, another when it has), expired
    exports deleted, erased objects removed from storage. `at` replaces the clock: tests only."""
    from samia.privacy.jobs import sweep
    from samia.providers.storage import make_storage

    res = resources(context)
    return await sweep(res.pool, make_storage(res.settings), at)


@app.periodic(cron="55 3 * * *", periodic_id="archive_logs")
@app.task(name="archive_logs", pass_context=True, retry=RETRY)
async def archive_logs(context: JobContext, timestamp: int | None = None) -> dict[str, int]:
    """Logs and audit exports past their retention (log_retention) to the storage archive, each
    with its retention note; audited."""
    from samia.privacy.archive import archive
    from samia.providers.storage import make_storage

    res = resources(context)
    return await archive(res.pool, make_storage(res.settings))


@app.periodic(cron="20 0 * * *", periodic_id="analytics_rollup")
@app.task(name="analytics_rollup", pass_context=True, retry=RETRY)
async def analytics_rollup(context: JobContext, timestamp: int | None = None,
                           through: str | None = None) -> dict[str, Any]:
    """Nightly (00:20 UTC: 02:20 or 03:20 in Beirut): roll events up into metrics_daily_* for
    every Beirut day not yet rolled up, the last three again, and any day a late event marked.
    Re-running it changes nothing. `through` (ISO date) stops at that day: tests and backfills."""
    from samia.analytics.service import rollup

    async with resources(context).pool.connection() as conn:
        await conn.execute("select set_config('role', 'service_role', true), "
                           "set_config('request.jwt.claims', %s, true)",
                           (json.dumps({"role": "service_role", "actor": "system:analytics_rollup"}),))
        out = await rollup(conn, through=dt.date.fromisoformat(through) if through else None)
        await conn.commit()
    return {**out, "rolled_through": str(out["rolled_through"])}


# ─── daily horoscopes (issue 15) ────────────────────────────────────────────────────────
FETCH_RETRY = JitteredBackoff(max_attempts=4, base=5.0, cap=600.0)


@app.task(name="horoscope_fetch", pass_context=True, retry=FETCH_RETRY)
async def horoscope_fetch(context: JobContext, clip_id: int) -> str:
    """Fetch a submitted post (yt-dlp) or read an upload, normalise its audio (EBU R128), store
    it privately and classify it by its caption. Retried with backoff; the last attempt marks
    the clip failed for admins instead of raising."""
    from samia.horoscopes.service import fetch_clip
    from samia.providers.storage import make_storage

    res = resources(context)
    final = context.job.attempts + 1 >= FETCH_RETRY.max_attempts
    return await fetch_clip(res.pool, make_storage(res.settings), res.settings, clip_id, final=final)


@app.periodic(cron="* * * * *", periodic_id="horoscope_publish")
@app.task(name="horoscope_publish", pass_context=True, retry=RETRY)
async def horoscope_publish(context: JobContext, timestamp: int | None = None, at: str | None = None) -> Any:
    """Every minute: publish the Beirut day's 12 signs once it has begun (and the month's on the
    first), exactly once whatever runs (the run row decides), or halt and page. `at` replaces
    the clock: tests and drills only."""
    rows = await system_tx(resources(context), "horoscope_publish",
                           "select app.horoscope_publish_due(coalesce(%s::timestamptz, now()))", (at,))
    return rows[0][0]


@app.periodic(cron="*/5 * * * *", periodic_id="horoscope_push")
@app.task(name="horoscope_push", pass_context=True, retry=RETRY)
async def horoscope_push(context: JobContext, timestamp: int | None = None, at: str | None = None) -> int:
    """"Your horoscope is ready" to opted-in users at their local time, once per user and day,
    through the outbox (quiet hours and suppressions apply there)."""
    rows = await system_tx(resources(context), "horoscope_push",
                           "select app.horoscope_push_due(coalesce(%s::timestamptz, now()))", (at,))
    return int(rows[0][0])


@app.periodic(cron="0 5 1 * *", periodic_id="voice_refresh")
@app.task(name="voice_refresh", pass_context=True, retry=RETRY)
async def voice_refresh(context: JobContext, timestamp: int | None = None) -> dict[str, Any]:
    """Monthly: refresh the text-to-speech provider's voice (POST /api/cron/voice/refresh). Audited."""
    from samia.horoscopes.audio import refresh_voice

    res = resources(context)
    out = await refresh_voice(res.settings)
    await system_tx(res, "voice_refresh", "select app.audit('job.voice_refresh', 'job', 'voice_refresh', %s)",
                    (json.dumps(out),))
    return out


# What POST /api/cron/<name> may queue (all of the above; app.defer() holds the same list).
CRON_TASKS = ("send_outbox", "purge_old", "sweep_rate_buckets", "expire_holds", "booking_reminders", "reader_no_show",
              "order_clocks", "lift_expired_blocks", "moderation_sweeps", "retention_purge", "audit_seal",
              "audit_attest", "emergency_escalate", "incident_escalate", "dsr_process", "dsr_sweep", "archive_logs",
              "analytics_rollup", "horoscope_publish", "horoscope_push", "voice_refresh")
# Cron names with a path: POST /api/cron/voice/refresh is 004's name for voice_refresh.
CRON_ALIASES = {"voice/refresh": "voice_refresh"}
