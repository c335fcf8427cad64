"""The staff landing page, /staff: the few numbers the signed-in role acts on (a reader's open
work, golden and late orders; a monitor's approval queue and its oldest item's age, ringing
sirens and open cases), each a link to the page where it is worked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from samia.calls import service as calls
from samia.core.access import STAFF, Ctx, allow
from samia.moderation import service as moderation
from samia.orders import service as orders
from samia.readings import service as readings
from samia.web.render import render
from samia.web.session import pages

router = pages("floor")
# the landing shows internal work: what the reader and staff may read of it (internal drafts)
HOME_PROBE = readings.DRAFTS_PROBE


def _stat(value: Any, label: str, href: str, alert: bool = False) -> dict[str, Any]:
    return {"value": value, "label": label, "href": href, "alert": alert}


def _age(since: dt.datetime | None) -> str:
    if since is None:
        return "—"
    minutes = max(0, int((dt.datetime.now(dt.UTC) - since).total_seconds() // 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


async def _reader(ctx: Ctx) -> list[dict[str, Any]]:
    work = await orders.reader_queue(ctx)
    late = sum(1 for o in work if o["delivery_overdue"])
    return [_stat(len(work), "floor.stat.open", "/staff/queue"),
            _stat(sum(1 for o in work if o["is_gold"]), "floor.stat.gold", "/staff/queue"),
            _stat(late, "floor.stat.late", "/staff/queue", alert=late > 0),
            _stat(sum(1 for o in work if o["status"] == "rejected"), "floor.stat.returned", "/staff/queue")]


async def _monitor(ctx: Ctx) -> list[dict[str, Any]]:
    review = await orders.review_queue(ctx, limit=500)
    oldest = min((o["submitted_at"] for o in review if o["submitted_at"]), default=None)
    sirens = await calls.open_emergencies(ctx.conn)
    cases = await moderation.list_cases(ctx.conn, limit=200)
    return [_stat(len(review), "floor.stat.review", "/staff/review"),
            _stat(_age(oldest), "floor.stat.oldest", "/staff/review", alert=any(o["review_overdue"] for o in review)),
            _stat(len(sirens), "floor.stat.sirens", "/staff/emergency", alert=bool(sirens)),
            _stat(len(cases), "floor.stat.cases", "/staff/cases")]


@router.get("/staff", response_class=HTMLResponse)
async def home(request: Request, ctx: Ctx = allow("reader", *STAFF, cookie=True, probe=HOME_PROBE)) -> Response:
    stats = await (_reader(ctx) if ctx.role == "reader" else _monitor(ctx))
    return render(request, "floor/home.html", role=ctx.role, stats=stats, links=[])
