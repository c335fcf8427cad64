"""The catalogue as the pages read it today: active services and which readers offer them.

Interim and deliberately small: the storefront issue's catalogue API (`GET /services`,
`GET /readers[/{id}]`, EN/AR names, reader profiles) replaces these reads when it lands.
Services carry one name today; an Arabic name or a description is read from `meta` when an
admin has set it (`name_ar`, `description_en`, `description_ar`)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


async def list_services(conn: AsyncConnection, lang: str) -> list[dict[str, Any]]:
    """Active services, readings first, with price (minor units + currency), duration and
    per-minute rate, in `lang` where the row has it."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select code, kind, is_premium, price_minor, currency::text, duration_minutes, per_minute_minor,
               case when %(lang)s = 'ar' then coalesce(meta->>'name_ar', name) else name end as name,
               meta->>('description_' || %(lang)s) as description
          from services where is_active order by kind desc, id""", {"lang": lang})
    return await cur.fetchall()


async def readers_online(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Readers available now and not on a call, with the call services they offer (signed-in
    callers only: the availability table is not public)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select s.reader_id::text as id,
               array(select sv.code from reader_services rs join services sv on sv.id = rs.service_id
                      where rs.reader_id = s.reader_id and rs.active and sv.is_active order by sv.id) as services
          from reader_status s where s.available and not app.on_live_call(s.reader_id) order by s.updated_at""")
    return await cur.fetchall()


async def readers_offering(conn: AsyncConnection, service: str) -> list[dict[str, Any]]:
    """Readers who offer `service`, with whether they are available now (signed-in callers)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select rs.reader_id::text as id,
               coalesce((select st.available from reader_status st where st.reader_id = rs.reader_id), false)
                 as online
          from reader_services rs join services sv on sv.id = rs.service_id
         where sv.code = %s and rs.active and sv.is_active order by rs.reader_id""", (service,))
    return await cur.fetchall()


async def reader(conn: AsyncConnection, reader_id: str) -> dict[str, Any] | None:
    """What a signed-in caller may see of one reader today: the services they offer (with
    prices) and whether they are online. None when they offer nothing."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select rs.reader_id::text as id,
               coalesce((select st.available from reader_status st where st.reader_id = rs.reader_id), false)
                 as online,
               array_agg(sv.code order by sv.id) as services
          from reader_services rs join services sv on sv.id = rs.service_id
         where rs.reader_id = %s and rs.active and sv.is_active group by rs.reader_id""", (reader_id,))
    return await cur.fetchone()
