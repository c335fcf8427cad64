"""KPIs from the nightly roll-ups, and the roll-up itself.

Plain async functions taking the connection first. They run in the caller's request
transaction, so row-level security decides what they see (schema/16_analytics.sql: admins
everything, monitors content and calls, readers the rows that carry their own id). Every day
is a business day in Asia/Beirut; ranges are inclusive. Durations are whole seconds; a
percentile is an observed value (percentile_disc), exact over any range of days because the
roll-up keeps each day's sorted durations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.analytics.catalogue import BEIRUT, DROP_REASONS


@dataclass(frozen=True)
class Span:
    """An inclusive range of Beirut days, optionally narrowed to one reader's rows."""
    start: dt.date
    end: dt.date
    reader: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"f": self.start, "t": self.end, "r": self.reader}


def rate(part: int | None, whole: int | None) -> float | None:
    """part ÷ whole to 4 places; None when there is nothing to divide by."""
    return round(part / whole, 4) if part is not None and whole else None


async def fetch(conn: AsyncConnection, query: sql.Composable | str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)  # type: ignore[arg-type]  # this module's literal SQL
    return await cur.fetchall()


async def frame(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """What every answer states: the zone of its days, its range, and the last day rolled up."""
    cur = await conn.execute("select app.analytics_rolled_through()")
    row = await cur.fetchone()
    return {"timezone": BEIRUT, "from": span.start, "to": span.end, "reader_id": span.reader,
            "complete_through": row[0] if row else None}


# ---- reading the roll-up -----------------------------------------------------------------

CELLS = """
    select m.type, m.kind, m.code, m.reason, m.provider, m.country, m.is_gold, m.first_pass, s.code as service,
           sum(m.events)::bigint as n
      from metrics_daily_events m
      left join services s on s.id = m.service_id
     where m.day between %(f)s and %(t)s and (%(r)s::uuid is null or m.reader_id = %(r)s::uuid)
       and m.type = any(%(types)s)
     group by 1, 2, 3, 4, 5, 6, 7, 8, 9"""

DURATIONS = sql.SQL("""
    select m.type, {group} as key, count(*)::bigint as n, sum(x)::bigint as sum,
           percentile_disc(0.5) within group (order by x) as p50,
           percentile_disc(0.9) within group (order by x) as p90,
           round(avg(x))::bigint as mean
      from metrics_daily_events m
      left join services s on s.id = m.service_id
      cross join lateral unnest(m.seconds) x
     where m.day between %(f)s and %(t)s and (%(r)s::uuid is null or m.reader_id = %(r)s::uuid)
       and m.type = any(%(types)s)
     group by 1, 2""")

GROUPS = {
    "all": sql.SQL("''"),
    "kind": sql.SQL("coalesce(m.kind, '')"),
    "service": sql.SQL("s.code || case when m.is_gold then ':golden' else ':normal' end"),
    "code": sql.SQL("coalesce(m.code, '')"),
    "reason": sql.SQL("coalesce(m.reason, '')"),
    # one percentile per type, except resolved incidents: restored then (unmitigated) or before
    "headline": sql.SQL("case when m.type = 'incident.resolved' then coalesce(m.reason, '') else '' end"),
}


@dataclass(frozen=True)
class Cells:
    """The roll-up's cells over a span, summed across days: count what matches."""
    rows: list[dict[str, Any]]

    def n(self, type_: str | Iterable[str], **match: Any) -> int:
        types = {type_} if isinstance(type_, str) else set(type_)
        return sum(int(r["n"]) for r in self.rows
                   if r["type"] in types and all(r[k] == v for k, v in match.items()))

    def by(self, type_: str, column: str, **match: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            if r["type"] == type_ and all(r[k] == v for k, v in match.items()):
                key = r[column] if r[column] is not None else "unspecified"
                out[key] = out.get(key, 0) + int(r["n"])
        return dict(sorted(out.items()))


async def cells(conn: AsyncConnection, span: Span, types: list[str]) -> Cells:
    return Cells(await fetch(conn, CELLS, {**span.params, "types": types}))


async def durations(conn: AsyncConnection, span: Span, types: list[str],
                    group: str = "all") -> dict[tuple[str, str], dict[str, int]]:
    """{(type, group): {n, sum, p50, p90, mean}} over the seconds those events carry."""
    rows = await fetch(conn, DURATIONS.format(group=GROUPS[group]), {**span.params, "types": types})
    return {(r["type"], r["key"]): {k: int(r[k]) for k in ("n", "sum", "p50", "p90", "mean")} for r in rows}


def stat(d: dict[str, int] | None, key: str) -> int | None:
    return d[key] if d else None


# ---- fulfillment -------------------------------------------------------------------------

async def fulfillment(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Time to first response (placed → a reader first starts it) and to delivery, p50/p90 per
    service, golden vs normal; approval rate (approved ÷ reviewed); refund rate (order refunds ÷
    orders placed; admins only); clock breaches (delivery: the reader's clock, review: the
    monitors')."""
    c = await cells(conn, span, ["order.created", "order.assigned", "order.approved", "order.rejected",
                                 "order.delivered", "order.cancelled", "order.clock_breached", "payment.refunded"])
    d = await durations(conn, span, ["order.first_response", "order.delivered"], group="service")
    approved, rejected = c.n("order.approved"), c.n("order.rejected")
    created = None if span.reader else c.n("order.created")
    refunds = None if span.reader else c.n("payment.refunded", kind="order")
    by_service = []
    for key in sorted({k for (_, k) in d}):
        service, _, tier = key.partition(":")
        first, done = d.get(("order.first_response", key)), d.get(("order.delivered", key))
        by_service.append({"service": service, "golden": tier == "golden",
                           "first_responses": stat(first, "n") or 0,
                           "first_response_p50_s": stat(first, "p50"), "first_response_p90_s": stat(first, "p90"),
                           "deliveries": stat(done, "n") or 0,
                           "delivery_p50_s": stat(done, "p50"), "delivery_p90_s": stat(done, "p90")})
    return {**await frame(conn, span),
            "orders_created": created, "orders_assigned": c.n("order.assigned"),
            "orders_delivered": c.n("order.delivered"), "orders_cancelled": c.n("order.cancelled"),
            "approved": approved, "rejected": rejected, "approval_rate": rate(approved, approved + rejected),
            "refunds": refunds, "refund_rate": rate(refunds, created),
            "clock_breaches": {"delivery": c.n("order.clock_breached", code="delivery"),
                               "review": c.n("order.clock_breached", code="review_clock")},
            "by_service": by_service}


# ---- payments ----------------------------------------------------------------------------

PAYMENT_TYPES = ["payment.attempted", "payment.action_required", "payment.succeeded", "payment.failed",
                 "payment.fallback", "payment.refunded"]


def payment_figures(c: Cells, **match: Any) -> dict[str, Any]:
    """Success = succeeded ÷ decided (succeeded + failed); first pass = the same for attempts with
    no failure of the payer in the 30 minutes before; fallback = retries with another method ÷
    attempts."""
    ok, bad = c.n("payment.succeeded", **match), c.n("payment.failed", **match)
    ok1 = c.n("payment.succeeded", first_pass=True, **match)
    bad1 = c.n("payment.failed", first_pass=True, **match)
    attempts, fallbacks = c.n("payment.attempted", **match), c.n("payment.fallback", **match)
    return {"attempts": attempts, "first_pass_attempts": c.n("payment.attempted", first_pass=True, **match),
            "action_required": c.n("payment.action_required", **match), "succeeded": ok, "failed": bad,
            "fallbacks": fallbacks, "refunded": c.n("payment.refunded", **match),
            "success_rate": rate(ok, ok + bad), "first_pass_success_rate": rate(ok1, ok1 + bad1),
            "fallback_rate": rate(fallbacks, attempts)}


async def payments(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Charges and wallet top-ups by provider and by provider and payer's country; refunds
    counted against the method of the charge they gave back."""
    c = await cells(conn, span, PAYMENT_TYPES)
    pairs = sorted({(r["provider"], r["country"]) for r in c.rows}, key=lambda p: (p[0] or "", p[1] or ""))
    providers = sorted({p for p, _ in pairs if p})
    return {**await frame(conn, span), **payment_figures(c),
            "by_provider": [{"provider": p, **payment_figures(c, provider=p)} for p in providers],
            "by_provider_country": [{"provider": p, "country": k, **payment_figures(c, provider=p, country=k)}
                                    for p, k in pairs if p]}


# ---- calls -------------------------------------------------------------------------------

def call_figures(c: Cells, d: dict[tuple[str, str], dict[str, int]], key: str, **match: Any) -> dict[str, Any]:
    created, answered = c.n("call.created", **match), c.n("call.answered", **match)
    ended = c.n("call.ended", **match)
    dropped = sum(c.n("call.ended", reason=r, **match) for r in DROP_REASONS)
    setup, talk = d.get(("call.answered", key)), d.get(("call.ended", key))
    return {"created": created, "answered": answered, "unanswered": c.n("call.unanswered", **match),
            "ended": ended, "dropped": dropped,
            "answer_rate": rate(answered, created), "drop_rate": rate(dropped, ended),
            "setup_p50_s": stat(setup, "p50"), "setup_p90_s": stat(setup, "p90"),
            "duration_p50_s": stat(talk, "p50"), "duration_mean_s": stat(talk, "mean")}


async def calls(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Answer rate (answered ÷ set up), drop rate (connected calls the reader or a monitor cut,
    or that failed ÷ connected calls ended), setup time (set up → connected) and connected
    time; overall and per kind (scheduled, instant, emergency)."""
    types = ["call.created", "call.answered", "call.ended", "call.unanswered"]
    c = await cells(conn, span, types)
    d_all = await durations(conn, span, ["call.answered", "call.ended"])
    d_kind = await durations(conn, span, ["call.answered", "call.ended"], group="kind")
    kinds = sorted({r["kind"] for r in c.rows if r["kind"]})
    ended_by = c.by("call.ended", "reason")
    for reason, n in c.by("call.unanswered", "reason").items():
        ended_by[reason] = ended_by.get(reason, 0) + n
    return {**await frame(conn, span), **call_figures(c, d_all, ""),
            "drop_reasons": list(DROP_REASONS), "ended_by_reason": dict(sorted(ended_by.items())),
            "by_kind": [{"kind": k, **call_figures(c, d_kind, k, kind=k)} for k in kinds]}


# ---- content and moderation --------------------------------------------------------------

async def content(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Approval rate of readings' audio (approve ÷ approve + reject), reject reasons (reason
    codes; a rejection of audio carries a note for the reader, never a code: 'unspecified'),
    every moderation act by action, cases opened and the time to close them."""
    c = await cells(conn, span, ["moderation.decision", "case.opened", "case.closed"])
    d = await durations(conn, span, ["case.closed"])
    approve, reject = c.n("moderation.decision", kind="order", code="approve"), \
        c.n("moderation.decision", kind="order", code="reject")
    closed = d.get(("case.closed", ""))
    return {**await frame(conn, span),
            "decisions": c.n("moderation.decision"), "by_action": c.by("moderation.decision", "code"),
            "audio_approved": approve, "audio_rejected": reject, "approval_rate": rate(approve, approve + reject),
            "reject_reasons": c.by("moderation.decision", "reason", code="reject"),
            "cases_opened": c.n("case.opened"), "cases_by_source": c.by("case.opened", "code"),
            "cases_by_reason": c.by("case.opened", "reason"),
            "cases_closed": c.n("case.closed"), "cases_by_outcome": c.by("case.closed", "code"),
            "resolution_p50_s": stat(closed, "p50"), "resolution_p90_s": stat(closed, "p90"),
            "resolution_mean_s": stat(closed, "mean")}


# ---- engagement --------------------------------------------------------------------------

ACTIVE = """
    select (select count(*) from metrics_daily_users u where u.day = %(t)s)::bigint as dau,
           (select count(distinct u.user_id) from metrics_daily_users u
             where u.day between %(t)s::date - 6 and %(t)s)::bigint as wau,
           (select count(distinct u.user_id) from metrics_daily_users u
             where u.day between %(t)s::date - 29 and %(t)s)::bigint as mau"""

DAILY_ACTIVE = """
    select d::date as day, (select count(*) from metrics_daily_users u where u.day = d::date)::bigint as dau
      from generate_series(%(f)s::date, %(t)s::date, interval '1 day') d order by 1"""

# Weekly retention: a user's cohort is the Beirut week (Monday) of their first active day;
# week k counts those of the cohort active in its k-th week after.
COHORTS = """
    with firsts as (
      select u.user_id, date_trunc('week', min(u.day))::date as cohort from metrics_daily_users u group by u.user_id
    ),
    weeks as (
      select distinct u.user_id, date_trunc('week', u.day)::date as week from metrics_daily_users u
       where u.day <= %(t)s
    )
    select f.cohort, ((w.week - f.cohort) / 7)::integer as k, count(*)::bigint as n
      from firsts f join weeks w on w.user_id = f.user_id
     where f.cohort between date_trunc('week', %(f)s::date)::date and %(t)s
     group by 1, 2 order by 1, 2"""

LATER = ["notification.sent", "notification.delivered", "notification.opened", "notification.clicked",
         "horoscope.listen_started", "horoscope.listen_finished"]


def cohort_table(rows: list[dict[str, Any]], end: dt.date) -> list[dict[str, Any]]:
    by: dict[dt.date, dict[int, int]] = {}
    for r in rows:
        by.setdefault(r["cohort"], {})[r["k"]] = int(r["n"])
    last_week = end - dt.timedelta(days=end.weekday())
    out = []
    for cohort, weeks in sorted(by.items()):
        size = weeks.get(0, 0)
        span = (last_week - cohort).days // 7
        out.append({"cohort_week": cohort, "users": size,
                    "retention": [rate(weeks.get(k, 0), size) for k in range(span + 1)]})
    return out


async def engagement(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """DAU on the last day, WAU and MAU over the 7 and 30 days ending then, daily actives,
    sign-ups, logins, weekly retention cohorts; notification CTR (clicked ÷ delivered, else ÷
    sent) and horoscope listen-through (finished ÷ started) stay null until those events exist."""
    c = await cells(conn, span, ["user.signed_up", "user.logged_in", *LATER])
    active = (await fetch(conn, ACTIVE, span.params))[0]
    sent, delivered = c.n("notification.sent"), c.n("notification.delivered")
    started = c.n("horoscope.listen_started")
    notes = {}
    if not (sent or delivered):
        notes["notification_ctr"] = "no notification events in this range (their types are reserved until " \
                                    "the messaging work emits them)"
    if not started:
        notes["listen_through"] = "no horoscope listen events in this range (reserved until the horoscopes " \
                                  "work emits them)"
    return {**await frame(conn, span), **{k: int(v) for k, v in active.items()},
            "daily_active": await fetch(conn, DAILY_ACTIVE, span.params),
            "signups": c.n("user.signed_up"), "signups_by_role": c.by("user.signed_up", "kind"),
            "logins": c.n("user.logged_in"),
            "cohorts": cohort_table(await fetch(conn, COHORTS, span.params), span.end),
            "notifications": {t.split(".")[1]: c.n(t) for t in LATER[:4]},
            "notification_ctr": rate(c.n("notification.clicked"), delivered or sent),
            "listens": {"started": started, "finished": c.n("horoscope.listen_finished")},
            "listen_through": rate(c.n("horoscope.listen_finished"), started),
            "notes": notes}


# ---- operations --------------------------------------------------------------------------

# Double booking from the capacity ledger: bookings (confirmed or completed) whose time
# overlaps another booking of the same reader; and overlaps among the active rows right now.
# The exclusion constraint makes both 0; a non-zero figure means something bypassed it.
DOUBLE_BOOKING = """
    select count(*)::bigint as bookings,
           count(*) filter (where exists (
             select 1 from reader_capacity o
              where o.reader_id = c.reader_id and o.id <> c.id and o.kind = 'booking'
                and o.status in ('confirmed', 'completed') and o.during && c.during))::bigint as double_booked,
           (select count(*) from reader_capacity a join reader_capacity b
                on b.reader_id = a.reader_id and b.id > a.id and b.during && a.during
             where a.status in ('held', 'confirmed', 'live') and b.status in ('held', 'confirmed', 'live'))::bigint
             as active_overlaps
      from reader_capacity c
     where c.kind = 'booking' and c.status in ('confirmed', 'completed')
       and app.beirut_day(lower(c.during)) between %(f)s and %(t)s"""


def _mean(*parts: dict[str, int] | None) -> int | None:
    n = sum(p["n"] for p in parts if p)
    return round(sum(p["sum"] for p in parts if p) / n) if n else None


async def operations(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Incidents by severity; mean time to acknowledge, to restore (MTTR: opened → mitigated, or →
    resolved for one resolved without a mitigation) and to resolve; the double-booking rate."""
    types = ["incident.opened", "incident.acknowledged", "incident.mitigated", "incident.resolved"]
    c = await cells(conn, span, types)
    d = await durations(conn, span, types, group="reason")
    books = (await fetch(conn, DOUBLE_BOOKING, span.params))[0]
    return {**await frame(conn, span),
            "incidents_opened": c.n("incident.opened"), "incidents_by_severity": c.by("incident.opened", "code"),
            "acknowledged": c.n("incident.acknowledged"), "mitigated": c.n("incident.mitigated"),
            "resolved": c.n("incident.resolved"),
            "mtta_s": _mean(d.get(("incident.acknowledged", ""))),
            "mttr_s": _mean(d.get(("incident.mitigated", "")), d.get(("incident.resolved", "unmitigated"))),
            "time_to_resolve_s": _mean(d.get(("incident.resolved", "mitigated")),
                                       d.get(("incident.resolved", "unmitigated"))),
            "bookings": int(books["bookings"]), "double_booked": int(books["double_booked"]),
            "double_booking_rate": rate(int(books["double_booked"]), int(books["bookings"])) or 0.0,
            "active_overlaps": int(books["active_overlaps"])}


# ---- the roll-up -------------------------------------------------------------------------

async def rollup(conn: AsyncConnection, *, through: dt.date | None = None) -> dict[str, Any]:
    """The nightly job's work (app.analytics_rollup): every day not yet rolled up, the last
    three again, and every day a late event marked, up to `through` (default yesterday); then
    raw events past their retention go. {days, changed, rolled_through, purged}."""
    rows = await fetch(conn, "select * from app.analytics_rollup(%(t)s)", {"t": through})
    return dict(rows[0])
