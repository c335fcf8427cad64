"""Privacy and legal verbs for requests: legal documents (read, publish, accept), disclosures,
and cookie and consent choices.
Plain async functions taking the request's connection first; the rules are in
schema/15_privacy.sql and run as the caller under RLS."""

from __future__ import annotations

import ipaddress
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.core.problems import not_found

Query = LiteralString | sql.Composed


async def _rows(conn: AsyncConnection, query: Query, params: Any = None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def _one(conn: AsyncConnection, query: Query, params: Any, what: str) -> dict[str, Any]:
    rows = await _rows(conn, query, params)
    if not rows:
        raise not_found(what)
    return rows[0]


# ---- legal documents -------------------------------------------------------------------

async def current_legal(conn: AsyncConnection, doc: str, lang: str) -> dict[str, Any]:
    """The newest version of a document in the caller's language (the other language's
    version number is the same: a version always carries both)."""
    return await _one(conn, """
        select d.code as doc, v.version, v.material, v.published_at, %(lang)s as lang,
               case when %(lang)s = 'ar' then d.title_ar else d.title_en end as title,
               case when %(lang)s = 'ar' then v.body_ar else v.body_en end as body,
               case when %(lang)s = 'ar' then v.summary_ar else v.summary_en end as summary
          from legal_documents d join legal_versions v on v.doc = d.code
         where d.code = %(doc)s order by v.version desc limit 1""", {"doc": doc, "lang": lang}, "document")


async def legal_status(conn: AsyncConnection) -> dict[str, Any]:
    """What the caller has accepted and what is outstanding (ordering, booking and paying wait for it)."""
    cur = await conn.execute("select app.legal_outstanding(auth.uid())")
    outstanding = list((await cur.fetchone())[0])  # type: ignore[index]
    accepted = await _rows(conn, """
        select v.doc, v.version, a.accepted_at from legal_acceptances a join legal_versions v on v.id = a.version_id
         where a.user_id = auth.uid() order by a.accepted_at, v.doc""")
    current = await _rows(conn, """select distinct on (doc) doc, version from legal_versions
                                    order by doc, version desc""")
    return {"outstanding": outstanding, "accepted": accepted, "current": current}


async def accept_legal(conn: AsyncConnection, doc: str, version: int, ip: str, agent: str | None) -> dict[str, Any]:
    try:
        address: str | None = str(ipaddress.ip_address(ip))
    except ValueError:  # no usable peer address (a test client, a unix socket): recorded as unknown
        address = None
    await conn.execute("select app.legal_accept(%s, %s, %s, %s)", (doc, version, address, agent))
    return await legal_status(conn)


async def publish_legal(conn: AsyncConnection, doc: str, *, material: bool, body_en: str, body_ar: str,
                        summary_en: str | None, summary_ar: str | None) -> dict[str, Any]:
    cur = await conn.execute("select app.legal_publish(%s, %s, %s, %s, %s, %s)",
                             (doc, material, body_en, body_ar, summary_en, summary_ar))
    vid = (await cur.fetchone())[0]  # type: ignore[index]
    return await _one(conn, "select id, doc, version, material, published_at from legal_versions where id = %s",
                      (vid,), "version")


async def disclosures(conn: AsyncConnection, country: str | None, lang: str) -> list[dict[str, Any]]:
    """Disclosures for everyone plus those of the country (the caller's own when not given)."""
    return await _rows(conn, """
        select d.code, d.country_code::text, case when %(lang)s = 'ar' then d.text_ar else d.text_en end as text
          from legal_disclosures d
         where d.country_code is null
            or d.country_code = coalesce(%(country)s, (select p.country_code from profiles p where p.id = auth.uid()))
         order by d.country_code nulls first, d.code""", {"country": country, "lang": lang})


# ---- cookie and consent choices ---------------------------------------------------------

async def consent_of(conn: AsyncConnection, visitor_id: str | None) -> dict[str, Any]:
    rows = await _rows(conn, "select analytics, marketing, decided_at from app.consent_for(auth.uid(), %s)",
                       (visitor_id,))
    choice = rows[0] if rows else {"analytics": False, "marketing": False, "decided_at": None}
    return {"necessary": True, **choice, "visitor_id": visitor_id}


async def record_consent(conn: AsyncConnection, visitor_id: str | None, *, analytics: bool,
                         marketing: bool) -> dict[str, Any]:
    await conn.execute("select app.record_consent(%s, %s, %s)", (visitor_id, analytics, marketing))
    return await consent_of(conn, visitor_id)
