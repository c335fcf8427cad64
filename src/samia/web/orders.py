"""Ordering a reading (tarot with a spread, coffee cup with a photo, astrology with birth
data and a place from the offline gazetteer), my orders, and one order: its status
timeline, its cards turned one by one, and the approved audio."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile  # what request.form() yields (FastAPI's is a subclass)

from samia.catalogue import service as catalogue
from samia.core.access import AUTHENTICATED, Ctx, allow
from samia.core.models import Id
from samia.core.problems import AppError
from samia.media import service as media
from samia.orders import service as orders
from samia.orders.service import BirthIn
from samia.profiles.service import get_profile
from samia.readings import service as readings
from samia.web import gazetteer
from samia.web.cards import face
from samia.web.forms import LANG_SWITCH, Refusal, attempt, form_lang, posted, review_fields
from samia.web.render import Translator, render
from samia.web.session import pages

router = pages("web")
Kind = Literal["tarot", "coffee", "astro"]
# what a client sees of the workflow: received → with the reader → quality check → delivered
STEPS = ("received", "with_reader", "checking", "delivered")
STEP_OF = {"new": 0, "assigned": 1, "in_progress": 1, "rejected": 1, "awaiting_approval": 2, "approved": 2,
           "delivered": 3, "archived": 3}


@router.get("/my/orders", response_class=HTMLResponse)
async def my_orders(request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True)) -> Response:
    rows = await orders.list_orders(ctx, limit=50)
    services = {s["code"]: s for s in await catalogue.list_services(ctx.conn, None)}
    return render(request, "orders.html", role=ctx.role, orders=rows, services=services, step_of=STEP_OF)


@router.get("/my/orders/new", response_class=HTMLResponse)
async def choose(request: Request, ctx: Ctx = allow("client", cookie=True, probe=orders.PLACE_PROBE)) -> Response:
    services = [s for s in await catalogue.list_services(ctx.conn, None) if s["kind"] == "reading"]
    return render(request, "order_choose.html", role=ctx.role, services=services)


async def _form(request: Request, ctx: Ctx, kind: str, form: dict[str, str], refusal: Refusal | None = None
                ) -> Response:
    lang = form_lang(request, form)
    services = {s["code"]: s for s in await catalogue.list_services(ctx.conn, None)}
    if kind not in services:
        raise AppError(404, "not_found")
    spreads = await readings.list_spreads(ctx.conn) if kind == "tarot" else []
    place = gazetteer.get(int(form["place_id"])) if form.get("place_id", "").isdigit() else None
    found = gazetteer.search(form.get("place_q", ""), lang) if kind == "astro" and not place else []
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, "order_new.html", status=refusal.status if refusal else 200, lang=lang, role=ctx.role,
                  kind=kind, service=services[kind], spreads=spreads, form=form, errors=errors, place=place,
                  places=found)


@router.get("/my/orders/new/{kind}", response_class=HTMLResponse)
async def order_form(kind: Kind, request: Request, ctx: Ctx = allow("client", cookie=True, probe=orders.PLACE_PROBE)
                     ) -> Response:
    form = {"spread": "three_card"}
    if kind == "astro":  # the date of birth the account already has
        dob = (await get_profile(ctx.conn, ctx.user_id))["dob"]  # type: ignore[arg-type]
        form["birth_date"] = dob.isoformat() if dob else ""
    return await _form(request, ctx, kind, form)


@router.post("/my/orders/new/{kind}", response_class=HTMLResponse)
async def place(kind: Kind, request: Request, ctx: Ctx = allow("client", cookie=True, rate="orders",
                                                               probe=orders.PLACE_PROBE)) -> Response:
    form = await posted(request)
    if form.get(LANG_SWITCH) or form.get("search") is not None:
        return await _form(request, ctx, kind, form)   # a language switch or a place search: same form again
    birth, refusal = _birth(form) if kind == "astro" else (None, None)
    photo = (await request.form()).get("photo")
    if kind == "coffee" and not (isinstance(photo, UploadFile) and photo.filename):
        refusal = Refusal("photo_required", 422, {"photo": "photo_required"})
    if refusal:
        return await _form(request, ctx, kind, form, refusal)
    data = await photo.read() if isinstance(photo, UploadFile) else b""

    async def place_it() -> int:
        order = await orders.place_order(ctx, service=kind, question=form.get("question", "").strip() or None,
                                         spread=form.get("spread") or "three_card", birth=birth)
        if kind == "coffee":
            await orders.add_photo(ctx, order["id"], data)
        return int(order["id"])

    order_id, refusal = await attempt(ctx.conn, place_it)
    if refusal or order_id is None:
        return await _form(request, ctx, kind, form, refusal)
    return RedirectResponse(f"/my/orders/{order_id}", status_code=303)


def _birth(form: dict[str, str]) -> tuple[BirthIn | None, Refusal | None]:
    place = gazetteer.get(int(form["place_id"])) if form.get("place_id", "").isdigit() else None
    try:
        date = dt.date.fromisoformat(form.get("birth_date", ""))
    except ValueError:
        return None, Refusal("invalid_date", 422, {"birth_date": "invalid_date"})
    try:
        time = dt.time.fromisoformat(form["birth_time"]) if form.get("birth_time") else None
    except ValueError:
        return None, Refusal("invalid_time", 422, {"birth_time": "invalid_time"})
    if time and place is None:
        return None, Refusal("place_required", 422, {"place_q": "place_required"})
    try:
        return BirthIn(date=date, time=time, lat=place.lat if place else None, lon=place.lon if place else None,
                       tz=place.tz if place else None), None
    except ValidationError:
        return None, Refusal("invalid_date", 422, {"birth_date": "invalid_date"})


@router.get("/my/orders/{order_id}", response_class=HTMLResponse)
async def order_page(order_id: Id, request: Request, ctx: Ctx = allow(AUTHENTICATED, cookie=True, readonly=False)
                     ) -> Response:
    return await _order(request, ctx, order_id)


async def _order(request: Request, ctx: Ctx, order_id: int, refusal: Refusal | None = None,
                 form: dict[str, str] | None = None) -> Response:
    order = await orders.get_order(ctx, order_id)   # RLS: another client's order is a 404
    lang = form_lang(request, form or {})
    reading = await readings.get_reading(ctx.conn, order["reading_id"]) if order["reading_id"] else None
    if reading:
        for p in reading["positions"]:
            p["face"] = face(p["card"], lang) if p["card"] else None
    audio = None
    if order["audio_media_id"]:
        audio, _, _ = await media.issue_url(ctx.conn, ctx.platform.settings, ctx.role, order["audio_media_id"])
    services = {s["code"]: s for s in await catalogue.list_services(ctx.conn, None)}
    review = await catalogue.review_of(ctx.conn, order_id=order_id)
    errors = refusal.messages(Translator(lang)) if refusal else {}
    return render(request, "order.html", status=refusal.status if refusal else 200, lang=lang, role=ctx.role,
                  order=order, service=services.get(order["service"]), reading=reading, audio=audio, steps=STEPS,
                  step=STEP_OF.get(order["status"]), review=review, form=form or {}, errors=errors,
                  placed=request.query_params.get("placed"))


@router.post("/my/orders/{order_id}/reveal", response_class=HTMLResponse)
async def reveal(order_id: Id, request: Request, ctx: Ctx = allow("client", cookie=True, probe=readings.REVEAL_PROBE)
                 ) -> Response:
    """Turn a card. The database refuses a card out of order (400) and the page says so."""
    form = await posted(request)
    order = await orders.get_order(ctx, order_id)
    position = int(form["position"]) if form.get("position", "").isdigit() else 0
    refusal = None
    if order["reading_id"] and 1 <= position <= 15:
        _, refusal = await attempt(ctx.conn, lambda: readings.reveal(ctx.conn, order["reading_id"], position))
    if refusal:
        return await _order(request, ctx, order_id, refusal)
    return RedirectResponse(f"/my/orders/{order_id}#card-{position}", status_code=303)




@router.post("/my/orders/{order_id}/review", response_class=HTMLResponse)
async def review(order_id: Id, request: Request,
                 ctx: Ctx = allow("client", cookie=True, rate="reviews", probe=catalogue.LEAVE_REVIEW_PROBE)
                 ) -> Response:
    """Rate a delivered order of yours, once; flagged text waits for a monitor."""
    form = await posted(request)
    if form.get(LANG_SWITCH):
        return await _order(request, ctx, order_id, form=form)
    fields = review_fields(form)
    if isinstance(fields, Refusal):
        return await _order(request, ctx, order_id, fields, form)
    rating, text = fields
    _, refusal = await attempt(ctx.conn, lambda: catalogue.leave_review(ctx.conn, order_id=order_id, call_id=None,
                                                                         rating=rating, body=text))
    if refusal:
        return await _order(request, ctx, order_id, refusal, form)
    return RedirectResponse(f"/my/orders/{order_id}#review", status_code=303)
