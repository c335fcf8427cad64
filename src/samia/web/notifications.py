"""The notification settings page: which channels may bring news and offers (consent, per
channel), this browser's push subscription and the account's other devices, quiet hours in
the person's own time zone, and the last messages sent to them. Everything goes through
notifications.prefs, as the API's /me/notifications, /me/devices and /me/quiet-hours do."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from samia.core.access import AUTHENTICATED, Ctx, allow
from samia.core.problems import AppError
from samia.notifications import prefs
from samia.profiles.service import get_profile
from samia.providers.push import webpush_public_key
from samia.web.account import TIME, form_page, see_other
from samia.web.forms import LANG_SWITCH, Refusal, attempt, posted
from samia.web.render import lang_of, render, zone_of
from samia.web.session import pages

router = pages("web")
ZONES = sorted(zoneinfo.available_timezones() - {"Factory", "localtime"})
SHOWN = 20


async def _context(request: Request, ctx: Ctx) -> dict[str, Any]:
    info = await prefs.overview(ctx.conn, SHOWN, lang_of(request))
    try:
        push_key = webpush_public_key(ctx.platform.settings)
    except AppError:
        push_key = None  # Web Push is not configured here: the page says so instead of a button
    return {"profile": await get_profile(ctx.conn, ctx.user_id),  # type: ignore[arg-type]
            "info": info, "opted": {c["channel"]: c["opted_in"] for c in info["consents"]},
            "channels": prefs.CONSENT_CHANNELS, "zones": ZONES, "push_key": push_key,
            "saved": request.query_params.get("saved", "")}


def _quiet_form(info: dict[str, Any], request: Request) -> dict[str, str]:
    q = info["quiet_hours"]
    if q:
        return {"starts": q["starts"].strftime("%H:%M"), "ends": q["ends"].strftime("%H:%M"), "tz": q["tz"]}
    return {"starts": "22:00", "ends": "08:00", "tz": zone_of(request).key}


@router.get("/account/notifications", response_class=HTMLResponse)
async def notifications(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    context = await _context(request, ctx)
    return render(request, "notifications.html", role=ctx.role, form=_quiet_form(context["info"], request),
                  errors={}, **context)


@router.post("/account/notifications/channels", response_class=HTMLResponse)
async def channels(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    """The news-and-offers boxes: each channel whose answer changed is recorded (and audited)."""
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _again(request, ctx, form, None)
    opted = {c["channel"]: c["opted_in"] for c in await prefs.consents(ctx.conn)}
    for channel in prefs.CONSENT_CHANNELS:
        wanted = form.get(f"marketing_{channel}") == "on"
        if opted.get(channel, False) != wanted:
            await prefs.set_consent(ctx.conn, channel, wanted, "web")
    return see_other("/account/notifications?saved=channels")


@router.post("/account/notifications/quiet-hours", response_class=HTMLResponse)
async def quiet_hours(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _again(request, ctx, form, None)
    if form.get("clear"):
        await prefs.clear_quiet_hours(ctx.conn)
        return see_other("/account/notifications?saved=quiet")
    bad = {name: "invalid_time" for name in ("starts", "ends") if not TIME.match(form.get(name, ""))}
    if form.get("tz") not in ZONES:
        bad["tz"] = "zone_not_listed"
    if not bad and form["starts"] == form["ends"]:
        bad["ends"] = "same_time"
    if bad:
        return await _again(request, ctx, form, Refusal(next(iter(bad.values())), 422, bad))
    starts, ends = (dt.time.fromisoformat(form[n]) for n in ("starts", "ends"))
    _, refusal = await attempt(ctx.conn, lambda: prefs.set_quiet_hours(ctx.conn, starts, ends, form["tz"]))
    if refusal:
        return await _again(request, ctx, form, refusal)
    return see_other("/account/notifications?saved=quiet")


async def _again(request: Request, ctx: Ctx, form: dict[str, str], refusal: Refusal | None) -> Response:
    return form_page(request, "notifications.html", form, refusal, role=ctx.role, **await _context(request, ctx))


@router.post("/account/notifications/devices", response_class=HTMLResponse)
async def add_device(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    """This browser's push subscription (app.js posts PushSubscription.toJSON() here)."""
    form = await posted(request)
    try:
        subscription = json.loads(form.get("subscription", ""))
    except ValueError:
        raise AppError(422, "validation_error", "not a push subscription") from None
    address = prefs.device_address(ctx.platform.settings, "webpush", subscription, None)
    await prefs.register_device(ctx.conn, "webpush", address, (form.get("label") or "")[:100] or None)
    return see_other("/account/notifications?saved=device")


@router.post("/account/notifications/devices/{device_id}/remove", response_class=HTMLResponse)
async def remove_device(request: Request, device_id: int,
                        ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)) -> Response:
    if not 0 < device_id < 2**63 or not await prefs.remove_device(ctx.conn, device_id):
        raise AppError(404, "not_found", "no such device")
    return see_other("/account/notifications?saved=removed")
