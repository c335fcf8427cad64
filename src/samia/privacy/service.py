"""Privacy and legal verbs for requests: legal documents (read, publish, accept), disclosures,
cookie and consent choices, and data-subject requests (file, list, decide, download links).
Plain async functions taking the request's connection first; the rules are in
schema/15_privacy.sql and run as the caller under RLS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import time
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from samia.config import Settings
from samia.core.problems import not_found

DSR_COLS = sql.SQL("""r.id, r.user_id::text, r.kind, r.status, r.note, r.created_at, r.due_at, r.decided_at,
  r.decision_reason, r.completed_at, r.failure, r.export_bytes, r.export_expires_at,
  (r.export_key is not null and r.export_deleted_at is null and r.export_expires_at > now()) as downloadable,
  (r.status in ('pending', 'approved', 'processing', 'failed') and r.due_at < now()) as overdue""")


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


# ---- data-subject requests --------------------------------------------------------------

async def file_request(conn: AsyncConnection, kind: str, note: str | None) -> dict[str, Any]:
    cur = await conn.execute("select app.dsr_file(%s, %s)", (kind, note))
    rid = (await cur.fetchone())[0]  # type: ignore[index]
    await conn.execute("select app.defer('send_outbox')")
    return await request(conn, rid)


async def request(conn: AsyncConnection, request_id: int) -> dict[str, Any]:
    return await _one(conn, sql.SQL("select {} from data_requests r where r.id = %s").format(DSR_COLS),
                      (request_id,), "data request")


async def my_requests(conn: AsyncConnection) -> list[dict[str, Any]]:
    return await _rows(conn, sql.SQL("select {} from data_requests r where r.user_id = auth.uid() "
                                     "order by r.id desc").format(DSR_COLS))


async def requests_queue(conn: AsyncConnection, status: str | None, kind: str | None) -> list[dict[str, Any]]:
    """Admins' queue: open ones first, nearest deadline first."""
    return await _rows(conn, sql.SQL("""
        select {} from data_requests r
         where (%(status)s::text is null or r.status = %(status)s) and (%(kind)s::text is null or r.kind = %(kind)s)
         order by (r.status in ('pending', 'approved', 'processing', 'failed')) desc, r.due_at, r.id
         limit 200""").format(DSR_COLS), {"status": status, "kind": kind})


async def decide_request(conn: AsyncConnection, request_id: int, decision: str, reason: str | None) -> dict[str, Any]:
    await conn.execute("select app.dsr_decide(%s, %s, %s)", (request_id, decision, reason))
    await conn.execute("select app.defer('send_outbox')")
    return await request(conn, request_id)


# ---- signed download links of exports ---------------------------------------------------

def _signature(settings: Settings, request_id: int, sha: str, exp: int) -> str:
    mac = hmac.new(settings.subkey("dsr-export-url-v1"), f"{request_id}:{sha}:{exp}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


async def export_link(conn: AsyncConnection, settings: Settings, request_id: int) -> dict[str, Any]:
    """A link valid for export_url_ttl_seconds (never past the export's own expiry), for the
    caller's own finished export; audited."""
    row = await _one(conn, """
        select r.export_sha256, r.export_expires_at, app.privacy_setting('export_url_ttl_seconds') as ttl
          from data_requests r
         where r.id = %s and r.user_id = auth.uid() and r.status = 'completed' and r.export_key is not null
           and r.export_deleted_at is null and r.export_expires_at > now()""", (request_id,), "export")
    exp = min(int(time.time()) + int(row["ttl"]), int(row["export_expires_at"].timestamp()))
    sig = _signature(settings, request_id, row["export_sha256"], exp)
    await conn.execute("select app.audit('dsr.export_link', 'data_request', %s, '{}'::jsonb)", (str(request_id),))
    return {"url": f"/privacy/exports/{request_id}?sha={row['export_sha256']}&exp={exp}&sig={sig}",
            "expires_at": dt.datetime.fromtimestamp(exp, dt.UTC), "sha256": row["export_sha256"]}


def link_valid(settings: Settings, request_id: int, sha: str, exp: int, sig: str) -> str | None:
    """None when the link is good, else the problem code."""
    if not hmac.compare_digest(sig.encode(), _signature(settings, request_id, sha, exp).encode()):
        return "invalid_signature"
    if exp < time.time():
        return "url_expired"
    return None


async def export_object(conn: AsyncConnection, request_id: int, sha: str) -> str:
    cur = await conn.execute("select app.dsr_export_object(%s, %s)", (request_id, sha))
    row = await cur.fetchone()
    if row is None or row[0] is None:
        raise not_found("export")
    return str(row[0])
