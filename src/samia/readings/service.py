"""Tarot V2 readings: what the caller may see of a reading, and turning its cards in order."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Ctx, Probe
from samia.core.problems import AppError, not_found
from samia.providers.ai import LABEL, make_drafter

# what turning a card rests on (API and order page)
REVEAL_PROBE = Probe(
    "select app.reveal_card(:reading, 1)")

# the assistant's drafts: writing one (the reader) and reading them (the reader and staff)
DRAFT_PROBE = Probe("insert into reading_drafts (order_id, author_id, provider, body) "
                    "values (:order_wip, auth.uid(), 'local', 'probe')")
DRAFTS_PROBE = Probe("select 1 from reading_drafts where order_id = :order_wip")

CARD_FIELDS = ("code", "name_en", "name_ar", "arcana", "suit", "meaning_en", "meaning_ar")

async def get_reading(conn: AsyncConnection, reading_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select r.id, r.order_id, r.spread_code as spread, r.deck_code as deck, t.positions "
                      "from tarot_v2_readings r join tarot_spreads t on t.code = r.spread_code where r.id = %s",
                      (reading_id,))
    reading = await cur.fetchone()
    if reading is None:
        raise not_found("reading")
    # RLS: the client gets only the cards already revealed; the reader and staff all
    await cur.execute("select s.card_position, s.is_reversed, s.revealed_at, d.code, d.name_en, d.name_ar, d.arcana, "
                      "d.suit, case when s.is_reversed then d.reversed_en else d.upright_en end as meaning_en, "
                      "case when s.is_reversed then d.reversed_ar else d.upright_ar end as meaning_ar "
                      "from tarot_v2_card_selections s join deck_cards d on d.id = s.card_id "
                      "where s.reading_id = %s", (reading_id,))
    seen = {row["card_position"]: row for row in await cur.fetchall()}
    await cur.execute("select code, name_en, name_ar, arcana, suit, null as meaning_en, null as meaning_ar "
                      "from deck_cards where deck_code = %s and is_back order by id limit 1", (reading["deck"],))
    back = await cur.fetchone()
    positions = []
    for i, label in enumerate(reading.pop("positions"), start=1):
        row = seen.get(i)
        positions.append({
            "card_position": i, "label_en": label["en"], "label_ar": label["ar"],
            "revealed": bool(row and row["revealed_at"]),
            "is_reversed": row["is_reversed"] if row else None,
            "card": {k: row[k] for k in CARD_FIELDS} if row else None})
    return {**reading, "back": back, "positions": positions}


async def reveal(conn: AsyncConnection, reading_id: int, position: int) -> None:
    """Turn one card of the caller's own reading. Cards turn in order: position n before
    n-1 answers 400 `reveal_out_of_order`; a turned card answers 409."""
    cur = await conn.execute(
        "select exists (select 1 from tarot_v2_readings r join orders o on o.id = r.order_id "
        "where r.id = %s and o.user_id = auth.uid())", (reading_id,))
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        raise not_found("reading")
    cur = await conn.execute("select count(*) from tarot_v2_card_selections where reading_id = %s "
                                 "and revealed_at is not null", (reading_id,))
    shown = (await cur.fetchone())[0]  # type: ignore[index]
    if position <= shown:
        raise AppError(409, "already_revealed", f"card {position} is already revealed")
    if position > shown + 1:
        raise AppError(400, "reveal_out_of_order", f"reveal card {shown + 1} first",
                       extra={"next_position": shown + 1})
    await conn.execute("select app.reveal_card(%s, %s)", (reading_id, position))
    await conn.execute("select app.audit('reading.revealed', 'reading', %s, %s)",
                           (str(reading_id), json.dumps({"position": position})))


async def list_spreads(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The tarot spreads with their positions' labels in English and Arabic, smallest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select code, name_en, name_ar, positions from tarot_spreads "
                      "order by jsonb_array_length(positions)")
    return await cur.fetchall()


# ---- the readers' assistant (internal) ------------------------------------------------

async def _brief(ctx: Ctx, order_id: int) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select s.code as service, o.question_text as question, o.chart from orders o "
                      "join services s on s.id = o.service_id where o.id = %s and o.assigned_reader = auth.uid()",
                      (order_id,))
    brief = await cur.fetchone()
    if brief is None:
        raise not_found("order")
    await cur.execute("select s.card_position, s.is_reversed, d.name_en, d.upright_en, d.reversed_en, "
                      "t.positions -> (s.card_position - 1) ->> 'en' as position_en "
                      "from tarot_v2_readings r join tarot_v2_card_selections s on s.reading_id = r.id "
                      "join deck_cards d on d.id = s.card_id join tarot_spreads t on t.code = r.spread_code "
                      "where r.order_id = %s order by s.card_position", (order_id,))
    brief["cards"] = await cur.fetchall()
    return brief


async def create_draft(ctx: Ctx, order_id: int) -> dict[str, Any]:
    """An internal draft for the order's assigned reader, labelled providers.ai.LABEL (an assistant draft, not for
    client delivery). Never shown to the client; the deliverable is the reader's audio."""
    brief = await _brief(ctx, order_id)
    drafter = make_drafter(ctx.platform.settings)
    if drafter.name == "local":
        text = await drafter.draft(brief)
    else:
        text = await ctx.platform.guarded(ctx.conn, "ai", lambda: drafter.draft(brief))
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("insert into reading_drafts (order_id, author_id, provider, body) "
                      "values (%s, auth.uid(), %s, %s) returning id, order_id, label, provider, body, created_at",
                      (order_id, drafter.name, text))
    row = await cur.fetchone()
    assert row is not None
    assert row["label"] == LABEL
    await ctx.conn.execute("select app.audit('reading.draft_created', 'order', %s, %s)",
                           (str(order_id), json.dumps({"draft": row["id"], "provider": drafter.name})))
    return row


async def list_drafts(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    """The order's assistant drafts, newest first (RLS: its reader and staff only)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, order_id, label, provider, body, created_at from reading_drafts "
                      "where order_id = %s order by id desc limit 50", (order_id,))
    return await cur.fetchall()
