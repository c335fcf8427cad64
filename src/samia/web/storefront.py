"""The storefront: home, the catalogue of services and readers, a reader's public profile,
a client's favourites; and the offline page, the PWA's manifest and service worker, and the
place search of the astrology form."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from samia.calls import service as calls
from samia.catalogue import service as catalogue
from samia.core.access import PUBLIC, Ctx, allow
from samia.horoscopes import service as horoscopes
from samia.web import gazetteer
from samia.web.forms import posted
from samia.web.headers import CSP
from samia.web.render import HERE, Translator, lang_of, render
from samia.web.session import pages

router = pages("web")
HOME_READERS = 6


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    """The services at the caller's prices, and the readers online now (the public directory)."""
    services = await catalogue.list_services(ctx.conn, None)
    online = await catalogue.list_readers(ctx.conn, ctx.platform.settings, country=None, service=None, online=True,
                                          language=None)
    emergency = ctx.role == "client" and await calls.emergency_enabled(ctx.conn)
    return render(request, "home.html", role=ctx.role, services=services, online=online[:HOME_READERS],
                  emergency=emergency, horoscope=await horoscope_teaser(ctx, lang_of(request)))


async def horoscope_teaser(ctx: Ctx, lang: str) -> dict[str, Any] | None:
    """Today's horoscope on the home page: the visitor's own sign (signed in, with a birth
    date), else just the way to all twelve; nothing unless today's (or, while today's is held
    back, the latest) are published, so nothing while feature.dailyZodiac is off."""
    rows = await horoscopes.published(ctx.conn, "daily", horoscopes.beirut_day(), exact=False)
    if not rows:
        return None
    sign = await horoscopes.own_sign(ctx.conn) if ctx.claims is not None else None
    mine = next((r for r in rows if r["zodiac"] == sign), None)
    if mine is None:
        return {"sign": None}
    return {"sign": sign, "text": mine["text_ar"] if lang == "ar" else mine["text_en"]}


@router.get("/catalogue", response_class=HTMLResponse)
async def catalogue_page(request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    services = await catalogue.list_services(ctx.conn, None)
    readers = await catalogue.list_readers(ctx.conn, ctx.platform.settings, country=None, service=None, online=None,
                                           language=None)
    return render(request, "catalogue.html", role=ctx.role, services=services, readers=readers)


@router.get("/catalogue/readers/{reader_id}", response_class=HTMLResponse)
async def reader_page(reader_id: uuid.UUID, request: Request, ctx: Ctx = allow(PUBLIC, cookie=True)) -> Response:
    """A reader's public profile: name, photo, bio, specialties, languages, services at the
    caller's prices, rating and the latest published reviews with the reader's replies."""
    found = await catalogue.get_reader(ctx.conn, ctx.platform.settings, str(reader_id), None)
    favourite = ctx.role == "client" and await catalogue.is_favourite(ctx.conn, str(reader_id))
    return render(request, "reader.html", role=ctx.role, reader=found, favourite=favourite)


@router.post("/catalogue/readers/{reader_id}/favourite", response_class=HTMLResponse)
async def favourite(reader_id: uuid.UUID, request: Request,
                    ctx: Ctx = allow("client", cookie=True, probe=catalogue.FAVOURITE_PROBE)) -> Response:
    """Keep a reader among your favourites, or stop (`on` = 1 / 0)."""
    form = await posted(request)
    if form.get("on") == "1":
        await catalogue.add_favourite(ctx.conn, str(reader_id))
    else:
        await catalogue.remove_favourite(ctx.conn, str(reader_id))
    back = "/my/favourites" if form.get("from") == "favourites" else f"/catalogue/readers/{reader_id}"
    return RedirectResponse(f"{back}#favourite", status_code=303)


@router.get("/my/favourites", response_class=HTMLResponse)
async def favourites(request: Request, ctx: Ctx = allow("client", cookie=True, probe=catalogue.FAVOURITE_PROBE)
                     ) -> Response:
    readers = await catalogue.favourites(ctx.conn, ctx.platform.settings)
    return render(request, "favourites.html", role=ctx.role, readers=readers)


@router.get("/offline", response_class=HTMLResponse)
async def offline(request: Request, ctx: Ctx = allow(PUBLIC, db=False)) -> Response:
    return render(request, "offline.html")


@router.get("/places", response_class=HTMLResponse)
async def places(request: Request, place_q: Annotated[str, Query(max_length=80)] = "",
                 ctx: Ctx = allow(PUBLIC, db=False)) -> Response:
    """Places matching `q` from the offline gazetteer, as the astrology form's choices."""
    return render(request, "partials/places.html", places=gazetteer.search(place_q, lang_of(request)), q=place_q,
                  chosen=None)


@router.get("/manifest.webmanifest")
async def manifest(request: Request, ctx: Ctx = allow(PUBLIC, db=False)) -> Response:
    t = Translator(lang_of(request))
    body = {
        "name": t("app.name"), "short_name": t("app.short_name"), "description": t("app.description"),
        "lang": t.lang, "dir": "rtl" if t.lang == "ar" else "ltr", "start_url": "/", "scope": "/",
        "display": "standalone", "background_color": "#0b0820", "theme_color": "#0b0820",
        "icons": [{"src": f"/static/icons/icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"}
                  for s in (192, 512)]
                 + [{"src": "/static/icons/maskable-512.png", "sizes": "512x512", "type": "image/png",
                     "purpose": "maskable"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache", "Vary": "Accept-Language, Cookie"})


@router.get("/sw.js")
async def service_worker(ctx: Ctx = allow(PUBLIC, db=False)) -> Response:
    """Served from the root so that it controls every page."""
    return Response((HERE / "static" / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/",
                             "Content-Security-Policy": CSP})  # a worker runs under its script's policy
