"""The reader's availability: the online/offline switch (refused inside an approved instant
window, with the reason shown), the weekly rules in the reader's time zone, one-off exceptions,
and requests for instant windows. The same feature functions as the API's routes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.bookings import service as bookings
from samia.calls import service as calls
from samia.core.access import Ctx, allow
from samia.web.forms import Refusal, attempt, posted
from samia.web.render import Translator, lang_of, render, zone_of
from samia.web.session import pages

router = pages("floor")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
DAYS = range(1, 8)


def _zone(request: Request, rules: list[dict[str, Any]]) -> str:
    return str(rules[0]["tz"]) if rules else zone_of(request).key


async def _page(request: Request, ctx: Ctx, refusal: Refusal | None = None, form: dict[str, str] | None = None
                ) -> Response:
    rules = await bookings.list_rules(ctx.conn)
    week = {d: next((r for r in rules if r["weekday"] == d), None) for d in DAYS}
    return render(request, "floor/availability.html", status=refusal.status if refusal else 200, role=ctx.role,
                  status_now=await calls.my_status(ctx.conn), week=week, tz=_zone(request, rules),
                  exceptions=await bookings.list_exceptions(ctx.conn), windows=await calls.my_windows(ctx.conn),
                  errors=refusal.messages(Translator(lang_of(request))) if refusal else {}, form=form or {},
                  refused=refusal.code if refusal else None, done=request.query_params.get("done"))


@router.get("/staff/availability", response_class=HTMLResponse)
async def availability(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=bookings.RULES_PROBE)
                       ) -> Response:
    return await _page(request, ctx)


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/staff/availability?done={what}", status_code=303)


@router.post("/staff/availability/status", response_class=HTMLResponse)
async def switch(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=calls.ANSWER_PROBE)) -> Response:
    form = await posted(request)
    available = form.get("available") == "yes"
    _, refusal = await attempt(ctx.conn, lambda: calls.set_status(ctx, available))
    if refusal:
        return await _page(request, ctx, refusal)
    return _done("online" if available else "offline")


@router.post("/staff/availability/rules", response_class=HTMLResponse)
async def rules(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=bookings.RULES_PROBE)) -> Response:
    """One range a day; a day left empty is a day off."""
    form = await posted(request)
    fields: dict[str, str] = {}
    try:
        ZoneInfo(form.get("tz", ""))
    except (ZoneInfoNotFoundError, ValueError):
        fields["tz"] = "invalid_zone"
    week: list[tuple[int, str, str]] = []
    for d in DAYS:
        start, end = form.get(f"start-{d}", "").strip(), form.get(f"end-{d}", "").strip()
        if not start and not end:
            continue
        if not (HHMM.match(start) and HHMM.match(end)) or end <= start:
            fields[f"start-{d}"] = "invalid_range"
            continue
        week.append((d, start, end))
    if fields:
        return await _page(request, ctx, Refusal("invalid_range", 422, fields), form)
    _, refusal = await attempt(ctx.conn, lambda: bookings.set_rules(ctx.conn, form["tz"], week))
    return await _page(request, ctx, refusal, form) if refusal else _done("rules")


def _local(text: str, zone: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        return None


@router.post("/staff/availability/exceptions", response_class=HTMLResponse)
async def exception(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=bookings.EXCEPTION_PROBE)
                    ) -> Response:
    form = await posted(request)
    zone = _zone(request, await bookings.list_rules(ctx.conn))
    starts, ends = _local(form.get("ex_start", ""), zone), _local(form.get("ex_end", ""), zone)
    kind = form.get("kind", "")
    if starts is None or ends is None or ends <= starts or kind not in ("block", "open"):
        return await _page(request, ctx, Refusal("invalid_range", 422, {"ex_start": "invalid_range"}), form)
    note = form.get("note", "").strip()[:200] or None
    _, refusal = await attempt(ctx.conn, lambda: bookings.add_exception(ctx.conn, starts, ends, kind, note))
    return await _page(request, ctx, refusal, form) if refusal else _done("exception")


@router.post("/staff/availability/windows", response_class=HTMLResponse)
async def window(request: Request, ctx: Ctx = allow("reader", cookie=True, probe=calls.WINDOW_REQUEST_PROBE)
                 ) -> Response:
    form = await posted(request)
    zone = _zone(request, await bookings.list_rules(ctx.conn))
    starts, ends = _local(form.get("w_start", ""), zone), _local(form.get("w_end", ""), zone)
    if starts is None or ends is None or not dt.timedelta(0) < ends - starts <= dt.timedelta(hours=12):
        return await _page(request, ctx, Refusal("invalid_window", 422, {"w_start": "invalid_window"}), form)
    _, refusal = await attempt(ctx.conn, lambda: calls.request_window(ctx.conn, starts, ends))
    return await _page(request, ctx, refusal, form) if refusal else _done("window")
