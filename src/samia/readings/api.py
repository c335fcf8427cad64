"""Tarot V2 readings (the deck, spreads, in-order reveals) and the readers' assistant
drafts, which stay internal: no client-reachable route or policy returns them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, status
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from samia.core.access import AUTHENTICATED, PUBLIC, STAFF, Ctx, allow
from samia.core.models import Id, Input
from samia.core.problems import not_found
from samia.readings import service

router = APIRouter(tags=["readings"])


class Card(BaseModel):
    code: str
    name_en: str
    name_ar: str
    arcana: str | None
    suit: str | None
    meaning_en: str | None
    meaning_ar: str | None


class Position(BaseModel):
    card_position: int
    label_en: str
    label_ar: str
    revealed: bool
    is_reversed: bool | None = None
    card: Card | None = Field(None, description="null while face down (show the deck's back)")


class ReadingOut(BaseModel):
    id: int
    order_id: int
    spread: str
    deck: str
    back: Card
    positions: list[Position]


class RevealIn(Input):
    card_position: Annotated[int, Field(ge=1, le=15)]


class DraftOut(BaseModel):
    id: int
    order_id: int
    label: str
    provider: str
    body: str
    created_at: dt.datetime


@router.get("/readings/{reading_id}", response_model=ReadingOut)
async def get_reading(reading_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """A tarot reading. Clients see the cards they have revealed; the rest are face down."""
    return await service.get_reading(ctx.conn, reading_id)


@router.post("/readings/{reading_id}/reveals", response_model=ReadingOut)
async def reveal(reading_id: Id, body: RevealIn,
        ctx: Ctx = allow("client", probe=service.REVEAL_PROBE)) -> dict[str, Any]:
    """Turn one card. Cards are revealed in order: position n before n-1 answers 400."""
    await service.reveal(ctx.conn, reading_id, body.card_position)
    return await service.get_reading(ctx.conn, reading_id)


@router.get("/tarot/spreads")
async def spreads(ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    return await service.list_spreads(ctx.conn)


@router.get("/tarot/deck")
async def deck(ctx: Ctx = allow(PUBLIC)) -> list[dict[str, Any]]:
    """The deck's 78 face cards with their meanings in English and Arabic, and its back."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select code, is_back, arcana, suit, number, name_en, name_ar, upright_en, upright_ar, "
                      "reversed_en, reversed_ar from deck_cards where deck_code = 'rider_waite' order by id")
    return await cur.fetchall()


# ---- the readers' assistant (internal) ------------------------------------------------

@router.post("/reader/orders/{order_id}/assist/draft", status_code=status.HTTP_201_CREATED, response_model=DraftOut)
async def draft(order_id: Id, ctx: Ctx = allow("reader", rate="assist_draft", probe=service.DRAFT_PROBE)
                ) -> dict[str, Any]:
    """An internal draft for the assigned reader, labelled as an assistant draft not for
    client delivery; 10 per hour. Never shown to the client; the deliverable is your audio."""
    return await service.create_draft(ctx, order_id)


@router.get("/reader/orders/{order_id}/drafts", response_model=list[DraftOut])
async def drafts(order_id: Id, ctx: Ctx = allow("reader", *STAFF, probe=service.DRAFTS_PROBE)) -> list[dict[str, Any]]:
    return await service.list_drafts(ctx.conn, order_id)


@router.get("/readings/{reading_id}/draft", response_model=DraftOut)
async def reading_draft(reading_id: Id, ctx: Ctx = allow(AUTHENTICATED)) -> dict[str, Any]:
    """The latest assistant draft of a reading, for its reader and staff. Row-level
    security returns nothing to anyone else, so a client gets 404."""
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select d.id, d.order_id, d.label, d.provider, d.body, d.created_at from reading_drafts d "
                      "join tarot_v2_readings r on r.order_id = d.order_id where r.id = %s "
                      "order by d.id desc limit 1", (reading_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("draft")
    return row
