"""Every background task and every schedule, declared in this one place.

Tasks are idempotent (safe to run twice, safe to retry) and retried with full-jitter
exponential backoff. Periodic tasks are queued while a worker runs (`samia worker`); outside
schedulers can queue the same tasks through POST /api/cron/<task> with X-Job-Token.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from procrastinate import App, BaseRetryStrategy, JobContext, PsycopgConnector, RetryDecision
from procrastinate.jobs import Job
from psycopg_pool import AsyncConnectionPool

from samia.config import Settings
from samia.notifications.outbox import dispatch_pending
from samia.providers.email import Mailer

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
    """What tasks share in a worker process (duck-compatible with the API's Platform)."""
    settings: Settings
    pool: AsyncConnectionPool
    mailer: Mailer


def resources(context: JobContext) -> Resources:
    return context.additional_context["samia"]  # type: ignore[no-any-return]


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
@app.task(name="send_outbox", pass_context=True, retry=RETRY, queueing_lock="send_outbox")
async def send_outbox(context: JobContext, timestamp: int | None = None) -> int:
    """Deliver pending notifications (rows are claimed with SKIP LOCKED, each commits alone)."""
    return await dispatch_pending(resources(context))  # type: ignore[arg-type]


@app.periodic(cron="17 3 * * *", periodic_id="purge_old")
@app.task(name="purge_old", pass_context=True, retry=RETRY, queueing_lock="purge_old")
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
@app.task(name="sweep_rate_buckets", pass_context=True, retry=RETRY, queueing_lock="sweep_rate_buckets")
async def sweep_rate_buckets(context: JobContext, timestamp: int | None = None) -> int:
    """Drop rate-limit buckets whose every hit is older than the longest window (31 days)."""
    rows = await system_tx(resources(context), "sweep_rate_buckets", """
        with gone as (delete from app_private.rate_buckets
                       where cardinality(hits) = 0 or hits[cardinality(hits)] < now() - interval '31 days'
                      returning 1)
        select count(*) from gone""")
    return int(rows[0][0])


@app.periodic(cron="* * * * *", periodic_id="expire_holds")
@app.task(name="expire_holds", pass_context=True, retry=RETRY, queueing_lock="expire_holds")
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


# What POST /api/cron/<name> may queue (all of the above; app.defer() holds the same list).
CRON_TASKS = ("send_outbox", "purge_old", "sweep_rate_buckets", "expire_holds")
