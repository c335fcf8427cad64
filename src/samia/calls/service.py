"""What the call routes share: a call's row, its state machine's events (with the
call-setup metric) and dialling both parties through the voice provider. The state machine
itself is in the database (migration 024)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.rows import dict_row
from pydantic import BaseModel

from samia.core.access import Ctx, acting_as
from samia.core.problems import not_found
from samia.providers.voice import Leg, make_voice


class CallOut(BaseModel):
    id: int
    kind: str
    status: str
    booking_id: int | None
    client_id: str | None
    reader_id: str | None
    record: bool
    per_minute_minor: int
    currency: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str | None
    connected_seconds: int | None
    billed_minor: int | None
    created_at: dt.datetime


async def fetch_call(ctx: Ctx, call_id: int) -> dict[str, Any]:
    cur = ctx.conn.cursor(row_factory=dict_row)
    await cur.execute("select id, kind, status, booking_id, client_id::text, reader_id::text, record, "
                      "per_minute_minor, currency::text, started_at, ended_at, end_reason, connected_seconds, "
                      "billed_minor, created_at from calls where id = %s", (call_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("call")
    return row


async def provider_ref(ctx: Ctx, call_id: int) -> str | None:
    cur = await ctx.conn.execute("select provider_ref from calls where id = %s", (call_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def record_event(ctx: Ctx, call_id: int, event: str, at: dt.datetime | None, reason: str | None,
                       provider_event: str | None, ref: str | None = None) -> str:
    """Feed the call's state machine one event (applied once per provider event); returns the
    state it reached."""
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_event(%s, %s, coalesce(%s, now()), %s, %s, %s)",
                                     (call_id, event, at, reason, provider_event, ref))
        applied = str((await cur.fetchone())[0])  # type: ignore[index]
        if applied == "started":
            cur = await ctx.conn.execute("select app.call_setup_seconds(%s)", (call_id,))
            row = await cur.fetchone()
            if row and row[0] is not None and row[0] >= 0:
                ctx.platform.metrics.call_setup.observe(float(row[0]))
    return applied


async def _legs(ctx: Ctx, call_id: int) -> list[Leg]:
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_phones(%s)", (call_id,))
        phones = (await cur.fetchone())[0] or []  # type: ignore[index]
    return [Leg(p) for p in phones]


async def connect(ctx: Ctx, call_id: int) -> dict[str, Any]:
    """Dial both parties through the provider; the call rings."""
    voice = make_voice(ctx.platform.settings)
    legs = await _legs(ctx, call_id)
    if voice.name == "twilio":
        ref = await ctx.platform.guarded(ctx.conn, "twilio", lambda: voice.connect(call_id, legs))
    else:
        ref = await voice.connect(call_id, legs)
    await record_event(ctx, call_id, "ringing", None, None, None, ref)
    return await fetch_call(ctx, call_id)
