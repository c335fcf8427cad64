"""Issue 17's acceptance over a generated month of activity (1,600 orders, about 2,900
payments, 1,000 calls, 600 bookings with readers in five time zones) from 12 October to 12 November
2026: Beirut and London leave summer time on 25 October, New York on 1 November.

* brute force: every KPI the API reads from the nightly roll-ups equals the same figure
  recomputed here from the base tables (orders, payment_transactions, calls, moderation,
  incidents, sessions, the audit log), with SQL written independently of the roll-up's;
* the nightly job, run again, changes nothing; a late event recomputes its day;
* scoping: a reader gets their own figures, 404 for another reader's, and SQL under their claims
  returns nothing else; monitors see content and calls only; clients nothing;
* the reports (payments funnel, reader utilisation) equal their brute force, CSV included;
* the last test scans this module's events for every test user's email, phone and name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import Api, User, ok, run_jobs

from .generate import generate_month
from .pii import pii_findings

START = dt.datetime(2026, 10, 12, tzinfo=dt.UTC)
DAYS = 31
F, T = dt.date(2026, 10, 12), dt.date(2026, 11, 16)   # Beirut days holding every generated fact
RANGE = {"from": F.isoformat(), "to": T.isoformat()}
ZONES = ("Asia/Beirut", "Europe/London", "America/New_York", "Asia/Dubai", "UTC")
BD = "at time zone 'Asia/Beirut')::date"   # (ts BD: the Beirut day of ts, written out in every query below


@dataclass
class World:
    readers: list[User]
    admin: User
    monitor: User
    client: User
    generated_in: float


@pytest.fixture(scope="module")
def world(api: Api, settings: Any, dsns: Any) -> World:
    readers = [api.user("reader") for _ in ZONES]
    for reader, zone in zip(readers, ZONES, strict=True):
        # weekdays 09:00-17:00 and Sunday 00:00-03:00 in the reader's own zone (the hour that
        # repeats or vanishes at a DST change is what makes a week's minutes differ)
        api.sql("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
                "select %s::uuid, d, time '09:00', time '17:00', %s from generate_series(1, 5) d "
                "union all select %s::uuid, 7, time '00:00', time '03:00', %s", (reader.id, zone, reader.id, zone))
    api.sql("insert into availability_exceptions (reader_id, during, kind) values "
            "(%s, tstzrange('2026-10-20 08:00+00', '2026-10-21 08:00+00'), 'block'), "
            "(%s, tstzrange('2026-10-24 10:00+00', '2026-10-24 14:00+00'), 'open')", (readers[0].id, readers[0].id))
    started = time.monotonic()
    generate_month(api.owner_dsn, [r.id for r in readers], START, DAYS)
    generated = time.monotonic() - started
    run_jobs(api.settings, dsns, "analytics_rollup")   # the nightly job, through the job engine
    return World(readers, api.user("admin"), api.user("monitor"), api.user("client"), generated)


def get(api: Api, path: str, who: User, **params: Any) -> dict[str, Any]:
    return ok(api.client.get(path, params={**RANGE, **params}, headers=who.h))  # type: ignore[no-any-return]


def one(api: Api, query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of a brute-force query, as a dict."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(api.owner_dsn, row_factory=dict_row) as conn:
        return conn.execute(query.replace("BD", BD), {"f": F, "t": T, **(params or {})}).fetchone()  # type: ignore


def rows(api: Api, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(api.owner_dsn, row_factory=dict_row) as conn:
        return conn.execute(query.replace("BD", BD), {"f": F, "t": T, **(params or {})}).fetchall()  # type: ignore


def rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def test_the_month_is_big_enough_and_quick(api: Api, world: World) -> None:
    counts = one(api, "select (select count(*) from orders) as orders, (select count(*) from payment_transactions) "
                      "as payments, (select count(*) from calls) as calls, (select count(*) from events_raw) as events")
    assert counts["orders"] >= 1500 and counts["payments"] >= 2500 and counts["calls"] >= 1000
    assert counts["events"] > 20000
    assert world.generated_in < 60, f"generating the month took {world.generated_in:.1f} s"
    # the window crosses the DST change in the readers' zones, and facts fall near Beirut midnight
    near_midnight = one(api, "select count(*) as n from orders "
                             "where (created_at BD <> (created_at at time zone 'UTC')::date")
    assert near_midnight["n"] > 0


# ---- fulfillment -------------------------------------------------------------------------

FULFILLMENT = """
    with firsts as (select entity_id::bigint as id, min(created_at) as at from audit_log
                     where event = 'order.in_progress' group by 1),
         o as (select o.*, f.at as first_at from orders o left join firsts f on f.id = o.id
                where %(r)s::uuid is null or o.assigned_reader = %(r)s::uuid)
    select count(*) filter (where (created_at BD between %(f)s and %(t)s) as created,
           count(*) filter (where (assigned_at BD between %(f)s and %(t)s) as assigned,
           count(*) filter (where (delivered_at BD between %(f)s and %(t)s) as delivered,
           count(*) filter (where (cancelled_at BD between %(f)s and %(t)s) as cancelled,
           count(*) filter (where (approved_at BD between %(f)s and %(t)s) as approved,
           count(*) filter (where (delivery_breached_at BD between %(f)s and %(t)s) as delivery_breaches,
           count(*) filter (where (review_breached_at BD between %(f)s and %(t)s) as review_breaches,
           (select count(*) from moderation_actions m join o on o.id::text = m.target_id
             where m.action = 'reject' and m.target_kind = 'order' and (m.created_at BD between %(f)s and %(t)s
           ) as rejected,
           (select count(*) from payment_transactions t where t.kind = 'refund' and t.order_id is not null
             and (t.updated_at BD between %(f)s and %(t)s) as refunds
      from o"""

DURATIONS = """
    with firsts as (select entity_id::bigint as id, min(created_at) as at from audit_log
                     where event = 'order.in_progress' group by 1),
         x as (select s.code as service, o.is_gold, 'first' as what,
                      floor(extract(epoch from f.at - o.created_at))::int as secs
                 from orders o join firsts f on f.id = o.id join services s on s.id = o.service_id
                where (f.at BD between %(f)s and %(t)s and (%(r)s::uuid is null or o.assigned_reader = %(r)s::uuid)
               union all
               select s.code, o.is_gold, 'delivery', floor(extract(epoch from o.delivered_at - o.created_at))::int
                 from orders o join services s on s.id = o.service_id
                where (o.delivered_at BD between %(f)s and %(t)s
                  and (%(r)s::uuid is null or o.assigned_reader = %(r)s::uuid))
    select service, is_gold, what, count(*) as n, percentile_disc(0.5) within group (order by secs) as p50,
           percentile_disc(0.9) within group (order by secs) as p90
      from x group by 1, 2, 3"""


def brute_fulfillment(api: Api, reader: str | None) -> dict[str, Any]:
    b = one(api, FULFILLMENT, {"r": reader})
    d = {(r["service"], r["is_gold"], r["what"]): r for r in rows(api, DURATIONS, {"r": reader})}
    by_service = []
    for service, gold in sorted({(s, g) for s, g, _ in d}, key=lambda k: (k[0], not k[1])):
        first, done = d.get((service, gold, "first")), d.get((service, gold, "delivery"))
        by_service.append({"service": service, "golden": gold,
                           "first_responses": first["n"] if first else 0,
                           "first_response_p50_s": first and first["p50"],
                           "first_response_p90_s": first and first["p90"],
                           "deliveries": done["n"] if done else 0,
                           "delivery_p50_s": done and done["p50"], "delivery_p90_s": done and done["p90"]})
    created = None if reader else b["created"]
    return {"orders_created": created, "orders_assigned": b["assigned"], "orders_delivered": b["delivered"],
            "orders_cancelled": b["cancelled"], "approved": b["approved"], "rejected": b["rejected"],
            "approval_rate": rate(b["approved"], b["approved"] + b["rejected"]),
            "refunds": None if reader else b["refunds"],
            "refund_rate": None if reader else rate(b["refunds"], b["created"]),
            "clock_breaches": {"delivery": b["delivery_breaches"], "review": b["review_breaches"]},
            "by_service": by_service}


def _sorted_services(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "by_service": sorted(body["by_service"], key=lambda s: (s["service"], not s["golden"]))}


def test_fulfillment_equals_brute_force(api: Api, world: World) -> None:
    body = get(api, "/metrics/fulfillment", world.admin)
    assert body["timezone"] == "Asia/Beirut" and body["complete_through"] >= T.isoformat()
    expected = brute_fulfillment(api, None)
    assert _sorted_services({k: body[k] for k in expected}) == _sorted_services(expected)
    assert len(body["by_service"]) == 6 and body["clock_breaches"]["delivery"] > 0 and body["rejected"] > 0


# ---- payments ----------------------------------------------------------------------------

PAYMENTS = """
    with ch as (
      select t.*, p.country_code::text as country,
             (select count(*) from payment_transactions x
               where x.user_id = t.user_id and x.kind in ('charge', 'topup') and x.status in ('failed', 'cancelled')
                 and x.updated_at >= t.created_at - interval '30 minutes'
                 and (x.updated_at < t.created_at or (x.updated_at = t.created_at and x.id < t.id))) as failures,
             (select x.provider from payment_transactions x
               where x.user_id = t.user_id and x.kind in ('charge', 'topup') and x.status in ('failed', 'cancelled')
                 and x.updated_at >= t.created_at - interval '30 minutes'
                 and (x.updated_at < t.created_at or (x.updated_at = t.created_at and x.id < t.id))
               order by x.updated_at desc, x.id desc limit 1) as failed_provider
        from payment_transactions t join profiles p on p.id = t.user_id
       where t.kind in ('charge', 'topup')
    ),
    refunds as (
      select c.provider, p.country_code::text as country, count(*) as n
        from payment_transactions t join payment_transactions c on c.id = t.parent_id
        join profiles p on p.id = t.user_id
       where t.kind = 'refund' and (t.updated_at BD between %(f)s and %(t)s group by 1, 2
    )
    select ch.provider, ch.country,
           count(*) filter (where (created_at BD between %(f)s and %(t)s) as attempts,
           count(*) filter (where (created_at BD between %(f)s and %(t)s and failures = 0) as first_pass_attempts,
           count(*) filter (where status = 'succeeded' and (updated_at BD between %(f)s and %(t)s) as succeeded,
           count(*) filter (where status = 'succeeded' and (updated_at BD between %(f)s and %(t)s and failures = 0)
             as first_pass_succeeded,
           count(*) filter (where status in ('failed', 'cancelled') and (updated_at BD between %(f)s and %(t)s)
             as failed,
           count(*) filter (where status in ('failed', 'cancelled') and (updated_at BD between %(f)s and %(t)s
                              and failures = 0) as first_pass_failed,
           count(*) filter (where (created_at BD between %(f)s and %(t)s and failures > 0
                              and failed_provider <> ch.provider) as fallbacks,
           coalesce(max(r.n), 0) as refunded
      from ch left join refunds r on r.provider = ch.provider and r.country = ch.country
     group by 1, 2"""


def figures(r: dict[str, Any]) -> dict[str, Any]:
    return {"attempts": r["attempts"], "first_pass_attempts": r["first_pass_attempts"], "succeeded": r["succeeded"],
            "failed": r["failed"], "fallbacks": r["fallbacks"], "refunded": r["refunded"],
            "success_rate": rate(r["succeeded"], r["succeeded"] + r["failed"]),
            "first_pass_success_rate": rate(r["first_pass_succeeded"],
                                            r["first_pass_succeeded"] + r["first_pass_failed"]),
            "fallback_rate": rate(r["fallbacks"], r["attempts"])}


def test_payments_equal_brute_force(api: Api, world: World) -> None:
    body = get(api, "/metrics/payments", world.admin)
    brute = {(r["provider"], r["country"]): r for r in rows(api, PAYMENTS)}
    got = {(r["provider"], r["country"]): {k: r[k] for k in figures(brute[(r["provider"], r["country"])])}
           for r in body["by_provider_country"]}
    assert got == {k: figures(v) for k, v in brute.items() if v["attempts"] or v["succeeded"] or v["failed"]}
    total = {k: sum(v[k] for v in brute.values())
             for k in next(iter(brute.values())) if k not in ("provider", "country")}
    assert {k: body[k] for k in figures(total)} == figures(total)
    assert body["fallbacks"] > 0 and body["failed"] > 0 and 0 < body["first_pass_success_rate"] < 1
    # a fallback is a retry with another method: never more than the retries
    assert body["fallbacks"] <= body["attempts"] - body["first_pass_attempts"]


# ---- calls -------------------------------------------------------------------------------

CALLS = """
    select c.kind,
           count(*) filter (where (created_at BD between %(f)s and %(t)s) as created,
           count(*) filter (where (started_at BD between %(f)s and %(t)s) as answered,
           count(*) filter (where started_at is not null and (ended_at BD between %(f)s and %(t)s) as ended,
           count(*) filter (where started_at is null and (ended_at BD between %(f)s and %(t)s) as unanswered,
           count(*) filter (where started_at is not null and (ended_at BD between %(f)s and %(t)s
                              and end_reason in ('dropped_by_reader', 'dropped_by_monitor', 'failed')) as dropped,
           percentile_disc(0.5) within group (order by floor(extract(epoch from started_at - created_at)))
             filter (where (started_at BD between %(f)s and %(t)s) as setup_p50_s,
           percentile_disc(0.9) within group (order by floor(extract(epoch from started_at - created_at)))
             filter (where (started_at BD between %(f)s and %(t)s) as setup_p90_s,
           percentile_disc(0.5) within group (order by connected_seconds)
             filter (where started_at is not null and (ended_at BD between %(f)s and %(t)s) as duration_p50_s,
           round(avg(connected_seconds)
             filter (where started_at is not null and (ended_at BD between %(f)s and %(t)s)) as duration_mean_s
      from calls c where %(r)s::uuid is null or c.reader_id = %(r)s::uuid
     group by grouping sets ((c.kind), ())"""


def call_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {k: (int(v) if v is not None else None) for k, v in r.items() if k != "kind"} | {
        "answer_rate": rate(r["answered"], r["created"]), "drop_rate": rate(r["dropped"], r["ended"])}


@pytest.mark.parametrize("scope", ["all", "one reader"])
def test_calls_equal_brute_force(api: Api, world: World, scope: str) -> None:
    reader = world.readers[2] if scope == "one reader" else None
    body = get(api, "/metrics/calls", reader or world.admin)
    brute = rows(api, CALLS, {"r": reader.id if reader else None})
    overall = next(r for r in brute if r["kind"] is None)
    assert {k: body[k] for k in call_figures(overall)} == call_figures(overall)
    by_kind = {r["kind"]: call_figures(r) for r in brute if r["kind"]}
    assert {k["kind"]: {f: k[f] for f in call_figures(overall)} for k in body["by_kind"]} == by_kind
    assert body["dropped"] > 0 and body["unanswered"] > 0


# ---- content and moderation --------------------------------------------------------------

CONTENT = """
    select (select count(*) from moderation_actions m where (m.created_at BD between %(f)s and %(t)s) as decisions,
           (select count(*) from moderation_actions m where m.target_kind = 'order' and m.action = 'approve'
               and (m.created_at BD between %(f)s and %(t)s) as audio_approved,
           (select count(*) from moderation_actions m where m.target_kind = 'order' and m.action = 'reject'
               and (m.created_at BD between %(f)s and %(t)s) as audio_rejected,
           (select jsonb_object_agg(reason, n) from (
              select coalesce(m.reason_code, 'unspecified') as reason, count(*) as n from moderation_actions m
               where m.action = 'reject' and (m.created_at BD between %(f)s and %(t)s group by 1) x) as reject_reasons,
           (select jsonb_object_agg(action, n) from (
              select m.action, count(*) as n from moderation_actions m
               where (m.created_at BD between %(f)s and %(t)s group by 1) x) as by_action,
           (select count(*) from moderation_cases c where (c.created_at BD between %(f)s and %(t)s) as cases_opened,
           (select jsonb_object_agg(source, n) from (select c.source, count(*) as n from moderation_cases c
               where (c.created_at BD between %(f)s and %(t)s group by 1) x) as cases_by_source,
           (select count(*) from moderation_cases c where (c.resolved_at BD between %(f)s and %(t)s) as cases_closed,
           (select percentile_disc(0.5) within group (order by floor(extract(epoch from c.resolved_at - c.created_at)))
              from moderation_cases c where (c.resolved_at BD between %(f)s and %(t)s) as resolution_p50_s,
           (select percentile_disc(0.9) within group (order by floor(extract(epoch from c.resolved_at - c.created_at)))
              from moderation_cases c where (c.resolved_at BD between %(f)s and %(t)s) as resolution_p90_s,
           (select round(avg(floor(extract(epoch from c.resolved_at - c.created_at))))::int
              from moderation_cases c where (c.resolved_at BD between %(f)s and %(t)s) as resolution_mean_s"""


def test_content_equals_brute_force(api: Api, world: World) -> None:
    body = get(api, "/metrics/content", world.admin)
    b = one(api, CONTENT)
    b["approval_rate"] = rate(b["audio_approved"], b["audio_approved"] + b["audio_rejected"])
    assert {k: body[k] for k in b} == b
    assert set(b["reject_reasons"]) == {"copyright", "spam", "unspecified"}
    # a monitor sees the same content figures; a reader only the decisions on their own work
    assert get(api, "/metrics/content", world.monitor) == body
    mine = get(api, "/metrics/content", world.readers[0])
    own = one(api, "select count(*) as n from moderation_actions m join orders o on o.id::text = m.target_id "
                   "where m.target_kind = 'order' and o.assigned_reader = %(r)s and (m.created_at BD between %(f)s "
                   "and %(t)s", {"r": world.readers[0].id})
    assert mine["decisions"] == own["n"] > 0 and mine["cases_opened"] == 0


# ---- engagement --------------------------------------------------------------------------

ACTIVE_DAYS = """
    select distinct user_id, d from (
      select user_id, (created_at BD as d from app_auth.sessions
      union all select user_id, (created_at BD from orders
      union all select client_id, (created_at BD from bookings
      union all select user_id, (created_at BD from payment_transactions where kind in ('charge', 'topup')
      union all select client_id, (created_at BD from calls where client_id is not null
    ) x"""


def test_engagement_equals_brute_force(api: Api, world: World) -> None:
    body = get(api, "/metrics/engagement", world.admin)
    active = [(r["user_id"], r["d"]) for r in rows(api, ACTIVE_DAYS)]
    at = {u for u, d in active if d == T}
    week = {u for u, d in active if T - dt.timedelta(days=6) <= d <= T}
    month = {u for u, d in active if T - dt.timedelta(days=29) <= d <= T}
    assert (body["dau"], body["wau"], body["mau"]) == (len(at), len(week), len(month))
    days = (F + dt.timedelta(days=i) for i in range((T - F).days + 1))
    daily = {d: len({u for u, x in active if x == d}) for d in days}
    assert {dt.date.fromisoformat(r["day"]): r["dau"] for r in body["daily_active"]} == daily
    first: dict[Any, dt.date] = {}
    for u, d in active:
        first[u] = min(first.get(u, d), d)

    def monday(d: dt.date) -> dt.date:
        return d - dt.timedelta(days=d.weekday())

    cohorts: dict[dt.date, dict[int, set[Any]]] = {}
    for u, d in active:
        c = monday(first[u])
        if monday(F) <= c <= T and d <= T:
            cohorts.setdefault(c, {}).setdefault((monday(d) - c).days // 7, set()).add(u)
    expected = [{"cohort_week": c.isoformat(), "users": len(w[0]),
                 "retention": [rate(len(w.get(k, ())), len(w[0])) for k in range((monday(T) - c).days // 7 + 1)]}
                for c, w in sorted(cohorts.items())]
    assert body["cohorts"] == expected and len(expected) >= 4
    signups = one(api, "select count(*) as n from profiles where (created_at BD between %(f)s and %(t)s")
    logins = one(api, "select count(*) as n from app_auth.sessions where (created_at BD between %(f)s and %(t)s")
    assert (body["signups"], body["logins"]) == (signups["n"], logins["n"])
    # nothing emits notification or listen events yet: their figures are null, with the reason
    assert body["notification_ctr"] is None and body["listen_through"] is None
    assert set(body["notes"]) == {"notification_ctr", "listen_through"}


# ---- operations --------------------------------------------------------------------------

OPERATIONS = """
    with acks as (select incident_id, min(at) as at from incident_events where kind = 'acked' group by 1)
    select (select count(*) from incidents where (created_at BD between %(f)s and %(t)s) as incidents_opened,
           (select round(avg(floor(extract(epoch from a.at - i.created_at))))::int from acks a
              join incidents i on i.id = a.incident_id where (a.at BD between %(f)s and %(t)s) as mtta_s,
           (select round(avg(s))::int from (
              select floor(extract(epoch from mitigated_at - created_at)) as s from incidents
               where (mitigated_at BD between %(f)s and %(t)s
              union all
              select floor(extract(epoch from resolved_at - created_at)) from incidents
               where mitigated_at is null and (resolved_at BD between %(f)s and %(t)s) x) as mttr_s,
           (select round(avg(floor(extract(epoch from resolved_at - created_at))))::int from incidents
             where (resolved_at BD between %(f)s and %(t)s) as time_to_resolve_s"""


def test_operations_equal_brute_force(api: Api, world: World) -> None:
    body = get(api, "/metrics/operations", world.admin)
    b = one(api, OPERATIONS)
    assert {k: body[k] for k in b} == b and b["mttr_s"] is not None
    booked = one(api, "select count(*) as n from reader_capacity where kind = 'booking' "
                      "and status in ('confirmed', 'completed') and (lower(during) BD between %(f)s and %(t)s")
    assert (body["bookings"], body["double_booked"], body["double_booking_rate"]) == (booked["n"], 0, 0.0)
    assert body["active_overlaps"] == 0


# ---- reports -----------------------------------------------------------------------------

def test_payments_funnel_equals_brute_force_and_downloads(api: Api, world: World) -> None:
    body = get(api, "/metrics/reports/payments-funnel", world.admin)
    b = rows(api, """
        select provider,
               count(*) filter (where (created_at BD between %(f)s and %(t)s) as chosen,
               count(*) filter (where status = 'succeeded' and (updated_at BD between %(f)s and %(t)s) as succeeded,
               count(*) filter (where status in ('failed', 'cancelled') and (updated_at BD between %(f)s and %(t)s)
                 as failed,
               (select count(*) from payment_transactions r join payment_transactions c on c.id = r.parent_id
                 where r.kind = 'refund' and c.provider = t.provider and (r.updated_at BD between %(f)s and %(t)s)
                 as refunded
          from payment_transactions t where kind = 'charge' group by provider""")
    got = {m["method"]: {k: m[k] for k in ("chosen", "succeeded", "failed", "refunded")} for m in body["methods"]}
    assert got == {r["provider"]: {k: r[k] for k in ("chosen", "succeeded", "failed", "refunded")} for r in b}
    held = one(api, "select count(*) as n from bookings where (created_at BD between %(f)s and %(t)s")
    assert body["checkouts"] == held["n"] and body["methods"][0]["action_required"] >= 0
    assert {m["method"]: m["action_required"] for m in body["methods"]}["bank_transfer"] > 0
    r = api.client.get("/metrics/reports/payments-funnel", params={**RANGE, "format": "csv"}, headers=world.admin.h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert table[0]["method"] == "all" and int(table[0]["chosen"]) == body["total"]["chosen"]
    assert {t["method"]: int(t["succeeded"]) for t in table[1:]} == {m: v["succeeded"] for m, v in got.items()}


Ranges = list[tuple[dt.datetime, dt.datetime]]


def available_minutes(rules: list[tuple[int, dt.time, dt.time, str]], week: dt.date, blocks: Ranges,
                      opens: Ranges) -> int:
    """The brute force of availability: every quarter hour of the Beirut week (rules and exceptions
    here are on quarter hours), is the reader's local wall clock inside a rule, or an open
    exception, and outside every block?"""
    step = dt.timedelta(minutes=15)
    m = dt.datetime.combine(week, dt.time(0), ZoneInfo("Asia/Beirut")).astimezone(dt.UTC)
    end = dt.datetime.combine(week + dt.timedelta(days=7), dt.time(0), ZoneInfo("Asia/Beirut")).astimezone(dt.UTC)
    free = 0
    while m < end:
        inside = any(a <= m < b for a, b in opens) or any(
            local.isoweekday() == weekday and start <= local.time() < stop
            for weekday, start, stop, zone in rules for local in (m.astimezone(ZoneInfo(zone)).replace(tzinfo=None),))
        if inside and not any(a <= m < b for a, b in blocks):
            free += 15
        m += step
    return free


def test_reader_utilisation_is_dst_correct_and_equals_brute_force(api: Api, world: World) -> None:
    zone_of = {r.id: z for r, z in zip(world.readers, ZONES, strict=True)}
    body = get(api, "/metrics/reports/reader-utilisation", world.admin, **{"from": "2026-10-19", "to": "2026-11-01"})
    weeks = {dt.date(2026, 10, 19), dt.date(2026, 10, 26)}
    got = {(r["reader_id"], dt.date.fromisoformat(r["week"])): r for r in body["rows"]}
    assert {w for _, w in got} == weeks and {r for r, _ in got} == set(zone_of)
    exceptions = rows(api, "select reader_id::text, lower(during) as a, upper(during) as b, kind "
                           "from availability_exceptions")
    for (reader, week), row in got.items():
        rules = [(r["weekday"], r["start_time"], r["end_time"], r["tz"]) for r in rows(
            api, "select weekday, start_time, end_time, tz from availability_rules where reader_id = %(x)s",
            {"x": reader})]
        blocks = [(e["a"], e["b"]) for e in exceptions if e["reader_id"] == reader and e["kind"] == "block"]
        opens = [(e["a"], e["b"]) for e in exceptions if e["reader_id"] == reader and e["kind"] == "open"]
        assert row["available_minutes"] == available_minutes(rules, week, blocks, opens), (reader, week)
        lo = dt.datetime.combine(week, dt.time(0), ZoneInfo("Asia/Beirut"))
        booked = one(api, "select coalesce(sum(extract(epoch from least(ends_at, %(hi)s) "
                          "- greatest(starts_at, %(lo)s)) / 60), 0)::int as m from bookings where reader_id = %(x)s "
                          "and status in ('confirmed', 'completed') and starts_at < %(hi)s and ends_at > %(lo)s",
                     {"x": reader, "lo": lo, "hi": lo + dt.timedelta(days=7)})
        assert row["booked_minutes"] == booked["m"]
        assert row["utilisation"] == rate(row["booked_minutes"], row["available_minutes"])
    # 40 weekday hours and Sunday 00:00-03:00 on the reader's clock: 3 hours, or 4 on the night the
    # clock goes back at 02:00 (London on 25 October, New York on 1 November); Dubai and UTC keep 3
    minutes = {(i, w): got[(world.readers[i].id, w)]["available_minutes"] for i in range(1, 5) for w in weeks}
    oct19, oct26 = sorted(weeks)
    assert minutes == {(1, oct19): 2640, (1, oct26): 2580, (2, oct19): 2580, (2, oct26): 2640,
                       (3, oct19): 2580, (3, oct26): 2580, (4, oct19): 2580, (4, oct26): 2580}
    r = api.client.get("/metrics/reports/reader-utilisation", params={"from": "2026-10-19", "to": "2026-11-01",
                                                                      "format": "csv"}, headers=world.admin.h)
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == len(body["rows"]) and set(table[0]) == {"reader_id", "week", "available_minutes",
                                                                  "booked_minutes", "utilisation"}


# ---- the nightly job ---------------------------------------------------------------------

def snapshot(api: Api) -> list[tuple[Any, ...]]:
    return api.sql("select 'e', ctid::text, xmin::text, to_jsonb(m)::text from metrics_daily_events m "
                   "union all select 'u', ctid::text, xmin::text, to_jsonb(u)::text from metrics_daily_users u "
                   "order by 1, 2")


def test_running_the_nightly_job_again_changes_nothing(api: Api, world: World) -> None:
    before = snapshot(api)
    # forget how far it got, so that it recomputes every day of the month again
    api.sql("update app_private.analytics_rollup_state set rolled_through = null")
    run_jobs(api.settings, api_dsns(api), "analytics_rollup")
    assert api.sql("select rolled_through >= %s from app_private.analytics_rollup_state", (T,)) == [(True,)]
    assert snapshot(api) == before   # not a row rewritten: the same tuples, written by the same transactions
    assert len(before) > 5000


def api_dsns(api: Api) -> Any:
    from samia import db

    return db.Dsns(owner=api.owner_dsn, app=db.as_user(api.owner_dsn, "authenticator"))


def test_a_late_event_recomputes_its_day(api: Api, world: World) -> None:
    day = dt.date(2026, 10, 20)
    quiet = api.sql("select id::text from profiles p where email like 'gen-client-%%' and not exists ("
                    "select 1 from metrics_daily_users u where u.user_id = p.id and u.day = %s) limit 1", (day,))[0][0]
    before = get(api, "/metrics/engagement", world.admin, **{"from": day.isoformat(), "to": day.isoformat()})
    # a login reported late: its day ended weeks ago
    api.sql("insert into app_auth.sessions (user_id, created_at) values (%s, '2026-10-20 09:00+03')", (quiet,))
    assert api.sql("select count(*) from app_private.analytics_dirty_days where day = %s", (day,)) == [(1,)]
    run_jobs(api.settings, api_dsns(api), "analytics_rollup")
    after = get(api, "/metrics/engagement", world.admin, **{"from": day.isoformat(), "to": day.isoformat()})
    assert (after["dau"], after["logins"]) == (before["dau"] + 1, before["logins"] + 1)
    assert api.sql("select count(*) from app_private.analytics_dirty_days") == [(0,)]
    test_engagement_equals_brute_force(api, world)   # still equal to the base tables


# ---- scoping -----------------------------------------------------------------------------

def test_a_reader_sees_only_their_own_figures(api: Api, world: World) -> None:
    me, other = world.readers[0], world.readers[1]
    mine = get(api, "/metrics/fulfillment", me)
    assert mine["reader_id"] == me.id
    assert _sorted_services({k: mine[k] for k in brute_fulfillment(api, me.id)}) == \
        _sorted_services(brute_fulfillment(api, me.id))
    assert get(api, "/metrics/fulfillment", me, reader_id=me.id) == mine
    for path in ("/metrics/fulfillment", "/metrics/calls", "/metrics/content", "/metrics/overview",
                 "/metrics/reports/reader-utilisation"):
        r = api.client.get(path, params={"reader_id": other.id}, headers=me.h)
        assert r.status_code == 404, (path, r.text)
    # SQL under their claims: their own roll-up rows, nobody else's, and no raw events
    assert api.sql_as(me.id, "select count(*) from metrics_daily_events where reader_id = %s", (me.id,))[0][0] > 0
    assert api.sql_as(me.id, "select count(*) from metrics_daily_events where reader_id is distinct from %s",
                      (me.id,)) == [(0,)]
    assert api.sql_as(me.id, "select count(*) from metrics_daily_events where reader_id = %s", (other.id,)) == [(0,)]
    assert api.sql_as(me.id, "select count(*) from events_raw") == [(0,)]
    assert api.sql_as(me.id, "select count(*) from app.reader_utilisation(%s, %s, %s)", (F, T, other.id)) == [(0,)]
    for path in ("/metrics/payments", "/metrics/engagement", "/metrics/operations", "/metrics/reports/payments-funnel"):
        assert api.client.get(path, headers=me.h).status_code == 403, path


def test_monitors_see_moderation_figures_and_clients_nothing(api: Api, world: World) -> None:
    for path in ("/metrics/payments", "/metrics/fulfillment", "/metrics/engagement", "/metrics/operations"):
        assert api.client.get(path, headers=world.monitor.h).status_code == 403, path
    assert get(api, "/metrics/calls", world.monitor)["created"] == get(api, "/metrics/calls", world.admin)["created"]
    overview = get(api, "/metrics/overview", world.monitor, date="2026-10-20")
    assert overview["payments"] is None and overview["fulfillment"] is None and overview["content"]["decisions"] > 0
    assert api.sql_as(world.monitor.id, "select count(*) from metrics_daily_events where type like 'payment.%%'") \
        == [(0,)]
    for path in ("/metrics/overview", "/metrics/content", "/metrics/calls", "/personalization/metrics"):
        assert api.client.get(path, headers=world.client.h).status_code == 403, path
    assert api.sql_as(world.client.id, "select count(*) from metrics_daily_events") == [(0,)]


def test_the_overview_of_one_day_agrees_with_the_sections(api: Api, world: World) -> None:
    day = {"from": "2026-10-26", "to": "2026-10-26"}
    o = get(api, "/metrics/overview", world.admin, date="2026-10-26")
    assert o["from"] == o["to"] == "2026-10-26"
    for section in ("payments", "calls", "content", "engagement", "operations"):
        full = get(api, f"/metrics/{section}", world.admin, **day)
        assert o[section] == {k: full[k] for k in o[section]}, section
    full = get(api, "/metrics/fulfillment", world.admin, **day)
    f = o["fulfillment"]
    assert {k: f[k] for k in ("orders_created", "orders_delivered", "approval_rate", "refund_rate")} == \
        {k: full[k] for k in ("orders_created", "orders_delivered", "approval_rate", "refund_rate")}
    assert f["clock_breaches"] == full["clock_breaches"]["delivery"]
    whole = one(api, "select percentile_disc(0.5) within group (order by floor(extract(epoch from delivered_at "
                     "- created_at))) as p50 from orders where (delivered_at BD = %(d)s", {"d": dt.date(2026, 10, 26)})
    assert f["delivery_p50_s"] == whole["p50"] and f["orders_delivered"] > 0


def test_zz_no_email_phone_or_name_of_any_user_in_events(api: Api, world: World) -> None:
    """Last in this module: everything above wrote events (generator, API calls, late events)."""
    assert api.sql("select count(*) from events_raw")[0][0] > 20000
    assert api.sql("select count(*) from profiles where phone is not null")[0][0] >= 80
    assert pii_findings(api.owner_dsn) == []
