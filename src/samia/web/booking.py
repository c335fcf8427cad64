"""Booking a call: the free slots in the client's time zone, a hold with its countdown,
payment with a method offered in the client's country, consent (kept with the IP address),
the booking and call status; and the emergency call when its flag is on."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.bookings import service as bookings
from samia.calls import service as calls
from samia.catalogue import service as catalogue
from samia.core.access import AUTHENTICATED, Ctx, allow, client_ip
from samia.core.models import Id
from samia.payments import service as payments
from samia.web.forms import LANG_SWITCH, Refusal, attempt, form_lang, posted, review_fields
from samia.web.render import Translator, lang_of, render, zone_of
from samia.web.session import pages
from samia.web.wallet import TEST_CARDS

router = pages("web")
DAYS = 14
METHOD_ORDER = ("wallet", "card", "square", "bank_transfer", "usdt")


@router.get("/my/calls", response_class=HTMLResponse)
async def my_calls(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    rows = await bookings.list_bookings(ctx.conn, 50)
    services = {s["code"]: s for s in await catalogue.list_services(ctx.conn, None)}
    return render(request, "calls.html", role=ctx.role, bookings=rows, services=services)


@router.get("/my/calls/book", response_class=HTMLResponse)
async def book(request: Request, service: Annotated[str | None, Query(pattern=r"^[a-z_]{2,40}$")] = None,
               reader: uuid.UUID | None = None, day: dt.date | None = None,
               ctx: Ctx = allow("client", cookie=True, probe=bookings.HOLD_PROBE)) -> Response:
    return await _book(request, ctx, service, reader, day)


async def _book(request: Request, ctx: Ctx, service: str | None, reader: uuid.UUID | None, day: dt.date | None,
                refusal: Refusal | None = None) -> Response:
    lang = lang_of(request)
    zone = zone_of(request)
    offered = [s for s in await catalogue.list_services(ctx.conn, None) if s["kind"] == "call"]
    chosen = next((s for s in offered if s["code"] == service), offered[0] if offered else None)
    readers = await catalogue.list_readers(ctx.conn, ctx.platform.settings, country=None, service=chosen["code"],
                                           online=None, language=None) if chosen else []
    reader_id = str(reader) if reader and any(r["reader_id"] == str(reader) for r in readers) else (
        readers[0]["reader_id"] if readers else None)
    today = dt.datetime.now(zone).date()
    day = day if day and today <= day < today + dt.timedelta(days=DAYS) else today
    slots: list[dict[str, dt.datetime]] = []
    if chosen and reader_id:
        start = dt.datetime.combine(day, dt.time(0), zone)
        slots = await bookings.free_slots(ctx.conn, reader_id, chosen["code"], max(start, dt.datetime.now(dt.UTC)),
                                          start + dt.timedelta(days=1))
    emergency = await calls.emergency_enabled(ctx.conn)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, "book.html", status=refusal.status if refusal else 200, role=ctx.role, services=offered,
                  chosen=chosen, readers=readers, reader_id=reader_id, day=day,
                  days=[today + dt.timedelta(days=i) for i in range(DAYS)], slots=slots, emergency=emergency,
                  errors=errors)


@router.post("/my/calls/book", response_class=HTMLResponse)
async def hold(request: Request, ctx: Ctx = allow("client", cookie=True, probe=bookings.HOLD_PROBE)) -> Response:
    form = await posted(request)
    try:
        reader = uuid.UUID(form.get("reader", ""))
        starts_at = dt.datetime.fromisoformat(form.get("starts_at", ""))
    except ValueError:
        return await _book(request, ctx, form.get("service"), None, None, Refusal("validation_error", 422))
    if starts_at.tzinfo is None:
        starts_at = starts_at.replace(tzinfo=dt.UTC)
    booking_id, refusal = await attempt(ctx.conn, lambda: bookings.hold(ctx, reader, form.get("service", ""),
                                                                        starts_at))
    if refusal or booking_id is None:
        return await _book(request, ctx, form.get("service"), reader, starts_at.astimezone(zone_of(request)).date(),
                           refusal)
    return RedirectResponse(f"/my/calls/{booking_id}", status_code=303)


async def _booking(request: Request, ctx: Ctx, booking_id: int, form: dict[str, str] | None = None,
                   refusal: Refusal | None = None) -> Response:
    form = form or {}
    lang = form_lang(request, form)
    booking = await bookings.get_booking(ctx.conn, booking_id)  # RLS: someone else's is a 404
    _, offered = await payments.allowed_methods(ctx.conn)
    methods = sorted(offered, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER))
    services = {s["code"]: s for s in await catalogue.list_services(ctx.conn, None)}
    names = {r["reader_id"]: r["display_name"] for r in await catalogue.list_readers(
        ctx.conn, ctx.platform.settings, country=None, service=None, online=None, language=None)}
    wallet = await payments.wallet(ctx.conn)
    consent = await calls.consent_given(ctx.conn, booking_id)
    call = await calls.booking_call(ctx.conn, booking_id)
    completed = call is not None and call["status"] == "ended" and (call["connected_seconds"] or 0) > 0
    review = await catalogue.review_of(ctx.conn, call_id=call["id"]) if completed and call else None
    default_method = "wallet" if "wallet" in methods and wallet["balance_minor"] >= booking["price_minor"] else (
        methods[0] if methods else "")
    lapsed = booking["status"] == "held" and booking["hold_expires_at"] is not None and \
        booking["hold_expires_at"] <= dt.datetime.now(dt.UTC)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, "booking.html", status=refusal.status if refusal else 200, lang=lang, role=ctx.role,
                  booking=booking, service=services.get(booking["service"]), methods=methods, wallet=wallet,
                  reader_name=names.get(str(booking["reader_id"])), consent=consent, call=call, completed=completed,
                  review=review, lapsed=lapsed, form=form, errors=errors, default_method=default_method,
                  test_cards=TEST_CARDS if ctx.platform.settings.card_provider == "testcard" else ())


@router.get("/my/calls/{booking_id}", response_class=HTMLResponse)
async def booking_page(booking_id: Id, request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    return await _booking(request, ctx, booking_id, {"card_token": TEST_CARDS[0]})


@router.post("/my/calls/{booking_id}/pay", response_class=HTMLResponse)
async def pay(booking_id: Id, request: Request, ctx: Ctx = allow("client", cookie=True, probe=payments.PAY_PROBE)
              ) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _booking(request, ctx, booking_id, form)
    method = form.get("method", "")
    key = f"web-pay-{secrets.token_hex(12)}"
    outcome, refusal = await attempt(ctx.conn, lambda: payments.pay_booking(
        ctx, booking_id=booking_id, method=method, card_token=form.get("card_token") or None, key=key))
    if refusal is None and outcome is not None and outcome.outcome in ("insufficient_funds", "failed"):
        refusal = Refusal(outcome.outcome if outcome.outcome == "insufficient_funds" else "payment_failed", 402)
    if refusal is None and outcome is not None and outcome.payment_url:
        return RedirectResponse(outcome.payment_url, status_code=303)
    if refusal:
        return await _booking(request, ctx, booking_id, form, refusal)
    return RedirectResponse(f"/my/calls/{booking_id}", status_code=303)


@router.post("/my/calls/{booking_id}/consent", response_class=HTMLResponse)
async def consent(booking_id: Id, request: Request, ctx: Ctx = allow("client", cookie=True,
                                                                     probe=calls.CONSENT_PROBE)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _booking(request, ctx, booking_id, form)
    if form.get("consent") != "yes":
        return await _booking(request, ctx, booking_id, form, Refusal("consent_required", 422,
                                                                      {"consent": "consent_required"}))
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    _, refusal = await attempt(ctx.conn, lambda: calls.record_consent(
        ctx.conn, booking_id, ip=ip, user_agent=request.headers.get("user-agent"),
        recording=form.get("recording") == "yes"))
    if refusal:
        return await _booking(request, ctx, booking_id, form, refusal)
    return RedirectResponse(f"/my/calls/{booking_id}#call", status_code=303)


@router.post("/my/calls/{booking_id}/pre-ritual", response_class=HTMLResponse)
async def pre_ritual(booking_id: Id, request: Request,
                     ctx: Ctx = allow("client", cookie=True, probe=bookings.PRE_RITUAL_PROBE)) -> Response:
    """Confirm the preparation the service asks for (Healing Energy); the call cannot start
    before, and the reader sees when it was confirmed."""
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _booking(request, ctx, booking_id, form)
    if form.get("prepared") != "yes":
        return await _booking(request, ctx, booking_id, form, Refusal("pre_ritual_required", 422,
                                                                      {"prepared": "pre_ritual_required"}))
    _, refusal = await attempt(ctx.conn, lambda: bookings.confirm_pre_ritual(ctx.conn, booking_id))
    if refusal:
        return await _booking(request, ctx, booking_id, form, refusal)
    return RedirectResponse(f"/my/calls/{booking_id}#pre-ritual", status_code=303)


@router.post("/my/calls/{booking_id}/review", response_class=HTMLResponse)
async def review(booking_id: Id, request: Request,
                 ctx: Ctx = allow("client", cookie=True, rate="reviews", probe=catalogue.LEAVE_REVIEW_PROBE)
                 ) -> Response:
    """Rate the completed call of a booking of yours, once."""
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _booking(request, ctx, booking_id, form)
    fields = review_fields(form)
    if isinstance(fields, Refusal):
        return await _booking(request, ctx, booking_id, form, fields)
    rating, text = fields
    call = await calls.booking_call(ctx.conn, booking_id)
    if call is None:
        return await _booking(request, ctx, booking_id, form, Refusal("not_found", 404))
    _, refusal = await attempt(ctx.conn, lambda: catalogue.leave_review(ctx.conn, order_id=None, call_id=call["id"],
                                                                         rating=rating, body=text))
    if refusal:
        return await _booking(request, ctx, booking_id, form, refusal)
    return RedirectResponse(f"/my/calls/{booking_id}#review", status_code=303)


@router.post("/my/emergency", response_class=HTMLResponse)
async def emergency(request: Request, ctx: Ctx = allow("client", cookie=True, probe=calls.EMERGENCY_PROBE)
                    ) -> Response:
    """The emergency call: rings every available reader now, then escalates to staff."""
    form = await posted(request)
    if form.get("consent") != "yes":
        return await _book(request, ctx, None, None, None, Refusal("consent_required", 422,
                                                                   {"emergency_consent": "consent_required"}))
    ip = client_ip(request, ctx.platform.settings.trust_proxy_headers)
    request_id, refusal = await attempt(ctx.conn, lambda: calls.raise_emergency(
        ctx.conn, ip=ip, user_agent=request.headers.get("user-agent"), note=None, recording=False))
    if refusal or request_id is None:
        return await _book(request, ctx, None, None, None, refusal)
    return RedirectResponse(f"/my/emergency/{request_id}", status_code=303)


@router.get("/my/emergency/{request_id}", response_class=HTMLResponse)
async def emergency_status(request_id: Id, request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)
                           ) -> Response:
    return render(request, "emergency.html", role=ctx.role, siren=await calls.fetch_emergency(ctx.conn, request_id))
