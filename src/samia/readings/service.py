"""Tarot V2 readings: what the caller may see of a reading, and turning its cards in order."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Probe
from samia.core.problems import AppError, not_found

# what turning a card rests on (API and order page)
REVEAL_PROBE = Probe(
    "select app.reveal_card(:reading, 1)")

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
