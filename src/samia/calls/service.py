"""Calls: the client's consent (kept with their address) and reading a call, shared by the
API and the web pages. The call state machine is SQL in schema/11_calls.sql."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from samia.core.access import Probe
from samia.core.problems import AppError, not_found

# what recording consent rests on (API and booking page)
CONSENT_PROBE = Probe(
    "insert into call_consent_logs (booking_id, client_id, client_ip, consent_given) "
    "values (:booking, auth.uid(), '127.0.0.1', true)")

# what raising the siren rests on (API and the emergency button)
EMERGENCY_PROBE = Probe(
        "select 1 from profiles where id = auth.uid() and role_id = 5")

CALL_COLS = ("id, kind, status, booking_id, client_id::text, reader_id::text, record, per_minute_minor, "
             "currency::text, started_at, ended_at, end_reason, connected_seconds, billed_minor, created_at")


async def get_call(conn: AsyncConnection, call_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"select {CALL_COLS} from calls where id = %s", (call_id,))  # noqa: S608
    row = await cur.fetchone()
    if row is None:
        raise not_found("call")
    return row


async def booking_call(conn: AsyncConnection, booking_id: int) -> dict[str, Any] | None:
    """The latest call of a booking the caller may see, or None before it starts."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"select {CALL_COLS} from calls where booking_id = %s order by id desc limit 1",  # noqa: S608
                      (booking_id,))
    return await cur.fetchone()


async def record_consent(conn: AsyncConnection, booking_id: int, *, ip: str, user_agent: str | None,
                         recording: bool) -> dict[str, Any]:
    """The client's consent to the call of their own booking (and, separately, to recording),
    kept with their IP address and the time. A call cannot start without it."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("insert into call_consent_logs (booking_id, client_id, client_ip, user_agent, consent_given, "
                      "recording_consent) select %s, auth.uid(), %s, %s, true, %s where exists (select 1 "
                      "from bookings where id = %s and client_id = auth.uid()) "
                      "returning id, booking_id, recording_consent, consented_at",
                      (booking_id, ip, (user_agent or "")[:300], recording, booking_id))
    row = await cur.fetchone()
    if row is None:
        raise not_found("booking")
    await conn.execute("select app.audit('call.consent', 'booking', %s, %s)",
                       (str(booking_id), json.dumps({"recording": recording})))
    return row


EMERGENCY_COLS = ("id, client_id::text, status, level, next_step_at, answered_by::text, acknowledged_by::text, "
                  "call_id, created_at, closed_at")


async def emergency(conn: AsyncConnection, request_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"select {EMERGENCY_COLS}, status = 'ringing' as siren from emergency_requests "  # noqa: S608
                      "where id = %s", (request_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("emergency call")
    return row


async def emergency_enabled(conn: AsyncConnection) -> bool:
    cur = await conn.execute("select app.flag_on('feature.emergencyExtension')")
    return bool((await cur.fetchone())[0])  # type: ignore[index]


async def raise_emergency(conn: AsyncConnection, *, ip: str, user_agent: str | None, note: str | None,
                          recording: bool) -> int:
    """The siren: it rings every available reader now, then climbs Monitor → Admin → Super
    Admin on its timers until answered or acknowledged (feature.emergencyExtension)."""
    if not await emergency_enabled(conn):
        raise AppError(403, "feature_disabled", "emergency calls are switched off")
    cur = await conn.execute("select app.raise_emergency(%s, %s, %s, %s)", (note, ip, user_agent, recording))
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def consent_given(conn: AsyncConnection, booking_id: int) -> dict[str, Any] | None:
    """The caller's latest consent for a booking (clients read their own), or None."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, recording_consent, consented_at from call_consent_logs where booking_id = %s "
                      "and consent_given order by id desc limit 1", (booking_id,))
    return await cur.fetchone()
