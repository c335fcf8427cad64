"""The horoscopes as pages: today's twelve signs with their audio for everyone (the visitor's
own sign first when signed in), EN/AR; and the staff board of a day (monitors and admins):
each sign's state, final texts, the assistant's labelled drafts, the audio, what the guard
says, approve and reject. The same service functions and definer rules as the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.core.access import AUTHENTICATED, PUBLIC, STAFF, Ctx, Probe, allow
from samia.core.problems import invalid
from samia.horoscopes import service
from samia.media.store import signed_url
from samia.web.forms import attempt, posted
from samia.web.render import lang_of, render
from samia.web.session import pages

router = pages("web")
BOARD_PROBE = Probe("select 1 from horoscope_captions limit 1", "monitors and admins work the horoscope board")


@router.get("/horoscopes", response_class=HTMLResponse)
async def today(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    done = request.query_params.get("done", "")
    return await _today(request, ctx, done=done if done in ("on", "off") else "")


@router.post("/horoscopes/subscription", response_class=HTMLResponse)
async def daily_push(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    """Opt in to (or move, or stop) "your horoscope is ready": the API's own service functions."""
    form = await posted(request)
    if form.get("action") == "off":
        await service.unsubscribe(ctx.conn)
        return RedirectResponse("/horoscopes?done=off#daily", status_code=303)
    local_time = form.get("local_time", "").strip()[:5]
    if not service.LOCAL_TIME.match(local_time):
        return await _today(request, ctx, error="horoscopes.daily.error", status=422)
    await service.subscribe(ctx.conn, local_time)
    return RedirectResponse("/horoscopes?done=on#daily", status_code=303)


async def _today(request: Request, ctx: Ctx, *, done: str = "", error: str = "", status: int = 200) -> Response:
    rows = await service.published(ctx.conn, "daily", service.beirut_day(), exact=False)
    items = service.public_items(rows, None)
    mine = await service.own_sign(ctx.conn) if ctx.claims is not None else None
    items.sort(key=lambda i: i["sign"] != mine)  # stable: the rest keep the zodiac's order
    lang = lang_of(request)
    for i in items:
        i["text"] = i["text_ar"] if lang == "ar" else i["text_en"]
    daily = await service.subscription(ctx.conn) if ctx.claims is not None else None
    return render(request, "horoscopes/today.html", status=status, role=ctx.role, items=items, mine=mine,
                  day=rows[0]["ref_date"] if rows else None, signed=ctx.claims is not None, daily=daily,
                  done=done, error=error)


@router.post("/horoscopes/listened", status_code=204, response_class=Response)
async def listened(request: Request,
                   ctx: Ctx = allow(PUBLIC, cookie=True, readonly=False, rate="horoscope_listen")) -> Response:
    """The page's players report started/finished (static/app.js, with the page's CSRF token):
    the API's listen event, but read with the session cookie, so a signed-in visitor's event
    is linked to them exactly as far as their analytics consent allows (app.analytics_emit)."""
    form = await posted(request)
    scope, sign, event = form.get("scope", "daily"), form.get("sign", ""), form.get("event", "")
    try:
        day = dt.date.fromisoformat(form.get("date", ""))
        seconds = int(form["seconds"]) if form.get("seconds") else None
    except ValueError as exc:
        raise invalid(["body", "date"], "not a date or a number of seconds") from exc
    if scope not in ("daily", "monthly") or sign not in service.SIGNS or event not in ("started", "finished") \
            or not (seconds is None or 0 <= seconds <= 3600):
        raise invalid(["body"], "not a listen event")
    await ctx.conn.execute("select app.horoscope_listen(%s, %s, %s, %s, %s)", (scope, day, sign, event, seconds))
    return Response(status_code=204)


def _day_of(request: Request) -> dt.date:
    try:
        return dt.date.fromisoformat(request.query_params.get("day", ""))
    except ValueError:
        return service.beirut_day() + dt.timedelta(days=1)


async def _board(request: Request, ctx: Ctx, day: dt.date, done: str = "", error: str = "") -> Response:
    signs = await service.staff_day(ctx.conn, "daily", day)
    for s in signs:  # the file as it is now (approval pins it), through a short-lived signed URL
        s["audio"] = (signed_url(ctx.platform.settings, s["audio_media_id"], s["media_sha256"])[0]
                      if s["audio_media_id"] and s["media_sha256"] else None)
    return render(request, "horoscopes/board.html", role=ctx.role, signs=signs, day=day, done=done, error=error,
                  prev=day - dt.timedelta(days=1), next=day + dt.timedelta(days=1))


@router.get("/staff/horoscopes", response_class=HTMLResponse)
async def board(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=BOARD_PROBE)) -> Response:
    return await _board(request, ctx, _day_of(request), done=request.query_params.get("done", ""))


@router.post("/staff/horoscopes", response_class=HTMLResponse)
async def decide(request: Request, ctx: Ctx = allow(*STAFF, cookie=True, probe=BOARD_PROBE)) -> Response:
    """Approve or reject one sign (the same definer functions as the API); back to the board."""
    form = await posted(request)
    day = _day_of(request)
    try:
        hid = int(form.get("horoscope", ""))
    except ValueError:
        return await _board(request, ctx, day, error="horoscopes.error.missing")
    action = form.get("action")
    reason = form.get("reason", "").strip()
    if action == "reject" and len(reason) < 3:
        return await _board(request, ctx, day, error="horoscopes.error.reason")

    async def act() -> Any:
        if action == "approve":
            return await ctx.conn.execute("select app.horoscope_approve(%s)", (hid,))
        return await ctx.conn.execute("select app.horoscope_reject(%s, %s)", (hid, reason[:2000]))

    _, refusal = await attempt(ctx.conn, act)
    if refusal is not None:
        return await _board(request, ctx, day, error="horoscopes.error.refused")
    return RedirectResponse(f"/staff/horoscopes?day={day}&done={'approved' if action == 'approve' else 'rejected'}",
                            status_code=303)
