"""A person's own messaging choices: devices, per-channel consent, quiet hours, and what was
sent to them. The API (api.py) and the account page (web/account.py) both call these, in the
caller's RLS transaction; the table rules are in schema/13_notifications.sql."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.config import Settings
from samia.core.problems import AppError
from samia.notifications import templates
from samia.providers.push import WebPushSubscription

CONSENT_CHANNELS = ("email", "push", "sms", "whatsapp")
DeviceKind = Literal["webpush", "fcm", "apns"]


def device_address(settings: Settings, kind: DeviceKind, subscription: Any, token: str | None) -> str:
    """What a device is stored as: a validated web-push subscription or a provider token
    (422 when neither fits)."""
    if kind == "webpush":
        if subscription is None:
            raise AppError(422, "validation_error", "a web-push device needs its subscription")
        try:
            sub = WebPushSubscription.parse(subscription, host_pattern=settings.webpush_endpoint_host_pattern)
        except ValueError as e:
            raise AppError(422, "validation_error", str(e)) from e
        return sub.address()
    pattern = r"[0-9a-fA-F]{64,200}" if kind == "apns" else r"[A-Za-z0-9_:\-.]{8,4096}"
    if not re.fullmatch(pattern, token or ""):
        raise AppError(422, "validation_error", f"a {kind} device needs its token")
    return token or ""


async def register_device(conn: AsyncConnection, kind: DeviceKind, address: str, label: str | None) -> int:
    cur = await conn.execute("select app.register_device(%s, %s, %s)", (kind, address, label))
    row = await cur.fetchone()
    assert row is not None
    assert row[0] is not None
    return int(row[0])


async def remove_device(conn: AsyncConnection, device_id: int) -> bool:
    cur = await conn.execute("delete from devices where id = %s and user_id = auth.uid() returning id", (device_id,))
    return await cur.fetchone() is not None


async def set_consent(conn: AsyncConnection, channel: str, opted_in: bool, source: str) -> dict[str, Any]:
    """Opt in or out of a channel (audited); applies to the next send."""
    if channel not in CONSENT_CHANNELS:
        raise AppError(422, "validation_error", "not a channel")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""
        insert into consents (user_id, channel, opted_in, lawful_basis, source)
        values (auth.uid(), %s, %s, 'consent', %s)
        on conflict (user_id, channel) do update set opted_in = excluded.opted_in, lawful_basis = 'consent',
               source = excluded.source, at = now()
        returning channel, opted_in, lawful_basis, source, at""", (channel, opted_in, source))
    row = await cur.fetchone()
    assert row is not None
    await conn.execute("select app.audit(%s, 'consent', %s)",
                       ("messaging.opt_in" if opted_in else "messaging.opt_out", channel))
    return row


def known_zone(tz: str) -> str:
    """An IANA zone the database knows too: a bad one would fail every later fan-out."""
    if tz not in zoneinfo.available_timezones():
        raise ValueError("not a known time zone (e.g. Asia/Beirut)")
    return tz


async def set_quiet_hours(conn: AsyncConnection, starts: dt.time, ends: dt.time, tz: str) -> None:
    """The caller's quiet hours in their own zone: ordinary messages wait for the end of the
    window; sirens, SEV1/SEV2 pages and security codes do not."""
    await conn.execute("insert into quiet_hours (user_id, starts, ends, tz) values (auth.uid(), %s, %s, %s) "
                       "on conflict (user_id) do update set starts = excluded.starts, ends = excluded.ends, "
                       "tz = excluded.tz", (starts, ends, tz))


async def clear_quiet_hours(conn: AsyncConnection) -> None:
    await conn.execute("delete from quiet_hours where user_id = auth.uid()")


async def overview(conn: AsyncConnection, limit: int, lang: str) -> dict[str, Any]:
    """The caller's last sends (newest first, each with its title in `lang`; never the body,
    which may hold a link), consents, devices and quiet hours."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, channel, template, params, state, attempts, created_at, sent_at "
                      "from notification_sends where recipient_id = auth.uid() order by id desc limit %s", (limit,))
    sends = await cur.fetchall()
    for send in sends:
        params = send.pop("params") or {}
        send["title"] = templates.render(send["template"], lang, params)[0] if send["template"] in templates.EN \
            else None
    consented = await consents(conn)
    await cur.execute("select id, kind, label, created_at from devices where user_id = auth.uid() order by id")
    devices = await cur.fetchall()
    await cur.execute("select starts, ends, tz from quiet_hours where user_id = auth.uid()")
    quiet = await cur.fetchone()
    return {"sends": sends, "consents": consented, "devices": devices, "quiet_hours": quiet}


async def consents(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The caller's answer per channel, with its basis, source and time."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select channel, opted_in, lawful_basis, source, at from consents where user_id = auth.uid() "
                      "order by channel")
    return await cur.fetchall()


async def language(conn: AsyncConnection) -> str:
    """The caller's language for messages (their profile's; English by default)."""
    cur = await conn.execute("select locale from profiles where id = auth.uid()")
    row = await cur.fetchone()
    return "ar" if row and row[0] == "ar" else "en"
