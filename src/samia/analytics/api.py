"""Analytics and personalization routes: KPIs (`/metrics/<group>`, next to Prometheus's
`GET /metrics`), the reports (JSON or CSV), and the internal personalization service.

Every day is a business day in Asia/Beirut; `from`/`to` are inclusive (default: the seven days
ending yesterday). Figures come from the nightly roll-ups (`complete_through` says how far).
Row-level security scopes them: admins see everything, monitors the content and calls
figures, a reader their own (asking for another reader's answers 404)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from samia.analytics import models as m
from samia.analytics import overview, personalization, reports, service
from samia.analytics.catalogue import BEIRUT
from samia.analytics.service import Span
from samia.core.access import AUTHENTICATED, Ctx, Probe, allow
from samia.core.problems import invalid, not_found

router = APIRouter(tags=["analytics"])

ADMINS = ("admin", "superadmin")
MAX_DAYS = 366
# What each route needs from the database: the visibility rule its rows are filtered by.
SEES_OVERVIEW = Probe("select 1 where app.metrics_visible('overview')")
SEES_FULFILLMENT = Probe("select 1 where app.metrics_visible('fulfillment')")
SEES_PAYMENTS = Probe("select 1 where app.metrics_visible('payments')")
SEES_CALLS = Probe("select 1 where app.metrics_visible('calls')")
SEES_CONTENT = Probe("select 1 where app.metrics_visible('content')")
SEES_ENGAGEMENT = Probe("select 1 where app.metrics_visible('engagement')")
SEES_OPERATIONS = Probe("select 1 where app.metrics_visible('operations')")
UTILISATION = Probe("select 1 from app.reader_utilisation(current_date - 6, current_date, null) limit 1")

Day = Annotated[dt.date | None, Query(ge=dt.date(2020, 1, 1), le=dt.date(2100, 12, 31),
                                      description="a date in Asia/Beirut")]
From = Annotated[dt.date | None, Query(alias="from", ge=dt.date(2020, 1, 1), le=dt.date(2100, 12, 31),
                                       description="first day (Asia/Beirut), inclusive; default: `to` - 6")]
To = Annotated[dt.date | None, Query(alias="to", ge=dt.date(2020, 1, 1), le=dt.date(2100, 12, 31),
                                     description="last day (Asia/Beirut), inclusive; default: yesterday")]
ReaderQ = Annotated[uuid.UUID | None, Query(description="one reader's figures (a reader: only their own)")]
Format = Annotated[Literal["json", "csv"], Query(alias="format", description="csv: a download")]
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}}


def yesterday() -> dt.date:
    return dt.datetime.now(ZoneInfo(BEIRUT)).date() - dt.timedelta(days=1)


def span_of(ctx: Ctx, start: dt.date | None, end: dt.date | None, reader: uuid.UUID | None) -> Span:
    end = end or yesterday()
    start = start or end - dt.timedelta(days=6)
    if start > end:
        raise invalid(["query", "from"], "from must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise invalid(["query", "from"], f"at most {MAX_DAYS} days at a time")
    if ctx.role == "reader":  # a reader's figures are their own; another reader's do not exist for them
        if reader is not None and str(reader) != ctx.user_id:
            raise not_found("reader")
        return Span(start, end, ctx.user_id)
    return Span(start, end, str(reader) if reader else None)


@router.get("/metrics/overview", response_model=m.Overview)
async def metrics_overview(date: Day = None, reader_id: ReaderQ = None,
                           ctx: Ctx = allow("reader", "monitor", *ADMINS, probe=SEES_OVERVIEW)) -> Any:
    """One day's headline figures (default yesterday) of each section the caller may see (the
    rest null): fulfillment, payments, calls, content, engagement, operations. The sections'
    own routes give the detail over any range."""
    day = date or yesterday()
    return await overview.overview(ctx.conn, span_of(ctx, day, day, reader_id))


@router.get("/metrics/fulfillment", response_model=m.Fulfillment)
async def fulfillment(start: From = None, end: To = None, reader_id: ReaderQ = None,
                      ctx: Ctx = allow("reader", *ADMINS, probe=SEES_FULFILLMENT)) -> Any:
    """Time to first response and to delivery (p50/p90 per service, golden vs normal), approval
    rate, refund rate, clock breaches."""
    return await service.fulfillment(ctx.conn, span_of(ctx, start, end, reader_id))


@router.get("/metrics/payments", response_model=m.Payments)
async def payments(start: From = None, end: To = None,
                   ctx: Ctx = allow(*ADMINS, probe=SEES_PAYMENTS)) -> Any:
    """Success by provider and country, first-pass success, fallback rate."""
    return await service.payments(ctx.conn, span_of(ctx, start, end, None))


@router.get("/metrics/calls", response_model=m.Calls)
async def calls(start: From = None, end: To = None, reader_id: ReaderQ = None,
                ctx: Ctx = allow("reader", "monitor", *ADMINS, probe=SEES_CALLS)) -> Any:
    """Answer rate, drop rate, setup time and connected time, per call kind."""
    return await service.calls(ctx.conn, span_of(ctx, start, end, reader_id))


@router.get("/metrics/engagement", response_model=m.Engagement)
async def engagement(start: From = None, end: To = None,
                     ctx: Ctx = allow(*ADMINS, probe=SEES_ENGAGEMENT)) -> Any:
    """DAU/WAU/MAU, weekly retention cohorts, sign-ups, logins; notification CTR and horoscope
    listen-through (null until those events exist)."""
    return await service.engagement(ctx.conn, span_of(ctx, start, end, None))


@router.get("/metrics/content", response_model=m.Content)
async def content(start: From = None, end: To = None, reader_id: ReaderQ = None,
                  ctx: Ctx = allow("reader", "monitor", *ADMINS, probe=SEES_CONTENT)) -> Any:
    """Approval rate, reject reasons, moderation acts, case resolution time."""
    return await service.content(ctx.conn, span_of(ctx, start, end, reader_id))


@router.get("/metrics/operations", response_model=m.Operations)
async def operations(start: From = None, end: To = None,
                     ctx: Ctx = allow(*ADMINS, probe=SEES_OPERATIONS)) -> Any:
    """Incidents (MTTA, MTTR, time to resolve) and the double-booking rate (must read 0)."""
    return await service.operations(ctx.conn, span_of(ctx, start, end, None))


def _maybe_csv(body: dict[str, Any], fmt: str, render: Any, name: str) -> Any:
    if fmt == "csv":
        filename = f"{name}_{body['from']}_{body['to']}.csv"
        return Response(render(body), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return body


@router.get("/metrics/reports/payments-funnel", response_model=m.PaymentsFunnel, responses=CSV)
async def payments_funnel(start: From = None, end: To = None, fmt: Format = "json",
                          ctx: Ctx = allow(*ADMINS, probe=SEES_PAYMENTS)) -> Any:
    """Per method: chosen → action required → succeeded / failed → refunded (seeds 002)."""
    body = await reports.payments_funnel(ctx.conn, span_of(ctx, start, end, None))
    return _maybe_csv(body, fmt, reports.funnel_csv, "payments_funnel")


@router.get("/metrics/reports/reader-utilisation", response_model=m.ReaderUtilisation, responses=CSV)
async def reader_utilisation(start: From = None, end: To = None, reader_id: ReaderQ = None, fmt: Format = "json",
                             ctx: Ctx = allow("reader", *ADMINS, probe=UTILISATION)) -> Any:
    """Booked ÷ available minutes per reader and week (Monday 00:00 Asia/Beirut), DST-correct."""
    body = await reports.reader_utilisation(ctx.conn, span_of(ctx, start, end, reader_id))
    return _maybe_csv(body, fmt, reports.utilisation_csv, "reader_utilisation")


# ---- personalization (internal) ----------------------------------------------------------

@router.post("/personalization/recommend", response_model=m.Recommendation)
async def recommend(body: m.RecommendIn, ctx: Ctx = allow("monitor", *ADMINS, probe=Probe(
        "select * from app.record_recommendation(:other::uuid, 'services', 'web', 3)"))) -> dict[str, Any]:
    """A user's ranked content ids or notification candidates (staff and services). The
    decision is recorded with its confidence and rationale, which no route returns."""
    return await personalization.recommend(ctx.conn, user_id=str(body.user_id), kind=body.kind,
                                           device=body.device, limit=body.limit)


@router.get("/personalization/metrics", response_model=m.PersonalizationMetrics)
async def personalization_metrics(start: From = None, end: To = None, ctx: Ctx = allow(*ADMINS, probe=Probe(
        "select 1 from personalization_arms limit 1"))) -> Any:
    """The A/B arms per kind: decisions, users, conversions within 7 days, lift."""
    return await personalization.metrics(ctx.conn, span_of(ctx, start, end, None))


@router.get("/me/personalization", response_model=m.PersonalisedOut)
async def my_personalization(ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    return await personalization.opt_out_status(ctx.conn)


@router.put("/me/personalization", response_model=m.PersonalisedOut)
async def set_my_personalization(body: m.PersonalisedIn, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """Opt out of (false) or back into (true) personalised ordering."""
    return await personalization.set_personalised(ctx.conn, body.personalised)
