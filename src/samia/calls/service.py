"""What the call routes and the web pages share: a call's row, its state machine's events
(with the call-setup metric), dialling both parties through the voice provider, the client's
consent (kept with their address) and the emergency siren's request. The state machine itself
is in the database (schema/11_calls.sql)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import BaseModel

from samia.core.access import Ctx, Probe, acting_as
from samia.core.problems import AppError, not_found
from samia.providers.voice import Leg, make_voice


class CallOut(BaseModel):
    id: int
    kind: str
    status: str
    booking_id: int | None
    client_id: str | None
    reader_id: str | None
    record: bool
    per_minute_minor: int
    currency: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str | None
    connected_seconds: int | None
    billed_minor: int | None
    created_at: dt.datetime


# what recording consent rests on (API and booking page)
CONSENT_PROBE = Probe(
    "insert into call_consent_logs (booking_id, client_id, client_ip, consent_given) "
    "values (:booking, auth.uid(), '127.0.0.1', true)")

# what raising the siren rests on (API and the emergency button)
EMERGENCY_PROBE = Probe("select 1 from profiles where id = auth.uid() and role_id = 5")

# what answering the siren rests on (API and the reader's ringing overlay)
ANSWER_PROBE = Probe("insert into reader_status (reader_id, available) values (auth.uid(), true)")

CALL_COLS = sql.SQL("id, kind, status, booking_id, client_id::text, reader_id::text, record, per_minute_minor, "
                    "currency::text, started_at, ended_at, end_reason, connected_seconds, billed_minor, created_at")

EMERGENCY_COLS = sql.SQL("id, client_id::text, status, level, next_step_at, answered_by::text, "
                         "acknowledged_by::text, call_id, created_at, closed_at")


async def fetch_call(conn: AsyncConnection, call_id: int) -> dict[str, Any]:
    """A call the caller may see (RLS), or 404."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from calls where id = %s").format(CALL_COLS), (call_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found("call")
    return row


async def booking_call(conn: AsyncConnection, booking_id: int) -> dict[str, Any] | None:
    """The latest call of a booking the caller may see, or None before it starts."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from calls where booking_id = %s order by id desc limit 1"
                              ).format(CALL_COLS), (booking_id,))
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


async def consent_given(conn: AsyncConnection, booking_id: int) -> dict[str, Any] | None:
    """The caller's latest consent for a booking (clients read their own), or None."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select id, recording_consent, consented_at from call_consent_logs where booking_id = %s "
                      "and consent_given order by id desc limit 1", (booking_id,))
    return await cur.fetchone()


async def fetch_emergency(conn: AsyncConnection, request_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {}, status = 'ringing' as siren from emergency_requests where id = %s"
                              ).format(EMERGENCY_COLS), (request_id,))
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


async def provider_ref(ctx: Ctx, call_id: int) -> str | None:
    cur = await ctx.conn.execute("select provider_ref from calls where id = %s", (call_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def record_event(ctx: Ctx, call_id: int, event: str, at: dt.datetime | None, reason: str | None,
                       provider_event: str | None, ref: str | None = None) -> str:
    """Feed the call's state machine one event (applied once per provider event); returns the
    state it reached."""
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_event(%s, %s, coalesce(%s, now()), %s, %s, %s)",
                                     (call_id, event, at, reason, provider_event, ref))
        applied = str((await cur.fetchone())[0])  # type: ignore[index]
        if applied == "started":
            cur = await ctx.conn.execute("select app.call_setup_seconds(%s)", (call_id,))
            row = await cur.fetchone()
            if row and row[0] is not None and row[0] >= 0:
                ctx.platform.metrics.call_setup.observe(float(row[0]))
    return applied


async def _legs(ctx: Ctx, call_id: int) -> list[Leg]:
    async with acting_as(ctx, "samia_calls"):
        cur = await ctx.conn.execute("select app.call_phones(%s)", (call_id,))
        phones = (await cur.fetchone())[0] or []  # type: ignore[index]
    return [Leg(p) for p in phones]


async def connect(ctx: Ctx, call_id: int) -> dict[str, Any]:
    """Dial both parties through the provider; the call rings."""
    voice = make_voice(ctx.platform.settings)
    legs = await _legs(ctx, call_id)
    if voice.name == "twilio":
        ref = await ctx.platform.guarded(ctx.conn, "twilio", lambda: voice.connect(call_id, legs))
    else:
        ref = await voice.connect(call_id, legs)
    await record_event(ctx, call_id, "ringing", None, None, None, ref)
    return await fetch_call(ctx.conn, call_id)


async def open_emergencies(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Sirens still sounding, oldest first, with their escalation trace (staff see the trace;
    a reader sees the ringing requests only, which is what the ringing overlay needs)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""select {}, array(select e.event || '@' || e.level from emergency_events e
                                          where e.request_id = r.id order by e.id) as trace
                                    from emergency_requests r where status = 'ringing' order by created_at"""
                              ).format(EMERGENCY_COLS))
    return await cur.fetchall()


async def _siren_raised_at(ctx: Ctx, request_id: int) -> dt.datetime | None:
    cur = await ctx.conn.execute("select created_at from emergency_requests where id = %s", (request_id,))
    row = await cur.fetchone()
    return row[0] if row else None


def _siren_answered(ctx: Ctx, raised: dt.datetime | None) -> None:
    if raised is not None:
        ctx.platform.metrics.siren_answer.observe((dt.datetime.now(dt.UTC) - raised).total_seconds())


async def answer_emergency(ctx: Ctx, request_id: int) -> dict[str, Any]:
    """A reader takes the siren: the call is created and dialled. A siren already answered or
    acknowledged answers 409."""
    raised = await _siren_raised_at(ctx, request_id)
    cur = await ctx.conn.execute("select app.answer_emergency(%s)", (request_id,))
    call_id = (await cur.fetchone())[0]  # type: ignore[index]
    _siren_answered(ctx, raised)
    return await connect(ctx, call_id)


async def acknowledge_emergency(ctx: Ctx, request_id: int) -> dict[str, Any]:
    """Staff acknowledge the siren: its escalation stops."""
    raised = await _siren_raised_at(ctx, request_id)
    await ctx.conn.execute("select app.close_emergency(%s, 'acknowledged')", (request_id,))
    _siren_answered(ctx, raised)
    return await fetch_emergency(ctx.conn, request_id)


async def emergency_board(conn: AsyncConnection, hours: int = 24) -> list[dict[str, Any]]:
    """The staff's emergency board: sirens still sounding first, then those closed in the last
    `hours`, each with its escalation trace (event, level, when, who)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("""select {}, r.note, coalesce((select jsonb_agg(jsonb_build_object(
                                     'event', e.event, 'level', e.level, 'at', e.recorded_at,
                                     'actor', e.actor::text) order by e.id)
                                   from emergency_events e where e.request_id = r.id), '[]') as trace
                                   from emergency_requests r
                                  where r.status = 'ringing' or r.closed_at > now() - make_interval(hours => %s)
                                  order by r.status = 'ringing' desc, r.created_at desc limit 100"""
                              ).format(EMERGENCY_COLS), (hours,))
    return await cur.fetchall()


async def moderation_action(ctx: Ctx, call_id: int, action: str, reason: str | None, note: str | None) -> None:
    await ctx.conn.execute("insert into moderation_actions (actor_id, target_kind, target_id, action, reason, "
                           "reason_code) values (auth.uid(), 'call', %s, %s, %s, %s)",
                           (str(call_id), action, note, reason))
    await ctx.conn.execute("select app.audit(%s, 'call', %s, %s)",
                           (f"moderation.{action}", str(call_id), json.dumps({"reason": reason})))


async def join_silent(ctx: Ctx, call_id: int) -> dict[str, Any]:
    """Join a live call listen-only (muted, no announcement): the provider dials the monitor
    into the call's conference muted; the local provider has no audio and only records it."""
    call = await fetch_call(ctx.conn, call_id)
    if call["status"] not in ("ringing", "started"):
        raise AppError(409, "not_live", f"the call is {call['status']}")
    phone = (await (await ctx.conn.execute("select phone from profiles where id = auth.uid()")).fetchone())[0]  # type: ignore[index]
    ref = await provider_ref(ctx, call_id)
    voice = make_voice(ctx.platform.settings)
    await voice.join_silent(ref, Leg(phone))
    await ctx.conn.execute("insert into call_events (call_id, event, actor) values (%s, 'monitor_joined', auth.uid())",
                           (call_id,))
    await moderation_action(ctx, call_id, "join_silent", None, None)
    return {"call_id": call_id, "joined": True, "muted": True, "provider": voice.name, "conference": ref}


async def drop_call(ctx: Ctx, call_id: int, note: str) -> None:
    """End a live call now (`dropped_by_monitor`); the client pays only the connected time."""
    call = await fetch_call(ctx.conn, call_id)
    if call["status"] == "ended":
        raise AppError(409, "not_live", "the call has already ended")
    ref = await provider_ref(ctx, call_id)
    await make_voice(ctx.platform.settings).hangup(ref)
    await record_event(ctx, call_id, "ended", None, "dropped_by_monitor", None)
    await ctx.conn.execute("insert into call_events (call_id, event, actor) values (%s, 'dropped', auth.uid())",
                           (call_id,))
    await moderation_action(ctx, call_id, "drop_call", None, note)


async def live_calls(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Calls ringing or connected now (staff), oldest first, with their safety flags' count."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {}, (select count(*) from call_flags f where f.call_id = calls.id) as flags "
                              "from calls where status in ('ringing', 'started') order by created_at limit 200"
                              ).format(CALL_COLS))
    return await cur.fetchall()


async def call_safety(conn: AsyncConnection, call_id: int) -> dict[str, Any]:
    """A call's redacted transcript, flags and incident (staff only; the raw text is never kept)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select speaker, text_redacted, redactions, at from call_transcripts where call_id = %s "
                      "order by id", (call_id,))
    segments = await cur.fetchall()
    await cur.execute("select id, category, source, score, note, created_at from call_flags where call_id = %s "
                      "order by id", (call_id,))
    flags = await cur.fetchall()
    await cur.execute("select id, case_id, flags, status, opened_at from safety_incidents where call_id = %s",
                      (call_id,))
    return {"call_id": call_id, "segments": segments, "flags": flags, "incident": await cur.fetchone()}


async def recent_flags(conn: AsyncConnection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest safety flags across calls, with the redacted segment that raised each (staff)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("""select f.id, f.call_id, f.category, f.source, f.score, f.created_at,
                                (select t.text_redacted from call_transcripts t where t.call_id = f.call_id
                                  order by abs(extract(epoch from t.at - f.created_at)) limit 1) as excerpt
                           from call_flags f order by f.id desc limit %s""", (limit,))
    return await cur.fetchall()


# ---- a reader's availability for instant calls (API and the reader's availability page) ----------

WINDOW_COLS = sql.SQL("id, reader_id::text, lower(during) as starts_at, upper(during) as ends_at, status, note")
WINDOW_REQUEST_PROBE = Probe("insert into instant_windows (reader_id, during) "
                             "values (auth.uid(), tstzrange(now(), now() + interval '1h'))")


async def set_status(ctx: Ctx, available: bool) -> dict[str, Any]:
    """Go available or unavailable. Inside an admin-approved instant window a reader stays
    available unless on a call: 409 `in_instant_window` (and the attempt is logged)."""
    if not available:
        cur = await ctx.conn.execute("select app.in_instant_window(auth.uid()) and not app.on_live_call(auth.uid())")
        if (await cur.fetchone())[0]:  # type: ignore[index]
            raise AppError(409, "in_instant_window", "you are inside an approved instant window and not on a call",
                           audit={"event": "reader.unavailable_refused"})
    await ctx.conn.execute("insert into reader_status (reader_id, available) values (auth.uid(), %s) "
                           "on conflict (reader_id) do update set available = excluded.available", (available,))
    await ctx.conn.execute("select app.audit('reader.availability', 'profile', auth.uid()::text, %s)",
                           (json.dumps({"available": available}),))
    return {"reader_id": ctx.user_id, "available": available}



async def my_status(conn: AsyncConnection) -> dict[str, Any]:
    """The calling reader's availability now, and whether an approved instant window holds them."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select coalesce((select available from reader_status where reader_id = auth.uid()), false) "
                      "as available, app.in_instant_window(auth.uid()) as in_window, "
                      "app.on_live_call(auth.uid()) as on_call")
    return await cur.fetchone()  # type: ignore[return-value]


async def request_window(conn: AsyncConnection, starts_at: dt.datetime, ends_at: dt.datetime) -> dict[str, Any]:
    """Ask an admin to approve a window in which the caller takes instant calls."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("insert into instant_windows (reader_id, during) values (auth.uid(), tstzrange(%s, %s)) "
                              "returning {}").format(WINDOW_COLS), (starts_at, ends_at))
    return await cur.fetchone()  # type: ignore[return-value]


async def my_windows(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The caller's instant windows that have not ended, soonest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("select {} from instant_windows where reader_id = auth.uid() and upper(during) > now() "
                              "order by lower(during) limit 50").format(WINDOW_COLS))
    return await cur.fetchall()


async def flag_call(ctx: Ctx, call_id: int, category: str, note: str | None) -> int:
    """A monitor's flag on a call the caller may see, with a category; a moderation action."""
    await fetch_call(ctx.conn, call_id)
    cur = await ctx.conn.execute("select app.monitor_flag(%s, %s, %s)", (call_id, category, note))
    flag_id = int((await cur.fetchone())[0])  # type: ignore[index]
    await moderation_action(ctx, call_id, "flag", category, note)
    return flag_id
