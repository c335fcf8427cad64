"""Profiles: the columns a profile shows (and their shape), and partial updates with
whitelisted fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from samia.core.problems import not_found

COLUMNS = sql.SQL("""p.id::text, p.email::text, p.phone, p.first_name, p.last_name, p.dob, p.zodiac,
  p.country, p.country_code::text, p.birth_place, p.birth_time::time(0)::text as birth_time,
  p.birth_lat::float8 as birth_lat, p.birth_lon::float8 as birth_lon, p.birth_tz, r.code as role,
  p.email_verified, p.phone_verified, p.is_test, p.locale, p.blocked_at, p.blocked_until,
  p.created_at, p.updated_at""")


class ProfileOut(BaseModel):
    id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    dob: dt.date | None
    zodiac: str | None
    country: str | None
    country_code: str | None
    birth_place: str | None
    birth_time: str | None = Field(description="local wall-clock time at the birth place (HH:MM:SS)")
    birth_lat: float | None
    birth_lon: float | None
    birth_tz: str | None
    role: str
    email_verified: bool
    phone_verified: bool
    is_test: bool
    locale: str
    blocked_at: dt.datetime | None = None
    blocked_until: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


async def get_profile(conn: AsyncConnection, user_id: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from profiles p join roles r on r.id = p.role_id "
                              "where p.id = %s and p.deleted_at is null").format(COLUMNS), (user_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("user")
    return row


async def update_profile(conn: AsyncConnection, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` (column → value, already validated; keys are whitelisted by the input
    models). Values travel as bind parameters. RLS decides whose row the caller may touch;
    a row they may not see answers 404."""
    if changes:
        sets = sql.SQL(", ").join(
            sql.SQL("role_id = (select id from roles where code = %(role)s)") if k == "role"
            else sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k))
            for k in changes)
        cur = await conn.execute(sql.SQL("update profiles set {} where id = %(user_id)s and deleted_at is null "
                                         "returning id").format(sets), {**changes, "user_id": user_id})
        if await cur.fetchone() is None:
            raise not_found("user")
    return await get_profile(conn, user_id)


async def list_countries(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(ISO code, English name) of every country, for the sign-up and profile forms."""
    cur = await conn.execute("select code::text, name from countries order by name")
    return [(r[0], r[1]) for r in await cur.fetchall()]
