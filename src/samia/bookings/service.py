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
from samia.core.problems import AppError, invalid, not_found

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


# ---- a reader's own weekly rules and exceptions (API and the reader's availability page) --------

RULES_PROBE = Probe("insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
                    "values (auth.uid(), 1, '09:00', '10:00', 'UTC')")
EXCEPTION_PROBE = Probe("insert into availability_exceptions (reader_id, during, kind) "
                        "values (auth.uid(), tstzrange(now(), now() + interval '1 hour'), 'block')")


async def list_rules(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The caller's weekly rules: local wall-clock times in their time zone."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select weekday, to_char(start_time, 'HH24:MI') as start, to_char(end_time, 'HH24:MI') as end,"
                      " tz from availability_rules where reader_id = auth.uid() order by weekday, start_time")
    return await cur.fetchall()


async def set_rules(conn: AsyncConnection, tz: str, rules: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """Replace the caller's weekly rules (ISO weekday, "HH:MM" start and end in `tz`)."""
    bad = [i for i, (_, start, end) in enumerate(rules) if end <= start]
    if bad:
        raise AppError(422, "validation_error", "a rule must end after it starts",
                       extra={"errors": [{"loc": ["body", "rules", i, "end"], "msg": "must be after start",
                                          "type": "value_error"} for i in bad]})
    await conn.execute("delete from availability_rules where reader_id = auth.uid()")
    async with conn.cursor() as batch:
        await batch.executemany(
            "insert into availability_rules (reader_id, weekday, start_time, end_time, tz) "
            "values (auth.uid(), %s, %s, %s, %s)", [(day, start, end, tz) for day, start, end in rules])
    await conn.execute("select app.audit('availability.set', 'profile', auth.uid()::text, %s)",
                       (f'{{"rules": {len(rules)}}}',))
    return await list_rules(conn)


async def add_exception(conn: AsyncConnection, starts_at: dt.datetime, ends_at: dt.datetime, kind: str,
                        note: str | None) -> dict[str, Any]:
    """A one-off change to the weekly rules: `block` (away) or `open` (extra hours)."""
    if ends_at <= starts_at:
        raise invalid(["body", "ends_at"], "ends_at must be after starts_at")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "insert into availability_exceptions (reader_id, during, kind, note) "
        "values (auth.uid(), tstzrange(%s, %s), %s, %s) "
        "returning id, lower(during) as starts_at, upper(during) as ends_at, kind",
        (starts_at, ends_at, kind, note))
    return await cur.fetchone()  # type: ignore[return-value]


async def list_exceptions(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The caller's exceptions that have not ended yet, soonest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, lower(during) as starts_at, upper(during) as ends_at, kind, note "
                      "from availability_exceptions where reader_id = auth.uid() and upper(during) > now() "
                      "order by lower(during) limit 50")
    return await cur.fetchall()
