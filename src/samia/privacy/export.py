"""A person's data export, built AS THAT PERSON: the job's transaction switches to
`authenticated` with their claims (as the request prelude does) and reads under RLS, so the ZIP
can hold nothing the person could not read themselves. Each table is further limited to the
rows they own or are party to (staff see more under RLS than is theirs), and in orders a reader
worked on, the client's own words and birth data are left out. The ZIP: manifest.json, one JSON
file per table (each row as PostgreSQL's to_jsonb renders it), their files under media/ and the
readings delivered to them under readings/."""

from __future__ import annotations

import datetime as dt
import io
import json
import mimetypes
import zipfile
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from samia.core.ports import Storage

FORMAT = "samia-export-v1"

# table → the rows of it the person owns or is party to (%(me)s is their id); each read under RLS
PARTY: dict[str, sql.SQL] = {
    "profiles": sql.SQL("t.id = %(me)s"),
    "phone_verifications": sql.SQL("t.profile_id = %(me)s"),
    "orders": sql.SQL("t.user_id = %(me)s or t.assigned_reader = %(me)s"),
    "order_attachments": sql.SQL("t.order_id in (select o.id from orders o "
                                 "where o.user_id = %(me)s or o.assigned_reader = %(me)s)"),
    "tarot_v2_readings": sql.SQL("t.order_id in (select o.id from orders o "
                                 "where o.user_id = %(me)s or o.assigned_reader = %(me)s)"),
    "tarot_v2_card_selections": sql.SQL("t.reading_id in (select r.id from tarot_v2_readings r join orders o "
                                        "on o.id = r.order_id where o.user_id = %(me)s or o.assigned_reader = %(me)s)"),
    "reading_drafts": sql.SQL("t.author_id = %(me)s"),
    "bookings": sql.SQL("t.client_id = %(me)s or t.reader_id = %(me)s"),
    "calls": sql.SQL("t.client_id = %(me)s or t.reader_id = %(me)s"),
    "call_events": sql.SQL("t.call_id in (select c.id from calls c where c.client_id = %(me)s "
                           "or c.reader_id = %(me)s)"),
    "call_consent_logs": sql.SQL("t.client_id = %(me)s"),
    "emergency_requests": sql.SQL("t.client_id = %(me)s"),
    "payment_transactions": sql.SQL("t.user_id = %(me)s"),
    "ledger_entries": sql.SQL("t.user_id = %(me)s"),
    "reviews": sql.SQL("t.client_id = %(me)s or t.reader_id = %(me)s"),
    "favourites": sql.SQL("t.client_id = %(me)s"),
    "notification_outbox": sql.SQL("t.recipient_id = %(me)s"),
    "media_assets": sql.SQL("t.owner_id = %(me)s"),
    "legal_acceptances": sql.SQL("t.user_id = %(me)s"),
    "cookie_consents": sql.SQL("t.user_id = %(me)s"),
    "data_requests": sql.SQL("t.user_id = %(me)s"),
    "moderation_cases": sql.SQL("t.reporter_id = %(me)s"),
    "appeals": sql.SQL("t.appellant_id = %(me)s"),
    "reader_profiles": sql.SQL("t.reader_id = %(me)s"),
    "reader_strikes": sql.SQL("t.reader_id = %(me)s"),
    "availability_rules": sql.SQL("t.reader_id = %(me)s"),
    "availability_exceptions": sql.SQL("t.reader_id = %(me)s"),
    "instant_windows": sql.SQL("t.reader_id = %(me)s"),
    "quiet_hours": sql.SQL("t.user_id = %(me)s"),
    "idempotency_keys": sql.SQL("t.user_id = %(me)s"),
    "personalization_opt_outs": sql.SQL("t.user_id = %(me)s"),
    "notification_sends": sql.SQL("t.recipient_id = %(me)s"),
    "devices": sql.SQL("t.user_id = %(me)s"),
    "consents": sql.SQL("t.user_id = %(me)s"),
    "notification_prefs": sql.SQL("t.user_id = %(me)s"),
    "horoscope_subscriptions": sql.SQL("t.user_id = %(me)s"),
    "horoscope_push_log": sql.SQL("t.user_id = %(me)s"),
}

# How a row is written: to_jsonb of the row, except where the person may not read every column
# (phone codes' hashes) or where the row is someone else's words (a client's question in an
# order the person read as its reader).
ROW: dict[str, sql.Composable] = {
    "phone_verifications": sql.SQL("jsonb_build_object('id', t.id, 'profile_id', t.profile_id, 'phone', t.phone, "
                                   "'provider', t.provider, 'status', t.status, 'attempts', t.attempts, "
                                   "'expires_at', t.expires_at, 'created_at', t.created_at, "
                                   "'verified_at', t.verified_at)"),
    "orders": sql.SQL("case when t.user_id = %(me)s then to_jsonb(t) "
                      "else to_jsonb(t) - 'question_text' - 'inputs' - 'chart' end"),
    # a review of a reader is about them; who wrote it is not theirs to have
    "reviews": sql.SQL("case when t.client_id = %(me)s then to_jsonb(t) else to_jsonb(t) - 'client_id' end"),
    "bookings": sql.SQL("case when t.client_id = %(me)s then to_jsonb(t) else to_jsonb(t) - 'cancel_reason' end"),
    # a device's push token or subscription keys are credentials to reach it, not data about the person
    "devices": sql.SQL("to_jsonb(t) - 'address'"),
}

ORDER_BY: dict[str, sql.SQL] = {
    "favourites": sql.SQL("t.reader_id"), "order_attachments": sql.SQL("t.order_id, t.media_id"),
    "tarot_v2_card_selections": sql.SQL("t.reading_id, t.card_position"), "quiet_hours": sql.SQL("t.user_id"),
    "reader_profiles": sql.SQL("t.reader_id"), "idempotency_keys": sql.SQL("t.created_at, t.key"),
    "personalization_opt_outs": sql.SQL("t.user_id"),
    "consents": sql.SQL("t.channel"), "notification_prefs": sql.SQL("t.user_id"),
    "horoscope_subscriptions": sql.SQL("t.user_id"), "horoscope_push_log": sql.SQL("t.day"),
}


def table_query(table: str) -> sql.Composed:
    row = ROW.get(table, sql.SQL("to_jsonb(t)"))
    order = ORDER_BY.get(table, sql.SQL("t.id"))
    return sql.SQL("select {} from {} t where {} order by {}").format(
        row, sql.Identifier(table), PARTY[table], order)


@dataclass
class Built:
    data: bytes
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def _ext(content_type: str | None) -> str:
    return (mimetypes.guess_extension(content_type or "") or ".bin") if content_type else ".bin"


async def as_user(conn: AsyncConnection, user_id: str) -> None:
    """The request prelude's switch, for a job: role and claims, transaction-local."""
    await conn.execute("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
                       (json.dumps({"sub": user_id, "role": "authenticated"}),))


async def build(conn: AsyncConnection, storage: Storage, user_id: str) -> Built:
    """Read everything as the user (read-only, under RLS) and write the ZIP in memory. The caller
    owns the connection; this leaves the transaction to it."""
    await as_user(conn, user_id)
    out = Built(b"")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        tables: dict[str, list[Any]] = {}
        for table in PARTY:
            cur = await conn.execute(table_query(table), {"me": user_id})
            tables[table] = [r[0] for r in await cur.fetchall()]
            z.writestr(f"{table}.json", json.dumps(tables[table], ensure_ascii=False, indent=1, sort_keys=True))
            out.counts[table] = len(tables[table])
        for m in tables["media_assets"]:
            if m["removed_at"] is None and not m["storage_key"].startswith("erased/"):
                name = f"media/{m['id']}{_ext(m['content_type'])}"
                z.writestr(name, await storage.get(m["storage_key"]))
                out.files.append(name)
        cur = await conn.execute(
            "select o.id, x.storage_key, x.content_type from orders o, "
            "lateral app.media_object(o.approved_media_id, o.approved_sha256) x "
            "where o.user_id = %s and o.status in ('delivered', 'archived') order by o.id", (user_id,))
        for order_id, key, ctype in await cur.fetchall():
            name = f"readings/order-{order_id}{_ext(ctype)}"
            z.writestr(name, await storage.get(key))
            out.files.append(name)
        z.writestr("manifest.json", json.dumps({
            "format": FORMAT, "user_id": user_id, "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "tables": out.counts, "files": out.files,
            "note": "Every row you own or are party to, as you can see it in your account; your uploads and "
                    "recordings under media/, the readings delivered to you under readings/."}, indent=1))
    out.data = buf.getvalue()
    return out
