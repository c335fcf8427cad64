"""The post-go-live reports of seeds 002: the payments funnel and reader utilisation, as rows
for the API and as CSV downloads."""

from __future__ import annotations

import csv
import io
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.analytics.service import PAYMENT_TYPES, Span, cells, frame, rate

FUNNEL_STAGES = ("chosen", "action_required", "succeeded", "failed", "refunded")


async def payments_funnel(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Per payment method, for charges (what clients pay bookings, orders and calls with):
    chosen (a charge started with the method) → action required of the payer (3-D Secure, a
    transfer or an invoice to pay) → succeeded / failed → refunded (refunds of charges made with
    the method). `checkouts`: slots held, the step before a method is chosen."""
    c = await cells(conn, span, [*PAYMENT_TYPES, "booking.held"])
    methods = sorted({r["provider"] for r in c.rows if r["provider"]})

    def stages(**match: Any) -> dict[str, Any]:
        charge = {"kind": "charge", **match}
        ok, bad = c.n("payment.succeeded", **charge), c.n("payment.failed", **charge)
        return {"chosen": c.n("payment.attempted", **charge),
                "action_required": c.n("payment.action_required", **charge),
                "succeeded": ok, "failed": bad, "refunded": c.n("payment.refunded", **match),
                "success_rate": rate(ok, ok + bad)}

    return {**await frame(conn, span), "checkouts": c.n("booking.held"), "stages": list(FUNNEL_STAGES),
            "total": stages(), "methods": [{"method": m, **stages(provider=m)} for m in methods]}


async def reader_utilisation(conn: AsyncConnection, span: Span) -> dict[str, Any]:
    """Booked minutes ÷ available minutes per reader and Beirut week (app.reader_utilisation:
    the reader's weekly rules in their own zone, DST-correct, plus and minus exceptions)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select reader_id::text, week, available_minutes, booked_minutes "
                      "from app.reader_utilisation(%s, %s, %s::uuid)", (span.start, span.end, span.reader))
    rows = [{**r, "utilisation": rate(r["booked_minutes"], r["available_minutes"])} for r in await cur.fetchall()]
    return {**await frame(conn, span), "weeks_start": "Monday 00:00 Asia/Beirut", "rows": rows}


def funnel_csv(report: dict[str, Any]) -> str:
    rows = [{"method": "all", **report["total"]}, *report["methods"]]
    return _csv(["method", *FUNNEL_STAGES, "success_rate"], rows)


def utilisation_csv(report: dict[str, Any]) -> str:
    return _csv(["reader_id", "week", "available_minutes", "booked_minutes", "utilisation"], report["rows"])


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in columns})
    return out.getvalue()
