"""The admin console's deck art: one zip of a deck's 78 faces and its back, replacing the
deck's images all at once or not at all (flag uploads.deckBulk). readings.deck_art holds the
rules; the database switches the deck over in one statement."""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from samia.core.access import ADMIN_PROBE, ADMINS, Ctx, allow
from samia.readings import deck_art
from samia.web.admin_console import CONSOLE, act, console, done
from samia.web.forms import Refusal
from samia.web.session import pages

router = pages("web", "admin")
DECKS = f"{CONSOLE}/decks"


async def _page(request: Request, ctx: Ctx, refusal: Refusal | None = None) -> Response:
    return console(request, ctx, "decks.html", decks=await deck_art.decks(ctx), refusal=refusal)


@router.get(DECKS, response_class=HTMLResponse)
async def decks_page(request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)) -> Response:
    return await _page(request, ctx)


@router.post(f"{DECKS}/{{deck}}/art", response_class=HTMLResponse)
async def upload(deck: str, request: Request, ctx: Ctx = allow(*ADMINS, cookie=True, probe=ADMIN_PROBE)
                 ) -> Response:
    form = await request.form()
    file = form.get("zip")
    if not re.fullmatch(r"[a-z_]{2,40}", deck) or not isinstance(file, UploadFile):
        return await _page(request, ctx, Refusal("deck_zip_invalid", 422, {f"zip-{deck}": "deck_zip_invalid"}))
    data = await file.read()
    _, refusal = await act(ctx, lambda: deck_art.replace_deck_art(ctx, deck, data))
    if refusal:
        return await _page(request, ctx, Refusal(refusal.code, refusal.status, {f"zip-{deck}": refusal.code}))
    return done(DECKS, "deck")
