"""The catalogue and the marketplace: services with their prices per country, the reader
directory, reviews and favourites. Plain functions taking the request's connection first;
every rule they rely on is in schema/05_catalogue.sql."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.config import Settings
from samia.core.access import Probe
from samia.core.problems import invalid, not_found
from samia.media.store import signed_url

# what changing the catalogue rests on (API and admin console)
ADMIN_PROBE = Probe("update services set price_minor = price_minor where code = 'tarot'")
# what leaving a review and keeping favourites rest on (the API and the pages declare them)
LEAVE_REVIEW_PROBE = Probe("select app.leave_review(:order_delivered, null, 5, 'probe')")
FAVOURITE_PROBE = Probe("insert into favourites (client_id, reader_id) values (auth.uid(), :reader)")

# Active services at the prices of a country: the one asked for, else the signed-in caller's
# (app.service_price), else none: the base price.
SERVICES = """
    select s.code, s.kind, s.name as name_en, s.name_ar, s.description_en, s.description_ar, s.is_premium,
           p.price_minor, p.per_minute_minor, s.currency, s.duration_minutes, s.gold_surcharge_minor,
           s.pre_ritual_en, s.pre_ritual_ar
      from services s
      cross join lateral app.service_price(s.id, %(country)s) p
     where s.is_active and (%(code)s::text is null or s.code = %(code)s)
     order by s.id"""


async def list_services(conn: AsyncConnection, country: str | None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(SERVICES, {"country": country, "code": None})
    return await cur.fetchall()


async def get_service(conn: AsyncConnection, code: str, country: str | None) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(SERVICES, {"country": country, "code": code})
    row = await cur.fetchone()
    if row is None:
        raise not_found("service")
    return row


ADMIN_FIELDS = {"price_minor": "price_minor", "currency": "currency", "is_active": "is_active",
                "per_minute_minor": "per_minute_minor", "gold_surcharge_minor": "gold_surcharge_minor",
                "duration_minutes": "duration_minutes", "name_en": "name", "name_ar": "name_ar",
                "description_en": "description_en", "description_ar": "description_ar",
                "pre_ritual_en": "pre_ritual_en", "pre_ritual_ar": "pre_ritual_ar", "is_premium": "is_premium"}


async def admin_service(conn: AsyncConnection, code: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        select s.code, s.kind, s.name as name_en, s.name_ar, s.description_en, s.description_ar, s.is_premium,
               s.is_active, s.price_minor, s.per_minute_minor, s.currency, s.duration_minutes,
               s.gold_surcharge_minor, s.pre_ritual_en, s.pre_ritual_ar,
               coalesce((select jsonb_object_agg(p.country_code, jsonb_build_object(
                                 'price_minor', p.price_minor, 'per_minute_minor', p.per_minute_minor))
                           from service_prices p where p.service_id = s.id), '{}'::jsonb) as country_prices
          from services s where s.code = %s""", (code,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("service")
    return row


async def admin_services(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = await conn.execute("select code from services order by id")
    return [await admin_service(conn, code) for (code,) in await cur.fetchall()]


async def update_service(conn: AsyncConnection, code: str, changes: dict[str, Any],
                         country_prices: dict[str, dict[str, int | None]] | None) -> dict[str, Any]:
    """Set a service's fields and, when given, replace its per-country prices (audited by
    trigger, both). RLS admits admins only."""
    cur = await conn.execute("select id, currency::text, exists (select 1 from service_prices p "
                             "where p.service_id = s.id) from services s where code = %s for update", (code,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("service")
    service_id, currency, has_country_prices = row
    if changes.get("currency", currency) != currency and has_country_prices and country_prices is None:
        # country prices are amounts in the service's currency: a new currency needs new amounts
        raise invalid(["body", "country_prices"], "send the country prices in the new currency with it",
                      code="country_prices_required")
    if changes:
        sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(ADMIN_FIELDS[k]), sql.Placeholder(k))
                                  for k in changes)
        await conn.execute(sql.SQL("update services set {} where id = %(id)s").format(sets),
                           {**changes, "id": service_id})
    if country_prices is not None:
        await conn.execute("delete from service_prices where service_id = %s and not (country_code = any(%s))",
                           (service_id, list(country_prices)))
        for country, price in country_prices.items():
            await conn.execute(
                "insert into service_prices (service_id, country_code, price_minor, per_minute_minor) "
                "values (%s, %s, %s, %s) on conflict (service_id, country_code) do update "
                "set price_minor = excluded.price_minor, per_minute_minor = excluded.per_minute_minor "
                "where (service_prices.price_minor, service_prices.per_minute_minor) "
                "is distinct from (excluded.price_minor, excluded.per_minute_minor)",
                (service_id, country, price["price_minor"], price.get("per_minute_minor")))
    return await admin_service(conn, code)


# ---- the reader directory --------------------------------------------------------------

def _public_reader(settings: Settings, row: dict[str, Any]) -> dict[str, Any]:
    """The public fields only; the photo as a short-lived signed URL."""
    media, sha = row.pop("photo_media_id"), row.pop("photo_sha256")
    row["reader_id"] = str(row["reader_id"])
    row["photo_url"] = signed_url(settings, media, sha)[0] if media is not None and sha else None
    row["rating"] = float(row["rating"]) if row["rating"] is not None else None
    return row


DIRECTORY = """
    select * from app.reader_directory(%(reader)s, %(country)s) d
     where (%(service)s::text is null or d.services @> jsonb_build_array(jsonb_build_object('code', %(service)s::text)))
       and (%(online)s::boolean is null or d.online = %(online)s::boolean)
       and (%(language)s::text is null or %(language)s::text = any(d.languages))"""


async def list_readers(conn: AsyncConnection, settings: Settings, *, country: str | None, service: str | None,
                       online: bool | None, language: str | None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(DIRECTORY, {"reader": None, "country": country, "service": service, "online": online,
                                  "language": language})
    return [_public_reader(settings, r) for r in await cur.fetchall()]


async def get_reader(conn: AsyncConnection, settings: Settings, reader_id: str,
                     country: str | None) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(DIRECTORY, {"reader": reader_id, "country": country, "service": None, "online": None,
                                  "language": None})
    row = await cur.fetchone()
    if row is None:
        raise not_found("reader")
    reader = _public_reader(settings, row)
    reader["reviews_page"] = await reader_reviews(conn, reader_id, limit=20, before=None)
    return reader


async def reader_reviews(conn: AsyncConnection, reader_id: str, *, limit: int,
                         before: int | None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select * from app.reader_reviews(%s, %s, %s)", (reader_id, limit, before))
    return await cur.fetchall()


# what a reader's own profile rests on (the API and the reader's profile page)
READER_PROBE = Probe("insert into reader_profiles (reader_id, display_name) values (auth.uid(), 'Probe') "
                     "on conflict (reader_id) do update set display_name = excluded.display_name")


async def my_reader_profile(conn: AsyncConnection) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select reader_id::text, display_name, bio_en, bio_ar, specialties, languages, "
                      "photo_media_id, updated_at from reader_profiles where reader_id = auth.uid()")
    return await cur.fetchone()


async def save_reader_profile(conn: AsyncConnection, fields: dict[str, Any]) -> dict[str, Any]:
    await conn.execute("""
        insert into reader_profiles (reader_id, display_name, bio_en, bio_ar, specialties, languages)
        values (auth.uid(), %(display_name)s, %(bio_en)s, %(bio_ar)s, %(specialties)s, %(languages)s)
        on conflict (reader_id) do update set display_name = excluded.display_name, bio_en = excluded.bio_en,
               bio_ar = excluded.bio_ar, specialties = excluded.specialties, languages = excluded.languages""",
                       fields)
    await conn.execute("select app.audit('reader.profile_update', 'profile', auth.uid()::text, %s)",
                       (json.dumps({"fields": sorted(fields)}),))
    row = await my_reader_profile(conn)
    assert row is not None
    return row


async def set_reader_photo(conn: AsyncConnection, media_id: int) -> None:
    cur = await conn.execute("update reader_profiles set photo_media_id = %s where reader_id = auth.uid() "
                             "returning 1", (media_id,))
    if await cur.fetchone() is None:
        raise not_found("reader profile (save it before adding a photo)")


# ---- reviews and favourites ----------------------------------------------------------------


async def review(conn: AsyncConnection, review_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, reader_id::text, order_id, call_id, rating, body, status, reply, replied_at, "
                      "created_at from reviews where id = %s", (review_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("review")
    return row


async def leave_review(conn: AsyncConnection, *, order_id: int | None, call_id: int | None, rating: int,
                       body: str | None) -> dict[str, Any]:
    cur = await conn.execute("select (app.leave_review(%s, %s, %s, %s)).id", (order_id, call_id, rating, body))
    return await review(conn, (await cur.fetchone())[0])  # type: ignore[index]


async def reply_review(conn: AsyncConnection, review_id: int, reply: str) -> dict[str, Any]:
    await conn.execute("select app.reply_review(%s, %s)", (review_id, reply))
    return await review(conn, review_id)


async def decide_review(conn: AsyncConnection, review_id: int, action: str, reason: str, note: str | None,
                        case_id: int | None) -> dict[str, Any]:
    await conn.execute("select app.decide_review(%s, %s, %s, %s, %s)", (review_id, action, reason, note, case_id))
    return await review(conn, review_id)


async def review_of(conn: AsyncConnection, *, order_id: int | None = None,
                    call_id: int | None = None) -> dict[str, Any] | None:
    """The review of one order or call that the caller wrote or received (RLS), if any."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, reader_id::text, order_id, call_id, rating, body, status, reply, replied_at, "
                      "created_at from reviews where (order_id = %s or call_id = %s) "
                      "and (client_id = auth.uid() or reader_id = auth.uid()) limit 1", (order_id, call_id))
    return await cur.fetchone()


async def my_reviews(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The reviews the caller wrote (a client) or received (a reader), newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, reader_id::text, order_id, call_id, rating, body, status, reply, replied_at, "
                      "created_at from reviews where client_id = auth.uid() or reader_id = auth.uid() "
                      "order by id desc limit 200")
    return await cur.fetchall()


async def held_reviews(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, reader_id::text, order_id, call_id, rating, body, status, reply, replied_at, "
                      "created_at from reviews where status = 'held' order by id limit 200")
    return await cur.fetchall()


async def favourites(conn: AsyncConnection, settings: Settings) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select d.* from favourites f cross join lateral app.reader_directory(f.reader_id, null) d "
                      "where f.client_id = auth.uid() order by f.created_at desc")
    return [_public_reader(settings, r) for r in await cur.fetchall()]


async def is_favourite(conn: AsyncConnection, reader_id: str) -> bool:
    cur = await conn.execute("select exists (select 1 from favourites where client_id = auth.uid() "
                             "and reader_id = %s)", (reader_id,))
    return bool((await cur.fetchone())[0])  # type: ignore[index]


async def add_favourite(conn: AsyncConnection, reader_id: str) -> None:
    if not (await (await conn.execute("select app.listed_reader(%s)", (reader_id,))).fetchone())[0]:  # type: ignore[index]
        raise not_found("reader")
    await conn.execute("insert into favourites (client_id, reader_id) values (auth.uid(), %s) "
                       "on conflict do nothing", (reader_id,))


async def remove_favourite(conn: AsyncConnection, reader_id: str) -> None:
    await conn.execute("delete from favourites where client_id = auth.uid() and reader_id = %s", (reader_id,))
