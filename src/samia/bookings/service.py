"""Bookings: free slots, provisional holds and the caller's bookings, shared by the API and
the web pages. The rules (free slots, the capacity ledger, holds) are SQL in schema/09_bookings.sql."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.core.access import Ctx, Probe
from samia.core.problems import not_found

# what a hold rests on (API and booking page)
HOLD_PROBE = Probe(
    "select app.hold_slot(:reader, (select id from services where code = 'tarot'), "
    "date_trunc('hour', now()) + interval '50 hours', interval '10 minutes')")

# what confirming a booking's pre-ritual rests on (API and booking page)
PRE_RITUAL_PROBE = Probe("select 1 from bookings where id = :booking and client_id = auth.uid()")

BOOKING_SQL = sql.SQL("""
    select b.id, b.client_id, b.reader_id, s.code as service, b.starts_at, b.ends_at, b.status, b.price_minor,
           b.currency::text, case when b.status = 'held' then c.expires_at end as hold_expires_at, b.created_at,
           s.pre_ritual_en is not null as pre_ritual, b.pre_ritual_confirmed_at
      from bookings b join services s on s.id = b.service_id join reader_capacity c on c.id = b.capacity_id""")


async def free_slots(conn: AsyncConnection, reader: uuid.UUID | str, service: str, start: dt.datetime,
                     end: dt.datetime) -> list[dict[str, dt.datetime]]:
    """Authoritative free slots, computed in the database (correct across DST changes)."""
    cur = await conn.execute(
        "select starts_at, ends_at from app.free_slots(%(reader)s, "
        "(select id from services where code = %(service)s and is_active), %(from)s, %(to)s)",
        {"reader": reader, "service": service, "from": start, "to": end})
    return [{"starts_at": s, "ends_at": e} for s, e in await cur.fetchall()]


async def hold(ctx: Ctx, reader: uuid.UUID | str, service: str, starts_at: dt.datetime) -> int:
    """A provisional hold on a slot for HOLD_TTL_SECONDS; of concurrent holds on one slot
    exactly one wins (the rest: 409 slot_taken). Returns the booking id."""
    try:
        cur = await ctx.conn.execute(
            "select (app.hold_slot(%(reader)s, (select id from services where code = %(service)s and is_active), "
            "%(starts)s, %(ttl)s)).id",
            {"reader": reader, "service": service, "starts": starts_at,
             "ttl": dt.timedelta(seconds=ctx.platform.settings.hold_ttl_seconds)})
    except psycopg.errors.ExclusionViolation:
        ctx.platform.metrics.holds.labels("slot_taken").inc()
        raise
    booking_id = int((await cur.fetchone())[0])  # type: ignore[index]
    ctx.platform.metrics.holds.labels("held").inc()
    return booking_id


async def list_bookings(conn: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    """The caller's bookings (as client or reader; staff see all), newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(BOOKING_SQL + sql.SQL(" order by b.starts_at desc limit %s"), (limit,))
    return await cur.fetchall()


async def get_booking(conn: AsyncConnection, booking_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(BOOKING_SQL + sql.SQL(" where b.id = %s"), (booking_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("booking")
    return row


async def confirm_pre_ritual(conn: AsyncConnection, booking_id: int) -> None:
    """The client confirms the preparation the service asks for (Healing Energy's pre-ritual);
    the call cannot start before (app.confirm_pre_ritual, schema/09_bookings.sql)."""
    await conn.execute("select app.confirm_pre_ritual(%s)", (booking_id,))
