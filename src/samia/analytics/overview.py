"""GET /metrics/overview: one day's headline figures of every section the caller may see, from
one pass over that day's roll-up (the sections' own routes give the detail)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from samia.analytics.catalogue import CATALOGUE
from samia.analytics.service import (
    ACTIVE,
    DOUBLE_BOOKING,
    Cells,
    Span,
    call_figures,
    cells,
    durations,
    fetch,
    frame,
    payment_figures,
    rate,
    stat,
)

SECTIONS = ("fulfillment", "payments", "calls", "content", "engagement", "operations")
TIMED = ["order.first_response", "order.delivered", "call.answered", "call.ended", "case.closed",
         "incident.acknowledged", "incident.mitigated", "incident.resolved"]

Durations = dict[tuple[str, str], dict[str, int]]


def fulfillment(c: Cells, d: Durations, span: Span) -> dict[str, Any]:
    created = None if span.reader else c.n("order.created")
    refunds = None if span.reader else c.n("payment.refunded", kind="order")
    approved, rejected = c.n("order.approved"), c.n("order.rejected")
    return {"orders_created": created, "orders_delivered": c.n("order.delivered"),
            "approval_rate": rate(approved, approved + rejected), "refund_rate": rate(refunds, created),
            "first_response_p50_s": stat(d.get(("order.first_response", "")), "p50"),
            "delivery_p50_s": stat(d.get(("order.delivered", "")), "p50"),
            "clock_breaches": c.n("order.clock_breached", code="delivery")}


def payments(c: Cells) -> dict[str, Any]:
    f = payment_figures(c)
    return {k: f[k] for k in ("attempts", "succeeded", "failed", "success_rate", "first_pass_success_rate",
                              "fallback_rate")}


def calls(c: Cells, d: Durations) -> dict[str, Any]:
    f = call_figures(c, d, "")
    return {k: f[k] for k in ("created", "answered", "answer_rate", "dropped", "drop_rate", "setup_p50_s")}


def content(c: Cells, d: Durations) -> dict[str, Any]:
    approve = c.n("moderation.decision", kind="order", code="approve")
    reject = c.n("moderation.decision", kind="order", code="reject")
    return {"decisions": c.n("moderation.decision"), "approval_rate": rate(approve, approve + reject),
            "cases_opened": c.n("case.opened"), "cases_closed": c.n("case.closed"),
            "resolution_p50_s": stat(d.get(("case.closed", "")), "p50")}


async def engagement(conn: AsyncConnection, c: Cells, span: Span) -> dict[str, Any]:
    active = (await fetch(conn, ACTIVE, span.params))[0]
    delivered = c.n("notification.delivered") or c.n("notification.sent")
    return {**{k: int(v) for k, v in active.items()}, "signups": c.n("user.signed_up"),
            "logins": c.n("user.logged_in"), "notification_ctr": rate(c.n("notification.clicked"), delivered),
            "listen_through": rate(c.n("horoscope.listen_finished"), c.n("horoscope.listen_started"))}


async def operations(conn: AsyncConnection, c: Cells, d: Durations, span: Span) -> dict[str, Any]:
    books = (await fetch(conn, DOUBLE_BOOKING, span.params))[0]
    ack, mitigated = d.get(("incident.acknowledged", "")), d.get(("incident.mitigated", ""))
    late = d.get(("incident.resolved", "unmitigated"))
    restored = [x for x in (mitigated, late) if x]
    n = sum(x["n"] for x in restored)
    return {"incidents_opened": c.n("incident.opened"), "mtta_s": round(ack["sum"] / ack["n"]) if ack else None,
            "mttr_s": round(sum(x["sum"] for x in restored) / n) if n else None,
            "double_booking_rate": rate(int(books["double_booked"]), int(books["bookings"])) or 0.0,
            "active_overlaps": int(books["active_overlaps"])}


async def overview(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Headlines per section; a section the caller may not see is null."""
    cur = await conn.execute("select d, app.metrics_visible(d) from unnest(%s::text[]) d", (list(SECTIONS),))
    visible = {k: bool(v) for k, v in await cur.fetchall()}
    c = await cells(conn, span, [t.code for t in CATALOGUE])
    d = await durations(conn, span, TIMED, group="headline")
    return {**await frame(conn, span),
            "fulfillment": fulfillment(c, d, span) if visible["fulfillment"] else None,
            "payments": payments(c) if visible["payments"] else None,
            "calls": calls(c, d) if visible["calls"] else None,
            "content": content(c, d) if visible["content"] else None,
            "engagement": await engagement(conn, c, span) if visible["engagement"] else None,
            "operations": await operations(conn, c, d, span) if visible["operations"] else None}
